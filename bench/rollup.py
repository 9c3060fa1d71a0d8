"""Roll-up speed: the dashboard's utilization queries read from the daily roll-ups, against the
same answers computed by a plain GROUP BY over the custody events.

    python bench/rollup.py --json [--events 10000000]

Loads the events with COPY (realistic spread: 3 years, 22 towns, every stream, four events per
batch — tagged, collected, received, treated — some left untreated), builds the roll-ups with
the rebuild SQL, then prints one JSON object with dashboard_p95_ms, raw_groupby_ms, speedup and
identical. Target: dashboard_p95_ms <= 50 with identical answers.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from wastetrack.core import db
from wastetrack.rollups import facts

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

# The dashboard's question over whole months, answered from the monthly roll-ups (as
# wastetrack.rollups.service.utilization reads them) …
FROM_ROLLUPS = """
SELECT stream_id, category_id, fate, mode, SUM(mass_kg), SUM(estimated_kg),
       SUM(balance_weighed_kg), SUM(balance_declared_kg), SUM(volume_m3), SUM(items),
       SUM(batches)
FROM cohort_monthly
WHERE month BETWEEN $1 AND $2 AND town_path LIKE $3 || '%'
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""
# … and by a plain GROUP BY over the custody events of the batches tagged in the period, every
# batch's fact computed from its events by the same definition (docs/metrics.md).
FROM_EVENTS = f"""
SELECT stream_id, category_id, fate, mode, SUM(mass_kg),
       SUM(CASE WHEN estimated THEN mass_kg ELSE 0 END),
       SUM(COALESCE(balance_weighed_kg, 0)), SUM(COALESCE(balance_declared_kg, 0)),
       SUM(volume_m3), SUM(items), COUNT(*)
FROM ({facts._FACTS.format(scope=PERIOD_SCOPE)}) f
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""


async def seed_registry(conn: asyncpg.Connection) -> tuple[list[str], dict[str, int]]:
    """A city, 22 towns with 8 villages each, and one organization per role."""
    city = await conn.fetchval(
        "INSERT INTO region (code, name, level, path) VALUES"
        " ('371082', '荣成市', 'city', '/') RETURNING id"
    )
    await conn.execute("UPDATE region SET path = $1 WHERE id = $2", f"/{city}/", city)
    villages = []
    for town_index in range(22):
        town = await conn.fetchval(
            "INSERT INTO region (code, name, level, parent_id, path) VALUES ($1, $2, 'town', $3,"
            " '/') RETURNING id",
            f"T{town_index:03d}",
            f"镇{town_index}",
            city,
        )
        await conn.execute("UPDATE region SET path = $1 WHERE id = $2", f"/{city}/{town}/", town)
        for village_index in range(8):
            village = await conn.fetchval(
                "INSERT INTO region (code, name, level, parent_id, path) VALUES ($1, $2,"
                " 'village', $3, '/') RETURNING id",
                f"V{town_index:03d}{village_index}",
                f"村{town_index}-{village_index}",
                town,
            )
            path = f"/{city}/{town}/{village}/"
            await conn.execute("UPDATE region SET path = $1 WHERE id = $2", path, village)
            villages.append(path)
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
            city,
        )
    orgs["user"] = await conn.fetchval(
        "INSERT INTO app_user (username, password_hash, full_name, role, organization_id,"
        " is_active, created_at) VALUES ('bench', 'x', '', 'collector', $1, true, now())"
        " RETURNING id",
        orgs["producer"],
    )
    return villages, orgs


def batch_rows(
    first_id: int, count: int, villages: list[str], orgs: dict[str, int], rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """`count` batches and their events (four for most, fewer for the ones still on the way)."""
    weights = [m[3] for m in MIX]
    batches, events = [], []
    for batch_id in range(first_id, first_id + count):
        stream, category, unit, _, methods = rng.choices(MIX, weights)[0]
        quantity = (
            Decimal(rng.randint(5, 4000)) / 10 if unit != "count" else Decimal(rng.randint(5, 300))
        )
        tagged = START + timedelta(days=rng.random() * DAYS)
        steps = 4 if rng.random() < 0.9 else rng.randint(1, 3)
        state = ("tagged", "collected", "received", "treated")[steps - 1]
        region = rng.choice(villages)
        batches.append(
            (
                batch_id,
                f"B{batch_id:011d}",
                stream,
                category,
                unit,
                quantity,
                state,
                region,
                tagged,
                steps,
            )
        )
        method, mode, _ = rng.choices(methods, [m[2] for m in methods])[0]
        weight = (
            (quantity * Decimal(str(round(rng.uniform(0.9, 1.05), 3)))).quantize(Decimal("0.001"))
            if unit == "kg"
            else Decimal(rng.randint(5, 60))
        )
        # Messy histories, as in the field: a few cancelled at tagging, rejected on receipt,
        # or with the receipt's weight corrected afterwards.
        fate_roll = rng.random()
        kinds = ["tagged", "collected", "received", "treated"][:steps]
        outcome = "accepted"
        if fate_roll < 0.03:
            kinds = ["tagged", "cancelled"]
        elif fate_roll < 0.05 and steps >= 3:
            kinds, outcome = ["tagged", "collected", "received"], "rejected"
        if kinds != ["tagged", "collected", "received", "treated"][:steps]:
            batches[-1] = (*batches[-1][:6], kinds[-1], *batches[-1][7:9], len(kinds))
        ids = [uuid.uuid4() for _ in kinds]
        for seq, kind in enumerate(kinds, start=1):
            when = tagged + timedelta(hours=6 * (seq - 1))
            received = kind == "received"
            events.append(
                (
                    ids[seq - 1],
                    batch_id,
                    seq,
                    kind,
                    "rejected" if received and outcome == "rejected" else kind,
                    outcome if received else None,
                    method if kind == "treated" else None,
                    mode if kind == "treated" else None,
                    "{}",
                    when,
                    when,
                    orgs["user"],
                    orgs["producer"],
                    weight if received and outcome == "accepted" else None,
                    None,
                    "0" * 64,
                    f"{seq:064d}",
                )
            )
        if len(kinds) == 4 and rng.random() < 0.01:
            corrected = str((weight * Decimal("0.9")).quantize(Decimal("0.001")))
            when = tagged + timedelta(days=1)
            events.append(
                (
                    uuid.uuid4(),
                    batch_id,
                    5,
                    "corrected",
                    "treated",
                    None,
                    None,
                    None,
                    json.dumps({"corrected": {"weight_kg": corrected}}),
                    when,
                    when,
                    orgs["user"],
                    orgs["producer"],
                    None,
                    ids[2],
                    "0" * 64,
                    f"{5:064d}",
                )
            )
            batches[-1] = (*batches[-1][:9], 5)
    return batches, events


BATCH_COLUMNS = [
    "id",
    "code",
    "stream_id",
    "category_id",
    "unit",
    "quantity",
    "state",
    "region_path",
    "tagged_at",
    "last_seq",
    "producer_id",
    "holder_id",
    "created_at",
    "updated_at",
    "last_hash",
]
EVENT_COLUMNS = [
    "id",
    "batch_id",
    "seq",
    "event_type",
    "state_after",
    "outcome",
    "method_id",
    "mode",
    "details",
    "device_time",
    "server_time",
    "actor_id",
    "organization_id",
    "weight_kg",
    "corrects_id",
    "prev_hash",
    "hash",
]


async def load(
    conn: asyncpg.Connection, events_wanted: int, villages: list[str], orgs: dict[str, int]
) -> int:
    rng = random.Random(2025)
    now = datetime.now(UTC)
    loaded, next_id = 0, 1
    while loaded < events_wanted:
        batches, events = batch_rows(next_id, 50_000, villages, orgs, rng)
        await conn.copy_records_to_table(
            "batch",
            columns=BATCH_COLUMNS,
            records=[
                (*b[:9], b[9], orgs["producer"], orgs["facility"], now, now, "") for b in batches
            ],
        )
        await conn.copy_records_to_table(
            "custody_event", columns=EVENT_COLUMNS, records=events[: events_wanted - loaded]
        )
        loaded += min(len(events), events_wanted - loaded)
        next_id += len(batches)
    await conn.execute("SELECT setval(pg_get_serial_sequence('batch', 'id'), $1)", next_id)
    await conn.execute("ANALYZE")
    return loaded


async def build_rollups(conn: asyncpg.Connection) -> None:
    """The rebuild the service runs (wastetrack.rollups.facts.rebuild), over the whole log."""
    await conn.execute("TRUNCATE batch_fact, cohort_daily, cohort_monthly")
    await conn.execute("SET work_mem = '256MB'")
    await conn.execute(
        f"INSERT INTO batch_fact ({facts._FACT_COLUMNS})"
        f" {facts._FACTS.format(scope='SELECT id FROM batch')}",
        TZ,
        facts.RECOVERY_MODES,
    )
    source = facts._CONTRIBUTION.format(sign=1, source="batch_fact")
    await conn.execute(
        f"INSERT INTO cohort_daily ({facts._DAILY_KEY}, {facts._SUM_COLUMNS})"
        f" {facts._DAILY.format(source=source)}"
    )
    await conn.execute(
        f"INSERT INTO cohort_monthly ({facts._MONTHLY_KEY}, {facts._SUM_COLUMNS})"
        f" {facts._MONTHLY.format(source=source)}"
    )
    await conn.execute("ANALYZE batch_fact; ANALYZE cohort_daily; ANALYZE cohort_monthly")


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
    """Rows without all-zero groups."""
    return [tuple(r) for r in rows if any(r[4:])]


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
        city = villages[0].split("/")[1]
        town = "/".join(villages[0].split("/")[:3]) + "/"
        questions = [  # what the dashboard asks: the city over 12 months, a town over a month
            (date(2025, 12, 1), date(2026, 11, 30), f"/{city}/"),
            (date(2026, 10, 1), date(2026, 10, 31), town),
            (date(2023, 12, 1), date(2026, 11, 30), f"/{city}/"),
        ]
        dashboard: list[float] = []
        raw: list[float] = []
        identical = True
        for question in questions:
            args = (TZ, facts.RECOVERY_MODES, *question)
            times, fast = await timed(conn, FROM_ROLLUPS, question, arguments.runs)
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
