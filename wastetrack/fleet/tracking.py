"""Tracking: the GPS positions a carrier's phones report for its vehicles, and the trajectory
of a batch read from them along the carriages of its custody chain."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tortoise import connections

from wastetrack.auth.models import Role
from wastetrack.batches import service as batches
from wastetrack.core.errors import Conflict, Forbidden
from wastetrack.core.principal import Principal
from wastetrack.core.reported import plausible
from wastetrack.core.settings import get_settings
from wastetrack.custody.aggregations import undone_aggregations
from wastetrack.custody.models import CustodyEvent
from wastetrack.fleet.models import Vehicle, VehiclePosition
from wastetrack.fleet.service import managed_vehicle

# Positions a phone may send in one call, and how many a trajectory returns at most.
MAX_POSITIONS = 1000
MAX_TRAJECTORY_POINTS = 10_000

# The custody events that start a carriage (they name the vehicle) and every other step ends
# it: the batch left the vehicle (handed over, stored, received, packed into a container …).
# Not a step of the batch's own: a correction, or a container's own aggregated event (a bag
# put into it as it rides, its state unchanged); nor a bag's packing a correction undid
# (`_carried` leaves it out of the chain: the bag was never in that container).
PICKUPS = ("collected", "in_transit", "handed_over")
# How many containers of containers a batch's trajectory follows at most.
MAX_NESTING = 8


def _moves_the_batch(event: CustodyEvent) -> bool:
    """Whether the event is a step of the batch itself, which ends a carriage."""
    if event.event_type == "corrected":
        return False
    return not (event.event_type == "aggregated" and event.related_batch_id is None)


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
    """One stretch of a batch's path in one vehicle: the times its track is shown for, from
    the pickup until the next event (`end` None: still riding, so far until now). `carrier` is
    the organization the batch rode with (whose vehicle the plate must be)."""

    plate: str
    carrier_id: int
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Trajectory:
    batch_code: str
    carriages: list[Carriage]
    points: list[tuple[datetime, float, float]]


def carriages(events: list[CustodyEvent], *, longest: timedelta, now: datetime) -> list[Carriage]:
    """The stretches a batch spent in vehicles, read from its chain: each event naming a
    vehicle starts one, the next event of the batch ends it. A vehicle is its carrier's: the
    actor's own on a collection or a departure; on a handover, the taking carrier's, and the
    giver's word for it holds only once that carrier has recorded the batch's next step.

    Device times can be backdated, and only the carrier's own speak for its track: a stretch
    lasts `longest` at most, counted from the carrier's time (back from its next step on a
    handover, whose start is the giver's; forward from its own pickup otherwise, whatever time
    the next party states), and never past `now`. So no party other than the carrier opens its
    track from a time of its choosing, nor watches it for ever after an unfinished carriage."""
    found = []
    ordered = [e for e in sorted(events, key=lambda e: e.seq) if _moves_the_batch(e)]
    for index, event in enumerate(ordered):
        plate = (event.details or {}).get("vehicle_plate")
        if event.event_type not in PICKUPS or not plate:
            continue
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        carrier_id = event.organization_id
        start, end = event.device_time, following.device_time if following else now
        if event.event_type == "handed_over":
            carrier_id = event.to_organization_id or event.organization_id
            if following is None or following.organization_id != carrier_id:
                continue
            start = max(start, end - longest)
        else:
            end = min(end, start + longest)
        end = min(end, now)
        # Riding still, and not yet for longer than a carriage may take: open until now.
        still = following is None and end == now
        found.append(
            Carriage(plate=plate, carrier_id=carrier_id, start=start, end=None if still else end)
        )
    return found


async def trajectory(*, principal: Principal, code: str) -> Trajectory:
    """The GPS positions of the vehicles that carried a batch, between each pickup and the
    batch's next step, for whoever may see the batch. A carriage lasts
    `WASTETRACK_LEG_OVERDUE_HOURS` at most: one longer is overdue (`alerts`), and its track
    beyond is no longer this batch's to show. A batch packed into a container rides on with
    it: the container's carriages from the packing on are the batch's too."""
    batch = await batches.get_visible_batch(principal, code)
    now = datetime.now(UTC)
    longest = timedelta(hours=get_settings().leg_overdue_hours)
    stretches = await _carried(batch.id, longest=longest, now=now)
    points: list[tuple[datetime, float, float]] = []
    # A fix at the second one carriage of a vehicle ends and the next begins (a manifest leg's
    # handover and departure share it) is one position of the path, not two.
    taken: set[int] = set()
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
        query = VehiclePosition.filter(
            vehicle_id=vehicle_id, time__gte=stretch.start, time__lte=stretch.end or now
        )
        rows = (
            await query.order_by("time")
            .limit(MAX_TRAJECTORY_POINTS)
            .values_list("id", "time", "latitude", "longitude")
        )
        points.extend((time, lat, lon) for id_, time, lat, lon in rows if id_ not in taken)
        taken.update(id_ for id_, *_ in rows)
    return Trajectory(batch_code=batch.code, carriages=stretches, points=points)


async def _carried(batch_id: int, *, longest: timedelta, now: datetime) -> list[Carriage]:
    """The batch's carriages, then those of the container it was packed into from the packing
    on (and of that container's container …). A packing a correction undid is read as the
    registers read it (`custody.aggregations.aggregation_undone`): it never happened, so it
    neither ends the batch's own carriage nor takes the batch along with that container; a
    later packing, into the same container or another, does."""
    found: list[Carriage] = []
    since: datetime | None = None
    for _ in range(MAX_NESTING + 1):
        undone = await undone_aggregations(batch_id)
        events = [
            e
            for e in await CustodyEvent.filter(batch_id=batch_id).order_by("seq")
            if e.id not in undone
        ]
        for stretch in carriages(events, longest=longest, now=now):
            if since is None:
                found.append(stretch)
            elif stretch.end is None or stretch.end > since:
                found.append(replace(stretch, start=max(stretch.start, since)))
        packed = next(
            (
                e
                for e in reversed(events)
                if e.event_type == "aggregated" and e.related_batch_id is not None
            ),
            None,
        )
        container = packed.related_batch_id if packed is not None else None
        if packed is None or container is None:
            break
        batch_id = container
        since = packed.device_time if since is None else max(since, packed.device_time)
    return found
