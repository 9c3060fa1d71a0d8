"""A carrier's fleet: who manages and reads it, the plate a carriage names, GPS positions and
the trajectory of a batch."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tortoise import connections

from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.batches import service as batches
from wastetrack.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.custody.models import CustodyEvent
from wastetrack.fleet.models import Driver, Vehicle, VehiclePosition
from wastetrack.registry import access
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind

# 机动车号牌 (GA 36): province abbreviation, issuing-office letter (no I or O), then five
# characters, or six for new-energy plates (D/F then five, small cars; five digits then D/F,
# large vehicles).
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_FORM = re.compile(
    rf"[{PROVINCES}][A-HJ-NP-Z]"
    r"(?:[A-HJ-NP-Z0-9]{5}|[DF][A-HJ-NP-Z0-9][0-9]{4}|[0-9]{5}[DF])"
)
# Separators people type or print between the parts of a plate.
_PLATE_SEPARATORS = re.compile(r"[\s·•．.\-]")

# Stream rule `vehicle_required`: any registered vehicle, or one holding a valid 道路危险货物
# 运输许可 on the day of carriage.
REGISTERED = "registered"
HAZARDOUS_LICENCE = "hazardous_licence"

# Positions a phone may send in one call, and how many a trajectory returns at most.
MAX_POSITIONS = 1000
MAX_TRAJECTORY_POINTS = 10_000

# The custody events that start a carriage (they name the vehicle) and every other event
# ends it: the batch left the vehicle (handed over, stored, received …).
PICKUPS = ("collected", "in_transit", "handed_over")


def normalize_plate(plate: str, *, field: str = "plate") -> str:
    """The plate upper-case without separators, refused unless it has the national form."""
    normalized = _PLATE_SEPARATORS.sub("", plate).upper()
    if not PLATE_FORM.fullmatch(normalized):
        raise ValidationFailed(
            f"{plate!r} is not a Chinese plate: a province abbreviation, a letter and 5"
            " characters (6 for new-energy vehicles), e.g. 鲁K12345 or 鲁KD12345",
            field=field,
        )
    return normalized


# ---- who manages, who reads -----------------------------------------------------------------

FLEET_MANAGERS = frozenset({Role.carrier, Role.admin})
FLEET_READERS = frozenset({Role.carrier, Role.manager, Role.auditor, Role.admin})


async def _managed_organization(principal: Principal, organization_id: int | None) -> Organization:
    """The carrier whose fleet the user manages: a carrier's user its own, an admin the one
    named."""
    if principal.role not in FLEET_MANAGERS:
        raise Forbidden("only a carrier's users manage its fleet", field="role")
    if principal.role != Role.admin:
        if organization_id not in (None, principal.organization_id):
            raise Forbidden(
                "you manage only your own organization's fleet", field="organization_id"
            )
        organization_id = principal.organization_id
    if organization_id is None:
        raise ValidationFailed("name the carrier whose fleet this is", field="organization_id")
    org = await registry.get_organization(organization_id)
    if org.kind != OrganizationKind.carrier:
        raise ValidationFailed("only carriers keep a fleet", field="organization_id")
    return org


def _managed_rows(principal: Principal) -> dict[str, Any]:
    if principal.role not in FLEET_MANAGERS:
        raise Forbidden("only a carrier's users manage its fleet", field="role")
    return {} if principal.role == Role.admin else {"organization_id": principal.organization_id}


async def _managed_vehicle(principal: Principal, plate: str) -> Vehicle:
    normalized = _PLATE_SEPARATORS.sub("", plate).upper()
    vehicle = (
        await Vehicle.filter(plate=normalized, **_managed_rows(principal))
        .select_for_update()
        .prefetch_related("organization__region")
        .first()
    )
    if vehicle is None:
        raise NotFound(f"no vehicle {plate} in your fleet", field="plate")
    return vehicle


async def _check_driver(organization_id: int, driver_id: int | None) -> None:
    if driver_id is not None and not await Driver.exists(
        id=driver_id, organization_id=organization_id, retired_at=None
    ):
        raise ValidationFailed(f"no driver {driver_id} in this fleet", field="driver_id")


def _check_licence(number: str | None, expires: date | None) -> None:
    if (number is None) != (expires is None):
        raise ValidationFailed(
            "the hazardous-goods licence number and its expiry go together",
            field="hazardous_licence_expires",
        )


# ---- vehicles -------------------------------------------------------------------------------


async def create_vehicle(
    *,
    principal: Principal,
    plate: str,
    permit_number: str,
    capacity_kg: Decimal,
    hazardous_licence_number: str | None = None,
    hazardous_licence_expires: date | None = None,
    driver_id: int | None = None,
    organization_id: int | None = None,
) -> Vehicle:
    """Register a vehicle in a carrier's fleet; a plate is registered once."""
    org = await _managed_organization(principal, organization_id)
    normalized = normalize_plate(plate)
    if await Vehicle.exists(plate=normalized):
        raise Conflict(f"the plate {normalized} is registered already", field="plate")
    _check_licence(hazardous_licence_number, hazardous_licence_expires)
    await _check_driver(org.id, driver_id)
    vehicle = await Vehicle.create(
        organization_id=org.id,
        plate=normalized,
        permit_number=permit_number,
        capacity_kg=capacity_kg,
        hazardous_licence_number=hazardous_licence_number,
        hazardous_licence_expires=hazardous_licence_expires,
        driver_id=driver_id,
    )
    await audit.record(
        action="vehicle.created",
        subject=vehicle,
        organization_id=org.id,
        region_path=org.region.path,
        after=audit.snapshot(vehicle),
    )
    return vehicle


async def list_vehicles(*, principal: Principal, include_retired: bool = False) -> list[Vehicle]:
    """The vehicles the user may read: a carrier's own, a manager's region's, an admin's all."""
    if principal.role not in FLEET_READERS:
        raise Forbidden("fleets are read by their carrier and the managers", field="role")
    query = access.readable(Vehicle.all(), principal)
    if not include_retired:
        query = query.filter(retired_at=None)
    return await query.order_by("plate").limit(1000)


async def update_vehicle(*, principal: Principal, plate: str, changes: dict[str, Any]) -> Vehicle:
    """Change a vehicle's permit, licence, capacity or driver; its plate stays."""
    vehicle = await _managed_vehicle(principal, plate)
    if vehicle.retired_at is not None:
        raise Conflict("the vehicle is retired", field="plate")
    before = audit.snapshot(vehicle)
    _check_licence(
        changes.get("hazardous_licence_number", vehicle.hazardous_licence_number),
        changes.get("hazardous_licence_expires", vehicle.hazardous_licence_expires),
    )
    if "driver_id" in changes:
        await _check_driver(vehicle.organization_id, changes["driver_id"])
    for key, value in changes.items():
        setattr(vehicle, key, value)
    await vehicle.save()
    await audit.record(
        action="vehicle.updated",
        subject=vehicle,
        organization_id=vehicle.organization_id,
        region_path=vehicle.organization.region.path,
        before=before,
        after=audit.snapshot(vehicle),
    )
    return vehicle


async def retire_vehicle(*, principal: Principal, plate: str) -> Vehicle:
    """Take a vehicle out of service; it and its positions stay for the custody chain."""
    vehicle = await _managed_vehicle(principal, plate)
    if vehicle.retired_at is not None:
        raise Conflict("the vehicle is retired already", field="plate")
    before = audit.snapshot(vehicle)
    vehicle.retired_at = datetime.now(UTC)
    await vehicle.save(update_fields=["retired_at"])
    await audit.record(
        action="vehicle.retired",
        subject=vehicle,
        organization_id=vehicle.organization_id,
        region_path=vehicle.organization.region.path,
        before=before,
        after=audit.snapshot(vehicle),
    )
    return vehicle


# ---- drivers --------------------------------------------------------------------------------


async def create_driver(
    *,
    principal: Principal,
    name: str,
    licence_number: str,
    qualification_number: str | None = None,
    qualification_expires: date | None = None,
    phone: str | None = None,
    organization_id: int | None = None,
) -> Driver:
    """Register a driver of a carrier, with the dangerous-goods qualification if held."""
    org = await _managed_organization(principal, organization_id)
    if (qualification_number is None) != (qualification_expires is None):
        raise ValidationFailed(
            "the qualification certificate and its expiry go together",
            field="qualification_expires",
        )
    driver = await Driver.create(
        organization_id=org.id,
        name=name,
        licence_number=licence_number,
        qualification_number=qualification_number,
        qualification_expires=qualification_expires,
        phone=phone,
    )
    await audit.record(
        action="driver.created",
        subject=driver,
        organization_id=org.id,
        region_path=org.region.path,
        after=audit.snapshot(driver),
    )
    return driver


async def list_drivers(*, principal: Principal, include_retired: bool = False) -> list[Driver]:
    """The drivers the user may read, by the same rule as vehicles."""
    if principal.role not in FLEET_READERS:
        raise Forbidden("fleets are read by their carrier and the managers", field="role")
    query = access.readable(Driver.all(), principal)
    if not include_retired:
        query = query.filter(retired_at=None)
    return await query.order_by("name", "id").limit(1000)


async def retire_driver(*, principal: Principal, driver_id: int) -> Driver:
    """A driver leaves the fleet; kept for the record."""
    driver = (
        await Driver.filter(id=driver_id, **_managed_rows(principal))
        .select_for_update()
        .prefetch_related("organization__region")
        .first()
    )
    if driver is None:
        raise NotFound(f"no driver {driver_id} in your fleet", field="driver_id")
    if driver.retired_at is not None:
        raise Conflict("the driver is retired already", field="driver_id")
    before = audit.snapshot(driver)
    driver.retired_at = datetime.now(UTC)
    await driver.save(update_fields=["retired_at"])
    await audit.record(
        action="driver.retired",
        subject=driver,
        organization_id=driver.organization_id,
        region_path=driver.organization.region.path,
        before=before,
        after=audit.snapshot(driver),
    )
    return driver


# ---- the plate of a carriage ----------------------------------------------------------------


async def enrolled(organization_id: int) -> bool:
    """Whether the carrier has registered its fleet (any vehicle, even one retired since)."""
    return await Vehicle.exists(organization_id=organization_id)


async def plate_for_carriage(
    *,
    organization_id: int,
    plate: str | None,
    rule: str | None,
    on: date,
    field: str = "vehicle_plate",
    enrolled_cache: dict[int, bool] | None = None,
) -> str | None:
    """The normalized plate a carrier names for a carriage, checked against its fleet.

    A carrier that has registered its fleet must name one of its vehicles, not retired, where
    the stream's rule (`vehicle_required`) asks for one, and any plate it names must be such a
    vehicle; under the `hazardous_licence` rule the vehicle's 道路危险货物运输许可 must be valid
    on the day. Until a carrier registers its first vehicle, a plate is recorded as stated."""
    if plate is None and rule is None:
        return None
    normalized = normalize_plate(plate, field=field) if plate is not None else None
    cache = enrolled_cache if enrolled_cache is not None else {}
    if organization_id not in cache:
        cache[organization_id] = await enrolled(organization_id)
    if not cache[organization_id]:
        return normalized
    if normalized is None:
        if rule is None:
            return None
        raise ValidationFailed(
            "name the vehicle (vehicle_plate): this waste moves only in a registered vehicle",
            field=field,
        )
    vehicle = await Vehicle.get_or_none(plate=normalized, organization_id=organization_id)
    if vehicle is None:
        raise ValidationFailed(
            f"{normalized} is not a registered vehicle of the carrier", field=field
        )
    if vehicle.retired_at is not None:
        raise ValidationFailed(f"{normalized} is retired", field=field)
    if rule == HAZARDOUS_LICENCE and (
        vehicle.hazardous_licence_expires is None or vehicle.hazardous_licence_expires < on
    ):
        raise ValidationFailed(
            f"{normalized} holds no hazardous-goods transport licence (道路危险货物运输许可)"
            f" valid on {on.isoformat()}",
            field=field,
        )
    return normalized


# ---- positions and trajectories -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    time: datetime
    latitude: float
    longitude: float


async def record_positions(
    *, principal: Principal, plate: str, positions: list[Position]
) -> tuple[int, int]:
    """Store a vehicle's GPS fixes, each (vehicle, time) once, so an offline phone may resend
    its whole buffer; returns (received, newly stored)."""
    if principal.role != Role.carrier:
        raise Forbidden("a carrier's phones report its vehicles' positions", field="role")
    vehicle = await _managed_vehicle(principal, plate)
    if vehicle.retired_at is not None:
        raise Conflict("the vehicle is retired", field="plate")
    if not positions:
        return 0, 0
    now = datetime.now(UTC)
    rows = await connections.get("default").execute_query_dict(
        "INSERT INTO vehicle_position (vehicle_id, time, latitude, longitude, received_at)"
        " SELECT $1, t, lat, lon, $5"
        " FROM unnest($2::timestamptz[], $3::float8[], $4::float8[]) AS p (t, lat, lon)"
        " ON CONFLICT (vehicle_id, time) DO NOTHING RETURNING id",
        [
            vehicle.id,
            [p.time for p in positions],
            [p.latitude for p in positions],
            [p.longitude for p in positions],
            now,
        ],
    )
    return len(positions), len(rows)


@dataclass(frozen=True, slots=True)
class Carriage:
    """One stretch of a batch's path in one vehicle: from its pickup until the next event."""

    plate: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Trajectory:
    batch_code: str
    carriages: list[Carriage]
    points: list[tuple[datetime, float, float]]


def carriages(events: list[CustodyEvent]) -> list[Carriage]:
    """The stretches a batch spent in vehicles, read from its chain: each event naming a
    vehicle starts one, the next event of the batch ends it."""
    found = []
    ordered = sorted(events, key=lambda e: e.seq)
    for index, event in enumerate(ordered):
        plate = (event.details or {}).get("vehicle_plate")
        if event.event_type not in PICKUPS or not plate:
            continue
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        found.append(
            Carriage(
                plate=plate,
                start=event.device_time,
                end=following.device_time if following else None,
            )
        )
    return found


async def trajectory(*, principal: Principal, code: str) -> Trajectory:
    """The GPS positions of the vehicles that carried a batch, between each pickup and the
    batch's next step, for whoever may see the batch."""
    batch = await batches.get_visible_batch(principal, code)
    events = await CustodyEvent.filter(batch_id=batch.id).order_by("seq")
    stretches = carriages(events)
    points: list[tuple[datetime, float, float]] = []
    vehicles = dict(
        await Vehicle.filter(plate__in={c.plate for c in stretches}).values_list("plate", "id")
    )
    for stretch in stretches:
        vehicle_id = vehicles.get(stretch.plate)
        if vehicle_id is None:
            continue  # a plate recorded before its carrier registered the vehicle
        query = VehiclePosition.filter(vehicle_id=vehicle_id, time__gte=stretch.start)
        if stretch.end is not None:
            query = query.filter(time__lte=stretch.end)
        rows = (
            await query.order_by("time")
            .limit(MAX_TRAJECTORY_POINTS)
            .values_list("time", "latitude", "longitude")
        )
        points.extend(rows)
    return Trajectory(batch_code=batch.code, carriages=stretches, points=points)
