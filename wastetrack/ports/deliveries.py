"""Deliveries: what a vessel hands over at a berth, each line entering the custody chain as a
batch, and the signed receipt (PDF and public QR check) the vessel keeps."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from wastetrack.auth.models import Role
from wastetrack.batches.models import Unit
from wastetrack.batches.tagging import MAX_QUANTITY
from wastetrack.catalog import service as catalog
from wastetrack.core import codes, paging
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import Forbidden, NotFound, ValidationFailed
from wastetrack.core.geometry import distance_m
from wastetrack.core.principal import Principal
from wastetrack.core.reported import check_reported
from wastetrack.core.settings import get_settings
from wastetrack.custody import intake
from wastetrack.custody.corrected import corrected_field
from wastetrack.custody.rules import EventType, Outcome, State
from wastetrack.ports import MARINE_STREAM
from wastetrack.ports.access import NEWEST_STARTED, readable, reasons
from wastetrack.ports.berths import berth_from_scan
from wastetrack.ports.commands import DeliveryCommand, DeliveryLineCommand
from wastetrack.ports.models import Delivery, DeliveryLine, PortCall
from wastetrack.ports.port_calls import covering, get_vessel
from wastetrack.ports.receipts import ReceiptLine, ReceiptText, render_receipt_pdf
from wastetrack.ports.rules import volume_group
from wastetrack.registry.models import Vessel

NO_PORT_CALL = "no_open_port_call"
OUTSIDE_GEOFENCE = "outside_geofence"


@dataclass(frozen=True, slots=True)
class _Line:
    category: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool

    def intake(self) -> intake.IntakeLine:
        """The batch the line becomes: in kg when weighed, else in m³ (the metrics estimate
        its mass from the category's density, marked estimated)."""
        if self.mass_kg is not None and not self.mass_derived:
            return intake.IntakeLine(self.category, self.mass_kg, Unit.KG)
        return intake.IntakeLine(self.category, self.volume_m3 or Decimal(0), Unit.M3)


async def _resolve_lines(lines: list[DeliveryLineCommand]) -> list[_Line]:
    """Each line's catalog category (MARPOL letters checked against their scheme version) and
    its mass, derived from volume and the category's density when not weighed. Each line
    becomes a batch of what it holds, weighed kg or else m³: more than nothing and at most what
    a batch holds in that unit (a mass derived from m³ is bound by the m³ limit, as any batch
    tagged in m³ is)."""
    snap = await catalog.snapshot()
    resolved = []
    for index, line in enumerate(lines):
        if line.annex_v is not None:
            key = f"marpol{line.scheme_version}.{line.annex_v}"
            if key not in snap.categories:
                raise ValidationFailed(
                    f"MARPOL Annex V has no category {line.annex_v} in the"
                    f" {line.scheme_version} scheme",
                    field=f"lines[{index}].annex_v",
                )
        else:
            key = line.category or ""
            if key not in snap.categories or snap.categories[key].stream_id != MARINE_STREAM:
                raise ValidationFailed(
                    f"{key!r} is not a marine waste category", field=f"lines[{index}].category"
                )
        by_volume = volume_group(snap, key)
        if by_volume and not line.volume_m3:
            # The indicator counts these in m³ (port_rules.json): a line in kg alone would count
            # as nothing, so it is refused rather than silently left out.
            raise ValidationFailed(
                f"{key} is reported in m³ ({by_volume}): give volume_m3",
                field=f"lines[{index}].volume_m3",
            )
        mass, derived = line.mass_kg, False
        if mass is None and line.volume_m3:
            mass = snap.estimated_kg(key, Unit.M3, line.volume_m3)
            derived = mass is not None
        resolved.append(_Line(key, line.volume_m3, mass, derived))
        _check_amount(resolved[-1], index=index)
    return resolved


def _check_amount(line: _Line, *, index: int) -> None:
    """What the line's batch holds, weighed kg or else m³: more than nothing, and no more than
    one batch plausibly holds (`tagging.MAX_QUANTITY`), named as the line gave it."""
    batch = line.intake()
    field = "mass_kg" if batch.unit == Unit.KG else "volume_m3"
    if batch.quantity <= 0:
        remedy = "leave it out to count the line by volume_m3" if field == "mass_kg" else ""
        raise ValidationFailed(
            f"a line's {field} is more than 0{'; ' + remedy if remedy else ''}",
            field=f"lines[{index}].{field}",
        )
    limit = MAX_QUANTITY[batch.unit]
    if batch.quantity > limit:
        raise ValidationFailed(
            f"{field} is more than one batch holds ({limit} {batch.unit.value}); split the line",
            field=f"lines[{index}].{field}",
        )


async def record_delivery(
    *, principal: Principal, submission: DeliveryCommand, secret: str
) -> intake.RecordResult:
    """Record what a vessel handed over at a berth: one batch per line enters the custody
    chain in the port's hands. Far from the berth or without an open port call it is kept but
    flagged. Exactly once per client_event_id."""

    async def apply(payload_digest: str) -> Delivery:
        # Both ends, as every reported time (the end is also the batches' tagging time).
        now = datetime.now(UTC)
        for name in ("started_at", "ended_at"):
            check_reported(getattr(submission, name), now=now, field=name)
        berth = await berth_from_scan(submission.berth, secret=secret)
        # The vessel's row is locked, as a departure or an arrival locks it: the call found to
        # cover this delivery does not end before it while the two are written.
        vessel = await get_vessel(submission.vessel_id, lock=True)
        if principal.role == Role.port_operator:
            if berth.port_id != principal.organization_id:
                raise Forbidden("this berth belongs to another port", field="berth")
            producer, handover_to = vessel.owner_id or berth.port_id, None
        elif principal.role == Role.generator:
            # A crew records its own company's vessels: the role may record a delivery, so a
            # vessel of another owner (or of none) is the fault, named as such.
            if vessel.owner_id != principal.organization_id:
                raise Forbidden(
                    "a crew records deliveries of its own organization's vessels only",
                    field="vessel_id",
                )
            producer, handover_to = principal.organization_id, berth.port_id
        else:
            raise Forbidden(
                "deliveries are recorded by the port's operators or the vessel's crew", field="role"
            )
        lines = await _resolve_lines(submission.lines)
        flags: list[str] = []
        call = await _port_call_for(submission, vessel=vessel, port_id=berth.port_id)
        if call is None:
            flags.append(NO_PORT_CALL)
        distance = None
        if submission.latitude is not None and submission.longitude is not None:
            distance = distance_m(
                submission.latitude, submission.longitude, berth.latitude, berth.longitude
            )
            if distance > berth.geofence_m:
                flags.append(OUTSIDE_GEOFENCE)
        batches = await intake.take_in(
            principal=principal,
            record_id=submission.client_event_id,
            when=submission.ended_at,
            secret=secret,
            stream=MARINE_STREAM,
            producer_id=producer,
            handover_to=handover_to,
            latitude=submission.latitude,
            longitude=submission.longitude,
            lines=[line.intake() for line in lines],
            # The batches' producer is the vessel's (its owner, else the port): a tagging
            # refused for it is refused on the vessel.
            record_names={"producer_organization_id": "vessel_id"},
        )
        delivery = await Delivery.create(
            receipt_number=f"pending-{submission.client_event_id.hex[:20]}",
            vessel=vessel,
            port_id=berth.port_id,
            owner_id=vessel.owner_id,
            berth=berth,
            port_call=call,
            started_at=submission.started_at,
            ended_at=submission.ended_at,
            recorded_at=datetime.now(UTC),
            latitude=submission.latitude,
            longitude=submission.longitude,
            distance_m=distance,
            flags=flags,
            recorded_by_id=principal.user_id,
            signed_by_port=principal.organization_id == berth.port_id,
            client_event_id=submission.client_event_id,
            payload_digest=payload_digest,
        )
        # The delivery's day is the city's day its discharge ended, whatever offset the phone
        # sent (it may send UTC): when its batches were tagged, as the port figures count it.
        day = local_date(submission.ended_at, get_settings().timezone)
        delivery.receipt_number = f"WR{berth.port_id:03d}{day:%Y%m%d}{delivery.id:06d}"
        await delivery.save(update_fields=["receipt_number"])
        await DeliveryLine.bulk_create(
            [
                DeliveryLine(
                    delivery=delivery,
                    category_id=line.category,
                    volume_m3=line.volume_m3,
                    mass_kg=line.mass_kg,
                    mass_derived=line.mass_derived,
                    batch_id=batch.id,
                )
                for line, batch in zip(lines, batches, strict=True)
            ]
        )
        return delivery

    return await intake.record_once(
        model=Delivery,
        principal=principal,
        submission=submission,
        apply=apply,
        flags=lambda d: d.flags,
        code_of=lambda text: codes.code_from_scan(text, secret=secret),
    )


async def _port_call_for(
    submission: DeliveryCommand, *, vessel: Vessel, port_id: int
) -> PortCall | None:
    """The vessel's call at the port that covers the delivery (`port_calls.covering`): the one
    named, else the latest such."""
    calls = covering(
        vessel_id=vessel.id,
        port_id=port_id,
        started_at=submission.started_at,
        ended_at=submission.ended_at,
    )
    if submission.port_call_id is not None:
        call = await calls.filter(id=submission.port_call_id).first()
        if call is None:
            raise ValidationFailed(
                "the port call is not this vessel's at this port at the delivery's time",
                field="port_call_id",
            )
        return call
    return await calls.order_by("-arrived_at").first()


def delivery_reasons(principal: Principal) -> list[Q]:
    """Deliveries at the user's port or made for their organization (the vessel's owner when it
    delivered: a vessel sold on takes none of them along), and for region readers every
    delivery at a port in their region."""
    return reasons(principal, organization=("port_id", "owner_id"), region="port__region__path")


def _readable_deliveries(principal: Principal) -> QuerySet[Delivery]:
    return readable(Delivery.all(), delivery_reasons(principal))


async def get_delivery(*, principal: Principal, delivery_id: int) -> Delivery:
    """A delivery the user's port, vessel owner or region covers, with lines and parties."""
    delivery = (
        await _readable_deliveries(principal)
        .filter(id=delivery_id)
        .first()
        .prefetch_related("lines__batch", "vessel", "owner", "port", "berth", "recorded_by")
    )
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", field="delivery_id")
    return delivery


async def list_deliveries(
    *,
    principal: Principal,
    vessel_id: int | None,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Delivery]:
    """Deliveries, newest first, a page at a time; per vessel when asked: its receipts."""
    query = Delivery.all().prefetch_related("lines__batch")
    if vessel_id is not None:
        query = query.filter(vessel_id=vessel_id)
    return await paging.page(
        query, NEWEST_STARTED, limit=limit, cursor=cursor, reasons=delivery_reasons(principal)
    )


async def receipt_from_scan(*, scanned: str, secret: str) -> Delivery:
    """The delivery behind a receipt's QR, for its public check."""
    marker = "/r/"
    if marker not in scanned:
        raise NotFound("no receipt with this number", field="receipt")
    number, _, sig = scanned.rsplit(marker, 1)[1].partition(".")
    if not sig or not codes.verify(number, sig, secret):
        raise NotFound("no receipt with this number", field="receipt")
    delivery = await Delivery.get_or_none(receipt_number=number).prefetch_related(
        "lines__batch", "vessel", "port", "berth"
    )
    if delivery is None:
        raise NotFound("no receipt with this number", field="receipt")
    return delivery


class Acceptance(StrEnum):
    """Where a delivery line stands with the reception facility, as the receipt shows it."""

    pending = "pending"  # declared by the vessel, no receipt has decided on it yet
    accepted = "accepted"
    partially_accepted = "partially_accepted"  # a receipt refused part of it (a remainder)
    rejected = "rejected"


ACCEPTANCE_LABELS: dict[Acceptance, str] = {
    Acceptance.pending: "待接收确认",
    Acceptance.accepted: "已接收",
    Acceptance.partially_accepted: "部分接收",
    Acceptance.rejected: "已拒收",
}

# Per batch: the latest receipt or treatment of the outermost container it was aggregated into
# (whose fate it shares in the figures, docs/metrics.md §4), or of the batch itself while that
# container has none (a line a receipt refused, packed into a load no receipt has decided on,
# is still refused), with the receipt's outcome after corrections. $2 the deciding event types.
_DECISIONS = f"""
WITH RECURSIVE up (line_batch, id, parent_id) AS (
    SELECT b.id, b.id, b.parent_id FROM batch b WHERE b.id = ANY($1::int[])
    UNION ALL
    SELECT up.line_batch, p.id, p.parent_id FROM up JOIN batch p ON p.id = up.parent_id
),
root AS (SELECT line_batch, id FROM up WHERE parent_id IS NULL)
SELECT root.line_batch AS batch_id, root.id AS root_id, decided.event_type, decided.outcome
FROM root
LEFT JOIN LATERAL (
    SELECT e.event_type,
           {corrected_field("e", "outcome", "outcome")} AS outcome
    FROM custody_event e
    WHERE e.batch_id IN (root.id, root.line_batch) AND e.event_type = ANY($2::text[])
    ORDER BY e.batch_id = root.id DESC, e.seq DESC LIMIT 1
) decided ON true
"""
# The parts receipts refused of these batches (or of the containers they stand for), at any
# depth (a refused part partly refused again), not cancelled: (batch, part). $2 the cancelled
# state.
_REFUSED_PARTS = """
WITH RECURSIVE parts (of_batch, id) AS (
    SELECT o.of_batch, r.id
    FROM unnest($1::int[], $2::int[]) AS o (of_batch, origin)
    JOIN batch r ON r.split_from_id = o.origin
    UNION
    SELECT parts.of_batch, r.id FROM parts JOIN batch r ON r.split_from_id = parts.id
)
SELECT parts.of_batch, parts.id FROM parts JOIN batch b ON b.id = parts.id WHERE b.state <> $3
"""


def acceptance(
    *, decided_by: str | None, outcome: str | None, split: bool, port_signed: bool
) -> Acceptance:
    """A line's acceptance from its batch's latest receipt or treatment (`decided_by`, None
    when neither happened) and whether a part of it a receipt refused is still out (`split`:
    not taken in by a receipt since): rejected when the latest receipt refused it, partially
    accepted while a refused part is out, accepted once received or treated; undecided,
    accepted when the port signed for it at delivery and pending when only the vessel
    declared it."""
    if decided_by == EventType.received and outcome == Outcome.rejected:
        return Acceptance.rejected
    if split:
        return Acceptance.partially_accepted
    if decided_by is not None or port_signed:
        return Acceptance.accepted
    return Acceptance.pending


def _taken_in(decided_by: str | None, outcome: str | None) -> bool:
    """Whether a batch's latest receipt or treatment (`_DECISIONS`) took it in."""
    return decided_by is not None and not (
        decided_by == EventType.received and outcome == Outcome.rejected
    )


async def _acceptances(found: list[Delivery]) -> dict[tuple[int, int], Acceptance]:
    """Each line's acceptance (`acceptance`), by delivery and batch id, as its batch stands
    now, in three queries for all the deliveries; their lines must be fetched. A part a
    receipt refused is out until a receipt takes it in (re-landed and accepted, or treated),
    judged as the line is (`_DECISIONS`)."""
    port_signed = {d.id: d.signed_by_port for d in found}
    delivery_of = {line.batch_id: d.id for d in found for line in d.lines}
    if not delivery_of:
        return {}
    db = connections.get("default")
    deciding = [EventType.received.value, EventType.treated.value]
    rows = await db.execute_query_dict(_DECISIONS, [list(delivery_of), deciding])
    origins = [(row["batch_id"], o) for row in rows for o in {row["batch_id"], row["root_id"]}]
    parts = await db.execute_query_dict(
        _REFUSED_PARTS,
        [[b for b, _ in origins], [o for _, o in origins], State.cancelled.value],
    )
    out: set[int] = set()
    if parts:
        decided = await db.execute_query_dict(
            _DECISIONS, [list({p["id"] for p in parts}), deciding]
        )
        still_out = {d["batch_id"] for d in decided if not _taken_in(d["event_type"], d["outcome"])}
        out = {p["of_batch"] for p in parts if p["id"] in still_out}
    return {
        (delivery_of[row["batch_id"]], row["batch_id"]): acceptance(
            decided_by=row["event_type"],
            outcome=row["outcome"],
            split=row["batch_id"] in out,
            port_signed=port_signed[delivery_of[row["batch_id"]]],
        )
        for row in rows
    }


@dataclass(frozen=True, slots=True)
class LineNow:
    """A delivery line as its batch stands after corrections: the batch is the record, so the
    receipt, its public check and the delivery's read say what the figures count."""

    category_id: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool
    batch_code: str
    corrected: bool
    acceptance: Acceptance
    """Where the line stands with the reception facility now (`acceptance`)."""


async def current_lines(delivery: Delivery) -> list[LineNow]:
    """The delivery's lines as their batches stand (`lines_now`)."""
    return (await lines_now([delivery]))[delivery.id]


async def lines_now(found: list[Delivery]) -> dict[int, list[LineNow]]:
    """Each delivery's lines as their batches stand, by delivery id; the lines and their batches
    must be fetched. A line whose batch no correction changed reads as
    recorded; a corrected one takes the batch's category and its kg, or its m³ and the mass
    the category's density gives (derived); in any other unit it keeps the m³ measured on the
    line. Each carries its acceptance."""
    snap = await catalog.snapshot()
    accepted = await _acceptances(found)
    return {
        delivery.id: [
            _line_now(line, snap, accepted[delivery.id, line.batch_id]) for line in delivery.lines
        ]
        for delivery in found
    }


def _line_now(line: DeliveryLine, snap: catalog.CatalogSnapshot, accepted: Acceptance) -> LineNow:
    batch = line.batch
    if batch.unit == Unit.KG:
        unchanged = not line.mass_derived and (batch.category_id, batch.quantity) == (
            line.category_id,
            line.mass_kg,
        )
    else:
        unchanged = (batch.category_id, batch.unit, batch.quantity) == (
            line.category_id,
            Unit.M3,
            line.volume_m3,
        )
    if unchanged:
        return LineNow(
            line.category_id,
            line.volume_m3,
            line.mass_kg,
            line.mass_derived,
            batch.code,
            corrected=False,
            acceptance=accepted,
        )
    # The m³ the port figures count (metrics._LINE_PARTS): the batch's when it is in m³, else
    # the line's measured ones, whatever unit a correction gave the batch.
    volume = batch.quantity if batch.unit == Unit.M3 else line.volume_m3
    if batch.unit == Unit.KG:
        return LineNow(batch.category_id, volume, batch.quantity, False, batch.code, True, accepted)
    mass = snap.estimated_kg(batch.category_id, batch.unit, batch.quantity)
    return LineNow(batch.category_id, volume, mass, mass is not None, batch.code, True, accepted)


def receipt_url(number: str, *, base_url: str, secret: str) -> str:
    """The signed address a receipt's QR carries, for its public check."""
    return f"{base_url.rstrip('/')}/r/{number}.{codes.signature(number, secret)}"


async def receipt_pdf(
    *, principal: Principal, delivery_id: int, base_url: str, secret: str, timezone: str
) -> bytes:
    """The delivery's receipt for the vessel, times in the city's time zone."""
    delivery = await get_delivery(principal=principal, delivery_id=delivery_id)
    snap = await catalog.snapshot()
    tz = ZoneInfo(timezone)
    vessel = delivery.vessel
    # Laying out the PDF takes CPU: in a thread, the event loop keeps serving.
    return await asyncio.to_thread(
        render_receipt_pdf,
        ReceiptText(
            number=delivery.receipt_number,
            url=receipt_url(delivery.receipt_number, base_url=base_url, secret=secret),
            port_name=delivery.port.name,
            berth_name=delivery.berth.name,
            reception_provider=delivery.port.name,
            discharge_from=delivery.started_at.astimezone(tz),
            discharge_to=delivery.ended_at.astimezone(tz),
            ship_name=vessel.name,
            registration_number=vessel.registration_number,
            imo_number=vessel.imo_number,
            gross_tonnage=vessel.gross_tonnage,
            ship_type=vessel.vessel_type,
            owner=delivery.owner.name if delivery.owner else None,
            flag_state=vessel.flag_state,
            lines=[
                ReceiptLine(
                    category_code=snap.categories[line.category_id].code,
                    category_name_zh=snap.categories[line.category_id].name_zh,
                    category_name_en=snap.categories[line.category_id].name_en,
                    volume_m3=line.volume_m3,
                    mass_kg=line.mass_kg,
                    mass_derived=line.mass_derived,
                    batch_code=line.batch_code,
                    corrected=line.corrected,
                    acceptance=line.acceptance.value,
                    acceptance_zh=ACCEPTANCE_LABELS[line.acceptance],
                )
                for line in await current_lines(delivery)
            ],
            flags=delivery.flags,
            recorded_by=delivery.recorded_by.username,
            signed_by_port=delivery.signed_by_port,
            recorded_at=delivery.recorded_at.astimezone(tz),
            timezone=timezone,
        ),
    )
