"""Port calls: a vessel's stay at a port from arrival (with its advance waste notification) to
departure, recorded by the port's operators."""

from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from wastetrack.auth.models import Role
from wastetrack.catalog import service as catalog
from wastetrack.core import paging
from wastetrack.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.reported import CLOCK_SKEW, check_reported
from wastetrack.ports import MARINE_STREAM
from wastetrack.ports.access import reasons
from wastetrack.ports.commands import NotificationLineCommand
from wastetrack.ports.models import Delivery, PortCall, SeaArea
from wastetrack.registry.models import Vessel


def _operator_port(principal: Principal) -> int:
    if principal.role != Role.port_operator:
        raise Forbidden("only port operators record port calls", field="role")
    return principal.organization_id


async def get_vessel(vessel_id: int, *, lock: bool = False) -> Vessel:
    """The vessel with this id (its row locked for this transaction, with `lock`); an unknown
    one is 'not found' on vessel_id."""
    query = Vessel.select_for_update() if lock else Vessel.all()
    vessel = await query.get_or_none(id=vessel_id)
    if vessel is None:
        raise NotFound(f"no vessel {vessel_id}", field="vessel_id")
    return vessel


def covering(
    *, vessel_id: int, port_id: int, started_at: datetime, ended_at: datetime
) -> QuerySet[PortCall]:
    """The vessel's calls at the port that cover a delivery from `started_at` to `ended_at`:
    arrived by its end, not departed before its start, give or take the clock skew every
    reported time is allowed (the port's and the crew's clocks differ). A call's end is held to
    the same rule once it covers a delivery (`_check_end`)."""
    return PortCall.filter(
        Q(departed_at=None) | Q(departed_at__gte=started_at - CLOCK_SKEW),
        vessel_id=vessel_id,
        port_id=port_id,
        arrived_at__lte=ended_at + CLOCK_SKEW,
    )


async def _check_end(call: PortCall, end: datetime, *, field: str) -> None:
    """A call ends no earlier than a delivery it covers began, as `covering` judges it: ended
    before, the call would no longer cover the delivery that names it (and the delivery would
    have been flagged `no_open_port_call` had the departure come first)."""
    uncovered = (
        await Delivery.filter(port_call_id=call.id, started_at__gt=end + CLOCK_SKEW)
        .order_by("started_at")
        .first()
    )
    if uncovered is not None:
        raise Conflict(
            f"the port call covers delivery {uncovered.receipt_number}, which began after this"
            " time: the call cannot end before it",
            field=field,
        )


async def _check_notification(lines: list[NotificationLineCommand]) -> list[dict[str, Any]]:
    snap = await catalog.snapshot()
    checked = []
    for index, line in enumerate(lines):
        category = snap.categories.get(line.category)
        if category is None or category.stream_id != MARINE_STREAM:
            raise ValidationFailed(
                f"{line.category!r} is not a marine waste category",
                field=f"notification[{index}].category",
            )
        checked.append(line.as_kept())
    return checked


async def open_port_call(
    *,
    principal: Principal,
    vessel_id: int,
    arrived_at: datetime,
    days_at_sea: int,
    crew: int,
    fishing_area: str | None,
    notification: list[NotificationLineCommand],
) -> PortCall:
    """Record a vessel's arrival at the operator's port, with its advance waste notification.
    A call the vessel left open at another port before this arrival ends at it (the vessel left
    to come here; a port cannot hold a vessel by not closing its call); a call open at this
    port, an arrival within or before another of the vessel's calls, or one that would end the
    call left open before a delivery it covers began, is refused: calls are entered in order,
    so a vessel's calls never overlap."""
    port_id = _operator_port(principal)
    check_reported(arrived_at, now=datetime.now(UTC), field="arrived_at")
    # The vessel's row is locked while its open call is looked for: two arrivals of one vessel
    # sent at once (a retry, two operators) take turns, and the second finds the first open.
    vessel = await get_vessel(vessel_id, lock=True)
    if fishing_area is not None and not await SeaArea.exists(code=fishing_area):
        raise ValidationFailed(f"unknown sea area {fishing_area!r}", field="fishing_area")
    # The order first: an arrival before a call, open here or not, is wrong in its time (closing
    # that call would not let it in).
    calls = PortCall.filter(vessel_id=vessel.id)
    if await calls.filter(arrived_at__gte=arrived_at).exists() or (
        await calls.filter(departed_at__gt=arrived_at).exists()
    ):
        raise Conflict(
            "the vessel's port calls already reach this arrival: enter them in order",
            field="arrived_at",
        )
    left_open = await PortCall.filter(vessel_id=vessel.id, departed_at=None).first()
    if left_open is not None and left_open.port_id == port_id:
        raise Conflict("the vessel has a port call that is still open", field="vessel_id")
    if left_open is not None:
        await _check_end(left_open, arrived_at, field="arrived_at")
        left_open.departed_at = arrived_at
        await left_open.save(update_fields=["departed_at"])
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
    """Record the vessel's departure: not before the arrival, nor before a delivery the call
    covers began."""
    port_id = _operator_port(principal)
    call = await PortCall.get_or_none(id=port_call_id, port_id=port_id)
    if call is None:
        raise NotFound(f"no port call {port_call_id} at your port", field="port_call_id")
    # The vessel's row is locked, as an arrival locks it, and the call read again under it: an
    # arrival at another port ends this call too, and sent at the same moment the two take
    # turns, so the call ends once and never past the vessel's next arrival.
    await get_vessel(call.vessel_id, lock=True)
    await call.refresh_from_db(fields=["departed_at"])
    if call.departed_at is not None:
        raise Conflict("the port call is closed already", field="port_call_id")
    check_reported(departed_at, now=datetime.now(UTC), field="departed_at")
    if departed_at < call.arrived_at:
        raise ValidationFailed("departed_at precedes the arrival", field="departed_at")
    await _check_end(call, departed_at, field="departed_at")
    call.departed_at = departed_at
    await call.save(update_fields=["departed_at"])
    return call


LATEST_ARRIVAL = paging.Order("arrived_at", datetime)


async def list_port_calls(
    *,
    principal: Principal,
    vessel_id: int | None,
    open_only: bool,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[PortCall]:
    """Port calls at the user's port (managers: in their region), latest arrival first, a
    page at a time."""
    query = PortCall.all()
    if vessel_id is not None:
        query = query.filter(vessel_id=vessel_id)
    if open_only:
        query = query.filter(departed_at=None)
    met = reasons(principal, organization=("port_id",), region="port__region__path")
    return await paging.page(query, LATEST_ARRIVAL, limit=limit, cursor=cursor, reasons=met)
