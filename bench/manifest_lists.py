"""List speed for transfer manifests, which a user may read for up to four reasons (its
producer, its receiver, a leg's carrier, a manager's region), on a small and on a large table,
side by side in the same run.

    python bench/manifest_lists.py --json [--small 10000] [--large 1000000]

Makes two databases on one server, each with a city (22 towns of 8 villages), 100 enterprises in
the towns, 10 carriers, 5 treatment facilities and an office per town, then records `--small`
manifests in one and `--large` in the other, each for a producer drawn at random (the first
enterprise takes one in twenty besides its share), a facility drawn at random, one leg (one in
five: two) by carriers drawn at random. Before them, an old producer's manifests, 3 % of a
table's (at least 300), so that they have the lowest ids: the list is ordered by id, and the old
producer's page lies at its far end. It vacuums and analyzes as autovacuum would, then times for
six users — the first enterprise, a carrier, a facility, the manager of the first enterprise's
town, the old producer and an administrator — the first page of 50 and the fifth (following the
cursor) as `GET /m/v1/manifests` reads them (`list_manifests`, with each manifest's legs,
discrepancies and revisions; the bench records none of the latter two, so those reads find
none), the databases taking turns round by round. Alongside, as a reference outside `list_*`,
the town manager and the old producer as the list was read up to migration 0053 (`one_query:`:
the OR of the reasons in one query, the carriers through a join of the legs, made distinct).
Then it drops the indexes of migrations 0053 and 0054 (a region's) and times the same pages
again (`unindexed_*`).

A carrier's reason goes through the legs (a subquery): the planner reads either all of the
carrier's legs and sorts their manifests, or walks the manifests newest first and looks each
up among the legs. The seeding skips foreign-key triggers (`session_replication_role`), so an
external server (`WASTETRACK_DATABASE_URL`) needs a superuser.

Prints one JSON object with `list_p95_ms` on each table, per user, and `list_growth` = large ÷
small (target: <= 2, as for the batch list in bench/lists.py), and the same without the indexes.
"""

import argparse
import importlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from port_lists import PAGE, REFERENCE, SPARSE_SHARE, Reader, command_line, measure
from rollup import ancestor, region_id, seed_registry
from tortoise.expressions import Q

from wastetrack.auth.models import Role
from wastetrack.core import db, paging
from wastetrack.core.principal import Principal
from wastetrack.manifests import queries as manifests
from wastetrack.manifests.models import Manifest

INDEXED = [
    importlib.import_module(f"migrations.{name}")
    for name in ("0053_manifest_list_indexes", "0054_region_subtree_indexes")
]
START = datetime(2023, 12, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
ENTERPRISES, CARRIERS, FACILITIES = 100, 10, 5

# Organizations of `$2` kind, `$3` of them, in the towns `$1` (ids), named `$2` and a number.
ORGANIZATIONS = """
INSERT INTO organization (name, kind, region_id, created_at)
SELECT $2 || ' ' || g, $2, ($1::int[])[1 + g % cardinality($1::int[])], now()
FROM generate_series(1, $3::int) AS g
"""
# Manifests `$1`..`$2`, made at `$3` + (g - 1) × `$4`, by a producer drawn from `$5` (ids; the
# first takes one in twenty more) with its region path `$6`, received by one of `$7`, drafted by
# user `$8`; then (`LEGS`) one leg each (one in five, two) by carriers drawn from `$3`.
# Consistent by construction, so the foreign-key triggers are skipped.
MANIFESTS = """
INSERT INTO manifest (id, number, state, producer_id, region_path, category_id, waste_code,
                      waste_name, hazard, physical_form, packaging, quantity_kg,
                      emergency_measures, batch_codes, receiver_id, created_by_id, created_at)
SELECT g, lpad(g::text, 14, '0'), 'accepted', ($5::int[])[p.i], ($6::text[])[p.i], 'hw.08',
       '900-249-08', '废机油', '["T", "I"]', '液态', '200L铁桶×4', 800, '泄漏时围堵',
       '[]', ($7::int[])[1 + floor(random() * cardinality($7::int[]))::int], $8,
       $3::timestamptz + (g - 1) * $4::interval
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT CASE WHEN random() < 0.05 THEN 1
                          ELSE 1 + floor(random() * cardinality($5::int[]))::int END + 0 * g
              AS i) AS p
"""
LEGS = """
INSERT INTO manifest_leg (manifest_id, seq, carrier_id, vehicle_plate, permit_number)
SELECT m.id, s, ($3::int[])[1 + floor(random() * cardinality($3::int[]))::int + 0 * m.id * s],
       '鲁K12345', '鲁危运001'
FROM manifest m, generate_series(1, 2) AS s
WHERE m.id BETWEEN $1 AND $2 AND (s = 1 OR random() < 0.2)
"""


async def organizations(conn: asyncpg.Connection, kind: str, towns: list[int], count: int) -> Any:
    """`count` organizations of `kind` in `towns`: their ids and region paths, by id."""
    await conn.execute(ORGANIZATIONS, towns, kind, count)
    return await conn.fetch(
        "SELECT o.id, r.path FROM organization o JOIN region r ON r.id = o.region_id"
        " WHERE o.kind = $1 ORDER BY o.id",
        kind,
    )


async def table(server_url: str, rows: int) -> tuple[str, dict[str, Any]]:
    """A fresh database with the registry and `rows` manifests (and the old producer's); its
    URL and the ids of the users' organizations and regions."""
    url = db.with_database(server_url, f"wastetrack_manifest_lists_{uuid.uuid4().hex[:8]}")
    await db.migrate(url)
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        await conn.execute("SELECT setseed(0.2026)")
        villages, orgs = await seed_registry(conn)
        towns = sorted({ancestor(path, 2) for path in villages})
        town_ids = [region_id(path) for path in towns]
        makers = await organizations(conn, "enterprise", town_ids, ENTERPRISES)
        carriers = await organizations(conn, "carrier", town_ids, CARRIERS)
        plants = await organizations(conn, "treatment_facility", town_ids, FACILITIES)
        offices = await organizations(conn, "authority", town_ids, len(town_ids))
        # The old producer: an enterprise of the last town whose manifests come first.
        old = (await organizations(conn, "enterprise", town_ids[-1:], 1))[-1]
        sparse = max(6 * PAGE, int(rows * SPARSE_SHARE))
        plant_ids = [p["id"] for p in plants]
        carrier_ids = [c["id"] for c in carriers]
        for first, last, start, step, producers in (
            (1, sparse, START, SPAN / 10 / sparse, [old]),
            (sparse + 1, sparse + rows, START, SPAN / rows, makers),
        ):
            await conn.execute("SET session_replication_role = replica")
            await conn.execute(
                MANIFESTS,
                first,
                last,
                start,
                step,
                [p["id"] for p in producers],
                [p["path"] for p in producers],
                plant_ids,
                orgs["user"],
            )
            await conn.execute(LEGS, first, last, carrier_ids)
            await conn.execute("SET session_replication_role = DEFAULT")
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('manifest', 'id'),"
            " (SELECT max(id) FROM manifest))"
        )
        for name in ("manifest", "manifest_leg"):
            await conn.execute(f"VACUUM ANALYZE {name}")
        town = makers[0]["path"]
        office = next(o["id"] for o in offices if o["path"] == town)
        return url, {
            "maker": makers[0]["id"],
            "carrier": carrier_ids[0],
            "plant": plant_ids[0],
            "office": office,
            "town": town,
            "city": ancestor(town, 1),
            "old": old["id"],
        }
    finally:
        await conn.close()


async def _manifests(user: Principal, cursor: str | None) -> paging.Page[Any]:
    """What GET /m/v1/manifests reads: the page with each manifest's legs, discrepancies and
    revisions."""
    return await manifests.list_manifests(
        principal=user, discrepant=False, limit=PAGE, cursor=cursor
    )


async def _manifests_in_one_query(user: Principal, cursor: str | None) -> paging.Page[Any]:
    """The manifests as `list_manifests` read them up to migration 0053: one query for the OR
    of the reasons, a carrier's through a join of the legs, made distinct (the same-run
    reference)."""
    org = user.organization_id
    scope = Q(producer_id=org) | Q(receiver_id=org) | Q(legs__carrier_id=org)
    if user.sees_region:
        scope |= Q(region_path__startswith=user.region_path)
    query = Manifest.filter(scope).distinct()
    query = query.prefetch_related("legs", "discrepancies", "revisions")
    return await paging.page(query, paging.NEWEST_ID, limit=PAGE, cursor=cursor)


def users(ids: dict[str, Any]) -> dict[str, tuple[Principal, Reader]]:
    """The six readers, and the town manager and the old producer again as the list was read
    before (`one_query:`)."""
    manager = Principal(0, "t", Role.manager, ids["office"], ids["town"])
    old = Principal(0, "s", Role.generator, ids["old"], ids["town"])
    return {
        "maker": (Principal(0, "m", Role.generator, ids["maker"], ids["town"]), _manifests),
        "carrier": (Principal(0, "c", Role.carrier, ids["carrier"], ids["town"]), _manifests),
        "plant": (
            Principal(0, "p", Role.facility_operator, ids["plant"], ids["town"]),
            _manifests,
        ),
        "town_manager": (manager, _manifests),
        "old_producer": (old, _manifests),
        "admin": (Principal(0, "a", Role.admin, ids["office"], ids["city"]), _manifests),
        f"{REFERENCE}town_manager": (manager, _manifests_in_one_query),
        f"{REFERENCE}old_producer": (old, _manifests_in_one_query),
    }


async def drop_indexes(url: str) -> None:
    """The tables as they were before migrations 0053 and 0054."""
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        for migration in INDEXED:
            await conn.execute(migration.DROP)
        for name in ("manifest", "manifest_leg"):
            await conn.execute(f"ANALYZE {name}")
    finally:
        await conn.close()


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    return await measure(arguments, table, users, drop_indexes)


if __name__ == "__main__":
    command_line(main, __doc__)
