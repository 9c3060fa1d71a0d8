"""Tracking: the GPS positions a carrier's phones report for its vehicles, and the trajectory
of a batch read from them along the carriages of its custody chain."""

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise import connections

from wastetrack.auth.models import Role
from wastetrack.batches import service as batches
from wastetrack.core.errors import Conflict, Forbidden
from wastetrack.core.principal import Principal
from wastetrack.core.reported import plausible
from wastetrack.custody.models import CustodyEvent
from wastetrack.fleet.models import Vehicle, VehiclePosition
from wastetrack.fleet.service import managed_vehicle

# Positions a phone may send in one call, and how many a trajectory returns at most.
MAX_POSITIONS = 1000
MAX_TRAJECTORY_POINTS = 10_000

# The custody events that start a carriage (they name the vehicle) and every other event
# ends it: the batch left the vehicle (handed over, stored, received …).
PICKUPS = ("collected", "in_transit", "handed_over")


@dataclass(frozen=True, slots=True)
class Position:
    time: datetime
    latitude: float
    longitude: float


async def record_positions(
    *, principal: Principal, plate: str, positions: list[Position]
) -> tuple[int, int]:
    """Store a vehicle's GPS fixes, each (vehicle, time) once, so an offline phone may resend
    its whole buffer; returns (received, newly stored). A fix at a time no clock could have
    reported (`reported.plausible`) is received and not stored."""
    if principal.role != Role.carrier:
        raise Forbidden("a carrier's phones report its vehicles' positions", field="role")
    vehicle = await managed_vehicle(principal, plate)
    if vehicle.retired_at is not None:
        raise Conflict("the vehicle is retired", field="plate")
    if not positions:
        return 0, 0
    now = datetime.now(UTC)
    # A device's buffer may hold fixes of a clock not yet set (its epoch, a week rollover) or
    # running ahead: those are received and not stored, so the rest of the buffer still is.
    kept = [p for p in positions if plausible(p.time, now=now)]
    rows = await connections.get("default").execute_query_dict(
        "INSERT INTO vehicle_position (vehicle_id, time, latitude, longitude, received_at)"
        " SELECT $1, t, lat, lon, $5"
        " FROM unnest($2::timestamptz[], $3::float8[], $4::float8[]) AS p (t, lat, lon)"
        " ON CONFLICT (vehicle_id, time) DO NOTHING RETURNING id",
        [
            vehicle.id,
            [p.time for p in kept],
            [p.latitude for p in kept],
            [p.longitude for p in kept],
            now,
        ],
    )
    return len(positions), len(rows)


@dataclass(frozen=True, slots=True)
class Carriage:
    """One stretch of a batch's path in one vehicle: from its pickup until the next event.
    `carrier` is the organization the batch rode with (whose vehicle the plate must be)."""

    plate: str
    carrier_id: int
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Trajectory:
    batch_code: str
    carriages: list[Carriage]
    points: list[tuple[datetime, float, float]]


def carriages(events: list[CustodyEvent]) -> list[Carriage]:
    """The stretches a batch spent in vehicles, read from its chain: each event naming a
    vehicle starts one, the next event of the batch ends it. A vehicle is its carrier's: the
    actor's own on a collection or a departure; on a handover, the taking carrier's, and the
    giver's word for it holds only once that carrier has recorded the batch's next step (so a
    giver cannot open another carrier's track from a time of its choosing)."""
    found = []
    ordered = sorted(events, key=lambda e: e.seq)
    for index, event in enumerate(ordered):
        plate = (event.details or {}).get("vehicle_plate")
        if event.event_type not in PICKUPS or not plate:
            continue
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        carrier_id = event.organization_id
        if event.event_type == "handed_over":
            carrier_id = event.to_organization_id or event.organization_id
            if following is None or following.organization_id != carrier_id:
                continue
        found.append(
            Carriage(
                plate=plate,
                carrier_id=carrier_id,
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
    # A plate is the carrier's own vehicle only: one stated by a carrier that had not
    # registered its fleet may be another carrier's, whose positions are not this batch's.
    vehicles = {
        (plate, carrier_id): vehicle_id
        for vehicle_id, plate, carrier_id in await Vehicle.filter(
            plate__in={c.plate for c in stretches}
        ).values_list("id", "plate", "organization_id")
    }
    for stretch in stretches:
        vehicle_id = vehicles.get((stretch.plate, stretch.carrier_id))
        if vehicle_id is None:
            continue  # a plate not (or not yet) registered to the carrier it rode with
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
