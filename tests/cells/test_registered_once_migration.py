"""Migration 0039: cells registered twice before the constraint are made one."""

import importlib
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from tortoise.transactions import in_transaction

from tests.factories import World
from wastetrack.cells import service as cells
from wastetrack.cells.models import Cell, CellAssessment

once = importlib.import_module("migrations.0039_cell_once")


class RolledBack(Exception):
    """Ends the test's transaction: the dropped constraint comes back."""


async def test_a_resent_registration_is_merged_and_another_place_renamed(world: World) -> None:
    village = world.regions["village"]
    port = world.orgs["port"].id
    found: dict[str, object] = {}
    with pytest.raises(RolledBack):
        async with in_transaction() as conn:
            await conn.execute_script(
                "DO $$ DECLARE c text; BEGIN SELECT conname INTO c FROM pg_constraint"
                " WHERE conrelid = 'zero_waste_cell'::regclass AND contype = 'u';"
                " EXECUTE format('ALTER TABLE zero_waste_cell DROP CONSTRAINT %I', c); END $$;"
            )
            made = [
                await Cell.create(
                    cell_type="community",
                    name=name,
                    region_id=village.id,
                    region_path=village.path,
                    organization_id=organization,
                    using_db=conn,
                )
                for name, organization in (
                    ("北山社区", None),
                    ("北山社区 ", None),  # the resend, stored untrimmed by another path
                    ("北山社区", port),  # another place by the same name
                    ("南山社区", None),
                )
            ]
            await CellAssessment.create(
                cell_id=made[1].id,
                level="county",
                assessed_on=date(2025, 1, 10),
                expires_on=cells.expiry(date(2025, 1, 10)),
                scores={},
                total=Decimal(90),
                tier="achieved",
                assessor_id=world.users["manager"].id,
                using_db=conn,
            )
            await once.merge_registered_twice(None, SimpleNamespace(client=conn))
            found["cells"] = (
                await Cell.all().using_db(conn).order_by("id").values_list("id", "name")
            )
            found["assessed"] = (
                await CellAssessment.all().using_db(conn).values_list("cell_id", flat=True)
            )
            found["ids"] = [c.id for c in made]
            raise RolledBack
    ids = found["ids"]
    assert isinstance(ids, list)
    assert found["cells"] == [
        (ids[0], "北山社区"),
        (ids[2], f"北山社区 ({ids[2]})"),
        (ids[3], "南山社区"),
    ]
    assert found["assessed"] == [ids[0]]
