"""The movements every register reads: each change of custody of a batch that ever passed
through an organization, from the event log, and whose register it is (the scope).

Custody is read one rule per event type (`HOLDER_RULES`): the holder an event leaves the batch
with, as the custody service sets it. An organization holds a batch from the event that makes it
the holder of a live batch until the event that makes someone else the holder or ends the
batch's life (treated, aggregated into a container; an aggregation a correction undid is no
step at all, `aggregation_undone`). Mass, fate and cancellation are the
roll-up facts' (`batch_fact`, docs/metrics.md §2–4): one mass per batch, after corrections, or
none where it is not known (items of a category without a unit mass); a cancelled batch is in
no register. Movement times are device times made monotonic over the
batch's movements (a phone with a late clock cannot take a batch out before it came in; an event
that moves nothing, a correction say, moves no time)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tortoise import connections

from wastetrack.catalog.service import FINAL_MODES
from wastetrack.core.errors import NotFound
from wastetrack.core.principal import Principal
from wastetrack.custody.aggregations import aggregation_undone
from wastetrack.custody.corrected import corrected_field
from wastetrack.custody.rules import (
    FINAL_STATES,
    SPECS,
    Carrier,
    EventType,
    Holder,
    Outcome,
)
from wastetrack.registry import access
from wastetrack.registry.models import MEDICAL_KINDS, Organization, OrganizationKind, Site
from wastetrack.rollups.facts import Fate

# Which organization an event leaves as the batch's holder (None: the holder is unchanged), as
# the custody spec's `holder` effect says and the custody service sets batches.holder_id. SQL
# over custody_event e, its batch b and, for a correction, the event it corrects t. A
# remainder's tagging (the refused part of a partial acceptance) leaves it with whoever
# delivered the original: see `remainder_origin`.
_HOLDER_SQL: dict[Holder, str] = {
    Holder.producer: "CASE WHEN b.split_from_id IS NULL THEN b.producer_id END",
    Holder.actor: "e.organization_id",
    Holder.receiver: "e.to_organization_id",
}
# Holder.acceptor: a receipt leaves the batch as its outcome after corrections says (`oc`):
# with its receiver when it took the waste in, else back with whoever delivered it
# (`delivered_by` in the receipt's details, or in the details of the correction that rejected
# it; receipts recorded before they kept it leave the holder unchanged). A corrected outcome is
# the receipt's own, at the receipt's time, as an undone aggregation never happened: the
# correction itself moves nothing (a rejection corrected into an acceptance enters the
# receiver's register when the waste arrived; an acceptance corrected into a rejection was
# never the receiver's to hold). An outcome may only be corrected so while the receipt is the
# batch's latest step (custody.corrections), so no movement lies between.
_ACCEPTOR: dict[EventType, str] = {
    EventType.received: (
        f"CASE WHEN oc.outcome = '{Outcome.rejected}'"
        " THEN COALESCE((e.details->>'delivered_by')::int, oc.delivered_by)"
        " ELSE e.organization_id END"
    ),
    EventType.corrected: "NULL",
}
# A receipt's outcome after its corrections, and the deliverer the latest of its corrections
# that rejected it recorded (for a receipt recorded before receipts kept it), joined as `oc`
# on the receipt `e`.
_OUTCOME_CORRECTED = f"""LEFT JOIN LATERAL (
        SELECT {corrected_field("e", "outcome", "outcome")} AS outcome,
               (SELECT (c.details->>'delivered_by')::int FROM custody_event c
                WHERE c.batch_id = e.batch_id AND c.corrects_id = e.id
                  AND c.details ? 'delivered_by'
                ORDER BY c.seq DESC LIMIT 1) AS delivered_by
        WHERE e.event_type = '{EventType.received}'
    ) oc ON true"""
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

# The carrier each event leaves the batch with, as the custody spec's `carrier` effect says and
# the custody service sets batches.carrier_id (so a register names the carrier of each
# movement, not the batch's latest one). SQL over e, b and the organization the event hands the
# batch to (o). `CARRIER_SETS` set it outright; `CARRIER_IF_NONE` only while the batch has no
# carrier yet (nothing ever clears one). A tagging's is the carrier it stated (its details'
# `carrier`, where recorded), else the tagger unless it is the producer; a remainder's is the
# original's at the event that split it off (`remainder_origin`).
_CARRIER_SQL: dict[Carrier, str] = {
    Carrier.actor: "e.organization_id",
    Carrier.receiver_if_carrier: (
        f"CASE WHEN o.kind = '{OrganizationKind.carrier}' THEN e.to_organization_id END"
    ),
}
CARRIER_SETS: dict[EventType, str] = {
    event: _CARRIER_SQL[spec.carrier]
    for event, spec in SPECS.items()
    if spec.carrier in _CARRIER_SQL
}
CARRIER_IF_NONE: dict[EventType, str] = {
    event: "CASE WHEN e.organization_id <> b.producer_id THEN e.organization_id END"
    for event, spec in SPECS.items()
    if spec.carrier == Carrier.actor_if_none
}
assert {spec.carrier for spec in SPECS.values()} <= {
    Carrier.unchanged,
    Carrier.stated,
    Carrier.actor_if_none,
    *_CARRIER_SQL,
}, "a carrier effect the registers do not read"


def _case(rules: dict[EventType, str]) -> str:
    return (
        "CASE e.event_type "
        + " ".join(f"WHEN '{event}' THEN {sql}" for event, sql in rules.items())
        + " END"
    )


_ENDED = ", ".join(f"'{state}'" for state in sorted(FINAL_STATES))
# Whether the event ends its holder's custody: it leaves the batch in a final state (treated,
# aggregated, cancelled) — a treatment as its method after corrections says (a final mode
# treats, pending storage keeps the batch with the facility; a method the catalogue no longer
# lists, as the event recorded it), as custody.corrections sets the state.
_FINAL_MODES = ", ".join(f"'{mode}'" for mode in sorted(FINAL_MODES))
_ENDS_CUSTODY = (
    f"CASE WHEN e.event_type = '{EventType.treated}' THEN COALESCE("
    f"(SELECT m.mode IN ({_FINAL_MODES})"
    f" FROM treatment_method m WHERE m.code = {corrected_field('e', 'method', 'method_id')}),"
    f" e.state_after IN ({_ENDED}))"
    f" ELSE e.state_after IN ({_ENDED}) END"
)
_TAGGED = f"'{EventType.tagged}'"


def _fold(source: str) -> str:
    """Who holds the batch and who is its carrier after each event of `source` (columns
    `sets`, `c_set`, `c_soft`): the latest organization an event set, a carrier-if-none only
    while no carrier was set before it."""
    return f"""
    SELECT f.*, max(f.sets) OVER (PARTITION BY f.batch_id, f.grp) AS holder,
           max(f.c_eff) OVER (PARTITION BY f.batch_id, f.cgrp) AS carrier
    FROM (
        SELECT f.*, count(f.sets) OVER w AS grp, count(f.c_eff) OVER w AS cgrp
        FROM (
            SELECT s.*, COALESCE(s.c_set, CASE WHEN count(COALESCE(s.c_set, s.c_soft)) OVER (
                       PARTITION BY s.batch_id ORDER BY s.seq
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) = 0
                   THEN s.c_soft END) AS c_eff
            FROM {source} s
        ) f
        WINDOW w AS (PARTITION BY f.batch_id ORDER BY f.seq)
    ) f"""


def _moves(scope: str) -> str:
    """The CTEs up to `moves`: each event of the batches of `scope` (a CTE listing their ids,
    with what it needs) with `custodian`, the organization holding the batch after it, `before`,
    the one holding it before (NULL: nobody — tagged, treated, aggregated), `carrier`, the
    batch's carrier after it, and for a remainder's tagging the refused-part origin
    (`refused_by`, `refused_actor`: see `remainder_origin`)."""
    return f"""
WITH RECURSIVE {scope},
ev0 AS (
    SELECT e.batch_id, e.seq, e.event_type, e.state_after, e.actor_id, e.details, e.corrects_id,
           e.organization_id AS actor_org, e.to_organization_id, e.related_batch_id,
           CASE WHEN e.event_type = {_TAGGED} THEN b.tagged_at
                -- a receipt's correction (which may split off a refused part) at its time
                WHEN t.event_type = '{EventType.received}' THEN t.device_time
                ELSE e.device_time END AS at,
           {_HOLDER_CASE} AS sets,
           {_case(CARRIER_SETS)} AS c_hard,
           {_case(CARRIER_IF_NONE)} AS c_soft,
           (e.event_type = {_TAGGED} AND b.split_from_id IS NULL) AS original_tagging,
           CASE WHEN e.organization_id <> b.producer_id THEN e.organization_id END AS tagger,
           b.carrier_id AS latest_carrier,
           {aggregation_undone("e")} AS undone,
           {_ENDS_CUSTODY} AS ends
    FROM custody_event e JOIN batch b ON b.id = e.batch_id
    LEFT JOIN custody_event t ON t.batch_id = e.batch_id AND t.id = e.corrects_id
    LEFT JOIN organization o ON o.id = e.to_organization_id
    {_OUTCOME_CORRECTED}
    WHERE e.batch_id IN (SELECT id FROM scope)
),
-- A tagging's carrier: the one it recorded. Recorded before taggings kept it: the collector,
-- when another organization than the producer collected the batch (only its carrier may: a
-- tagged batch is still with its producer); else the batch's carrier when no later event set
-- another; else the tagger unless it is the producer (a carrier it stated is not in the log).
ev AS (
    SELECT ev0.*,
           CASE WHEN NOT original_tagging THEN c_hard
                WHEN details ? 'carrier' THEN (details->>'carrier')::int
                ELSE COALESCE(
                    max(c_soft) OVER (PARTITION BY batch_id),
                    CASE WHEN bool_or(c_hard IS NOT NULL) OVER (
                             PARTITION BY batch_id ORDER BY seq
                             ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) THEN tagger
                         ELSE latest_carrier END
                ) END AS c_set
    FROM ev0
),
first_pass AS ({_fold("ev")}),
{REMAINDER_ORIGIN},
settled AS (
    SELECT ev.batch_id, ev.seq, ev.event_type, ev.state_after, ev.actor_id, ev.details,
           ev.actor_org, ev.to_organization_id, ev.related_batch_id, ev.c_soft, ev.undone,
           ev.ends,
           COALESCE(ev.sets, ro.holder) AS sets, COALESCE(ro.carrier, ev.c_set) AS c_set,
           COALESCE(ro.split_at, ev.at) AS at, ro.refused_by, ro.refused_actor
    FROM ev LEFT JOIN remainder_origin ro
        ON ev.event_type = {_TAGGED} AND ro.batch_id = ev.batch_id
),
held AS ({_fold("settled")}),
-- An undone aggregation leaves the child with its holder (`aggregation_undone`). A correction
-- moves nothing: the batch stays with whoever held it after the step before it (what it
-- corrects is read into the step it corrects: `_ENDS_CUSTODY`, `_ACCEPTOR`).
own_steps AS (
    SELECT h.*, CASE WHEN NOT h.ends OR h.undone THEN h.holder END AS own_custodian,
           count(*) FILTER (WHERE h.event_type <> '{EventType.corrected}')
               OVER (PARTITION BY h.batch_id ORDER BY h.seq) AS step_no
    FROM held h
),
steps AS (
    SELECT o.*, max(o.own_custodian) FILTER (WHERE o.event_type <> '{EventType.corrected}')
               OVER (PARTITION BY o.batch_id, o.step_no) AS custodian
    FROM own_steps o
),
changes AS (
    SELECT s.*, lag(custodian) OVER (PARTITION BY batch_id ORDER BY seq) AS before FROM steps s
),
-- A movement's time: never before an earlier movement of the batch. Only movements count: a
-- correction (or any event that moves nothing) dated later does not push a movement synced
-- after it to its time.
moves AS (
    SELECT c.*, max(CASE WHEN c.custodian IS DISTINCT FROM c.before THEN c.at END)
               OVER (PARTITION BY batch_id ORDER BY seq) AS moved_at
    FROM changes c
)"""


# The refused-part origin, one rule for every register: a remainder (the refused part of a partial
# acceptance) starts, at the time of the event that split it off, never before an earlier movement
# of the original (its tagging keeps the original's time for the cohort), in the hands of whoever
# delivered the original, as custody chose (custody.remainders.deliverer) and the receipt recorded
# it (`delivered_by`; for a correction, the corrected receipt's); for a receipt recorded before
# receipts kept it, the same rule read from the log: the holder before the split, unless it is the
# receiver, else the carrier then, else the producer. It is given back by the receipt's receiver
# (`refused_by`, never the organization of a manager correcting the receipt), whose user recorded
# the receipt (`refused_actor`); its carrier is the original's then.
REMAINDER_ORIGIN = f"""
remainder_origin AS (
    SELECT DISTINCT ON (r.id) r.id AS batch_id,
           COALESCE(
               (x.details->>'delivered_by')::int,
               (t.details->>'delivered_by')::int,
               CASE WHEN p.holder <> rcv.org THEN p.holder END,
               CASE WHEN p.carrier <> rcv.org THEN p.carrier END,
               r.producer_id
           ) AS holder,
           x.carrier, GREATEST(x.at, came.at) AS split_at, rcv.org AS refused_by,
           rcv.actor AS refused_actor
    FROM batch r
    JOIN first_pass x ON x.batch_id = r.split_from_id AND x.details->>'remainder' = r.code
    -- As any movement of the original, never before an earlier one (a receiving phone behind
    -- the carrier's does not send the part back before the carrier took the batch).
    CROSS JOIN LATERAL (
        SELECT max(f.at) AS at FROM (
            SELECT f.at, f.seq, f.holder IS DISTINCT FROM lag(f.holder) OVER (ORDER BY f.seq)
                       AS moved
            FROM first_pass f WHERE f.batch_id = x.batch_id
        ) f WHERE f.seq < x.seq AND f.moved
    ) came
    LEFT JOIN custody_event t ON t.batch_id = x.batch_id AND t.id = x.corrects_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN x.event_type = '{EventType.corrected}' THEN t.organization_id
                    ELSE x.actor_org END AS org,
               CASE WHEN x.event_type = '{EventType.corrected}' THEN t.actor_id
                    ELSE x.actor_id END AS actor
    ) rcv
    LEFT JOIN first_pass p ON p.batch_id = x.batch_id AND p.seq = x.seq - 1
    WHERE r.id IN (SELECT id FROM scope)
    ORDER BY r.id, x.seq
)"""


def storage_limit_hours(category: str) -> str:
    """SQL: the storage limit in hours of the waste_category row `category` — its own, else its
    parent's (a sub-category the catalogue gives no limit keeps its class's, 医疗废物 48 h). The
    one reading of the limit: the inventory's `overdue` and the overdue_storage alert."""
    return (
        f"COALESCE({category}.storage_limit_hours, (SELECT p.storage_limit_hours"
        f" FROM waste_category p WHERE p.key = {category}.parent_key))"
    )


def tagging_clock(batch: str) -> str:
    """SQL: when the tagging of the batch row `batch` starts its storage clock — its tagging
    time, or NULL for a container (batches were put into it): a container's clock is the
    earliest of theirs, not the time the empty box was tagged (docs/registers.md). A box tagged
    on Monday and first filled on Wednesday has stored waste since Wednesday. The one reading of
    the clock's start: the inventory's `since` and the overdue_storage alert. (A bag taken out
    again by a correction is no longer the container's, custody.corrections.)"""
    return (
        f"CASE WHEN EXISTS (SELECT 1 FROM batch put_in WHERE put_in.parent_id = {batch}.id)"
        f" THEN NULL ELSE {batch}.tagged_at END"
    )


# $1 the organization, $2 the end of the period (exclusive, UTC). Every movement of a batch
# that ever passed through the organization: `custodian` holds it after the event, `before`
# held it before; and the refused parts it gave back (`refused_by`). `clock_at`: when the
# movement starts the batch's storage clock with its custodian: the waste's own
# (`tagging_clock`; NULL for a container's, whose clock its batches set) at its tagging and
# whenever it is back with its producer, however long it was away; else the movement's time.
_ORGANIZATION_SCOPE = """
seen AS (
    SELECT batch_id AS id FROM custody_event WHERE organization_id = $1 OR to_organization_id = $1
    UNION SELECT id FROM batch WHERE producer_id = $1 OR holder_id = $1
),
scope AS (
    SELECT id FROM seen
    UNION SELECT b.id FROM batch b JOIN seen s ON b.split_from_id = s.id
    UNION SELECT b.split_from_id FROM batch b JOIN seen s ON b.id = s.id
        WHERE b.split_from_id IS NOT NULL
)"""
MOVEMENTS = f"""{_moves(_ORGANIZATION_SCOPE)}
SELECT m.batch_id, m.seq, m.event_type, m.moved_at, m.custodian, m.before, m.actor_id,
       m.actor_org, m.to_organization_id, m.related_batch_id, rel.code AS related_code,
       m.carrier AS carrier_id, m.refused_by, m.refused_actor,
       b.code, b.stream_id, b.category_id, c.code AS category_code, c.name_zh AS category_name,
       {storage_limit_hours("c")} AS storage_limit_hours,
       CASE WHEN m.event_type = {_TAGGED} AND b.split_from_id IS NULL
              OR m.custodian = b.producer_id THEN {tagging_clock("b")}
            ELSE m.moved_at END AS clock_at,
       b.waste_code, b.identifier, b.quantity, b.unit, b.producer_id, b.origin_site_id,
       b.destination_id, b.split_from_id,
       CASE WHEN NOT f.mass_unknown THEN f.mass_kg END AS mass_kg,
       f.estimated AND NOT f.mass_unknown AS estimated, f.fate, f.mode
FROM moves m
JOIN batch b ON b.id = m.batch_id
JOIN waste_category c ON c.key = b.category_id
LEFT JOIN batch_fact f ON f.batch_id = b.id
LEFT JOIN batch rel ON rel.id = m.related_batch_id
WHERE m.custodian IS DISTINCT FROM m.before
  AND (m.custodian = $1 OR m.before = $1 OR m.refused_by = $1)
  AND m.moved_at < $2
  AND COALESCE(f.fate, '') <> '{Fate.cancelled}'
ORDER BY m.moved_at, m.batch_id, m.seq
"""

# $1 producers, $2 a stream, $3 and $4 the period [start, end) in UTC: the producers of which a
# batch of the stream first came into a carrier's hands in the period — the movement collecting
# it (or handing it over, or a carrier putting it into its load), from the producer or from the
# institution that gathered it nearby (就近集中收集: a township hospital handing a village
# clinic's bags on, loose or packed into its own box: a medical institution gives it); never a
# later step between carriers, nor a facility's rejection handing the batch to a carrier
# (docs/metrics.md §6).
# - A container counts through its contents, never itself (as in every figure: a batch others
#   are in): a box holding only a clinic's bag covers the clinic, not the box's producer.
# - A bag inside a container (`up`: the bag and every container it is in) comes into a
#   carrier's hands with the container, when that is taken after the bag was in it — each step
#   of the chain packed, the bag into its box, the box into its crate (`entered`): later by the
#   phones' clocks or, a phone's clock running behind, recorded after the packings; at the
#   later of the two times.
# - A refused part is its original's waste (`origin`): it first reaches a carrier when the
#   original had not before — a part the clinic took back from the gate and hands to a carrier
#   covers it; a part coming back after a carrier took the original does not reach it again.
_PRODUCER_SCOPE = """
active AS (
    SELECT b.id FROM batch b
    WHERE b.producer_id = ANY($1::int[]) AND b.stream_id = $2
      AND (b.tagged_at >= $3 OR b.parent_id IS NOT NULL OR EXISTS (
          SELECT 1 FROM custody_event e WHERE e.batch_id = b.id AND e.device_time >= $3))
),
lineage (id, at) AS (
    SELECT id, id FROM active
    UNION SELECT l.id, b.split_from_id FROM lineage l JOIN batch b ON b.id = l.at
        WHERE b.split_from_id IS NOT NULL
),
bags AS (
    SELECT DISTINCT b.id, b.parent_id, b.tagged_at, o.at AS origin
    FROM lineage l
    JOIN lineage o ON o.id = l.id
    JOIN batch root ON root.id = o.at AND root.split_from_id IS NULL
    JOIN batch b ON b.id = l.at
    WHERE NOT EXISTS (SELECT 1 FROM batch put_in WHERE put_in.parent_id = b.id)
),
up (bag, id, parent_id, members, containers) AS (
    SELECT id, id, parent_id, ARRAY[]::int[], ARRAY[]::int[] FROM bags
    UNION SELECT up.bag, c.id, c.parent_id, up.members || up.id, up.containers || c.id
    FROM up JOIN batch c ON c.id = up.parent_id
),
scope AS (SELECT DISTINCT id FROM up)"""
HANDED_TO_CARRIER = f"""{_moves(_PRODUCER_SCOPE)},
packed AS (
    SELECT DISTINCT ON (m.batch_id, m.related_batch_id)
           m.batch_id, m.related_batch_id AS into_id, m.moved_at
    FROM moves m
    WHERE m.event_type = '{EventType.aggregated}' AND m.related_batch_id IS NOT NULL
    ORDER BY m.batch_id, m.related_batch_id, m.seq DESC
),
-- each packing as its container's chain recorded it: the child it took, at the container's seq
filled AS (
    SELECT m.batch_id AS into_id, m.seq, child.code
    FROM moves m CROSS JOIN LATERAL jsonb_array_elements_text(m.details->'children') child (code)
    WHERE m.event_type = '{EventType.aggregated}' AND m.related_batch_id IS NULL
)
SELECT DISTINCT b.producer_id FROM batch b WHERE b.id IN (
SELECT bags.origin
FROM up
JOIN bags ON bags.id = up.bag
JOIN (
    SELECT m.batch_id, m.moved_at, m.seq
    FROM moves m
    JOIN organization taker ON taker.id = COALESCE(
        m.custodian, CASE WHEN m.event_type = '{EventType.aggregated}' THEN m.actor_org END)
    JOIN organization giver ON giver.id = m.before
    WHERE taker.kind = '{OrganizationKind.carrier}' AND m.refused_by IS NULL
      AND giver.kind IN ({", ".join(f"'{kind}'" for kind in sorted(MEDICAL_KINDS))})
      AND m.custodian IS DISTINCT FROM m.before
) taken ON taken.batch_id = up.id
CROSS JOIN LATERAL (
    -- when the bag was in the container: the latest packing of each step of the chain up to it
    SELECT max(p.moved_at) AS moved_at
    FROM unnest(up.members, up.containers) AS step (member, container)
    JOIN packed p ON p.batch_id = step.member AND p.into_id = step.container
) entered
-- recorded after it: after the latest packing of the step into the container taken, in the
-- container's own chain (the events of one call share their server time; its seq is the order
-- custody applied them in). The steps below it were recorded before it: a container packed
-- into another takes nothing more until that packing is undone.
CROSS JOIN LATERAL (
    SELECT max(f.seq) AS seq
    FROM batch member JOIN filled f ON f.into_id = up.id AND f.code = member.code
    WHERE member.id = up.members[cardinality(up.members)]
) top
WHERE up.id = up.bag OR taken.moved_at >= COALESCE(entered.moved_at, bags.tagged_at)
   OR taken.seq > top.seq
GROUP BY bags.origin
HAVING min(GREATEST(taken.moved_at, entered.moved_at)) >= $3
   AND min(GREATEST(taken.moved_at, entered.moved_at)) < $4)
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


async def movements(scope: Scope, *, until: datetime) -> list[dict[str, Any]]:
    """The scope's movements before `until` (exclusive), in the order they happened."""
    rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
        MOVEMENTS, [scope.organization.id, until]
    )
    if scope.site is not None:
        rows = [r for r in rows if r["origin_site_id"] == scope.site.id]
    return rows


# `how` of a remainder batch coming back to the deliverer (docs/metrics.md §3).
REFUSED_REMAINDER = "refused_remainder"


def giver(row: dict[str, Any]) -> int | None:
    """Who gave the batch up in a movement: the organization holding it before, or for a
    refused part coming back (`remainder_origin`), the receiver that refused it."""
    found = row["before"] if row["before"] is not None else row["refused_by"]
    return None if found is None else int(found)


def is_refused_part(row: dict[str, Any]) -> bool:
    """Whether the movement is a refused part going back to its deliverer."""
    return row["refused_by"] is not None and row["before"] is None


def aware(value: datetime) -> datetime:
    """A movement's time as an aware UTC datetime."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def organization_names(rows: list[dict[str, Any]], *columns: str) -> dict[int, str]:
    """The names of the organizations the rows name in these columns, by id."""
    ids = {r[c] for r in rows for c in columns if r.get(c) is not None}
    found = await Organization.filter(id__in=ids).values_list("id", "name")
    return {int(i): str(n) for i, n in found}


def party(names: dict[int, str], org_id: int | None) -> dict[str, Any] | None:
    """An organization as a register names it: id and name."""
    return None if org_id is None else {"id": org_id, "name": names.get(org_id, "")}


def batch_columns(row: dict[str, Any]) -> dict[str, Any]:
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
