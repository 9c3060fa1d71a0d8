"""A transfer manifest as a PDF with its QR code."""

import io
from collections.abc import Sequence

from fpdf import FPDF

from wastetrack.batches.labels import CJK_FONT_CANDIDATES, find_font, qr_image
from wastetrack.manifests.models import Manifest


def render_manifest_pdf(
    manifest: Manifest,
    *,
    url: str,
    party_names: dict[int, str],
    cjk_fonts: Sequence[str] = CJK_FONT_CANDIDATES,
) -> bytes:
    """One page: the producer's, carriers' and receiver's sections, signatures and a QR."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"Manifest {manifest.number}")
    pdf.add_page()
    cjk = find_font(cjk_fonts)
    if cjk:
        pdf.add_font("manifest", "", cjk)
    family = "manifest" if cjk else "Helvetica"

    def text(value: object) -> str:
        value = "" if value is None else str(value)
        return value if cjk else value.encode("latin-1", "replace").decode("latin-1")

    def row(label: str, value: object) -> None:
        pdf.cell(55, 6, text(label))
        pdf.cell(0, 6, text(value), new_x="LMARGIN", new_y="NEXT")

    pdf.set_font(family, size=14)
    pdf.cell(
        0,
        10,
        text(
            "危险废物转移联单 Hazardous waste transfer manifest"
            if cjk
            else "Hazardous waste transfer manifest"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    qr = io.BytesIO()
    qr_image(url, box_size=6).save(qr, format="PNG")
    pdf.image(qr, x=170, y=8, w=30, h=30)
    pdf.set_font(family, size=9)
    row("Number", manifest.number)
    row("State", manifest.state)
    pdf.ln(2)
    row("Producer (移出人)" if cjk else "Producer", party_names.get(manifest.producer_id))
    row("Waste", f"{manifest.waste_name} · {manifest.waste_code} · {','.join(manifest.hazard)}")
    row("Form / packaging", f"{manifest.physical_form} / {manifest.packaging}")
    row("Quantity (kg)", manifest.quantity_kg)
    row("Emergency measures", manifest.emergency_measures[:90])
    row("Batches", ", ".join(manifest.batch_codes)[:90])
    row("Signed", manifest.producer_signed_at)
    for leg in sorted(manifest.legs, key=lambda leg: leg.seq):
        pdf.ln(2)
        row(f"Carrier leg {leg.seq}", party_names.get(leg.carrier_id))
        row("Vehicle / permit", f"{leg.vehicle_plate} / {leg.permit_number}")
        row("Handover", f"{leg.handover_at or ''} {leg.handover_place or ''}")
        row("Signed", leg.signed_at)
    pdf.ln(2)
    row("Receiver (接受人)" if cjk else "Receiver", party_names.get(manifest.receiver_id))
    row("Arrived / due", f"{manifest.arrived_at or ''} / {manifest.decision_due_at or ''}")
    row(
        "Decision",
        f"{manifest.decision or ''} {manifest.received_quantity_kg or ''} kg "
        f"{manifest.method_id or ''}",
    )
    row("Signed", manifest.receiver_signed_at)
    for item in manifest.discrepancies:
        row("Discrepancy", f"{item.field}: {item.declared} → {item.found}")
    return bytes(pdf.output())
