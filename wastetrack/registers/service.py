"""Registers (台账) of one organization over a period of city days: what entered its custody
(入库), what left it (出库), what it holds at the end (库存, with the opening + in - out =
closing balance per waste category), and the medical-waste handover register (医疗废物交接登记).

Custody is read from the event log, one rule per event type (`HOLDER_RULES`): the holder an event
leaves the batch with, as the custody service sets it. An organization holds a batch from the
event that makes it the holder of a live batch until the event that makes someone else the
holder or ends the batch's life (treated, aggregated into a container). Mass, fate and
cancellation are the roll-up facts' (`batch_fact`, docs/metrics.md §2–4): one mass per batch,
after corrections; a cancelled batch is in no register. Movement times are device times made
monotonic per batch (a phone with a late clock cannot take a batch out before it came in)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise import connections

from wastetrack.calendar.service import day_start
from wastetrack.core.errors import NotFound
from wastetrack.core.principal import Principal
from wastetrack.core.timefmt import local_date, local_time
from wastetrack.custody.rules import FINAL_STATES, SPECS, EventType, Holder, State
from wastetrack.registry import access
from wastetrack.registry.models import Organization, Site

MEDICAL_STREAM = "medical"
# `how` of a remainder batch coming back to the deliverer (docs/metrics.md §3).
REFUSED_REMAINDER = "refused_remainder"
# 《医疗废物管理条例》第十二条: 医疗废物登记资料至少保存3年. The custody log that every register
# reads is append-only (migration 0017's trigger refuses UPDATE and DELETE), so nothing is ever
# removed; each handover row states the day until which it must be kept.
MEDICAL_HANDOVER_RETENTION_YEARS = 3

# Which organization an event leaves as the batch's holder (None: the holder is unchanged), as
# the custody spec's `holder` effect says and the custody service sets batches.holder_id. SQL
# over custody_event e, its batch b and, for a correction, the event it corrects t. A
# remainder's tagging (the refused part of a partial acceptance) leaves it with whoever
# delivered the original: see _REMAINDER_HOLDER.
_HOLDER_SQL: dict[Holder, str] = {
    Holder.producer: "CASE WHEN b.split_from_id IS NULL THEN b.producer_id END",
    Holder.actor: "e.organization_id",
    Holder.receiver: "e.to_organization_id",
}
# Holder.acceptor: a receipt's receiver holds an accepted batch, and a receipt's outcome
# corrected to an acceptance makes its receiver the holder.
_ACCEPTOR: dict[EventType, str] = {
    EventType.received: f"CASE WHEN e.state_after = '{State.received}' THEN e.organization_id END",
    EventType.corrected: (
        f"CASE WHEN t.event_type = '{EventType.received}' AND e.state_after = '{State.received}'"
        " AND e.details->'corrected' ? 'outcome' THEN t.organization_id END"
    ),
}
HOLDER_RULES: dict[EventType, str] = {
    event: _ACCEPTOR[event] if spec.holder == Holder.acceptor else _HOLDER_SQL[spec.holder]
    for event, spec in SPECS.items()
    if spec.holder != Holder.unchanged
}
_HOLDER_CASE = (
    "CASE e.event_type "
    + " ".join(f"WHEN '{event}' THEN {sql}" for event, sql in HOLDER_RULES.items())
    + " END"
)
_ENDED = ", ".join(f"'{state}'" for state in sorted(FINAL_STATES))

# $1 the organization, $2 the end of the period (exclusive, UTC). Every movement of a batch
# that ever passed through the organization: `custodian` holds it after the event, `before`
# held it before (NULL: nobody — tagged, treated, aggregated).
_MOVEMENTS = f"""
WITH seen AS (
    SELECT batch_id AS id FROM custody_event WHERE organization_id = $1 OR to_organization_id = $1
    UNION SELECT id FROM batch WHERE producer_id = $1 OR holder_id = $1
),
scope AS (
    SELECT id FROM seen
    UNION SELECT b.id FROM batch b JOIN seen s ON b.split_from_id = s.id
    UNION SELECT b.split_from_id FROM batch b JOIN seen s ON b.id = s.id
        WHERE b.split_from_id IS NOT NULL
),
ev AS (
    SELECT e.batch_id, e.seq, e.event_type, e.state_after, e.actor_id, e.details,
           e.organization_id AS actor_org, e.to_organization_id, e.related_batch_id,
           CASE WHEN e.event_type = '{EventType.tagged}' THEN b.tagged_at ELSE e.device_time END
               AS at,
           {_HOLDER_CASE} AS sets
    FROM custody_event e JOIN batch b ON b.id = e.batch_id
    LEFT JOIN custody_event t ON t.batch_id = e.batch_id AND t.id = e.corrects_id
    WHERE e.batch_id IN (SELECT id FROM scope)
),
first_pass AS (
    SELECT ev.*, max(sets) OVER (PARTITION BY batch_id, grp) AS holder
    FROM (SELECT ev.*, count(sets) OVER (PARTITION BY batch_id ORDER BY seq) AS grp FROM ev) ev
),
-- _REMAINDER_HOLDER: a remainder starts with whoever held the original before the event that
-- split it off (the deliverer), else the original's producer.
remainder_holder AS (
    SELECT DISTINCT ON (r.id) r.id AS batch_id, COALESCE(p.holder, r.producer_id) AS holder
    FROM batch r
    JOIN first_pass x ON x.batch_id = r.split_from_id AND x.details->>'remainder' = r.code
    LEFT JOIN first_pass p ON p.batch_id = x.batch_id AND p.seq = x.seq - 1
    WHERE r.id IN (SELECT id FROM scope)
    ORDER BY r.id, x.seq
),
settled AS (
    SELECT ev.*, COALESCE(ev.sets, rh.holder) AS sets2
    FROM ev LEFT JOIN remainder_holder rh
        ON ev.event_type = '{EventType.tagged}' AND rh.batch_id = ev.batch_id
),
held AS (
    SELECT s.*, max(sets2) OVER (PARTITION BY batch_id, grp) AS holder
    FROM (SELECT s.*, count(sets2) OVER (PARTITION BY batch_id ORDER BY seq) AS grp
          FROM settled s) s
),
steps AS (
    SELECT h.*,
           CASE WHEN h.state_after NOT IN ({_ENDED}) THEN h.holder END AS custodian,
           max(h.at) OVER (PARTITION BY batch_id ORDER BY seq) AS moved_at
    FROM held h
),
moves AS (
    SELECT s.*, lag(custodian) OVER (PARTITION BY batch_id ORDER BY seq) AS before FROM steps s
)
SELECT m.batch_id, m.seq, m.event_type, m.moved_at, m.custodian, m.before, m.actor_id,
       m.actor_org, m.to_organization_id, rel.code AS related_code,
       b.code, b.stream_id, b.category_id, c.code AS category_code, c.name_zh AS category_name,
       COALESCE(c.storage_limit_hours, pc.storage_limit_hours) AS storage_limit_hours,
       b.waste_code, b.identifier, b.quantity, b.unit, b.producer_id, b.origin_site_id,
       b.carrier_id,
       b.destination_id, b.split_from_id, f.mass_kg, f.estimated, f.fate, f.mode
FROM moves m
JOIN batch b ON b.id = m.batch_id
JOIN waste_category c ON c.key = b.category_id
LEFT JOIN waste_category pc ON pc.key = c.parent_key
LEFT JOIN batch_fact f ON f.batch_id = b.id
LEFT JOIN batch rel ON rel.id = m.related_batch_id
WHERE m.custodian IS DISTINCT FROM m.before
  AND (m.custodian = $1 OR m.before = $1)
  AND m.moved_at < $2
  AND COALESCE(f.fate, '') <> 'cancelled'
ORDER BY m.moved_at, m.batch_id, m.seq
"""

# Per handover (batch, seq, giving and receiving organization): the user of each side who
# recorded the nearest event on the batch, at or before the handover (giving side) and at or
# after it (receiving side).
_SIDES = """
SELECT k.i, g.username AS giver_username, g.full_name AS giver_full_name,
       r.username AS receiver_username, r.full_name AS receiver_full_name
FROM unnest($1::int[], $2::int[], $3::int[], $4::int[])
    WITH ORDINALITY AS k(batch_id, seq, giver, receiver, i)
LEFT JOIN LATERAL (
    SELECT u.username, u.full_name FROM custody_event e JOIN app_user u ON u.id = e.actor_id
    WHERE e.batch_id = k.batch_id AND e.seq <= k.seq AND e.organization_id = k.giver
    ORDER BY e.seq DESC LIMIT 1
) g ON TRUE
LEFT JOIN LATERAL (
    SELECT u.username, u.full_name FROM custody_event e JOIN app_user u ON u.id = e.actor_id
    WHERE e.batch_id = k.batch_id AND e.seq >= k.seq AND e.organization_id = k.receiver
    ORDER BY e.seq LIMIT 1
) r ON TRUE
ORDER BY k.i
"""


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose register, and which of its sites (the producer's origin site of the batches)."""

    organization: Organization
    site: Site | None = None


async def scope_for(
    *, principal: Principal, organization_id: int | None, site_id: int | None
) -> Scope:
    """The organization (default: the user's own) and site whose registers the user may read:
    members their own, managers and auditors those of their region subtree, admins any; any
    other organization is not found."""
    org = await access.readable_organization(
        principal, organization_id or principal.organization_id
    )
    site = None
    if site_id is not None:
        site = await Site.get_or_none(id=site_id, organization_id=org.id)
        if site is None:
            raise NotFound(f"organization {org.id} has no site {site_id}", field="site_id")
    return Scope(organization=org, site=site)


def _bounds(date_from: date, date_to: date, timezone: str) -> tuple[datetime, datetime]:
    return (
        day_start(date_from, timezone=timezone),
        day_start(date_to + timedelta(days=1), timezone=timezone),
    )


async def _movements(scope: Scope, *, until: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
        _MOVEMENTS, [scope.organization.id, until]
    )
    if scope.site is not None:
        rows = [r for r in rows if r["origin_site_id"] == scope.site.id]
    return rows


async def _names(rows: list[dict[str, Any]], *columns: str) -> dict[int, str]:
    ids = {r[c] for r in rows for c in columns if r.get(c) is not None}
    found = await Organization.filter(id__in=ids).values_list("id", "name")
    return {int(i): str(n) for i, n in found}  # type: ignore[misc]


def _party(names: dict[int, str], org_id: int | None) -> dict[str, Any] | None:
    return None if org_id is None else {"id": org_id, "name": names.get(org_id, "")}


def _batch(row: dict[str, Any]) -> dict[str, Any]:
    """The columns every register gives of a batch."""
    return {
        "code": row["code"],
        "stream": row["stream_id"],
        "category": row["category_id"],
        "category_name": row["category_name"],
        "waste_code": row["waste_code"] or row["category_code"],
        "identifier": row["identifier"],  # HJ 1276-2022 数字识别码, hazardous waste only
        "quantity": Decimal(row["quantity"]),
        "unit": row["unit"],
        "mass_kg": Decimal(row["mass_kg"]) if row["mass_kg"] is not None else None,
        "estimated": bool(row["estimated"]),
        "site_id": row["origin_site_id"],
    }


def _at(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def incoming(
    *, scope: Scope, date_from: date, date_to: date, timezone: str
) -> list[dict[str, Any]]:
    """入库: each batch that came into the organization's custody in the period — produced
    (tagged) by it, handed over to it, collected, carried, stored or received by it."""
    start, end = _bounds(date_from, date_to, timezone)
    org = scope.organization.id
    rows = [
        r
        for r in await _movements(scope, until=end)
        if r["custodian"] == org and _at(r["moved_at"]) >= start
    ]
    names = await _names(rows, "before", "actor_org", "carrier_id")
    return [
        {
            "time": _at(r["moved_at"]),
            **_batch(r),
            **_arrival(r, names),
            "carrier": _party(names, r["carrier_id"]),
        }
        for r in rows
    ]


def _arrival(row: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """How a batch came in, and from whom: the refused part of a partial acceptance comes
    back from the receiver that refused it."""
    if row["event_type"] == EventType.tagged and row["split_from_id"] is not None:
        return {"how": REFUSED_REMAINDER, "from_organization": _party(names, row["actor_org"])}
    return {"how": row["event_type"], "from_organization": _party(names, row["before"])}


async def outgoing(
    *, scope: Scope, date_from: date, date_to: date, timezone: str
) -> list[dict[str, Any]]:
    """出库: each batch that left the organization's custody in the period — handed on (to
    whom), put into a container, or treated by it (fate and mode as the roll-ups settle them)."""
    start, end = _bounds(date_from, date_to, timezone)
    org = scope.organization.id
    rows = [
        r
        for r in await _movements(scope, until=end)
        if r["before"] == org and _at(r["moved_at"]) >= start
    ]
    names = await _names(rows, "custodian", "actor_org", "carrier_id")
    out = []
    for r in rows:
        receiver = r["custodian"]
        if receiver is None and r["actor_org"] != org:
            receiver = r["actor_org"]  # put into another organization's container
        out.append(
            {
                "time": _at(r["moved_at"]),
                **_batch(r),
                "how": r["event_type"],
                "to_organization": _party(names, receiver),
                "into": r["related_code"] if r["event_type"] == EventType.aggregated else None,
                "carrier": _party(names, r["carrier_id"]),
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
    storage limit, and per waste category opening + in - out = closing (batches and kg)."""
    start, end = _bounds(date_from, date_to, timezone)
    as_of = min(end, now or datetime.now(UTC))
    org = scope.organization.id
    rows = await _movements(scope, until=end)
    holding: dict[int, dict[str, Any]] = {}
    opening: dict[int, dict[str, Any]] | None = None
    zero = {"batches": 0, "kg": Decimal(0)}
    balance: dict[str, dict[str, Any]] = defaultdict(
        lambda: {key: dict(zero) for key in ("opening", "incoming", "outgoing", "closing")}
    )
    categories: dict[str, str] = {}

    def add(part: str, row: dict[str, Any]) -> None:
        cell = balance[row["category_id"]][part]
        cell["batches"] += 1
        cell["kg"] += Decimal(row["mass_kg"] or 0)
        categories[row["category_id"]] = row["category_name"]

    for r in rows:
        in_period = _at(r["moved_at"]) >= start
        if in_period and opening is None:
            opening = dict(holding)
        if r["custodian"] == org:
            holding[r["batch_id"]] = r
        else:
            holding.pop(r["batch_id"], None)
        if in_period:
            add("incoming" if r["custodian"] == org else "outgoing", r)
    for r in (holding if opening is None else opening).values():
        add("opening", r)
    for r in holding.values():
        add("closing", r)
    names = await _names(list(holding.values()), "producer_id", "carrier_id")
    batches = []
    for r in sorted(holding.values(), key=lambda r: (r["moved_at"], r["batch_id"])):
        since = _at(r["moved_at"])
        stored = as_of - since
        limit = r["storage_limit_hours"]
        batches.append(
            {
                "since": since,
                **_batch(r),
                "producer": _party(names, r["producer_id"]),
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


async def medical_handovers(
    *, scope: Scope, date_from: date, date_to: date, timezone: str
) -> list[dict[str, Any]]:
    """医疗废物交接登记: each medical-waste batch the organization handed to, or took from,
    another organization in the period — source, type, weight, time, carrier, treatment,
    destination, and the user who recorded it on each side (none yet: not confirmed)."""
    start, end = _bounds(date_from, date_to, timezone)
    org = scope.organization.id
    handovers = []
    for r in await _movements(scope, until=end):
        if r["stream_id"] != MEDICAL_STREAM or _at(r["moved_at"]) < start:
            continue
        giver = r["before"]
        receiver = r["custodian"]
        if receiver is None and r["event_type"] == EventType.aggregated:
            receiver = r["actor_org"]
        if giver is None or receiver is None or giver == receiver:
            continue
        handovers.append((r, giver, receiver))
    names = await _names(
        [
            {"g": g, "r": rv, "p": r["producer_id"], "c": r["carrier_id"], "d": r["destination_id"]}
            for r, g, rv in handovers
        ],
        "g",
        "r",
        "p",
        "c",
        "d",
    )
    sides = await connections.get("default").execute_query_dict(
        _SIDES,
        [
            [r["batch_id"] for r, _, _ in handovers],
            [r["seq"] for r, _, _ in handovers],
            [g for _, g, _ in handovers],
            [rv for _, _, rv in handovers],
        ],
    )
    out = []
    for (r, giver, receiver), side in zip(handovers, sides, strict=True):
        moved = _at(r["moved_at"])
        out.append(
            {
                "time": moved,
                "local_time": local_time(moved, timezone),
                **_batch(r),
                "source": _party(names, r["producer_id"]),
                "handed_by_organization": _party(names, giver),
                "handed_by": _recorder(side, "giver"),
                "received_by_organization": _party(names, receiver),
                "received_by": _recorder(side, "receiver"),
                "how": r["event_type"],
                "carrier": _party(names, r["carrier_id"]),
                "treatment_mode": r["mode"] or None,
                "fate": r["fate"],
                "destination": _party(names, r["destination_id"]),
                "keep_until": _years_after(
                    local_date(moved, timezone), MEDICAL_HANDOVER_RETENTION_YEARS
                ),
                "direction": "out" if giver == org else "in",
            }
        )
    return out


def _recorder(side: dict[str, Any], who: str) -> dict[str, Any] | None:
    if side[f"{who}_username"] is None:
        return None
    return {"username": side[f"{who}_username"], "full_name": side[f"{who}_full_name"]}


def _years_after(day: date, years: int) -> date:
    if (day.month, day.day) == (2, 29):
        return date(day.year + years, 3, 1)
    return day.replace(year=day.year + years)
