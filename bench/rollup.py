"""Roll-up speed: the dashboard's utilization queries read from the daily roll-ups, against the
same answers computed by a plain GROUP BY over the custody events.

    python bench/rollup.py --json [--events 10000000]

Generates the events on the server (realistic spread: 3 years, 22 towns, every stream, four
events per batch — tagged, collected, received, treated — some left untreated), builds the
roll-ups with the rebuild SQL, then prints one JSON object with dashboard_p95_ms,
raw_groupby_ms, speedup and identical. Target: dashboard_p95_ms <= 50 with identical answers.
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from wastetrack.core import db, regions
from wastetrack.rollups import facts
from wastetrack.rollups.service import sums_query

PERIOD_SCOPE = (
    "SELECT id FROM batch WHERE (tagged_at AT TIME ZONE $1)::date BETWEEN $3 AND $4"
    " AND region_path LIKE $5 || '%'"
)

TZ = "Asia/Shanghai"
# (stream, category, unit, share of batches, treatment methods with modes and weights)
MIX = [
    ("household", "hh.residual", "kg", 0.34, [("R1", "energy_recovery", 8), ("D1", "disposal", 2)]),
    (
        "household",
        "hh.food.household",
        "kg",
        0.22,
        [("R3", "recycling", 9), ("D10", "disposal", 1)],
    ),
    ("household", "hh.recyclable.paper", "kg", 0.12, [("R3", "recycling", 1)]),
    (
        "household",
        "hh.recyclable.plastic",
        "kg",
        0.08,
        [("R3", "recycling", 3), ("R1", "energy_recovery", 1)],
    ),
    ("medical", "med.infectious", "kg", 0.08, [("D10", "disposal", 2), ("D9", "disposal", 1)]),
    ("medical", "med.sharps", "kg", 0.03, [("D10", "disposal", 1)]),
    ("hazardous", "hw.08", "kg", 0.04, [("R9", "recycling", 3), ("D10", "disposal", 1)]),
    ("agri_packaging", "agri.plastic_bottle", "count", 0.04, [("R3", "recycling", 1)]),
    ("marine", "marpol2018.A", "m3", 0.03, [("R1", "energy_recovery", 1)]),
    ("marine", "marine.beach_litter", "kg", 0.02, [("R13", "pending", 1), ("D10", "disposal", 1)]),
]
START = datetime(2023, 12, 1, tzinfo=UTC)
DAYS = 3 * 365


# The dashboard's question, answered as the service answers it
# (wastetrack.rollups.service.sums_query: the coarsest layer of sums that answers it exactly —
# the city's or a town's monthly sums over whole months — plus the changes not yet folded) …
# … and by a plain GROUP BY over the custody events of the batches tagged in the period, every
# batch's fact computed from its events by the same definition (docs/metrics.md).
FROM_EVENTS = f"""
SELECT stream_id, category_id, fate, mode, SUM(mass_kg),
       SUM(CASE WHEN estimated THEN mass_kg ELSE 0 END),
       SUM(COALESCE(balance_weighed_kg, 0)), SUM(COALESCE(balance_declared_kg, 0)),
       SUM(volume_m3), SUM(items), COUNT(*), COUNT(*) FILTER (WHERE mass_unknown)
FROM ({facts._facts(PERIOD_SCOPE)}) f
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""


async def region(
    conn: asyncpg.Connection, code: str, name: str, level: str, parent: str | None = None
) -> str:
    """A new region of `level` under the region at path `parent` (a city: none), written once
    with its path as the service writes it: its path."""
    made = await conn.fetchval(regions.NEXT_ID)
    path = regions.path_of(made, parent)
    await conn.execute(
        "INSERT INTO region (id, code, name, level, parent_id, path) VALUES ($1, $2, $3, $4, $5,"
        " $6)",
        made,
        code,
        name,
        level,
        region_id(parent) if parent else None,
        path,
    )
    return path


def region_id(path: str) -> int:
    """The id of the region at `path`."""
    return int(path.strip("/").split("/")[-1])


def ancestor(path: str, depth: int) -> str:
    """The path of the region at `depth` (the city: 1) on the way to the region at `path`."""
    return "/".join(path.split("/")[: depth + 1]) + "/"


async def seed_registry(conn: asyncpg.Connection) -> tuple[list[str], dict[str, int]]:
    """A city, 22 towns with 8 villages each, and one organization per role."""
    city = await region(conn, "371082", "荣成市", "city")
    villages = []
    for town_index in range(22):
        town = await region(conn, f"371082{town_index + 1:03d}", f"镇{town_index}", "town", city)
        for village_index in range(8):
            code = f"371082{town_index + 1:03d}{village_index + 1:03d}"
            villages.append(
                await region(conn, code, f"村{town_index}-{village_index}", "village", town)
            )
    orgs = {}
    for key, kind in (
        ("producer", "community"),
        ("carrier", "carrier"),
        ("facility", "treatment_facility"),
    ):
        orgs[key] = await conn.fetchval(
            "INSERT INTO organization (name, kind, region_id, created_at) VALUES ($1, $2, $3,"
            " now()) RETURNING id",
            key,
            kind,
            region_id(city),
        )
    orgs["user"] = await conn.fetchval(
        "INSERT INTO app_user (username, password_hash, full_name, role, organization_id,"
        " is_active, created_at) VALUES ('bench', 'x', '', 'collector', $1, true, now())"
        " RETURNING id",
        orgs["producer"],
    )
    return villages, orgs


# The plan of every batch, drawn once on the server from a seeded generator (one process, no
# parallel workers, so the draw is the same on every run): which stream and category, how much,
# when, where, how far it got, which method treated it, and whether its history is messy.
PLAN = """
CREATE TEMP TABLE plan AS
SELECT g AS id, random() AS r_mix, random() AS r_qty, random() AS r_day, random() AS r_steps,
       random() AS r_short, random() AS r_region, random() AS r_method, random() AS r_weight,
       random() AS r_fate, random() AS r_corr
FROM generate_series(1, $1::int) g
"""
# Four events for most batches (tagged, collected, received, treated), fewer for the ones still
# on the way; messy histories as in the field: cancelled at tagging (3 %), rejected on receipt
# (2 %), or the receipt's weight corrected afterwards (1 % of the complete ones).
PLANNED = """
CREATE TEMP TABLE planned AS
WITH drawn AS (
    SELECT p.id, m.stream, m.category, m.unit, me.code AS method, me.mode, p.r_fate, p.r_corr,
           CASE WHEN m.unit = 'count' THEN 5 + floor(p.r_qty * 296)
                ELSE (5 + floor(p.r_qty * 3996)) / 10 END::numeric AS quantity,
           $1::timestamptz + p.r_day * interval '1095 days' AS tagged,
           CASE WHEN p.r_steps < 0.9 THEN 4 ELSE 1 + floor(p.r_short * 3)::int END AS steps,
           ($2::text[])[1 + floor(p.r_region * cardinality($2::text[]))::int] AS region,
           p.r_weight
    FROM plan p
    JOIN bench_mix m ON p.r_mix >= m.lo AND p.r_mix < m.hi
    JOIN bench_method me ON me.mix = m.idx AND p.r_method >= me.lo AND p.r_method < me.hi
)
SELECT d.*,
       CASE WHEN d.r_fate < 0.03 THEN ARRAY['tagged', 'cancelled']
            WHEN d.r_fate < 0.05 AND d.steps >= 3 THEN ARRAY['tagged', 'collected', 'received']
            ELSE (ARRAY['tagged', 'collected', 'received', 'treated'])[1:d.steps] END AS kinds,
       d.r_fate >= 0.03 AND d.r_fate < 0.05 AND d.steps >= 3 AS rejected,
       CASE WHEN d.unit = 'kg' THEN round(d.quantity * (0.9 + d.r_weight * 0.15)::numeric, 3)
            ELSE 5 + floor(d.r_weight * 56) END::numeric AS weight
FROM drawn d
"""
BATCHES = """
INSERT INTO batch (id, code, stream_id, category_id, unit, quantity, state, region_path,
                   tagged_at, last_seq, producer_id, holder_id, created_at, updated_at, last_hash)
SELECT id, 'B' || lpad(id::text, 11, '0'), stream, category, unit, quantity,
       CASE WHEN rejected THEN 'rejected' ELSE kinds[cardinality(kinds)] END, region, tagged,
       cardinality(kinds) + CASE WHEN cardinality(kinds) = 4 AND r_corr < 0.01 THEN 1 ELSE 0 END,
       $1, $2, now(), now(), ''
FROM planned
"""
EVENTS = """
INSERT INTO custody_event (id, batch_id, seq, event_type, state_after, outcome, method_id, mode,
                           details, device_time, server_time, actor_id, organization_id,
                           weight_kg, corrects_id, prev_hash, hash)
SELECT lpad(to_hex(p.id * 8 + k.seq), 32, '0')::uuid, p.id, k.seq, k.kind,
       CASE WHEN k.kind = 'received' AND p.rejected THEN 'rejected' ELSE k.kind END,
       CASE WHEN k.kind = 'received' THEN CASE WHEN p.rejected THEN 'rejected' ELSE 'accepted' END
       END,
       CASE WHEN k.kind = 'treated' THEN p.method END,
       CASE WHEN k.kind = 'treated' THEN p.mode END,
       '{}', p.tagged + (k.seq - 1) * interval '6 hours',
       p.tagged + (k.seq - 1) * interval '6 hours',
       $1, $2,
       CASE WHEN k.kind = 'received' AND NOT p.rejected THEN p.weight END,
       NULL, repeat('0', 64), lpad(k.seq::text, 64, '0')
FROM planned p, unnest(p.kinds) WITH ORDINALITY AS k(kind, seq)
"""
CORRECTIONS = """
INSERT INTO custody_event (id, batch_id, seq, event_type, state_after, details, device_time,
                           server_time, actor_id, organization_id, corrects_id, prev_hash, hash)
SELECT lpad(to_hex(p.id * 8 + 5), 32, '0')::uuid, p.id, 5, 'corrected', 'treated',
       jsonb_build_object('corrected',
                          jsonb_build_object('weight_kg', round(p.weight * 0.9, 3)::text)),
       p.tagged + interval '1 day', p.tagged + interval '1 day', $1, $2, e.id,
       repeat('0', 64), lpad('5', 64, '0')
FROM planned p JOIN custody_event e ON e.batch_id = p.id AND e.seq = 3
WHERE cardinality(p.kinds) = 4 AND p.r_corr < 0.01
"""


async def load(
    conn: asyncpg.Connection, events_wanted: int, villages: list[str], orgs: dict[str, int]
) -> int:
    """About `events_wanted` events (3.7 per batch on average), generated on the server."""
    await conn.execute(
        "SELECT setseed(0.2025); SET max_parallel_workers_per_gather = 0;"
        # consistent by construction: skip the per-row foreign-key triggers while loading
        " SET session_replication_role = replica;"
        " CREATE TEMP TABLE bench_mix (idx int, stream text, category text, unit text,"
        " lo float8, hi float8);"
        " CREATE TEMP TABLE bench_method (mix int, code text, mode text, lo float8, hi float8)"
    )
    total = sum(m[3] for m in MIX)
    low = 0.0
    for idx, (stream, category, unit, share, methods) in enumerate(MIX):
        high = 1.0 if idx == len(MIX) - 1 else low + share / total
        await conn.execute(
            "INSERT INTO bench_mix VALUES ($1, $2, $3, $4, $5, $6)",
            idx,
            stream,
            category,
            unit,
            low,
            high,
        )
        low = high
        weight_total, method_low = sum(m[2] for m in methods), 0.0
        for position, (code, mode, weight) in enumerate(methods):
            method_high = (
                1.0 if position == len(methods) - 1 else method_low + weight / weight_total
            )
            await conn.execute(
                "INSERT INTO bench_method VALUES ($1, $2, $3, $4, $5)",
                idx,
                code,
                mode,
                method_low,
                method_high,
            )
            method_low = method_high
    await conn.execute(PLAN, round(events_wanted / 3.7))
    # The log is partitioned by batch id: take the ids and make their partitions first.
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('batch', 'id'), (SELECT max(id) FROM plan));"
        " SELECT wastetrack_custody_partitions_ahead(1)"
    )
    await conn.execute(PLANNED, START, villages)
    await conn.execute(BATCHES, orgs["producer"], orgs["facility"])
    await conn.execute(EVENTS, orgs["user"], orgs["producer"])
    await conn.execute(CORRECTIONS, orgs["user"], orgs["producer"])
    await conn.execute(
        "DROP TABLE plan, planned, bench_mix, bench_method;"
        " SET session_replication_role = DEFAULT; ANALYZE"
    )
    loaded: int = await conn.fetchval("SELECT count(*) FROM custody_event")
    return loaded


async def build_rollups(conn: asyncpg.Connection) -> None:
    """The rebuild the service runs (wastetrack.rollups.facts.rebuild), over the whole log."""
    await conn.execute(f"TRUNCATE batch_fact, {facts._TABLES}")
    await conn.execute("SET work_mem = '256MB'")
    await conn.execute(
        f"INSERT INTO batch_fact ({facts._FACT_COLUMNS}) {facts._facts('SELECT id FROM batch')}",
        TZ,
        facts.RECOVERY_MODES,
    )
    source = facts._contribution(1, "batch_fact")
    for table, key, cell in facts._LAYERS:
        await conn.execute(facts._insert_sums(table, key, cell, source, add=False))
    await conn.execute(f"ANALYZE batch_fact; ANALYZE {facts._TABLES}")


async def timed(
    conn: asyncpg.Connection, sql: str, args: tuple[Any, ...], runs: int
) -> tuple[list[float], list[asyncpg.Record]]:
    times, rows = [], []
    for _ in range(runs):
        began = time.perf_counter()
        rows = await conn.fetch(sql, *args)
        times.append((time.perf_counter() - began) * 1000)
    return times, rows


def normal(rows: list[asyncpg.Record]) -> list[tuple[Any, ...]]:
    """Rows without all-zero groups, in order."""
    return sorted(tuple(r) for r in rows if any(r[4:]))


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="wastetrack-bench-rollup-"))
    server_url = os.environ.get("WASTETRACK_DATABASE_URL") or db.start_embedded_server(work)
    url = db.with_database(server_url, f"wastetrack_rollup_{uuid.uuid4().hex[:8]}")
    await db.migrate(url)
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        villages, orgs = await seed_registry(conn)
        began = time.perf_counter()
        events = await load(conn, arguments.events, villages, orgs)
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        await build_rollups(conn)
        rebuild_s = time.perf_counter() - began
        city, town = ancestor(villages[0], 1), ancestor(villages[0], 2)
        questions = [  # what the dashboard asks: the city over 12 months, a town over a month
            (date(2025, 12, 1), date(2026, 11, 30), city),
            (date(2026, 10, 1), date(2026, 10, 31), town),
            (date(2023, 12, 1), date(2026, 11, 30), city),
        ]
        dashboard: list[float] = []
        raw: list[float] = []
        identical = True
        for question in questions:
            args = (TZ, facts.RECOVERY_MODES, *question)
            times, fast = await timed(
                conn, sums_query(question[2], *question[:2]), question, arguments.runs
            )
            dashboard += times
            slow_times, slow = await timed(conn, FROM_EVENTS, args, 1)
            raw += slow_times
            identical &= normal(fast) == normal(slow)
    finally:
        await conn.close()
    await db.drop_database(url)
    p95 = statistics.quantiles(dashboard, n=20)[18]
    raw_ms = statistics.mean(raw)
    return {
        "events": events,
        "load_s": round(load_s, 1),
        "rollup_build_s": round(rebuild_s, 1),
        "dashboard_p95_ms": round(p95, 2),
        "raw_groupby_ms": round(raw_ms, 1),
        "speedup": round(raw_ms / statistics.median(dashboard), 1),
        "identical": identical,
        "queries": len(questions),
        "target": {"dashboard_p95_ms": "<= 50", "identical": True},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=30, help="dashboard runs per question")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    print(json.dumps(result) if arguments.json else json.dumps(result, indent=2))
