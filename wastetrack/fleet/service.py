"""A carrier's fleet register: who manages and reads it, its vehicles and its drivers. The plate
of a carriage is checked in wastetrack.fleet.plates, positions and trajectories kept in
wastetrack.fleet.tracking."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.core import paging
from wastetrack.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.fleet.models import Driver, Vehicle
from wastetrack.fleet.plates import normalize_plate
from wastetrack.registry import access
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind

# ---- who manages, who reads -----------------------------------------------------------------

FLEET_MANAGERS = frozenset({Role.carrier, Role.admin})
FLEET_READERS = frozenset({Role.carrier, Role.manager, Role.auditor, Role.admin})

F = TypeVar("F", Vehicle, Driver)


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


async def managed_vehicle(principal: Principal, plate: str) -> Vehicle:
    """A vehicle of the user's fleet by its plate, locked for the change that follows; a plate
    not of the national form (every registered one is) is refused, naming `plate`."""
    normalized = normalize_plate(plate)
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
    """A driver assigned to a vehicle is one of its fleet in service; the row is locked, so
    that a driver retired at the same time is not assigned after its vehicles were freed."""
    if (
        driver_id is not None
        and not await Driver.filter(id=driver_id, organization_id=organization_id, retired_at=None)
        .select_for_update()
        .exists()
    ):
        raise ValidationFailed(f"no driver {driver_id} in this fleet", field="driver_id")


def _check_pair(number: str | None, expires: date | None, *, what: str, fields: str) -> None:
    """A certificate (a vehicle's hazardous-goods licence, a driver's qualification) has a
    number and an expiry, or neither; the half missing is the field named: `fields` is the
    pair's prefix (`<prefix>_number`, `<prefix>_expires`)."""
    if (number is None) != (expires is None):
        raise ValidationFailed(
            f"{what}'s number and its expiry go together",
            field=f"{fields}_number" if number is None else f"{fields}_expires",
        )


_LICENCE = {"what": "the hazardous-goods licence", "fields": "hazardous_licence"}


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
    _check_pair(hazardous_licence_number, hazardous_licence_expires, **_LICENCE)
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
    await audit.created("vehicle.created", vehicle, within=org)
    return vehicle


BY_PLATE = paging.Order("plate", str, descending=False)
BY_NAME = paging.Order("name", str, descending=False)


async def list_vehicles(
    *,
    principal: Principal,
    include_retired: bool = False,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Vehicle]:
    """The vehicles the user may read: a carrier's own, a manager's region's, an admin's all."""
    return await _fleet_page(Vehicle, BY_PLATE, principal, include_retired, limit, cursor)


async def _fleet_page(
    model: type[F],
    order: paging.Order,
    principal: Principal,
    include_retired: bool,
    limit: int,
    cursor: str | None,
) -> paging.Page[F]:
    """A page of a fleet's `model` rows the user may read, in `order`; retired ones when asked."""
    if principal.role not in FLEET_READERS:
        raise Forbidden("fleets are read by their carrier and the managers", field="role")
    query = access.readable(model.all(), principal)
    if not include_retired:
        query = query.filter(retired_at=None)
    return await paging.page(query, order, limit=limit, cursor=cursor)


async def update_vehicle(*, principal: Principal, plate: str, changes: dict[str, Any]) -> Vehicle:
    """Change a vehicle's permit, licence, capacity or driver; its plate stays."""
    vehicle = await managed_vehicle(principal, plate)
    if vehicle.retired_at is not None:
        raise Conflict("the vehicle is retired", field="plate")
    before = audit.snapshot(vehicle)
    _check_pair(
        changes.get("hazardous_licence_number", vehicle.hazardous_licence_number),
        changes.get("hazardous_licence_expires", vehicle.hazardous_licence_expires),
        **_LICENCE,
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
    vehicle = await managed_vehicle(principal, plate)
    if vehicle.retired_at is not None:
        raise Conflict("the vehicle is retired already", field="plate")
    await audit.updated(
        "vehicle.retired", vehicle, within=vehicle.organization, retired_at=datetime.now(UTC)
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
    _check_pair(
        qualification_number,
        qualification_expires,
        what="the dangerous-goods qualification certificate",
        fields="qualification",
    )
    driver = await Driver.create(
        organization_id=org.id,
        name=name,
        licence_number=licence_number,
        qualification_number=qualification_number,
        qualification_expires=qualification_expires,
        phone=phone,
    )
    await audit.created("driver.created", driver, within=org)
    return driver


async def list_drivers(
    *,
    principal: Principal,
    include_retired: bool = False,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Driver]:
    """The drivers the user may read, by the same rule as vehicles."""
    return await _fleet_page(Driver, BY_NAME, principal, include_retired, limit, cursor)


async def retire_driver(*, principal: Principal, driver_id: int) -> Driver:
    """A driver leaves the fleet; kept for the record. The vehicles it was assigned to have no
    driver from then on (each change in the audit log), rather than a retired one. Its vehicles
    are locked before the driver, in the order a vehicle's change locks them (the vehicle, then
    the driver it names), so the two never wait on each other."""
    await Vehicle.filter(driver_id=driver_id).select_for_update()
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
    await audit.updated(
        "driver.retired", driver, within=driver.organization, retired_at=datetime.now(UTC)
    )
    # Read again under the driver's lock: one assigned it and committed meanwhile is freed too.
    for vehicle in await Vehicle.filter(driver_id=driver.id).select_for_update():
        await audit.updated("vehicle.updated", vehicle, within=driver.organization, driver_id=None)
    return driver
