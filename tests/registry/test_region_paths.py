"""A region's path is written with the region, and the database holds every path to its form
(migration 0055), after rewriting the placeholder paths an interrupted write could leave."""

import importlib

import asyncpg
import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from tests.factories import World
from wastetrack.audit.models import AuditEntry
from wastetrack.core import db, regions
from wastetrack.registry import identities
from wastetrack.registry import service as registry
from wastetrack.registry.models import Region, RegionLevel

MIGRATION = importlib.import_module("migrations.0055_region_path_check")


async def test_a_region_is_written_once_with_its_path(world: World) -> None:
    city, town = world.regions["city"], world.regions["town"]
    village = await registry.create_region(
        code="371082001002", name="二村", level=RegionLevel.village, parent_id=town.id
    )
    assert (city.path, town.path) == (f"/{city.id}/", f"/{city.id}/{town.id}/")
    assert village.path == f"/{city.id}/{town.id}/{village.id}/"
    assert (await Region.get(id=village.id)).path == village.path
    entry = await AuditEntry.get(action="region.created", subject_id=str(village.id))
    assert entry.region_path == village.path


@pytest.mark.parametrize(
    "path",
    [
        "/",  # the placeholder an interrupted write left
        "{city}",  # no slash at the end
        "/{city}/",  # a town's path must end in its own id, not its parent's
        "/{city}/1{own}/",  # nor in an id that merely ends in its own digits
        "/{city}/x/",
        "/{city}//{own}/",
        "/{city}/{own}/ ",
    ],
)
async def test_the_database_refuses_a_path_out_of_form(world: World, path: str) -> None:
    city = world.regions["city"].id
    conn = connections.get("default")
    (own,) = (await conn.execute_query(regions.NEXT_ID))[1][0]
    with pytest.raises(IntegrityError, match="region_path_format"):
        await conn.execute_query(
            "INSERT INTO region (id, code, name, level, parent_id, path)"
            " VALUES ($1, '371082009', 'x', 'town', $2, $3)",
            [own, city, path.format(city=city, own=own)],
        )


async def test_the_database_takes_a_path_in_form(world: World) -> None:
    city = world.regions["city"].id
    conn = connections.get("default")
    (own,) = (await conn.execute_query(regions.NEXT_ID))[1][0]
    await conn.execute_query(
        "INSERT INTO region (id, code, name, level, parent_id, path)"
        " VALUES ($1, '371082009', 'x', 'town', $2, $3)",
        [own, city, f"/{city}/{own}/"],
    )
    assert (await Region.get(id=own)).path == f"/{city}/{own}/"


async def test_the_path_rule_is_the_one_the_migration_checks() -> None:
    (_, constraint) = MIGRATION.Migration.operations
    assert constraint.constraint.check == regions.path_check_sql()
    assert regions.PATH.fullmatch(regions.path_of(17, "/1/4/"))
    assert regions.path_of(1, None) == "/1/"
    # The repair puts back 0025's check on codes, which the model states.
    assert MIGRATION.CODE_CHECK == identities.region_code_check_sql()


@pytest.mark.parametrize("old_code", [None, "R-OLD"])
async def test_the_migration_rewrites_placeholder_paths_from_the_chain(
    database_url: str, old_code: str | None
) -> None:
    """0055's repair, replayed in a rolled-back transaction on a database holding regions an
    interrupted write left: a town at "/", and a village made under it at "/<its id>/"; the
    city's good path stays, and the CHECK then holds. With a region from before 0025 whose
    code breaks 0025's NOT VALID check (and whose path is the placeholder too), the repair
    still runs and leaves that check NOT VALID; without one, validated."""
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE region DROP CONSTRAINT region_path_format")
            old = None
            if old_code:
                await conn.execute("ALTER TABLE region DROP CONSTRAINT region_code_format")
                old = await conn.fetchval(
                    "INSERT INTO region (code, name, level, path) VALUES ($1, 'o', 'city', '/')"
                    " RETURNING id",
                    old_code,
                )
                await conn.execute(
                    "ALTER TABLE region ADD CONSTRAINT region_code_format"
                    f" CHECK ({MIGRATION.CODE_CHECK}) NOT VALID"
                )
            city = await conn.fetchval(
                "INSERT INTO region (code, name, level, path) VALUES ('371098', 'c', 'city', '/')"
                " RETURNING id"
            )
            await conn.execute("UPDATE region SET path = '/' || id || '/' WHERE id = $1", city)
            town = await conn.fetchval(
                "INSERT INTO region (code, name, level, parent_id, path)"
                " VALUES ('371098001', 't', 'town', $1, '/') RETURNING id",
                city,
            )
            village = await conn.fetchval(
                "INSERT INTO region (code, name, level, parent_id, path)"
                " VALUES ('371098001201', 'v', 'village', $1, '/') RETURNING id",
                town,
            )
            await conn.execute("UPDATE region SET path = '/' || id || '/' WHERE id = $1", village)
            await conn.execute(MIGRATION.REPAIR)
            paths = dict(await conn.fetch("SELECT id, path FROM region"))
            validated = await conn.fetchval(
                "SELECT convalidated FROM pg_constraint WHERE conname = 'region_code_format'"
            )
            (_, constraint) = MIGRATION.Migration.operations
            await conn.execute(
                f"ALTER TABLE region ADD CONSTRAINT region_path_format"
                f" CHECK ({constraint.constraint.check})"
            )
            raise _RollBack
    except _RollBack:
        pass
    finally:
        await conn.close()
    assert paths == {
        city: f"/{city}/",
        town: f"/{city}/{town}/",
        village: f"/{city}/{town}/{village}/",
        **({old: f"/{old}/"} if old else {}),
    }
    assert validated is (old_code is None)


class _RollBack(Exception):
    pass
