"""One fact per batch, as every metric counts it (docs/metrics.md §2–4), and the daily, monthly
and city-monthly sums of those facts. One SQL definition serves both paths: the recording
transaction recomputes the facts of the batches it touched (and of what was aggregated into
them) and appends the difference to `cohort_delta`, which a background round folds into the
sums (readers add what is not folded yet); a rebuild computes every fact from the log. So the
incremental sums and a rebuild agree exactly, on any history."""

import json
from enum import StrEnum
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from wastetrack.core.sqlfunctions import BY_KEY, SqlFunction
from wastetrack.custody.rules import (
    EventType,
    Outcome,
    Rollup,
    State,
    estimated_remainder,
    events_counted,
    sql_list,
)

# Bump when the counting rules change: the next start-up rebuilds the stored facts. (3: a
# container's facts follow a correction of its bags, and concurrent recordings sharing a fact
# take turns; facts kept before may be stale, so they are rebuilt once. 4: a fact keeps the
# treatment method after corrections, which a batch's fate reports; a container's weighing is
# set against its children's declarations only when every child is declared in kg, was not
# weighed itself and holds nothing. 5: a remainder whose refused kg was set against an estimate
# is estimated and stays out of the mass balance. 6: a batch's declared kg in the mass balance
# leaves out the parts refused from it, which its remainders declare. 7: a container's weighing
# is shared among its children, each share counted in the child's cohort. 8: a batch in items or
# m³ whose category has no unit mass or density has no mass, and the sums count such batches.)
DEFINITION_VERSION = "2026-12-cohorts-8"

RECOVERY_MODES = ["reuse", "recycling", "energy_recovery", "other_recovery"]


class Fate(StrEnum):
    """Where a batch stands in the figures (docs/metrics.md §3): the one name of each fate, in
    the fact's SQL and in every reader of `batch_fact.fate`."""

    recovered = "recovered"
    disposed_harmless = "disposed_harmless"
    disposed_not_harmless = "disposed_not_harmless"
    pending = "pending"
    rejected = "rejected"
    in_progress = "in_progress"
    cancelled = "cancelled"
    container = "container"


# Fates that leave every figure (a cancelled batch) or are counted through their children
# (a container).
OUTSIDE_COHORT = (Fate.cancelled, Fate.container)
# The fates a cohort's mass is shared among, and those counted as treated harmlessly.
FATES = tuple(f for f in Fate if f not in OUTSIDE_COHORT)
HARMLESS_FATES = (Fate.recovered, Fate.disposed_harmless)
# Events after which a batch's fact may differ; the rest cost nothing to record (the custody
# spec's `rollup`). The fate-deciding ones are the receipt, the treatment and the cancellation.
FACT_EVENTS = frozenset(events_counted(Rollup.fact, Rollup.fate))
FATE_EVENTS = events_counted(Rollup.fate)

_FACT_COLUMNS = (
    "batch_id, day, region_path, stream_id, category_id, fate, mode, mass_kg, mass_unknown,"
    " estimated, balance_weighed_kg, balance_declared_kg, volume_m3, items, method"
)
# The sums every layer keeps (cohort_delta, the fold and the snapshot with them): per column, a
# fact's contribution to it and the type its sum is kept in (none: numeric, as summed). A
# container's mass-balance parts are its children's shares, so it adds none of its own.
SUMS: dict[str, tuple[str, str | None]] = {
    "mass_kg": ("mass_kg", None),
    "estimated_kg": ("CASE WHEN estimated THEN mass_kg ELSE 0 END", None),
    "balance_weighed_kg": (
        f"CASE WHEN fate = '{Fate.container}' THEN 0 ELSE COALESCE(balance_weighed_kg, 0) END",
        None,
    ),
    "balance_declared_kg": (
        f"CASE WHEN fate = '{Fate.container}' THEN 0 ELSE COALESCE(balance_declared_kg, 0) END",
        None,
    ),
    "volume_m3": ("volume_m3", None),
    "items": ("items", "bigint"),
    "batches": ("1", "int"),
    # Counted in `batches` but in no mass: the rates over the rest are not the whole cohort's.
    "batches_without_mass": ("CASE WHEN mass_unknown THEN 1 ELSE 0 END", "int"),
}
_SUM_COLUMNS = ", ".join(SUMS)


# Each category's unit mass and density, inherited from its parent and grandparent: the SQL
# twin of `CatalogSnapshot.mass_factor` (tests/rollups/test_mass_basis.py holds them equal).
MASS_BASIS = """
    SELECT c.key,
           COALESCE(c.unit_mass_kg, p.unit_mass_kg, g.unit_mass_kg) AS unit_mass_kg,
           COALESCE(c.density_kg_m3, p.density_kg_m3, g.density_kg_m3) AS density_kg_m3
    FROM waste_category c
    LEFT JOIN waste_category p ON p.key = c.parent_key
    LEFT JOIN waste_category g ON g.key = p.parent_key
"""


# $1 the city's time zone, $2 the recovery modes; `scope` selects the batches to compute. The
# custody spec's keys are formatted in as constants (the plans stay literal ones).
# - corrections: per corrected event and field, the latest correction's value (a correction of
#   a correction names the same original event);
# - decided: the latest fate-deciding event (receipt, treatment, cancellation) after corrections,
#   and its method when it is a treatment;
# - a batch aggregated into a container takes the fate of its outermost container (`up` climbs
#   from each batch through its containers; `root` is the last one it reached);
# - weighed: the latest weight measured on an accepted receipt or at treatment;
# - kids: a container's children's declared kg, comparable with its weighing only when every
#   child is declared in kg, was not weighed itself and holds nothing (else counted twice, or
#   in other units);
# - shares: a comparable container's weighing shared among its children by their declared kg,
#   to the gram by the largest remainders (integer grams, ties by id), so each child's share
#   counts in its own cohort (day, region, category): a container is in no cohort. The
#   container's fact keeps its own comparison, for the weight alert; the sums leave it out
#   (SUMS);
# - parts: the kg of each batch's remainders not cancelled (the parts refused from it), which
#   its accepted weighing does not cover: its declared kg in the mass balance leaves them out,
#   as each remainder declares its own (nothing left declared: no comparison, as receipts
#   stating a part as heavy as the whole once allowed);
# - mass: that weight, else the declared kg, else quantity × the category's unit mass or density
#   (inherited from its parents), marked estimated; none when nothing gives it (items or m³
#   of a category without a unit mass or density, never weighed): the fact counts 0 kg and
#   says its mass is unknown (`m`). A remainder's kg set against such an estimate
#   (`estimated_remainder`, `t`) is an estimate too, never a declaration.
def _facts(scope: str, *, by_key: bool = False) -> str:
    """The facts of the batches `scope` selects. By key (the recording's few batches), the
    batch tables are reached through the scope's ids as an array and the custody log batch by
    batch, so no plan can join a whole table, however young the statistics it was made on;
    otherwise (a rebuild, a period) through joins, which suit many batches."""

    def among(column: str, selected: str) -> str:
        if by_key:
            return f"{column} = ANY(ARRAY(SELECT id FROM {selected}))"
        return f"{column} IN (SELECT id FROM {selected})"

    def events(alias: str, selected: str, condition: str) -> str:
        # The events of the selected batches that meet the condition. By key, the custody log
        # is read batch by batch, so that each lookup goes to its batch's partition alone (an
        # array of keys would probe every partition's index).
        if by_key:
            return (
                f"{selected} AS {alias}_of CROSS JOIN LATERAL (SELECT * FROM custody_event"
                f" WHERE batch_id = {alias}_of.id AND {condition} OFFSET 0) AS {alias}"
            )
        return (
            f"(SELECT * FROM custody_event WHERE {among('batch_id', selected)} AND {condition})"
            f" AS {alias}"
        )

    # Without a key, only batches in a container start the climb (a partial index has them).
    climbing = (
        among("b.id", "scope")
        if by_key
        else f"b.parent_id IS NOT NULL AND {among('b.id', 'scope')}"
    )
    kinds, outcomes = EventType, Outcome
    return f"""
WITH RECURSIVE scope AS ({scope}),
up (id, cur, depth) AS (
    SELECT b.id, b.parent_id, 1 FROM batch b WHERE {climbing}
    UNION ALL
    SELECT up.id, p.parent_id, up.depth + 1 FROM up JOIN batch p ON p.id = up.cur
),
root AS (
    SELECT DISTINCT ON (id) id, cur AS root FROM up WHERE cur IS NOT NULL
    ORDER BY id, depth DESC
),
fate_scope AS (SELECT id FROM scope UNION SELECT root FROM root),
corrections AS (
    SELECT c.corrects_id,
           (array_agg(c.details->'corrected'->>'outcome' ORDER BY c.seq DESC)
               FILTER (WHERE c.details->'corrected' ? 'outcome'))[1] AS outcome,
           (array_agg(c.details->'corrected'->>'method' ORDER BY c.seq DESC)
               FILTER (WHERE c.details->'corrected' ? 'method'))[1] AS method,
           (array_agg(c.details->'corrected'->>'weight_kg' ORDER BY c.seq DESC)
               FILTER (WHERE c.details->'corrected' ? 'weight_kg'))[1]::numeric AS weight_kg
    FROM {events("c", "fate_scope", f"event_type = '{kinds.corrected}'")}
    GROUP BY c.corrects_id
),
ev AS (
    SELECT e.batch_id, e.seq, e.event_type,
           COALESCE(k.outcome, e.outcome) AS outcome,
           COALESCE(k.method, e.method_id) AS method,
           COALESCE(k.weight_kg, e.weight_kg) AS weight_kg
    FROM {events("e", "fate_scope", f"event_type IN ({sql_list(FATE_EVENTS)})")}
    LEFT JOIN corrections k ON k.corrects_id = e.id
),
decided AS (
    SELECT DISTINCT ON (ev.batch_id) ev.batch_id,
           CASE WHEN ev.event_type = '{kinds.cancelled}' THEN '{Fate.cancelled}'
                WHEN ev.event_type = '{kinds.received}' AND ev.outcome = '{outcomes.rejected}'
                    THEN '{Fate.rejected}'
                WHEN ev.event_type = '{kinds.received}' THEN '{Fate.in_progress}'
                WHEN m.mode = 'pending' THEN '{Fate.pending}'
                WHEN m.mode = ANY($2::text[]) THEN '{Fate.recovered}'
                WHEN m.harmless THEN '{Fate.disposed_harmless}'
                ELSE '{Fate.disposed_not_harmless}' END AS fate,
           CASE WHEN ev.event_type = '{kinds.treated}' THEN m.mode ELSE '' END AS mode,
           CASE WHEN ev.event_type = '{kinds.treated}' THEN ev.method END AS method
    FROM ev LEFT JOIN treatment_method m ON m.code = ev.method
    ORDER BY ev.batch_id, ev.seq DESC
),
weighed AS (
    SELECT DISTINCT ON (batch_id) batch_id, weight_kg FROM ev
    WHERE weight_kg IS NOT NULL AND batch_id IN (SELECT id FROM scope)
      AND (event_type = '{kinds.treated}'
           OR (event_type = '{kinds.received}'
               AND outcome IN ({sql_list((outcomes.accepted, outcomes.partially_accepted))})))
    ORDER BY batch_id, seq DESC
),
kids AS (
    SELECT c.parent_id AS id, SUM(c.quantity) AS declared_kg,
           bool_and(c.unit = 'kg' AND cw.batch_id IS NULL
                    AND NOT EXISTS (SELECT 1 FROM batch g WHERE g.parent_id = c.id OFFSET 0)
                    AND NOT {estimated_remainder("c")})
               AS comparable
    FROM batch c LEFT JOIN weighed cw ON cw.batch_id = c.id
    WHERE c.parent_id IS NOT NULL AND {among("c.parent_id", "scope")} GROUP BY c.parent_id
),
shares AS (
    SELECT s.id, s.declared_kg,
           ((s.base + CASE WHEN row_number() OVER (PARTITION BY s.parent_id
                                                   ORDER BY s.rest DESC, s.id) <= s.leftover
                           THEN 1 ELSE 0 END) / 1000.0)::numeric(14, 3) AS weighed_kg
    FROM (
        SELECT c.id, c.parent_id, c.quantity AS declared_kg,
               div(g.weight * g.own, g.total) AS base, mod(g.weight * g.own, g.total) AS rest,
               g.weight - SUM(div(g.weight * g.own, g.total)) OVER (PARTITION BY c.parent_id)
                   AS leftover
        FROM kids k
        JOIN weighed kw ON kw.batch_id = k.id
        CROSS JOIN LATERAL (SELECT id, parent_id, quantity FROM batch
                            WHERE parent_id = k.id OFFSET 0) c
        CROSS JOIN LATERAL (SELECT round(kw.weight_kg * 1000) AS weight,
                                   round(c.quantity * 1000) AS own,
                                   round(k.declared_kg * 1000) AS total) g
        WHERE k.comparable AND k.declared_kg > 0
    ) s
),
parts AS (
    SELECT p.split_from_id AS id, SUM(p.quantity) AS refused_kg
    FROM batch p
    WHERE p.split_from_id IS NOT NULL AND {among("p.split_from_id", "scope")}
      AND p.state <> '{State.cancelled}'
    GROUP BY p.split_from_id
),
basis AS ({MASS_BASIS})
SELECT b.id AS batch_id, (b.tagged_at AT TIME ZONE $1)::date AS day, b.region_path,
       b.stream_id, b.category_id,
       CASE WHEN k.id IS NOT NULL THEN '{Fate.container}'
            ELSE COALESCE(d.fate, '{Fate.in_progress}') END
           AS fate,
       CASE WHEN k.id IS NOT NULL THEN '' ELSE COALESCE(d.mode, '') END AS mode,
       COALESCE(m.kg, 0)::numeric(14, 3) AS mass_kg, m.kg IS NULL AS mass_unknown,
       w.weight_kg IS NULL AND (b.unit <> 'kg' OR t.estimated) AS estimated,
       CASE WHEN k.id IS NOT NULL THEN CASE WHEN k.comparable THEN w.weight_kg END
            WHEN sh.id IS NOT NULL THEN sh.weighed_kg
            WHEN b.unit = 'kg' AND NOT t.estimated AND t.declared > 0 THEN w.weight_kg
            END AS balance_weighed_kg,
       CASE WHEN sh.id IS NOT NULL THEN sh.declared_kg
            WHEN w.weight_kg IS NULL THEN NULL
            WHEN k.id IS NOT NULL THEN CASE WHEN k.comparable THEN k.declared_kg END
            WHEN b.unit = 'kg' AND NOT t.estimated AND t.declared > 0 THEN t.declared
            END AS balance_declared_kg,
       CASE WHEN b.unit = 'm3' THEN b.quantity ELSE 0 END AS volume_m3,
       CASE WHEN b.unit = 'count' THEN b.quantity ELSE 0 END::bigint AS items,
       d.method
FROM batch b
LEFT JOIN root r ON r.id = b.id
LEFT JOIN decided d ON d.batch_id = COALESCE(r.root, b.id)
LEFT JOIN weighed w ON w.batch_id = b.id
LEFT JOIN kids k ON k.id = b.id
LEFT JOIN parts pt ON pt.id = b.id
LEFT JOIN shares sh ON sh.id = b.id
LEFT JOIN basis f ON f.key = b.category_id
CROSS JOIN LATERAL (SELECT {estimated_remainder("b")} AS estimated,
                           b.quantity - COALESCE(pt.refused_kg, 0) AS declared) t
CROSS JOIN LATERAL (SELECT COALESCE(
                        w.weight_kg,
                        CASE b.unit WHEN 'kg' THEN b.quantity
                                    WHEN 'count' THEN b.quantity * f.unit_mass_kg
                                    WHEN 'm3' THEN b.quantity * f.density_kg_m3 END) AS kg) m
WHERE {among("b.id", "scope")}
"""


def _contribution(sign: int, source: str) -> str:
    """What the facts in `source` add to the sums (sign -1 withdraws stale facts)."""
    columns = ",\n       ".join(
        f"{sign} * ({value}) AS {name}" for name, (value, _) in SUMS.items()
    )
    return f"""
SELECT day, region_path, stream_id, category_id, fate, mode,
       {columns}
FROM {source}
"""


_CELL = "stream_id, category_id, fate, mode"
_MONTH = "date_trunc('month', day)::date"
# Each layer of sums: its table, its date and region columns, and how a fact's day and region
# map to them (a town is the first two levels of a region path, the city the first).
_LAYERS = (
    ("cohort_daily", "day, region_path", "day, region_path"),
    (
        "cohort_monthly",
        "month, town_path",
        f"{_MONTH}, COALESCE(substring(region_path from '^/[0-9]+/[0-9]+/'), region_path)",
    ),
    (
        "cohort_city_monthly",
        "month, city_path",
        f"{_MONTH}, substring(region_path from '^/[0-9]+/')",
    ),
)
_SUMS = ", ".join(
    f"SUM({name})::{kept}" if kept else f"SUM({name})" for name, (_, kept) in SUMS.items()
)
_TABLES = ", ".join(["cohort_delta", *(table for table, _, _ in _LAYERS)])


def _insert_sums(table: str, key: str, cell: str, source: str, *, add: bool) -> str:
    """Sum the contributions in `source` into a layer: as fresh rows, or added to its rows."""
    insert = (
        f"INSERT INTO {table} ({key}, {_CELL}, {_SUM_COLUMNS})"
        f" SELECT {cell}, {_CELL}, {_SUMS} FROM ({source}) c GROUP BY 1, 2, 3, 4, 5, 6"
    )
    if not add:
        return insert
    added = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in SUMS)
    return f"{insert} ON CONFLICT ({key}, {_CELL}) DO UPDATE SET {added}"


# Affected: the batches the events touched, the containers they are directly in (a
# container's declared mass is its contents'), the batches they were split from (whose declared
# kg leaves out their remainders'), and everything aggregated into those,
# recursively (a child's fate follows its container).
_AFFECTED = """
WITH RECURSIVE down (id) AS (
    -- The touched batches' own rows read by key: a filter on their parent or source would let
    -- young statistics (few parents) walk that index's whole non-null range instead.
    SELECT id FROM (
        SELECT unnest($3::int[]) AS id
        UNION
        SELECT unnest(ARRAY[parent_id, split_from_id]) FROM batch WHERE id = ANY($3::int[])
    ) AS touched WHERE id IS NOT NULL
    UNION
    -- Each level's children looked up by their parent's key (never a merge or hash join over
    -- the whole parent index, whatever the statistics say).
    SELECT b.id FROM down CROSS JOIN LATERAL (
        SELECT id FROM batch WHERE parent_id = down.id OFFSET 0
    ) AS b
)
SELECT id FROM down
"""
# First the affected facts are locked, in one order: two recordings that share a fact (a
# container treated while one of its bags is corrected) take turns, and the second computes
# its facts from a snapshot taken after the first committed (each statement of the function
# takes its own), not from the one before, which would overwrite the first's fact with a stale
# one and append a difference the sums never had.
_LOCK = f"""
SELECT count(*)::int FROM (
    SELECT 1 FROM batch_fact WHERE batch_id IN ({_AFFECTED}) ORDER BY batch_id FOR UPDATE
) AS locked
"""
_NONZERO = " OR ".join(f"SUM({name}) <> 0" for name in SUMS)
_INCREMENT = f"""
WITH fresh AS ({_facts(_AFFECTED, by_key=True)}),
stale AS (
    SELECT * FROM batch_fact WHERE batch_id = ANY(ARRAY(SELECT batch_id FROM fresh))
),
saved AS (
    INSERT INTO batch_fact ({_FACT_COLUMNS}) SELECT * FROM fresh
    ON CONFLICT (batch_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _FACT_COLUMNS.split(", ")[1:])}
),
delta AS (
    {_contribution(1, "fresh")}
    UNION ALL
    {_contribution(-1, "stale")}
),
appended AS (
    INSERT INTO cohort_delta (day, region_path, {_CELL}, {_SUM_COLUMNS})
    SELECT day, region_path, {_CELL}, {_SUMS} FROM delta GROUP BY 1, 2, 3, 4, 5, 6
    HAVING {_NONZERO}
)
SELECT 1
"""
# Folding: the changes recorded so far move from cohort_delta into every layer, in one
# statement (a reader sees them either in the deltas or in the layers, never in both).
_FOLD = (
    "WITH moved AS (DELETE FROM cohort_delta RETURNING *),\n"
    + ",\n".join(
        f"add_{table} AS ({_insert_sums(table, key, cell, 'SELECT * FROM moved', add=True)})"
        for table, key, cell in _LAYERS
    )
    + "\nSELECT count(*) AS n FROM moved"
)


# The recording transaction's one call: the statement above as a function, so that it runs on
# its generic plan in one round trip (the settings hold for the function only). Planning the
# statement costs ten times executing it for a batch or two, and PostgreSQL would keep
# re-planning it (an array parameter's size is unknown to a generic plan). It reads a handful
# of batches by their keys: a sequential scan is never right for it, however small the tables
# were when the plan was made (a plan made on a young database scanned them whole). Installed
# from this text by `ensure_current`, so the statement has one definition.
APPLY = SqlFunction(
    name="wastetrack_apply_facts",
    parameters=("text", "text[]", "int[]"),  # the city's zone, recovery modes, batch ids
    returns="int",
    body=f"{_LOCK};\n{_INCREMENT}",
    settings=BY_KEY,
)


async def apply(*, batch_ids: list[int], timezone: str) -> None:
    """Recompute the facts of these batches (and of what they contain) and append the
    difference to the sums' changes, in one call inside the recording transaction."""
    if not batch_ids:
        return
    await connections.get("default").execute_query(
        APPLY.call, [timezone, RECOVERY_MODES, sorted(set(batch_ids))]
    )


async def fold() -> int:
    """Move the changes recorded so far into every layer of sums; returns how many change rows
    it moved. Run by the service's background round every few seconds; safe to run anywhere,
    any time, concurrently (a change row is deleted, and so added, exactly once)."""
    async with in_transaction() as client:
        rows: list[dict[str, Any]] = await client.execute_query_dict(_FOLD)
    return int(rows[0]["n"])


async def rebuild(*, timezone: str) -> int:
    """Recompute every fact and every layer of sums from the log, in one transaction that
    holds recording off; returns the daily rows."""
    async with in_transaction() as client:
        # The whole log is sorted by batch and sequence: give the sorts memory, not disk.
        await client.execute_script(
            "SET LOCAL work_mem = '256MB';"
            f" LOCK TABLE batch_fact, {_TABLES} IN EXCLUSIVE MODE;"
            f" TRUNCATE batch_fact, {_TABLES};"
        )
        await client.execute_query(
            f"INSERT INTO batch_fact ({_FACT_COLUMNS}) {_facts('SELECT id FROM batch')}",
            [timezone, RECOVERY_MODES],
        )
        source = _contribution(1, "batch_fact")
        for table, key, cell in _LAYERS:
            await client.execute_query(_insert_sums(table, key, cell, source, add=False))
        await client.execute_query(
            "INSERT INTO rollup_definition (id, version, basis) VALUES (1, $1, $2)"
            " ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, basis = EXCLUDED.basis",
            [DEFINITION_VERSION, await _basis(client, timezone)],
        )
        rows: list[dict[str, Any]] = await client.execute_query_dict(
            "SELECT count(*) AS n FROM cohort_daily"
        )
    return int(rows[0]["n"])


# What the facts read besides the log, so a change to any of it makes them stale: each
# category's parent and estimated-mass basis (unit mass, density) and each method's mode and
# harmless flag, with the catalog editions and sources they came from (a later edition's data
# migration changes them in place, without touching a batch).
_CATALOG_BASIS = """
SELECT (SELECT md5(string_agg(line, ';' ORDER BY line)) FROM (
            SELECT concat_ws('|', 'category', key, parent_key, unit_mass_kg, density_kg_m3)
            FROM waste_category
            UNION ALL
            SELECT concat_ws('|', 'method', code, mode, harmless) FROM treatment_method
        ) AS values_read (line)) AS digest,
       (SELECT array_agg(DISTINCT source ORDER BY source) FROM (
            SELECT unnest(ARRAY[edition, mass_basis_source]) FROM waste_category
            UNION ALL
            SELECT unnest(ARRAY[edition, harmless_source]) FROM treatment_method
        ) AS editions (source) WHERE source IS NOT NULL) AS editions
"""


async def _basis(client: Any, timezone: str) -> str:
    """What the stored facts depend on, as one canonical text: the counting rules
    (DEFINITION_VERSION), the city's time zone (their days) and the catalog data they read
    (its editions, and a digest of the values themselves)."""
    rows: list[dict[str, Any]] = await client.execute_query_dict(_CATALOG_BASIS)
    return json.dumps(
        {
            "definition": DEFINITION_VERSION,
            "timezone": timezone,
            "catalog_editions": list(rows[0]["editions"] or []),
            "catalog_digest": rows[0]["digest"],
        },
        sort_keys=True,
        ensure_ascii=False,
    )


async def ensure_current(*, timezone: str) -> bool:
    """Install the recording's function as this code defines it, and rebuild when the stored
    facts were computed on another basis (or never): other counting rules, another time zone
    or other catalog data (a later edition's unit masses, densities, method modes or harmless
    flags). True if it rebuilt."""
    await APPLY.ensure()
    client = connections.get("default")
    rows = await client.execute_query_dict("SELECT basis FROM rollup_definition WHERE id = 1")
    if rows and rows[0]["basis"] == await _basis(client, timezone):
        return False
    await rebuild(timezone=timezone)
    return True
