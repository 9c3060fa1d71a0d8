"""The waste delivery receipt handed to the vessel, after the IMO receipt's fields
(MEPC.1/Circ.834/Rev.1), as a PDF with a QR code back to the record."""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fpdf import FPDF

from wastetrack.batches.labels import CJK_FONT_CANDIDATES, find_font, qr_image


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    category_code: str
    category_name_zh: str
    category_name_en: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool
    batch_code: str


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
    signed_by: str
    recorded_at: datetime


def render_receipt_pdf(
    receipt: ReceiptText, *, cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES
) -> bytes:
    """One A4 page: parties, ship, quantities per category, signature and a QR to the record."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"Waste delivery receipt {receipt.number}")
    pdf.set_creator("wastetrack")
    pdf.add_page()
    cjk = find_font(cjk_fonts)
    if cjk:
        pdf.add_font("receipt", "", cjk)
        family = "receipt"
    else:
        family = "Helvetica"

    def text(value: str) -> str:
        # Without a CJK font the core fonts carry Latin-1 only: keep the English half.
        return value if cjk else value.encode("latin-1", "replace").decode("latin-1")

    pdf.set_font(family, size=15)
    title = "船舶垃圾/污染物接收单  Waste Delivery Receipt" if cjk else "Waste Delivery Receipt"
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=9)
    pdf.cell(0, 6, f"No. {receipt.number}", new_x="LMARGIN", new_y="NEXT")
    qr = io.BytesIO()
    qr_image(receipt.url, box_size=6).save(qr, format="PNG")
    pdf.image(qr, x=165, y=10, w=32, h=32)
    rows = [
        ("Port / terminal", f"{receipt.port_name} · {receipt.berth_name}"),
        ("Reception facility provider", receipt.reception_provider),
        ("Discharge from", receipt.discharge_from.isoformat(timespec="minutes")),
        ("Discharge to", receipt.discharge_to.isoformat(timespec="minutes")),
        ("Ship name", receipt.ship_name),
        ("Registration number", receipt.registration_number),
        ("IMO number", receipt.imo_number or "—"),
        ("Gross tonnage", f"{receipt.gross_tonnage}"),
        ("Type of ship", receipt.ship_type),
        ("Owner or operator", receipt.owner or "—"),
        ("Flag state", receipt.flag_state),
    ]
    pdf.ln(8)
    for label, value in rows:
        pdf.set_font(family, size=9)
        pdf.cell(55, 6, label)
        pdf.cell(0, 6, text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(family, size=9)
    widths = (70, 28, 28, 20, 34)
    for width, head in zip(widths, ("Category", "m³", "kg", "kg from m³", "Batch"), strict=True):
        pdf.cell(width, 7, head if cjk else head.replace("³", "3"), border=1)
    pdf.ln()
    for line in receipt.lines:
        name = f"{line.category_code} {line.category_name_zh if cjk else line.category_name_en}"
        cells = (
            text(name),
            f"{line.volume_m3 or ''}",
            f"{line.mass_kg or ''}",
            "yes" if line.mass_derived else "",
            line.batch_code,
        )
        for width, value in zip(widths, cells, strict=True):
            pdf.cell(width, 7, value, border=1)
        pdf.ln()
    if receipt.flags:
        pdf.ln(3)
        pdf.cell(0, 6, "Flags: " + ", ".join(receipt.flags), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.cell(
        0,
        6,
        text(f"Signed for the reception facility: {receipt.signed_by}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.cell(
        0,
        6,
        f"Recorded {receipt.recorded_at.isoformat(timespec='seconds')}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.cell(0, 6, text(f"Check this receipt: {receipt.url}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
