"""Port rules: berths, port calls, deliveries that enter the custody chain, receipts, clean-ups,
float replacement, zero-waste sea areas and the port collection-and-treatment rate."""

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from schemas.ports import (
    CleanUpCreate,
    DeliveryCreate,
    DeliveryLineCreate,
    FloatReplacementCreate,
    NotificationLine,
)
from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.batches.models import Unit
from wastetrack.catalog import service as catalog
from wastetrack.core import codes
from wastetrack.core.data import read_data_file
from wastetrack.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from wastetrack.core.metrics import period_bounds, ratio
from wastetrack.core.principal import Principal
from wastetrack.custody import intake
from wastetrack.evidence.models import Photo
from wastetrack.ports.models import (
    Berth,
    CleanUp,
    Delivery,
    DeliveryLine,
    FishingPort,
    FloatReplacement,
    PortCall,
    SeaArea,
)
from wastetrack.ports.receipts import ReceiptLine, ReceiptText, render_receipt_pdf
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind, Vessel
from wastetrack.rollups import service as rollups

PORT_RULES = read_data_file("wastetrack.ports", "port_rules.json")
LITTER_ITEMS = {
    item["code"] for item in read_data_file("wastetrack.ports", "marine_litter_items.json")["items"]
}
MARINE_STREAM = "marine"
BEACH_LITTER = "marine.beach_litter"
CLEANUP_ROLES = frozenset({Role.collector, Role.port_operator, Role.carrier})
NO_PORT_CALL = "no_open_port_call"
OUTSIDE_GEOFENCE = "outside_geofence"


# ---- ports and berths ------------------------------------------------------------------------


async def _fishing_port_org(port_id: int) -> Organization:
    org = await registry.get_organization(port_id, field="port_id")
    if org.kind != OrganizationKind.fishing_port:
        raise ValidationFailed("the organization is not a fishing port", field="port_id")
    return org


async def register_port(
    *,
    port_id: int,
    grade: str,
    latitude: float,
    longitude: float,
    reception_facility: bool,
    listed: bool,
) -> FishingPort:
    """Record a fishing port's grade, position and reception facility."""
    org = await _fishing_port_org(port_id)
    existing = await FishingPort.get_or_none(organization=org)
    port, created = await FishingPort.update_or_create(
        organization=org,
        defaults={
            "grade": grade,
            "latitude": latitude,
            "longitude": longitude,
            "reception_facility": reception_facility,
            "listed": listed,
        },
    )
    await audit.record(
        action="port.registered" if created else "port.updated",
        subject=port,
        organization_id=org.id,
        region_path=org.region.path,
        before=audit.snapshot(existing) if existing is not None else None,
        after=audit.snapshot(port),
    )
    return port


async def add_berth(
    *, port_id: int, name: str, latitude: float, longitude: float, geofence_m: int | None
) -> Berth:
    """Add a berth with its own fixed QR code."""
    org = await _fishing_port_org(port_id)
    if await Berth.exists(port_id=org.id, name=name):
        raise Conflict(f"the port has a berth named {name!r} already", field="name")
    berth = await Berth.create(
        port=org,
        name=name,
        code=codes.new_code(),
        latitude=latitude,
        longitude=longitude,
        geofence_m=geofence_m or PORT_RULES["default_geofence_m"],
    )
    await audit.record(
        action="berth.created",
        subject=berth,
        organization_id=org.id,
        region_path=org.region.path,
        after=audit.snapshot(berth),
    )
    return berth


async def list_berths(*, port_id: int) -> list[Berth]:
    return await Berth.filter(port_id=port_id).order_by("id")


async def berth_from_scan(scanned: str, *, secret: str, field: str = "berth") -> Berth:
    """The berth a scanned QR or typed code names; forged codes are refused like unknown ones."""
    code = codes.code_from_scan(scanned, secret=secret)
    berth = await Berth.get_or_none(code=code) if code else None
    if berth is None:
        raise NotFound("no berth with this code", field=field)
    return berth


# ---- port calls ------------------------------------------------------------------------------


def _operator_port(principal: Principal) -> int:
    if principal.role != Role.port_operator:
        raise Forbidden("only port operators record port calls", field="role")
    return principal.organization_id


async def _vessel(vessel_id: int) -> Vessel:
    vessel = await Vessel.get_or_none(id=vessel_id)
    if vessel is None:
        raise NotFound(f"no vessel {vessel_id}", field="vessel_id")
    return vessel


async def _check_notification(lines: list[NotificationLine]) -> list[dict[str, Any]]:
    snap = await catalog.snapshot()
    checked = []
    for index, line in enumerate(lines):
        category = snap.categories.get(line.category)
        if category is None or category.stream_id != MARINE_STREAM:
            raise ValidationFailed(
                f"{line.category!r} is not a marine waste category",
                field=f"notification[{index}].category",
            )
        checked.append(line.model_dump(mode="json"))
    return checked


async def open_port_call(
    *,
    principal: Principal,
    vessel_id: int,
    arrived_at: datetime,
    days_at_sea: int,
    crew: int,
    fishing_area: str | None,
    notification: list[NotificationLine],
) -> PortCall:
    """Record a vessel's arrival at the operator's port, with its advance waste notification."""
    port_id = _operator_port(principal)
    vessel = await _vessel(vessel_id)
    if fishing_area is not None and not await SeaArea.exists(code=fishing_area):
        raise ValidationFailed(f"unknown sea area {fishing_area!r}", field="fishing_area")
    if await PortCall.exists(vessel_id=vessel.id, departed_at=None):
        raise Conflict("the vessel has a port call that is still open", field="vessel_id")
    return await PortCall.create(
        vessel=vessel,
        port_id=port_id,
        arrived_at=arrived_at,
        days_at_sea=days_at_sea,
        crew=crew,
        fishing_area=fishing_area,
        notification=await _check_notification(notification),
        recorded_by_id=principal.user_id,
    )


async def close_port_call(
    *, principal: Principal, port_call_id: int, departed_at: datetime
) -> PortCall:
    """Record the vessel's departure."""
    port_id = _operator_port(principal)
    call = await PortCall.get_or_none(id=port_call_id, port_id=port_id)
    if call is None:
        raise NotFound(f"no port call {port_call_id} at your port", field="port_call_id")
    if call.departed_at is not None:
        raise Conflict("the port call is closed already", field="port_call_id")
    if departed_at < call.arrived_at:
        raise ValidationFailed("departed_at precedes the arrival", field="departed_at")
    call.departed_at = departed_at
    await call.save(update_fields=["departed_at"])
    return call


async def list_port_calls(
    *, principal: Principal, vessel_id: int | None, open_only: bool
) -> list[PortCall]:
    """Port calls at the user's port (managers: in their region)."""
    query = PortCall.all().order_by("-arrived_at")
    if principal.sees_region or principal.role == Role.admin:
        query = query.filter(port__region__path__startswith=principal.region_path)
    else:
        query = query.filter(port_id=principal.organization_id)
    if vessel_id is not None:
        query = query.filter(vessel_id=vessel_id)
    if open_only:
        query = query.filter(departed_at=None)
    return await query.limit(500)


# ---- deliveries ------------------------------------------------------------------------------


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    radius = 6_371_000.0
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(a))


@dataclass(frozen=True, slots=True)
class _Line:
    category: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool


async def _resolve_lines(lines: list[DeliveryLineCreate]) -> list[_Line]:
    """Each line's catalog category (MARPOL letters checked against their scheme version) and
    its mass, derived from volume and the category's density when not weighed."""
    snap = await catalog.snapshot()
    resolved = []
    for index, line in enumerate(lines):
        if line.annex_v is not None:
            key = f"marpol{line.scheme_version}.{line.annex_v.upper()}"
            if key not in snap.categories:
                raise ValidationFailed(
                    f"MARPOL Annex V has no category {line.annex_v.upper()} in the"
                    f" {line.scheme_version} scheme",
                    field=f"lines[{index}].annex_v",
                )
        else:
            key = line.category or ""
            if key not in snap.categories or snap.categories[key].stream_id != MARINE_STREAM:
                raise ValidationFailed(
                    f"{key!r} is not a marine waste category", field=f"lines[{index}].category"
                )
        by_volume = [
            name
            for name, group in PORT_RULES["groups"].items()
            if group["unit"] == "m3" and set(snap.ancestors(key)) & set(group["categories"])
        ]
        if by_volume and not line.volume_m3:
            # The indicator counts these in m³ (port_rules.json): a line in kg alone would count
            # as nothing, so it is refused rather than silently left out.
            raise ValidationFailed(
                f"{key} is reported in m³ ({by_volume[0]}): give volume_m3",
                field=f"lines[{index}].volume_m3",
            )
        mass, derived = line.mass_kg, False
        if mass is None and line.volume_m3:
            density = next(
                (
                    snap.categories[k].density_kg_m3
                    for k in snap.ancestors(key)
                    if snap.categories[k].density_kg_m3 is not None
                ),
                None,
            )
            if density is not None:
                mass = (line.volume_m3 * Decimal(density)).quantize(Decimal("0.001"))
                derived = True
        resolved.append(_Line(key, line.volume_m3, mass, derived))
    return resolved


async def record_delivery(
    *, principal: Principal, submission: DeliveryCreate, secret: str
) -> intake.RecordResult:
    """Record what a vessel handed over at a berth: one batch per line enters the custody
    chain in the port's hands. Far from the berth or without an open port call it is kept but
    flagged. Exactly once per client_event_id."""
    digest = intake.digest(submission)
    seen = await intake.seen(Delivery, submission.client_event_id, digest)
    if seen is not None:
        return seen
    berth = await berth_from_scan(submission.berth, secret=secret)
    vessel = await _vessel(submission.vessel_id)
    if principal.role == Role.port_operator:
        if berth.port_id != principal.organization_id:
            raise Forbidden("this berth belongs to another port", field="berth")
        producer, handover_to = vessel.owner_id or berth.port_id, None
    elif principal.role == Role.generator and vessel.owner_id == principal.organization_id:
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
    async with in_transaction():
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
            lines=[
                intake.IntakeLine(line.category, line.mass_kg, Unit.KG)
                if line.mass_kg is not None
                else intake.IntakeLine(line.category, line.volume_m3 or Decimal(0), Unit.M3)
                for line in lines
            ],
        )
        delivery = await Delivery.create(
            receipt_number=f"pending-{submission.client_event_id.hex[:20]}",
            vessel=vessel,
            port_id=berth.port_id,
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
            client_event_id=submission.client_event_id,
            payload_digest=digest,
        )
        delivery.receipt_number = (
            f"WR{berth.port_id:03d}{submission.started_at:%Y%m%d}{delivery.id:06d}"
        )
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
    return intake.RecordResult(submission.client_event_id, "applied", delivery.id, flags=flags)


async def _port_call_for(
    submission: DeliveryCreate, *, vessel: Vessel, port_id: int
) -> PortCall | None:
    if submission.port_call_id is not None:
        call = await PortCall.get_or_none(id=submission.port_call_id)
        if call is None or call.vessel_id != vessel.id or call.port_id != port_id:
            raise ValidationFailed(
                "the port call is not this vessel's at this port", field="port_call_id"
            )
        return call
    return (
        await PortCall.filter(
            Q(departed_at=None) | Q(departed_at__gte=submission.started_at),
            vessel_id=vessel.id,
            port_id=port_id,
            arrived_at__lte=submission.ended_at,
        )
        .order_by("-arrived_at")
        .first()
    )


def _delivery_scope(principal: Principal) -> Q:
    if principal.role == Role.admin:
        return Q()
    own = Q(port_id=principal.organization_id) | Q(vessel__owner_id=principal.organization_id)
    if principal.sees_region:
        own |= Q(port__region__path__startswith=principal.region_path)
    return own


async def get_delivery(*, principal: Principal, delivery_id: int) -> Delivery:
    """A delivery the user's port, vessel owner or region covers, with lines and parties."""
    delivery = (
        await Delivery.filter(_delivery_scope(principal), id=delivery_id)
        .first()
        .prefetch_related("lines__batch", "vessel__owner", "port", "berth", "recorded_by")
    )
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", field="delivery_id")
    return delivery


async def list_deliveries(*, principal: Principal, vessel_id: int | None) -> list[Delivery]:
    """Deliveries, newest first, per vessel when asked: the vessel's receipts."""
    query = Delivery.filter(_delivery_scope(principal)).order_by("-started_at")
    if vessel_id is not None:
        query = query.filter(vessel_id=vessel_id)
    return await query.limit(500).prefetch_related("lines__batch")


async def receipt_from_scan(*, scanned: str, secret: str) -> Delivery:
    """The delivery behind a receipt's QR, for its public check."""
    marker = "/r/"
    if marker not in scanned:
        raise NotFound("no receipt with this number", field="receipt")
    number, _, sig = scanned.rsplit(marker, 1)[1].partition(".")
    if not sig or not codes.verify(number, sig, secret):
        raise NotFound("no receipt with this number", field="receipt")
    delivery = await Delivery.get_or_none(receipt_number=number).prefetch_related(
        "lines", "vessel", "port", "berth"
    )
    if delivery is None:
        raise NotFound("no receipt with this number", field="receipt")
    return delivery


def receipt_url(number: str, *, base_url: str, secret: str) -> str:
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
            owner=vessel.owner.name if vessel.owner else None,
            flag_state=vessel.flag_state,
            lines=[
                ReceiptLine(
                    category_code=snap.categories[line.category_id].code,
                    category_name_zh=snap.categories[line.category_id].name_zh,
                    category_name_en=snap.categories[line.category_id].name_en,
                    volume_m3=line.volume_m3,
                    mass_kg=line.mass_kg,
                    mass_derived=line.mass_derived,
                    batch_code=line.batch.code,
                )
                for line in delivery.lines
            ],
            flags=delivery.flags,
            signed_by=delivery.recorded_by.username,
            recorded_at=delivery.recorded_at.astimezone(tz),
            timezone=timezone,
        ),
    )


# ---- clean-ups and floats --------------------------------------------------------------------


async def record_cleanup(
    *, principal: Principal, submission: CleanUpCreate, secret: str
) -> intake.RecordResult:
    """Record a beach or sea-surface clean-up; what it picked up enters the custody chain as
    one batch of beach litter in the team's hands. Exactly once per client_event_id."""
    digest = intake.digest(submission)
    seen = await intake.seen(CleanUp, submission.client_event_id, digest)
    if seen is not None:
        return seen
    if principal.role not in CLEANUP_ROLES:
        raise Forbidden(f"a {principal.role.value} cannot record clean-ups", field="role")
    if submission.ended_at < submission.started_at:
        raise ValidationFailed("ended_at precedes started_at", field="ended_at")
    unknown = sorted(set(submission.item_counts) - LITTER_ITEMS)
    if unknown:
        raise ValidationFailed(
            f"unknown litter items {unknown}; see the taxonomy", field=f"item_counts.{unknown[0]}"
        )
    await registry.get_region(submission.region_id)
    stored = set(await Photo.filter(sha256__in=submission.photos).values_list("sha256", flat=True))
    missing = [sha for sha in submission.photos if sha not in stored]
    if missing:
        raise ValidationFailed("upload the photos before referring to them", field="photos")
    async with in_transaction():
        (batch,) = await intake.take_in(
            principal=principal,
            record_id=submission.client_event_id,
            when=submission.ended_at,
            secret=secret,
            stream=MARINE_STREAM,
            lines=[intake.IntakeLine(BEACH_LITTER, submission.total_weight_kg, Unit.KG)],
            producer_id=principal.organization_id,
            handover_to=None,
            latitude=submission.latitude,
            longitude=submission.longitude,
        )
        cleanup = await CleanUp.create(
            **submission.model_dump(exclude={"client_event_id", "kind"}),
            organization_id=principal.organization_id,
            batch_id=batch.id,
            recorded_by_id=principal.user_id,
            client_event_id=submission.client_event_id,
            payload_digest=digest,
        )
    return intake.RecordResult(submission.client_event_id, "applied", cleanup.id)


def _cleanup_scope(principal: Principal) -> Q:
    if principal.role == Role.admin:
        return Q()
    scope = Q(organization_id=principal.organization_id)
    if principal.sees_region:
        scope |= Q(region__path__startswith=principal.region_path)
    return scope


async def get_cleanup(*, principal: Principal, cleanup_id: int) -> CleanUp:
    """A clean-up the user's organization or region covers, with its batch."""
    found = (
        await CleanUp.filter(_cleanup_scope(principal), id=cleanup_id)
        .first()
        .prefetch_related("batch")
    )
    if found is None:
        raise NotFound(f"no clean-up {cleanup_id}", field="cleanup_id")
    return found


async def list_cleanups(*, principal: Principal) -> list[CleanUp]:
    """Clean-ups of the user's organization (managers: in their region), newest first."""
    return (
        await CleanUp.filter(_cleanup_scope(principal))
        .order_by("-started_at")
        .limit(500)
        .prefetch_related("batch")
    )


async def record_float_replacement(
    *, principal: Principal, submission: FloatReplacementCreate
) -> FloatReplacement:
    """Record aquaculture floats replaced (the plan's 浮球整治); a resend is not counted twice."""
    if principal.role == Role.auditor:
        raise Forbidden("auditors read; they do not record", field="role")
    known = await FloatReplacement.get_or_none(client_event_id=submission.client_event_id)
    if known is not None:
        return known
    await registry.get_region(submission.region_id)
    return await FloatReplacement.create(
        **submission.model_dump(),
        organization_id=principal.organization_id,
        recorded_by_id=principal.user_id,
    )


async def list_float_replacements(*, principal: Principal) -> list[FloatReplacement]:
    return await FloatReplacement.filter(_cleanup_scope(principal)).order_by("-replaced_on")


# ---- metrics ---------------------------------------------------------------------------------


async def _line_facts(port_ids: list[int], date_from: date, date_to: date) -> list[dict[str, Any]]:
    """Each delivery line whose batch was tagged in the period, with its batch's fact (fate
    after corrections and containers, one mass): cancelled lines are left out."""
    if not port_ids:
        return []
    rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
        "SELECT d.port_id, l.category_id, l.volume_m3, f.fate, f.mass_kg"
        " FROM delivery_line l JOIN delivery d ON d.id = l.delivery_id"
        " JOIN batch_fact f ON f.batch_id = l.batch_id"
        " WHERE d.port_id = ANY($1::int[]) AND f.day BETWEEN $2 AND $3 AND f.fate <> 'cancelled'",
        [port_ids, date_from, date_to],
    )
    return rows


def _group_rate(treated: Decimal, expected: Decimal, unit: str) -> dict[str, Any]:
    return ratio(treated, expected, unit, rollups.definition("port_collection_treatment_rate"))


async def port_metrics(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> dict[str, Any]:
    """Per port and pooled over the listed ports: expected garbage and sewage (crew × days at
    sea × rate, sewage from vessels under 400 GT only), delivered, harmlessly treated, their
    ratio, and the headline 污水和垃圾收集处置率 (the lower of the two)."""
    start, end = period_bounds(date_from, date_to, timezone)
    snap = await catalog.snapshot()
    ports = await Organization.filter(
        kind=OrganizationKind.fishing_port, region__path__startswith=principal.region_path
    ).order_by("id")
    profiles = {
        p.organization_id: p
        for p in await FishingPort.filter(organization_id__in=[p.id for p in ports])
    }
    calls = await PortCall.filter(
        port_id__in=[p.id for p in ports], arrived_at__gte=start, arrived_at__lt=end
    ).prefetch_related("vessel")
    deliveries = await Delivery.filter(
        port_id__in=[p.id for p in ports], started_at__gte=start, started_at__lt=end
    )
    lines = await _line_facts([p.id for p in ports], date_from, date_to)
    small = Decimal(PORT_RULES["small_vessel_max_gt"])
    pooled: dict[str, dict[str, Decimal]] = {}
    result = []
    for port in ports:
        port_calls = [c for c in calls if c.port_id == port.id]
        port_deliveries = [d for d in deliveries if d.port_id == port.id]
        listed = port.id in profiles and profiles[port.id].listed
        groups = []
        for name, group in PORT_RULES["groups"].items():
            rate = Decimal(str(group["per_person_day"]))
            expected = sum(
                (
                    Decimal(c.crew * c.days_at_sea) * rate
                    for c in port_calls
                    if group["vessels"] == "all" or c.vessel.gross_tonnage < small
                ),
                Decimal(0),
            )
            delivered = treated = Decimal(0)
            for line in lines:
                if line["port_id"] != port.id:
                    continue
                if not set(snap.ancestors(line["category_id"])) & set(group["categories"]):
                    continue
                amount = Decimal(
                    (line["mass_kg"] if group["unit"] == "kg" else line["volume_m3"]) or 0
                )
                delivered += amount
                if line["fate"] in rollups.HARMLESS_FATES:
                    treated += amount
            if listed:
                total = pooled.setdefault(
                    name, {"expected": Decimal(0), "delivered": Decimal(0), "treated": Decimal(0)}
                )
                total["expected"] += expected
                total["delivered"] += delivered
                total["treated"] += treated
            groups.append(
                {
                    "group": name,
                    "name_zh": group["name_zh"],
                    "expected": expected,
                    "delivered": delivered,
                    "treated": treated,
                    "collection_treatment_rate": _group_rate(treated, expected, group["unit"]),
                }
            )
        result.append(
            {
                "port_id": port.id,
                "port_name": port.name,
                "listed": listed,
                "port_calls": len(port_calls),
                "deliveries": len(port_deliveries),
                "flagged_deliveries": sum(bool(d.flags) for d in port_deliveries),
                "groups": groups,
            }
        )
    listed_groups = [
        {
            "group": name,
            "name_zh": group["name_zh"],
            **pooled.get(
                name, {"expected": Decimal(0), "delivered": Decimal(0), "treated": Decimal(0)}
            ),
        }
        for name, group in PORT_RULES["groups"].items()
    ]
    for g in listed_groups:
        unit = PORT_RULES["groups"][g["group"]]["unit"]
        g["collection_treatment_rate"] = _group_rate(g["treated"], g["expected"], unit)
    rates = [g["collection_treatment_rate"] for g in listed_groups]
    known = [r for r in rates if r["rate"] is not None]
    # The headline is only as good as its weaker half; it is a figure only when both are.
    lowest = min(known, key=lambda r: r["rate"]) if len(known) == len(rates) else None
    listed_profiles = [p for p in profiles.values() if p.listed]
    equipped = sum(p.reception_facility for p in listed_profiles)
    return {
        "date_from": date_from,
        "date_to": date_to,
        "timezone": timezone,
        "ports": result,
        "listed_ports": {
            "groups": listed_groups,
            "headline": {
                "rate": lowest["rate"] if lowest else None,
                "group": next(
                    (g["group"] for g in listed_groups if g["collection_treatment_rate"] is lowest),
                    None,
                ),
                "definition": rollups.definition("port_headline"),
            },
        },
        "reception_facility_share": ratio(
            Decimal(equipped), Decimal(len(listed_profiles)), "ports"
        ),
    }


def point_in_polygon(lon: float, lat: float, polygon: list[list[float]]) -> bool:
    """Even-odd rule over the polygon's edges."""
    inside = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


async def list_sea_areas() -> list[SeaArea]:
    return await SeaArea.all().order_by("code")


async def sea_area_metrics(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> dict[str, Any]:
    """Per sea area: vessels counted in it (home port inside it, or a port call declaring it),
    and the share of them whose deliveries were recorded in the period."""
    start, end = period_bounds(date_from, date_to, timezone)
    ports = {
        p.organization_id: p
        for p in await FishingPort.filter(
            organization__region__path__startswith=principal.region_path
        )
    }
    vessels = await Vessel.filter(home_port_id__in=list(ports)).only("id", "home_port_id")
    calls = await PortCall.filter(
        arrived_at__gte=start, arrived_at__lt=end, fishing_area__not_isnull=True
    ).values("vessel_id", "fishing_area")
    delivered = set(
        await Delivery.filter(started_at__gte=start, started_at__lt=end).values_list(
            "vessel_id", flat=True
        )
    )
    areas = []
    for area in await list_sea_areas():
        members = {
            v.id
            for v in vessels
            if point_in_polygon(
                ports[v.home_port_id].longitude, ports[v.home_port_id].latitude, area.polygon
            )
        } | {c["vessel_id"] for c in calls if c["fishing_area"] == area.code}
        with_deliveries = len(members & delivered)
        areas.append(
            {
                "code": area.code,
                "name_zh": area.name_zh,
                "vessels": len(members),
                "vessels_with_deliveries": with_deliveries,
                "share": ratio(Decimal(with_deliveries), Decimal(len(members)), "vessels"),
            }
        )
    return {"date_from": date_from, "date_to": date_to, "timezone": timezone, "areas": areas}
