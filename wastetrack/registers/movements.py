"""The movements every register reads: each change of custody of a batch that ever passed
through an organization, from the event log, and whose register it is (the scope).

Custody is read one rule per event type (`HOLDER_RULES`): the holder an event leaves the batch
with, as the custody service sets it. An organization holds a batch from the event that makes it
the holder of a live batch until the event that makes someone else the holder or ends the
batch's life (treated, aggregated into a container). Mass, fate and cancellation are the
roll-up facts' (`batch_fact`, docs/metrics.md §2–4): one mass per batch, after corrections; a
cancelled batch is in no register. Movement times are device times made monotonic per batch (a
phone with a late clock cannot take a batch out before it came in)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tortoise import connections

from wastetrack.core.errors import NotFound
from wastetrack.core.principal import Principal
from wastetrack.custody.rules import FINAL_STATES, SPECS, EventType, Holder, State
from wastetrack.registry import access
from wastetrack.registry.models import Organization, Site

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
MOVEMENTS = f"""
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
-- split it off (the deliverer), else the original's producer, when that event was recorded
-- (its tagging keeps the original's time for the cohort: the register's is the split's).
remainder_holder AS (
    SELECT DISTINCT ON (r.id) r.id AS batch_id, COALESCE(p.holder, r.producer_id) AS holder,
           x.at AS split_at
    FROM batch r
    JOIN first_pass x ON x.batch_id = r.split_from_id AND x.details->>'remainder' = r.code
    LEFT JOIN first_pass p ON p.batch_id = x.batch_id AND p.seq = x.seq - 1
    WHERE r.id IN (SELECT id FROM scope)
    ORDER BY r.id, x.seq
),
settled AS (
    SELECT ev.*, COALESCE(ev.sets, rh.holder) AS sets2, COALESCE(rh.split_at, ev.at) AS at2
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
           max(h.at2) OVER (PARTITION BY batch_id ORDER BY seq) AS moved_at
    FROM held h
),
moves AS (
    SELECT s.*, lag(custodian) OVER (PARTITION BY batch_id ORDER BY seq) AS before FROM steps s
)
SELECT m.batch_id, m.seq, m.event_type, m.moved_at, m.custodian, m.before, m.actor_id,
       m.actor_org, m.to_organization_id, m.related_batch_id, rel.code AS related_code,
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
