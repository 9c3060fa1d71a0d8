"""What anyone holding a printed QR may see without an account: a batch's or a label's category
and state, a collection point's or a berth's plate, a delivery receipt, a transfer manifest.

Unknown, forged and mistyped codes all get one and the same refusal, so the public pages are
no oracle for which codes exist. Batches show no parties; a receipt or a manifest shows what
the paper it is printed on already shows, so that the holder can check the paper against the
record.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch, Label
from wastetrack.catalog import service as catalog
from wastetrack.core import codes
from wastetrack.core.errors import NotFound
from wastetrack.household import service as household
from wastetrack.manifests.models import Manifest
from wastetrack.manifests.queries import party_names
from wastetrack.ports.deliveries import (
    ACCEPTANCE_LABELS,
    current_lines,
    receipt_from_scan,
)
from wastetrack.ports.models import Berth
from wastetrack.registry.models import Site

NOT_FOUND = "nothing is registered under this code"
MANIFEST_MARKER = "/t/"


@dataclass(frozen=True, slots=True)
class PublicBatch:
    """A tagged batch or an issued, not yet used label (state ``unbound``)."""

    code: str
    stream_zh: str
    stream_en: str
    category_zh: str | None
    category_en: str | None
    category_code: str | None
    state: str
    tagged_at: datetime | None
    updated_at: datetime | None
    # A partial acceptance's link, both ways (codes only: no parties).
    split_from: str | None = None
    remainders: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PublicPlate:
    """A fixed plate: a household-waste collection point, another organization's site (a
    clinic's room, a yard), or a berth of a port."""

    kind: str  # "collection_point", "site" or "berth"
    code: str
    name: str
    operator: str  # the site's organization or the berth's port


@dataclass(frozen=True, slots=True)
class PublicReceiptLine:
    category_code: str
    category_zh: str
    category_en: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool
    corrected: bool
    acceptance: str  # deliveries.Acceptance, as the line's batch stands now
    acceptance_zh: str


@dataclass(frozen=True, slots=True)
class PublicReceipt:
    number: str
    port: str
    berth: str
    ship_name: str
    registration_number: str
    started_at: datetime
    ended_at: datetime
    # "port": the port recorded it and signed for it; "vessel": the crew's declaration, which
    # the port has not signed (each line's acceptance says what its receipts made of it).
    recorded_by: str
    lines: list[PublicReceiptLine]


@dataclass(frozen=True, slots=True)
class PublicManifest:
    number: str
    state: str
    waste_name: str
    waste_code: str
    hazard: list[str]
    quantity_kg: Decimal
    producer: str
    receiver: str
    producer_signed_at: datetime | None
    arrived_at: datetime | None
    decision: str | None
    received_quantity_kg: Decimal | None
    receiver_signed_at: datetime | None


async def plate_or_batch(*, scanned: str, secret: str) -> PublicBatch | PublicPlate:
    """What a ``/q/`` code names: a batch, an unused label, a collection point or a berth."""
    code = codes.code_from_scan(scanned, secret=secret)
    if code is None or "/q/" not in scanned:
        raise NotFound(NOT_FOUND, field="code")
    batch = await Batch.get_or_none(code=code).prefetch_related("category", "stream")
    if batch is not None:
        links = await batches.split_links(batch)
        return PublicBatch(
            code=code,
            stream_zh=batch.stream.name_zh,
            stream_en=batch.stream.name_en,
            category_zh=batch.category.name_zh,
            category_en=batch.category.name_en,
            category_code=batch.category.code,
            state=batch.state,
            tagged_at=batch.tagged_at,
            updated_at=batch.updated_at,
            split_from=links.split_from,
            remainders=links.remainders,
        )
    label = await Label.get_or_none(code=code).prefetch_related("stream")
    if label is not None:
        return PublicBatch(
            code=code,
            stream_zh=label.stream.name_zh,
            stream_en=label.stream.name_en,
            category_zh=None,
            category_en=None,
            category_code=None,
            state="unbound",
            tagged_at=None,
            updated_at=None,
        )
    site = await Site.get_or_none(code=code).prefetch_related("organization")
    if site is not None:
        kind = "collection_point" if household.takes_pickups(site) else "site"
        return PublicPlate(kind, code, site.name, site.organization.name)
    berth = await Berth.get_or_none(code=code).prefetch_related("port")
    if berth is not None:
        return PublicPlate("berth", code, berth.name, berth.port.name)
    raise NotFound(NOT_FOUND, field="code")


async def receipt(*, scanned: str, secret: str) -> PublicReceipt:
    """The delivery behind a receipt's QR (``/r/``): who delivered what, where and when, who
    recorded it (the port's signature or the vessel's declaration) and where each line stands
    with the reception facility now."""
    try:
        delivery = await receipt_from_scan(scanned=scanned, secret=secret)
    except NotFound:
        raise NotFound(NOT_FOUND, field="code") from None
    snap = await catalog.snapshot()
    return PublicReceipt(
        number=delivery.receipt_number,
        port=delivery.port.name,
        berth=delivery.berth.name,
        ship_name=delivery.vessel.name,
        registration_number=delivery.vessel.registration_number,
        started_at=delivery.started_at,
        ended_at=delivery.ended_at,
        recorded_by="port" if delivery.signed_by_port else "vessel",
        lines=[
            PublicReceiptLine(
                category_code=snap.categories[line.category_id].code,
                category_zh=snap.categories[line.category_id].name_zh,
                category_en=snap.categories[line.category_id].name_en,
                volume_m3=line.volume_m3,
                mass_kg=line.mass_kg,
                mass_derived=line.mass_derived,
                corrected=line.corrected,
                acceptance=line.acceptance.value,
                acceptance_zh=ACCEPTANCE_LABELS[line.acceptance],
            )
            for line in await current_lines(delivery)
        ],
    )


def manifest_url(number: str, *, base_url: str, secret: str) -> str:
    """The signed public URL printed as the manifest's QR code."""
    return f"{base_url.rstrip('/')}{MANIFEST_MARKER}{number}.{codes.signature(number, secret)}"


async def manifest(*, scanned: str, secret: str) -> PublicManifest:
    """The manifest behind its QR (``/t/``): number, waste, parties, state and signatures."""
    number, _, sig = scanned.rpartition(MANIFEST_MARKER)[2].partition(".")
    if not number or not sig or not codes.verify(number, sig, secret):
        raise NotFound(NOT_FOUND, field="code")
    found = await Manifest.get_or_none(number=number)
    if found is None:
        raise NotFound(NOT_FOUND, field="code")
    await found.fetch_related("legs")
    names = await party_names(found)
    return PublicManifest(
        number=found.number,
        state=found.state,
        waste_name=found.waste_name,
        waste_code=found.waste_code,
        hazard=list(found.hazard),
        quantity_kg=found.quantity_kg,
        producer=names.get(found.producer_id, ""),
        receiver=names.get(found.receiver_id, ""),
        producer_signed_at=found.producer_signed_at,
        arrived_at=found.arrived_at,
        decision=found.decision,
        received_quantity_kg=found.received_quantity_kg,
        receiver_signed_at=found.receiver_signed_at,
    )
