"""List speed for records a user may read for more than one reason: a port's deliveries (at
its port, and for it as a vessel's owner) and a manager's alerts (their office's, and their
region's), on a small and on a large table, side by side in the same run.

    python bench/port_lists.py --json [--small 10000] [--large 1000000]

Makes two databases on one server, each with a city (22 towns of 8 villages), 20 fishing ports
and 40 vessel owners in the towns and an office per town, 400 vessels (one in ten owned by a
port itself, one in five by one fishing group) and a berth per port, then records `--small`
deliveries (one line each, its own batch, received) and as many alerts in one and `--large` in
the other, spread over three years, and vacuums and analyzes both as autovacuum would. The
first port takes one delivery in twenty besides its share (with its own vessels' deliveries,
about one in seven is its to read) and one alert in twenty besides its share; one alert in
five is acknowledged. Two more users' rows, each 3 % of a table's (at least 300), all lie in
its first tenth of the three years: a port that took deliveries only then, and the office of a
district of its own (a town of eight villages) with its open alerts in the villages. It then
times, for seven users — the first port, the fishing group, the manager of the first port's
town, the port reading its alerts, the port of old deliveries, the manager of the old district
and an administrator — the first page of 50 and the fifth (following the cursor) as the routes
read them (`list_deliveries` and each line as its batch stands, `lines_now`; `list_alerts` of
the open alerts, as `GET /m/v1/alerts` by default), the databases taking turns round by round.
Alongside, as references outside `list_*`: the town manager, the old port and the old
district's manager as their lists were read before each reason had a read of its own
(`one_query:`, the OR of the reasons in one query), and the old district's manager as read up
to migration 0054 (`path_prefix:`, the region's reason a prefix of the path, whose index is in
path order). Then it drops the indexes of migrations 0051, 0052 and 0054 and times the same
pages again (`unindexed_*`): the lists as they were read before those indexes.

The old district's manager has a figure of their own besides, `sparse_region_growth` (and
`sparse_region_growth_one_query`, `sparse_region_growth_path_prefix`). A manager's deliveries
(their region through a join) are not timed; the custody log is left empty. The seeding skips
foreign-key triggers (`session_replication_role`), so an external server
(`WASTETRACK_DATABASE_URL`) needs a superuser.

Prints one JSON object with `list_p95_ms` on each table, per user, and `list_growth` = large ÷
small (target: <= 2, as for the batch list in bench/lists.py), and the same without the indexes.
"""

import argparse
import asyncio
import gc
import importlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from lists import p95
from rollup import ancestor, region, region_id, seed_registry
from tortoise.expressions import Q

from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.auth.models import Role
from wastetrack.core import db, paging
from wastetrack.core.principal import Principal
from wastetrack.ports import deliveries
from wastetrack.ports.access import NEWEST_STARTED
from wastetrack.ports.models import Delivery

INDEXED = [
    importlib.import_module(f"migrations.{name}")
    for name in (
        "0051_port_and_alert_list_indexes",
        "0052_delivery_line_indexes",
        "0054_region_subtree_indexes",
    )
]
START = datetime(2023, 12, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
PORTS, OWNERS, VESSELS = 20, 40, 400
PAGE = 50

# Ports and owners in the towns (`$1`: the town ids, `$2`: how many ports), a port record and
# a berth for each port; vessels, one in ten owned by a port, the rest by the owners (the first,
# a fishing group, owns one in five).
REGISTRY = """
INSERT INTO organization (name, kind, region_id, created_at)
SELECT CASE WHEN g <= $2::int THEN 'port ' ELSE 'owner ' END || g,
       CASE WHEN g <= $2::int THEN 'fishing_port' ELSE 'vessel_owner' END,
       ($1::int[])[1 + g % cardinality($1::int[])], now()
FROM generate_series(1, $2::int + $3::int) AS g;
"""
PORT_ROWS = """
INSERT INTO fishing_port (organization_id, grade, latitude, longitude, reception_facility, listed)
SELECT id, '一级渔港', 36.9, 122.4, true, true FROM organization WHERE kind = 'fishing_port';
INSERT INTO berth (port_id, name, code, latitude, longitude, geofence_m)
SELECT id, '1号泊位', 'B' || id, 36.9, 122.4, 300 FROM organization WHERE kind = 'fishing_port';
"""
VESSEL_ROWS = """
INSERT INTO vessel (name, registration_number, gross_tonnage, vessel_type, flag_state,
                    home_port_id, owner_id)
SELECT '鲁荣渔' || g, '3710822' || lpad(g::text, 5, '0'), 98, 'fishing', 'CHN',
       ($1::int[])[1 + g % cardinality($1::int[])],
       CASE WHEN g % 10 = 0 THEN ($1::int[])[1 + g % cardinality($1::int[])]
            WHEN g % 5 = 1 THEN ($2::int[])[1]
            ELSE ($2::int[])[1 + g % cardinality($2::int[])] END
FROM generate_series(1, $3) AS g;
"""
# Deliveries `$1`..`$2`, delivery g begun at `$3` + (g - 1) × `$4`, by a vessel drawn from `$5`
# (ids) with its owner `$6`, at a port drawn from `$7` with its berth `$8`, recorded by `$9`.
DELIVERIES = """
INSERT INTO delivery (client_event_id, payload_digest, receipt_number, vessel_id, port_id,
                      owner_id, berth_id, started_at, ended_at, recorded_at, signed_by_port,
                      flags, recorded_by_id)
SELECT gen_random_uuid(), '', 'R' || lpad(g::text, 12, '0'), ($5::int[])[v.i], ($7::int[])[p.i],
       ($6::int[])[v.i], ($8::int[])[p.i], t.at, t.at + interval '30 minutes',
       t.at + interval '1 hour', false, '[]', $9
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT 1 + floor(random() * cardinality($5::int[]))::int + 0 * g AS i) AS v,
     -- the first port takes one delivery in twenty
     LATERAL (SELECT CASE WHEN random() < 0.05 THEN 1
                          ELSE 1 + floor(random() * cardinality($7::int[]))::int END + 0 * g
              AS i) AS p,
     LATERAL (SELECT $3::timestamptz + (g - 1) * $4::interval AS at) AS t
"""
# Alerts `$1`..`$2`, raised at `$3` + (g - 1) × `$4` on an organization drawn from `$5` (ids)
# whose region path is in `$6` (the first, a port, has one alert in twenty more); one in five
# acknowledged, by `$7`.
ALERTS = """
INSERT INTO alert (kind, subject, organization_id, region_path, raised_at, details,
                   acknowledged_at, acknowledged_by_id)
SELECT 'idle_batch', 'S' || g, ($5::int[])[o.i], ($6::text[])[o.i],
       $3::timestamptz + (g - 1) * $4::interval, '{}', a.at,
       CASE WHEN a.at IS NOT NULL THEN $7::int END
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT CASE WHEN random() < 0.2 THEN $3::timestamptz + g * $4::interval END
                     + 0 * g * interval '1 s' AS at) AS a,
     LATERAL (SELECT CASE WHEN random() < 0.05 THEN 1
                          ELSE 1 + floor(random() * cardinality($5::int[]))::int END + 0 * g
              AS i) AS o
"""

# A port that took deliveries only in its first months, and an office whose district's alerts
# are all old: `$6` deliveries at port `$3` (berth `$4`) by vessels drawn from `$1` with their
# owners `$2`, recorded by `$5`; `$5` open alerts of organization `$1` in the eight villages
# `$2` in turn; each from `$7` (`$3`) on, `$8` (`$4`) apart.
SPARSE_DELIVERIES = """
INSERT INTO delivery (client_event_id, payload_digest, receipt_number, vessel_id, port_id,
                      owner_id, berth_id, started_at, ended_at, recorded_at, signed_by_port,
                      flags, recorded_by_id)
SELECT gen_random_uuid(), '', 'S' || lpad(g::text, 12, '0'), ($1::int[])[v.i], $3, ($2::int[])[v.i],
       $4, t.at, t.at + interval '30 minutes', t.at + interval '1 hour', false, '[]', $5
FROM generate_series(1, $6::int) AS g,
     LATERAL (SELECT 1 + floor(random() * cardinality($1::int[]))::int + 0 * g AS i) AS v,
     LATERAL (SELECT $7::timestamptz + (g - 1) * $8::interval AS at) AS t
"""
SPARSE_ALERTS = """
INSERT INTO alert (kind, subject, organization_id, region_path, raised_at, details)
SELECT 'idle_batch', 'Z' || g, $1, ($2::text[])[1 + g % 8],
       $3::timestamptz + (g - 1) * $4::interval, '{}'
FROM generate_series(1, $5::int) AS g
"""
SPARSE_SHARE = 0.03
"""Of the rows of a table, the sparse users' (at least six pages), all in its first tenth."""


# One line a delivery, each its own batch of MARPOL waste (10 kg), produced by the vessel's owner
# (the port for a vessel without one) and received by the port, tagged when the delivery began;
# consistent by construction, so the foreign-key triggers are skipped.
LINES = """
SET session_replication_role = replica;
INSERT INTO batch (id, code, stream_id, category_id, unit, quantity, state, region_path,
                   tagged_at, last_seq, producer_id, holder_id, carrier_id, destination_id,
                   created_at, updated_at, last_hash)
SELECT d.id, 'M' || lpad(d.id::text, 11, '0'), 'marine', 'marine.marpol', 'kg', 10, 'received',
       r.path, d.started_at, 1, coalesce(d.owner_id, d.port_id), d.port_id, NULL, d.port_id,
       d.started_at, d.started_at, ''
FROM delivery d JOIN organization o ON o.id = d.port_id JOIN region r ON r.id = o.region_id;
INSERT INTO delivery_line (delivery_id, category_id, mass_kg, mass_derived, batch_id)
SELECT id, 'marine.marpol', 10, false, id FROM delivery;
SET session_replication_role = DEFAULT;
SELECT setval(pg_get_serial_sequence('batch', 'id'), (SELECT max(id) FROM batch));
"""


async def table(server_url: str, rows: int) -> tuple[str, dict[str, Any]]:
    """A fresh database with the registry and `rows` deliveries and alerts; its URL and the
    ids of the users' organizations and regions."""
    url = db.with_database(server_url, f"wastetrack_port_lists_{uuid.uuid4().hex[:8]}")
    await db.migrate(url)
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        await conn.execute("SELECT setseed(0.2026)")
        villages, orgs = await seed_registry(conn)
        towns = sorted({ancestor(path, 2) for path in villages})
        town_ids = [region_id(path) for path in towns]
        await conn.execute(REGISTRY, town_ids, PORTS, OWNERS)
        offices = [
            await conn.fetchval(
                "INSERT INTO organization (name, kind, region_id, created_at)"
                " VALUES ($1, 'authority', $2, now()) RETURNING id",
                f"office {town}",
                town,
            )
            for town in town_ids
        ]
        await conn.execute(PORT_ROWS)
        kinds = await conn.fetch(
            "SELECT o.id, o.kind, r.path FROM organization o JOIN region r ON r.id = o.region_id"
            " WHERE o.kind IN ('fishing_port', 'vessel_owner', 'authority') ORDER BY o.id"
        )
        ports = [r["id"] for r in kinds if r["kind"] == "fishing_port"]
        owners = [r["id"] for r in kinds if r["kind"] == "vessel_owner"]
        await conn.execute(VESSEL_ROWS, ports, owners, VESSELS)
        vessels = await conn.fetch("SELECT id, owner_id FROM vessel ORDER BY id")
        berths = {r["port_id"]: r["id"] for r in await conn.fetch("SELECT id, port_id FROM berth")}
        await conn.execute(
            DELIVERIES,
            1,
            rows,
            START,
            SPAN / rows,
            [v["id"] for v in vessels],
            [v["owner_id"] for v in vessels],
            ports,
            [berths[p] for p in ports],
            orgs["user"],
        )
        await conn.execute(
            ALERTS,
            1,
            rows,
            START,
            SPAN / rows,
            [r["id"] for r in kinds],
            [r["path"] for r in kinds],
            orgs["user"],
        )
        city = ancestor(towns[0], 1)
        sparse = await sparse_users(conn, rows, vessels, town_ids[-1], city, orgs["user"])
        await conn.execute(LINES)
        for name in ("delivery", "delivery_line", "batch", "alert"):
            await conn.execute(f"VACUUM ANALYZE {name}")
        # The town manager's town: the first port's, where alerts are the most frequent.
        town = next(r["path"] for r in kinds if r["id"] == ports[0])
        return url, {
            "port": ports[0],
            "owner": owners[0],
            "office": offices[towns.index(town)],
            "town": town,
            "city": city,
            **sparse,
        }
    finally:
        await conn.close()


async def sparse_users(
    conn: asyncpg.Connection,
    rows: int,
    vessels: list[Any],
    town_id: int,
    city: str,
    recorder: int,
) -> dict[str, Any]:
    """A port and an office whose rows (a share of `rows`) all lie in the first tenth of the
    three years, the office in a district of eight villages of its own (a town), where its
    alerts are; their ids and the district's path."""
    count = max(6 * PAGE, int(rows * SPARSE_SHARE))
    step = SPAN / 10 / count
    district = await region(conn, "371082999", "旧区", "town", city)
    villages = [
        await region(conn, f"371082999{n:03d}", f"旧区{n}村", "village", district)
        for n in range(1, 9)
    ]
    port, office = [
        await conn.fetchval(
            "INSERT INTO organization (name, kind, region_id, created_at)"
            " VALUES ($1, $2, $3, now()) RETURNING id",
            name,
            kind,
            where,
        )
        for name, kind, where in (
            ("port sparse", "fishing_port", town_id),
            ("office sparse", "authority", region_id(district)),
        )
    ]
    await conn.execute(
        "INSERT INTO fishing_port (organization_id, grade, latitude, longitude,"
        " reception_facility, listed) VALUES ($1, '一级渔港', 36.9, 122.4, true, true)",
        port,
    )
    berth = await conn.fetchval(
        "INSERT INTO berth (port_id, name, code, latitude, longitude, geofence_m)"
        " VALUES ($1, '1号泊位', 'BS', 36.9, 122.4, 300) RETURNING id",
        port,
    )
    ids, owners = [v["id"] for v in vessels], [v["owner_id"] for v in vessels]
    await conn.execute(SPARSE_DELIVERIES, ids, owners, port, berth, recorder, count, START, step)
    await conn.execute(SPARSE_ALERTS, office, villages, START, step, count)
    return {"sparse_port": port, "sparse_office": office, "sparse_region": district}


Reader = Callable[[Principal, str | None], Awaitable[paging.Page[Any]]]


async def _deliveries(user: Principal, cursor: str | None) -> paging.Page[Any]:
    """What GET /m/v1/deliveries reads: the page, its lines and their batches, and each line as
    its batch stands now."""
    found, after = await deliveries.list_deliveries(
        principal=user, vessel_id=None, limit=PAGE, cursor=cursor
    )
    await deliveries.lines_now(found)
    return found, after


async def _alerts(user: Principal, cursor: str | None) -> paging.Page[Any]:
    """What GET /m/v1/alerts reads by default: the open alerts."""
    return await alerts.list_alerts(principal=user, open_only=True, limit=PAGE, cursor=cursor)


async def _deliveries_in_one_query(user: Principal, cursor: str | None) -> paging.Page[Any]:
    """The deliveries as `list_deliveries` read them before each reason had a read of its own:
    one query for the OR of the reasons (the same-run reference)."""
    query = Delivery.filter(paging.any_of(deliveries.delivery_reasons(user)))
    found, after = await paging.page(
        query.prefetch_related("lines__batch"), NEWEST_STARTED, limit=PAGE, cursor=cursor
    )
    await deliveries.lines_now(found)
    return found, after


async def _alerts_in_one_query(user: Principal, cursor: str | None) -> paging.Page[Any]:
    """The open alerts as `list_alerts` read them before it read each reason on its own: one
    query for the OR of the reasons, the planner choosing how (the same-run reference)."""
    query = Alert.filter(paging.any_of(alerts.reasons(user)), acknowledged_at=None)
    return await paging.page(query, alerts.NEWEST_RAISED, limit=PAGE, cursor=cursor)


async def _alerts_by_path_prefix(user: Principal, cursor: str | None) -> paging.Page[Any]:
    """The open alerts as `list_alerts` read them up to migration 0054: each reason on its own,
    a region's as a prefix of the path, whose index is ordered by path, so that the region's
    alerts were all read and sorted (the same-run reference)."""
    ways = [Q(organization_id=user.organization_id), Q(region_path__startswith=user.region_path)]
    query = Alert.filter(acknowledged_at=None)
    return await paging.page(query, alerts.NEWEST_RAISED, limit=PAGE, cursor=cursor, reasons=ways)


REFERENCE = "one_query:"
"""The readers timed as a reference, outside `list_*`, are named `how:user`; this one, the OR
of the reasons in one query."""
PATH_PREFIX = "path_prefix:"
"""The reference of a region's reason read as a prefix of the path."""
SPARSE_REGION = "sparse_manager"
"""The reader whose region's alerts are few and all old: a region's page used to grow with
the rows of other regions newer than theirs (`sparse_region_growth`)."""


def users(ids: dict[str, Any]) -> dict[str, tuple[Principal, Reader]]:
    """The seven readers, each with the service it reads through; the two managers again as
    the alerts were read before (`one_query:`), and the old district's as up to migration 0054
    (`path_prefix:`)."""
    port = Principal(0, "p", Role.port_operator, ids["port"], ids["town"])
    manager = Principal(0, "t", Role.manager, ids["office"], ids["town"])
    sparse = Principal(0, "s", Role.manager, ids["sparse_office"], ids["sparse_region"])
    closed = Principal(0, "q", Role.port_operator, ids["sparse_port"], ids["town"])
    return {
        "port": (port, _deliveries),
        "owner": (Principal(0, "o", Role.generator, ids["owner"], ids["town"]), _deliveries),
        "town_manager": (manager, _alerts),
        "port_alerts": (port, _alerts),
        "sparse_port": (closed, _deliveries),
        SPARSE_REGION: (sparse, _alerts),
        "admin": (Principal(0, "a", Role.admin, ids["office"], ids["city"]), _deliveries),
        f"{REFERENCE}town_manager": (manager, _alerts_in_one_query),
        f"{REFERENCE}sparse_port": (closed, _deliveries_in_one_query),
        f"{REFERENCE}{SPARSE_REGION}": (sparse, _alerts_in_one_query),
        f"{PATH_PREFIX}{SPARSE_REGION}": (sparse, _alerts_by_path_prefix),
    }


async def pages(url: str, readers: dict[str, tuple[Principal, Reader]]) -> dict[str, list[float]]:
    """Each reader's first and fifth page, in milliseconds."""
    times: dict[str, list[float]] = {name: [] for name in readers}
    async with db.database(url, pool_size=2):
        for user, read in readers.values():  # connect, and warm the caches
            await read(user, None)
        # As the service does after start-up (mobile_api.app): what is loaded by now lives as
        # long as the process, and a full collection walking it took 80-150 ms, inside a page.
        gc.collect()
        gc.freeze()
        for name, (user, read) in readers.items():
            cursor: str | None = None
            for number in range(1, 6):
                began = time.perf_counter()
                rows, cursor = await read(user, cursor)
                if number in (1, 5):
                    times[name].append((time.perf_counter() - began) * 1000)
                assert len(rows) == PAGE and cursor is not None, (name, number)
    return times


async def drop_indexes(url: str) -> None:
    """The tables as they were before migrations 0051, 0052 and 0054."""
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        for migration in INDEXED:
            await conn.execute(migration.DROP)
        for name in ("delivery", "delivery_line", "alert"):
            await conn.execute(f"ANALYZE {name}")
    finally:
        await conn.close()


Table = Callable[[str, int], Awaitable[tuple[str, dict[str, Any]]]]
"""Makes a fresh database of a given size on a server: its URL and its users' ids."""


async def measure(
    arguments: argparse.Namespace,
    table: Table,
    users: Callable[[dict[str, Any]], dict[str, tuple[Principal, Reader]]],
    drop_indexes: Callable[[str], Awaitable[None]],
) -> dict[str, Any]:
    """Both tables made by `table`, each user's pages timed on both, the tables taking turns
    round by round, with the indexes and after `drop_indexes`: `list_*` over every user but
    the references (named `how:user`), which have their figures by user."""
    work = Path(tempfile.mkdtemp(prefix="wastetrack-bench-lists-"))
    server_url = os.environ.get("WASTETRACK_DATABASE_URL") or db.start_embedded_server(work)
    result: dict[str, Any] = {"small": arguments.small, "large": arguments.large}
    made: dict[str, str] = {}
    readers: dict[str, dict[str, tuple[Principal, Reader]]] = {}
    times: dict[str, dict[str, dict[str, list[float]]]] = {}
    try:
        began = time.perf_counter()
        for size in ("small", "large"):
            made[size], ids = await table(server_url, getattr(arguments, size))
            readers[size] = users(ids)
        result["load_s"] = round(time.perf_counter() - began, 1)
        for phase in ("list", "unindexed_list"):
            if phase == "unindexed_list":
                for url in made.values():
                    await drop_indexes(url)
            spent = times[phase] = {"small": {}, "large": {}}
            for round_ in range(arguments.runs):
                # Each table goes first in every other round.
                for size in ("small", "large")[:: 1 if round_ % 2 == 0 else -1]:
                    for name, taken in (await pages(made[size], readers[size])).items():
                        spent[size].setdefault(name, []).extend(taken)
    finally:
        for url in made.values():
            await db.drop_database(url)
    for phase, spent in times.items():
        for size in ("small", "large"):
            every = [t for name, by_user in spent[size].items() if ":" not in name for t in by_user]
            result[f"{phase}_p50_ms_{size}"] = round(statistics.median(every), 2)
            result[f"{phase}_p95_ms_{size}"] = p95(every)
        result[f"{phase}_growth"] = round(
            result[f"{phase}_p95_ms_large"] / result[f"{phase}_p95_ms_small"], 2
        )
        result[f"{phase}_by_user_p95_ms"] = {
            name: {size: p95(spent[size][name]) for size in ("small", "large")}
            for name in spent["small"]
        }
    result["target"] = {"list_growth": "<= 2"}
    return result


def command_line(
    main: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]], doc: str | None
) -> None:
    """A list bench's command line (`--json`, `--small`, `--large`, `--runs`): runs `main`
    and prints its result."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20, help="rounds of pages per user")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    print(json.dumps(result) if arguments.json else json.dumps(result, indent=2))


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    result = await measure(arguments, table, users, drop_indexes)
    for how in ("", REFERENCE, PATH_PREFIX):
        by_size = result["list_by_user_p95_ms"][f"{how}{SPARSE_REGION}"]
        key = "_".join(filter(None, ["sparse_region_growth", how.rstrip(":")]))
        result[key] = round(by_size["large"] / by_size["small"], 2)
    return result


if __name__ == "__main__":
    command_line(main, __doc__)
