"""The waste delivery receipt handed to the vessel, after the IMO receipt's fields
(MEPC.1/Circ.834/Rev.1), as a PDF with a QR code back to the record."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from wastetrack.batches.drawing import CJK_FONT_CANDIDATES, a4_pdf, add_cjk_font, corner_qr, latin1
from wastetrack.core.timefmt import local_time


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    category_code: str
    category_name_zh: str
    category_name_en: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool
    batch_code: str
    acceptance: str
    """Where the line stands with the reception facility now (`deliveries.Acceptance`)."""
    acceptance_zh: str
    corrected: bool = False
    """The line's batch was corrected since the delivery: the line shows it as it stands."""


@dataclass(frozen=True, slots=True)
class ReceiptText:
    number: str
    url: str
    port_name: str
    berth_name: str
    reception_provider: str
    discharge_from: datetime
    discharge_to: datetime
    ship_name: str
    registration_number: str
    imo_number: str | None
    gross_tonnage: Decimal
    ship_type: str
    owner: str | None
    flag_state: str
    lines: Sequence[ReceiptLine]
    flags: Sequence[str]
    recorded_by: str  # the user who recorded the delivery
    signed_by_port: bool  # a user of the port: else the vessel's declaration, not signed for
    recorded_at: datetime
    timezone: str  # the city's (settings.timezone): every time is printed in it


def render_receipt_pdf(
    receipt: ReceiptText, *, cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES
) -> bytes:
    """One A4 page: parties, ship, quantities per category, signature and a QR to the record."""
    pdf = a4_pdf()
    pdf.set_title(f"Waste delivery receipt {receipt.number}")
    pdf.set_creator("wastetrack")
    pdf.add_page()
    cjk = add_cjk_font(pdf, "receipt", cjk_fonts)
    family = "receipt" if cjk else "Helvetica"

    def text(value: str) -> str:
        # Without a CJK font the core fonts carry Latin-1 only: keep the English half.
        return value if cjk else latin1(value)

    def when(value: datetime) -> str:
        return local_time(value, receipt.timezone)

    pdf.set_font(family, size=15)
    title = "船舶垃圾/污染物接收单  Waste Delivery Receipt" if cjk else "Waste Delivery Receipt"
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=9)
    pdf.cell(0, 6, f"No. {receipt.number}", new_x="LMARGIN", new_y="NEXT")
    qr = corner_qr(pdf, receipt.url, x=165, y=10, size=32)
    provider = receipt.reception_provider
    if not receipt.signed_by_port:
        unsigned = "declared by the vessel, not signed for"
        provider += f" (船方申报，未经接收单位签字 {unsigned})" if cjk else f" ({unsigned})"
    rows = [
        ("港口/泊位 Port / terminal", f"{receipt.port_name} · {receipt.berth_name}"),
        ("接收单位 Reception facility provider", provider),
        ("开始交付 Discharge from", when(receipt.discharge_from)),
        ("结束交付 Discharge to", when(receipt.discharge_to)),
        ("船名 Ship name", receipt.ship_name),
        ("船舶登记号 Registration number", receipt.registration_number),
        ("IMO 编号 IMO number", receipt.imo_number or "—"),
        ("总吨 Gross tonnage", f"{receipt.gross_tonnage}"),
        ("船舶类型 Type of ship", receipt.ship_type),
        ("船舶所有人或经营人 Owner or operator", receipt.owner or "—"),
        ("船旗国 Flag state", receipt.flag_state),
    ]
    pdf.ln(8)
    # Every text that may be long wraps within the page (multi_cell, the table's cells): a
    # long provider's name must not push the vessel's-declaration notice off the paper.
    pdf.set_font(family, size=9)
    for label, value in rows:
        pdf.cell(62, 6, label if cjk else latin1(label.split(" ", 1)[1]))
        pdf.multi_cell(qr.width(pdf), 6, text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (50, 20, 22, 14, 36, 48)
    heads = ("类别 Category", "m³", "kg", "折算 est.", "批次 Batch", "接收 Acceptance")
    heads_en = ("Category", "m3", "kg", "estimated", "Batch", "Acceptance")
    from fpdf.fonts import FontFace  # with fpdf2 itself, on the first document (drawing.a4_pdf)

    headings = FontFace(emphasis="")  # the CJK font has no bold face
    with pdf.table(
        col_widths=widths,
        width=sum(widths),
        line_height=5,
        text_align="LEFT",
        headings_style=headings,
    ) as table:
        table.row(heads if cjk else heads_en)
        for line in receipt.lines:
            name = f"{line.category_code} {line.category_name_zh if cjk else line.category_name_en}"
            english = line.acceptance.replace("_", " ")
            table.row(
                (
                    text(name),
                    "" if line.volume_m3 is None else f"{line.volume_m3}",
                    "" if line.mass_kg is None else f"{line.mass_kg}",
                    ("是 yes" if cjk else "yes") if line.mass_derived else "",
                    f"{line.batch_code}{' *' if line.corrected else ''}",
                    f"{line.acceptance_zh} {english}" if cjk else english,
                )
            )
    if any(line.corrected for line in receipt.lines):
        pdf.ln(3)
        english = "corrected since the delivery, shown as it stands"
        pdf.multi_cell(
            0,
            6,
            f"* 交付后已更正，按现状显示 {english}" if cjk else f"* {english}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    if receipt.flags:
        pdf.ln(3)
        pdf.multi_cell(0, 6, "Flags: " + ", ".join(receipt.flags), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    # Only a delivery the port recorded carries its signature; the crew's is the vessel's
    # declaration, and each line's acceptance says what the port's receipts made of it.
    if receipt.signed_by_port:
        signed = f"接收单位签字 Signed for the reception facility: {receipt.recorded_by}"
    else:
        signed = (
            f"船方申报 Declared by the vessel: {receipt.recorded_by};"
            " not signed for the reception facility, see each line's acceptance"
        )
    pdf.multi_cell(
        0, 6, text(signed if cjk else signed.split(" ", 1)[1]), new_x="LMARGIN", new_y="NEXT"
    )
    recorded = when(receipt.recorded_at)
    pdf.cell(
        0,
        6,
        f"记录时间 Recorded {recorded}" if cjk else f"Recorded {recorded}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.multi_cell(0, 6, text(f"Check this receipt: {receipt.url}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
