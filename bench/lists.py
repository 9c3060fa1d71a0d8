"""List speed as the log grows: the pages of a user's recent batches (`GET /m/v1/batches`) on a
small and on a large table of batches, side by side in the same run.

    python bench/lists.py --json [--small 10000] [--large 10000000]

Makes two databases on one server, each with a city (22 towns of 8 villages), 200 producers in
the villages, 10 carriers and 3 treatment facilities, and tags `--small` batches in one and
`--large` in the other, spread over three years with the parties of the field (each batch's
producer, its carrier once collected, its facility once delivered, the holder its state
implies), then vacuums and analyzes both as autovacuum would. It then times, for five users —
a carrier's collector, a clinic, a town manager, the city's manager and an administrator — the
first page of 50 and the fifth (following the cursor) with the statements the route runs
(`wastetrack.batches.service.page_query`, that is `wastetrack.core.paging.merged`: the page's
ids from one keyset-ordered index scan per way of seeing a batch; then the batches by id, then
their categories), alternating between the two databases page by page (each going first in
every other round), so that whatever else the machine does weighs on both alike.
Prints one JSON object with `list_p95_ms` on each table, per user, and `list_growth` = large ÷
small. Target (issue #12): `list_growth` <= 2.
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rollup import ancestor, region_id, seed_registry

from wastetrack.auth.models import Role
from wastetrack.batches.service import page_query
from wastetrack.core import db, paging
from wastetrack.core.principal import Principal

START = datetime(2023, 12, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
PRODUCERS, CARRIERS, FACILITIES = 200, 10, 3
PAGE = 50

# Batches `$1`..`$2`, batch g created at `$3` + (g - 1) × `$4`, with the parties its
# state implies: tagged at its producer; collected and in transit with a carrier; received
# and treated at a facility (carried there); a few cancelled. Producers, carriers and
# facilities are drawn from the arrays `$5`, `$6`, `$7` (ids) and `$8` (each producer's
# region path). Consistent by construction: the foreign-key triggers are skipped.
BATCHES = """
INSERT INTO batch (id, code, stream_id, category_id, unit, quantity, state, region_path,
                   tagged_at, last_seq, producer_id, holder_id, carrier_id, destination_id,
                   created_at, updated_at, last_hash)
SELECT g, 'L' || lpad(g::text, 11, '0'), 'household', 'hh.residual', 'kg', 10, s.state,
       ($8::text[])[p.i], $3::timestamptz + (g - 1) * $4::interval, 1, ($5::int[])[p.i],
       CASE WHEN s.state IN ('tagged', 'cancelled') THEN ($5::int[])[p.i]
            WHEN s.state IN ('collected', 'in_transit') THEN ($6::int[])[c.i]
            ELSE ($7::int[])[f.i] END,
       CASE WHEN s.state NOT IN ('tagged', 'cancelled') THEN ($6::int[])[c.i] END,
       CASE WHEN s.state IN ('received', 'treated') THEN ($7::int[])[f.i] END,
       $3::timestamptz + (g - 1) * $4::interval, now(), ''
FROM generate_series($1::bigint, $2::bigint) AS g,
     -- the first producer, a township hospital, tags one batch in twenty
     LATERAL (SELECT CASE WHEN random() < 0.05 THEN 1
                          ELSE 1 + floor(random() * cardinality($5::int[]))::int END + 0 * g
              AS i) AS p,
     LATERAL (SELECT 1 + floor(random() * cardinality($6::int[]))::int + 0 * g AS i) AS c,
     LATERAL (SELECT 1 + floor(random() * cardinality($7::int[]))::int + 0 * g AS i) AS f,
     LATERAL (SELECT CASE WHEN r < 0.05 THEN 'tagged' WHEN r < 0.08 THEN 'collected'
                          WHEN r < 0.10 THEN 'in_transit' WHEN r < 0.15 THEN 'received'
                          WHEN r < 0.97 THEN 'treated' ELSE 'cancelled' END AS state
              FROM (SELECT random() + 0 * g AS r) AS drawn) AS s
"""


async def seed_parties(
    conn: asyncpg.Connection, villages: list[str]
) -> dict[str, list[int] | list[str]]:
    """Producers in the villages, carriers and facilities in the city."""
    city = ancestor(villages[0], 1)
    made: dict[str, list[int] | list[str]] = {"paths": []}
    for key, kind, count in (
        ("producers", "clinic", PRODUCERS),
        ("carriers", "carrier", CARRIERS),
        ("facilities", "treatment_facility", FACILITIES),
    ):
        ids = []
        for n in range(count):
            path = villages[n % len(villages)] if key == "producers" else city
            ids.append(
                await conn.fetchval(
                    "INSERT INTO organization (name, kind, region_id, created_at)"
                    " VALUES ($1, $2, $3, now()) RETURNING id",
                    f"{kind} {n}",
                    kind,
                    region_id(path),
                )
            )
            if key == "producers":
                made["paths"].append(path)  # type: ignore[arg-type]
        made[key] = ids
    return made


async def grow(conn: asyncpg.Connection, first: int, last: int, parties: dict[str, Any]) -> None:
    """Batches `first`..`last`, spread over three years, then the maintenance autovacuum would
    do."""
    await conn.execute("SET session_replication_role = replica")
    step = 10_000_000
    for lo in range(first, last + 1, step):
        await conn.execute(
            BATCHES,
            lo,
            min(last, lo + step - 1),
            START,
            SPAN / last,
            parties["producers"],
            parties["carriers"],
            parties["facilities"],
            parties["paths"],
        )
    await conn.execute(
        "SET session_replication_role = DEFAULT;"
        " SELECT setval(pg_get_serial_sequence('batch', 'id'), (SELECT max(id) FROM batch))"
    )
    await conn.execute("VACUUM ANALYZE batch")


async def page(conn: asyncpg.Connection, user: Principal, after: str | None) -> str:
    """One page as `list_recent` reads it; the cursor after its last batch."""
    sql, params = page_query(user, limit=PAGE + 1, cursor=after, state=None)
    ids = [row[0] for row in await conn.fetch(sql, *params)]
    rows = await conn.fetch("SELECT * FROM batch WHERE id = ANY($1::int[])", ids)
    await conn.fetch(
        "SELECT * FROM waste_category WHERE key = ANY($1::text[])",
        list({row["category_id"] for row in rows}),
    )
    assert len(ids) == PAGE + 1, (user.username, after, len(ids))
    last = {row["id"]: row for row in rows}[ids[PAGE - 1]]
    return paging.encode(last["created_at"], last["id"])


async def pages(
    tables: dict[str, asyncpg.Connection], users: dict[str, Principal], runs: int
) -> dict[str, dict[str, list[float]]]:
    """Each user's first and fifth page on each table, `runs` times, in milliseconds, the
    tables taking turns page by page."""
    times = {table: {name: [] for name in users} for table in tables}
    for round_ in range(runs):
        # Each table goes first in every other round.
        order = list(tables.items())[:: 1 if round_ % 2 == 0 else -1]
        for name, user in users.items():
            after: dict[str, str | None] = dict.fromkeys(tables)
            for number in range(1, 6):
                for table, conn in order:
                    began = time.perf_counter()
                    after[table] = await page(conn, user, after[table])
                    if number in (1, 5):
                        times[table][name].append((time.perf_counter() - began) * 1000)
    return times


def p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=20)[18], 2)


async def table(
    server_url: str, batches: int
) -> tuple[str, asyncpg.Connection, list[str], dict[str, Any]]:
    """A fresh database with the registry and `batches` batches spread over three years; its
    URL, a connection, its villages and parties."""
    url = db.with_database(server_url, f"wastetrack_lists_{uuid.uuid4().hex[:8]}")
    await db.migrate(url)
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    await conn.execute("SELECT setseed(0.2026)")
    villages, _ = await seed_registry(conn)
    parties = await seed_parties(conn, villages)
    await grow(conn, 1, batches, parties)
    return url, conn, villages, parties


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="wastetrack-bench-lists-"))
    server_url = os.environ.get("WASTETRACK_DATABASE_URL") or db.start_embedded_server(work)
    result: dict[str, Any] = {"small": arguments.small, "large": arguments.large}
    made: list[tuple[str, asyncpg.Connection]] = []
    try:
        began = time.perf_counter()
        url, small, villages, parties = await table(server_url, arguments.small)
        made.append((url, small))
        url, large, _, _ = await table(server_url, arguments.large)
        made.append((url, large))
        result["load_s"] = round(time.perf_counter() - began, 1)
        city, town = ancestor(villages[0], 1), ancestor(villages[0], 2)
        bureau = await small.fetchval("SELECT id FROM organization WHERE kind = 'community'")
        users = {
            "collector": Principal(0, "c", Role.collector, parties["carriers"][0], city),
            "clinic": Principal(0, "g", Role.generator, parties["producers"][0], villages[0]),
            "town_manager": Principal(0, "t", Role.manager, bureau, town),
            "city_manager": Principal(0, "m", Role.manager, bureau, city),
            "admin": Principal(0, "a", Role.admin, bureau, city),
        }
        # The ORM builds the statements (it reads nothing here); the bench runs them itself.
        async with db.database(url, pool_size=1):
            times = await pages({"small": small, "large": large}, users, arguments.runs)
    finally:
        for url, conn in made:
            await conn.close()
            await db.drop_database(url)
    for size in ("small", "large"):
        every = [t for by_user in times[size].values() for t in by_user]
        result[f"list_p50_ms_{size}"] = round(statistics.median(every), 2)
        result[f"list_p95_ms_{size}"] = p95(every)
    result["list_growth"] = round(result["list_p95_ms_large"] / result["list_p95_ms_small"], 2)
    # The median's growth too: on a busy machine the p95 is mostly the machine's.
    result["list_growth_p50"] = round(result["list_p50_ms_large"] / result["list_p50_ms_small"], 2)
    result["by_user_p95_ms"] = {
        name: {size: p95(times[size][name]) for size in ("small", "large")} for name in users
    }
    result["target"] = {"list_growth": "<= 2"}
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20, help="rounds of pages per user")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    print(json.dumps(result) if arguments.json else json.dumps(result, indent=2))
