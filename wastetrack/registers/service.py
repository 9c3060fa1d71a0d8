"""Registers (台账) of one organization over a period of city days: what entered its custody
(入库), what left it (出库), and what it holds at the end (库存, with the opening + in - out =
closing balance per waste category). All read the organization's movements
(wastetrack.registers.movements); the medical-waste handover register (医疗废物交接登记) is
wastetrack.registers.handovers."""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from wastetrack.core.metrics import period_bounds
from wastetrack.custody.rules import EventType
from wastetrack.registers.movements import (
    REFUSED_REMAINDER,
    Scope,
    aware,
    batch_columns,
    giver,
    is_refused_part,
    movements,
    organization_names,
    party,
)


async def incoming(
    *, scope: Scope, date_from: date, date_to: date, timezone: str
) -> list[dict[str, Any]]:
    """入库: each batch that came into the organization's custody in the period — produced
    (tagged) by it, handed over to it, collected, carried, stored or received by it."""
    start, end = period_bounds(date_from, date_to, timezone)
    org = scope.organization.id
    rows = [
        r
        for r in await movements(scope, until=end)
        if r["custodian"] == org and aware(r["moved_at"]) >= start
    ]
    names = await organization_names(rows, "before", "refused_by", "carrier_id")
    return [
        {
            "time": aware(r["moved_at"]),
            **batch_columns(r),
            **_arrival(r, names),
            "carrier": party(names, r["carrier_id"]),
        }
        for r in rows
    ]


def _arrival(row: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """How a batch came in, and from whom: the refused part of a partial acceptance comes
    back from the receiver that refused it (`movements.giver`)."""
    how = REFUSED_REMAINDER if is_refused_part(row) else row["event_type"]
    return {"how": how, "from_organization": party(names, giver(row))}


async def outgoing(
    *, scope: Scope, date_from: date, date_to: date, timezone: str
) -> list[dict[str, Any]]:
    """出库: each batch that left the organization's custody in the period — handed on (to
    whom), put into a container, or treated by it (fate and mode as the roll-ups settle them)."""
    start, end = period_bounds(date_from, date_to, timezone)
    org = scope.organization.id
    rows = [
        r
        for r in await movements(scope, until=end)
        if r["before"] == org and aware(r["moved_at"]) >= start
    ]
    names = await organization_names(rows, "custodian", "actor_org", "carrier_id")
    out = []
    for r in rows:
        receiver = r["custodian"]
        if receiver is None and r["actor_org"] != org:
            receiver = r["actor_org"]  # put into another organization's container
        out.append(
            {
                "time": aware(r["moved_at"]),
                **batch_columns(r),
                "how": r["event_type"],
                "to_organization": party(names, receiver),
                "into": r["related_code"] if r["event_type"] == EventType.aggregated else None,
                "carrier": party(names, r["carrier_id"]),
                "fate": r["fate"],
                "treatment_mode": r["mode"] or None,
            }
        )
    return out


async def inventory(
    *, scope: Scope, date_from: date, date_to: date, timezone: str, now: datetime | None = None
) -> dict[str, Any]:
    """库存: the batches in the organization's custody at the end of the period (not handed
    on, treated or put into a container), with their storage days against the category's
    storage limit, and per waste category opening + in - out = closing (batches, kg, and the
    batches whose mass is not known, whose kg are in no sum).
    Storage starts when the waste came into the organization's hands: a container's when the
    first of the batches put into it did (down through containers of containers), not when the
    empty box was tagged (`movements.tagging_clock`, which the overdue-storage alert reads too),
    so packing old bags does not restart the clock."""
    start, end = period_bounds(date_from, date_to, timezone)
    as_of = min(end, now or datetime.now(UTC))
    org = scope.organization.id
    site = scope.site.id if scope.site is not None else None
    # The clocks are the organization's, whatever site is asked for: a box at one site filled
    # with bags of another starts when they did.
    rows = await movements(Scope(organization=scope.organization), until=end)
    holding: dict[int, dict[str, Any]] = {}
    opening: dict[int, dict[str, Any]] | None = None
    zero = {"batches": 0, "kg": Decimal(0), "without_mass": 0}
    balance: dict[str, dict[str, Any]] = defaultdict(
        lambda: {key: dict(zero) for key in ("opening", "incoming", "outgoing", "closing")}
    )
    categories: dict[str, str] = {}
    # When each batch held began to count as stored: None while a container the organization
    # tagged waits for the first of its batches (`clock_at`). Over every batch the organization
    # holds (`held`, any site); a bag packed into a box whose tagging comes later in the log (a
    # phone's clock a few minutes behind another's) leaves its clock for the box (`packed`).
    clock: dict[int, datetime | None] = {}
    held: set[int] = set()
    packed: dict[int, datetime | None] = {}

    def add(part: str, row: dict[str, Any]) -> None:
        cell = balance[row["category_id"]][part]
        cell["batches"] += 1
        if row["mass_kg"] is None:
            cell["without_mass"] += 1
        else:
            cell["kg"] += Decimal(row["mass_kg"])
        categories[row["category_id"]] = row["category_name"]

    for r in rows:
        if org not in (r["custodian"], r["before"]):
            continue  # a refused part it gave back: never in its custody
        batch = r["batch_id"]
        if r["custodian"] == org:
            held.add(batch)
            # A container back with its producer keeps the clock its batches gave it.
            kept = packed.pop(batch, clock.get(batch))
            clock[batch] = aware(r["clock_at"]) if r["clock_at"] else kept
        elif batch in held:
            held.discard(batch)
            # An aggregation in effect: one a correction undid is no movement at all
            # (`custody.aggregations.aggregation_undone`), so the container never takes the
            # bag's clock.
            container = r["related_batch_id"] if r["event_type"] == EventType.aggregated else None
            if container is not None:
                known = clock.get(container) if container in held else packed.get(container)
                started = (known, clock.get(batch))
                earliest = min((c for c in started if c is not None), default=None)
                if container in held:
                    clock[container] = earliest
                else:
                    packed[container] = earliest
        if site is not None and r["origin_site_id"] != site:
            continue  # counted for the clocks only
        in_period = aware(r["moved_at"]) >= start
        if in_period and opening is None:
            opening = dict(holding)
        if r["custodian"] == org:
            holding[batch] = r
        else:
            holding.pop(batch, None)
        if in_period:
            add("incoming" if r["custodian"] == org else "outgoing", r)
    for r in (holding if opening is None else opening).values():
        add("opening", r)
    for r in holding.values():
        add("closing", r)
    # A container whose batches were put in after the period (or by another organization)
    # held nothing of this one's yet: its own tagging is all there is to count from.
    since = {b: clock[b] or aware(r["moved_at"]) for b, r in holding.items()}
    names = await organization_names(list(holding.values()), "producer_id", "carrier_id")
    batches = []
    for r in sorted(holding.values(), key=lambda r: (since[r["batch_id"]], r["batch_id"])):
        stored = as_of - since[r["batch_id"]]
        limit = r["storage_limit_hours"]
        batches.append(
            {
                "since": since[r["batch_id"]],
                **batch_columns(r),
                "producer": party(names, r["producer_id"]),
                "storage_days": max(stored.days, 0),
                "storage_limit_hours": limit,
                "overdue": limit is not None and stored > timedelta(hours=limit),
            }
        )
    return {
        "as_of": as_of,
        "batches": batches,
        "balance": [
            {"category": key, "category_name": categories[key], **balance[key]}
            for key in sorted(balance)
        ],
    }
