"""A transfer manifest as a PDF with its QR code."""

from collections.abc import Sequence
from datetime import datetime

from wastetrack.batches.drawing import CJK_FONT_CANDIDATES, a4_pdf, add_cjk_font, corner_qr, latin1
from wastetrack.batches.identifiers import spaced
from wastetrack.core.timefmt import local_time, through_day
from wastetrack.manifests.models import Manifest, state_label


def render_manifest_pdf(
    manifest: Manifest,
    *,
    url: str,
    party_names: dict[int, str],
    timezone: str,
    cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES,
    identifiers: dict[str, str] | None = None,
) -> bytes:
    """One page: the producer's, carriers' and receiver's sections, signatures and a QR; times
    in the city's zone (``settings.timezone``) to the minute."""
    pdf = a4_pdf()
    pdf.set_title(f"Manifest {manifest.number}")
    pdf.set_creator("wastetrack")
    pdf.add_page()
    cjk = add_cjk_font(pdf, "manifest", cjk_fonts)
    family = "manifest" if cjk else "Helvetica"

    def text(value: object) -> str:
        if isinstance(value, datetime):
            value = local_time(value, timezone)
        value = "" if value is None else str(value)
        return value if cjk else latin1(value)

    def named(key: str | None) -> str:
        # A state or decision by its Chinese name; its key where no CJK font prints one.
        return "" if key is None else state_label(key) if cjk else key

    def row(label: str, value: object) -> None:
        # Labels are "中文 English": without a CJK font only the English half is printed.
        pdf.cell(58, 6, label if cjk else latin1(label.split(" ", 1)[-1]))
        pdf.multi_cell(qr.width(pdf), 6, text(value), new_x="LMARGIN", new_y="NEXT")

    pdf.set_font(family, size=14)
    title = "危险废物转移联单 Hazardous waste transfer manifest"
    pdf.cell(0, 10, title if cjk else latin1(title.split(" ", 1)[1]))
    pdf.ln(12)
    qr = corner_qr(pdf, url, x=170, y=8, size=30)
    pdf.set_font(family, size=9)
    row("联单编号 Number", manifest.number)
    row("状态 State", named(manifest.state))
    if manifest.cancelled_at is not None:
        row(
            "作废 Cancelled",
            f"{local_time(manifest.cancelled_at, timezone)} {manifest.cancel_reason or ''}",
        )
    pdf.ln(2)
    row("移出人 Producer", party_names.get(manifest.producer_id))
    hazard = ",".join(manifest.hazard)
    row("废物 Waste", f"{manifest.waste_name} · {manifest.waste_code} · {hazard}")
    row("形态/包装 Form / packaging", f"{manifest.physical_form} / {manifest.packaging}")
    row("数量 Quantity (kg)", manifest.quantity_kg)
    row("应急措施 Emergency measures", manifest.emergency_measures)
    row("批次 Batches", ", ".join(manifest.batch_codes))
    known = identifiers or {}
    if known:
        # The HJ 1276-2022 数字识别码 each batch's label carries.
        row(
            "数字识别码 Identifiers",
            "\n".join(
                f"{code}: {spaced(known[code])}" for code in manifest.batch_codes if code in known
            ),
        )
    row("移出人签字 Signed", manifest.producer_signed_at)
    for leg in sorted(manifest.legs, key=lambda leg: leg.seq):
        pdf.ln(2)
        row(f"承运人 Carrier leg {leg.seq}", party_names.get(leg.carrier_id))
        row("车牌/许可证 Vehicle / permit", f"{leg.vehicle_plate} / {leg.permit_number}")
        row(
            "交接 Handover",
            f"{local_time(leg.handover_at, timezone, empty='')} {leg.handover_place or ''}",
        )
        row("承运人签字 Signed", leg.signed_at)
    pdf.ln(2)
    row("接受人 Receiver", party_names.get(manifest.receiver_id))
    row(
        "运抵/决定期限 Arrived / due",
        f"{local_time(manifest.arrived_at, timezone)} / "
        f"{through_day(manifest.decision_due_at, timezone)}"
        + (
            f"（{'、'.join(map(str, manifest.decision_due_assumed))}年按周一至周五推算"
            " counted Monday–Friday）"
            if manifest.decision_due_assumed
            else ""
        ),
    )
    received = manifest.received_quantity_kg  # 0 kg (a rejection) is printed, as the JSON has it
    row(
        "接收决定 Decision",
        f"{named(manifest.decision)} {'' if received is None else received} kg "
        f"{manifest.method_id or ''}",
    )
    row("接受人签字 Signed", manifest.receiver_signed_at)
    for item in manifest.discrepancies:
        row("差异 Discrepancy", f"{item.field}: {item.declared} → {item.found}")
    pdf.ln(2)
    row("核验 Check", url)
    return bytes(pdf.output())
