"""GET /m/v1/batches: the keyset-paginated list reads per-party indexes and lists exactly the
batches the user may see."""

import re

import httpx
import pytest
from tortoise.transactions import in_transaction

from tests.custody.helpers import advance, tag_bag
from tests.factories import World
from wastetrack.auth import service as auth
from wastetrack.batches import service as batches

ROLES = ["clinic", "other_clinic", "carrier", "facility", "town_manager", "manager", "admin"]


@pytest.fixture
async def chains(client: httpx.AsyncClient, world: World) -> None:
    """Bags of two clinics, some carried to the facility, one of them treated."""
    carrier = world.orgs["carrier"].id
    for who in ("clinic", "other_clinic", "clinic"):
        await tag_bag(client, world, who)
    moving = await tag_bag(client, world, carrier_organization_id=carrier)
    await advance(client, world, moving["code"], until="in_transit")
    done = await tag_bag(client, world, "other_clinic", carrier_organization_id=carrier)
    await advance(client, world, done["code"], until="treated")


async def listed(client: httpx.AsyncClient, world: World, who: str, **params: str) -> list[str]:
    codes: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/m/v1/batches", params=query, headers=world.headers(who))
        assert response.status_code == 200, response.text
        codes += [b["code"] for b in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return codes


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("state", [None, "in_transit"])
async def test_the_list_pages_through_exactly_the_visible_batches(
    client: httpx.AsyncClient, world: World, chains: None, who: str, state: str | None
) -> None:
    principal = await auth.principal_for(world.users[who])
    expected = batches.visible_batches(principal).order_by("-created_at", "-id")
    if state:
        expected = expected.filter(state=state)
    codes = [b.code for b in await expected]
    assert await listed(client, world, who, **({"state": state} if state else {})) == codes


@pytest.mark.parametrize("who", ["clinic", "town_manager"])
async def test_the_list_query_reads_indexes_not_the_table(
    world: World, chains: None, who: str
) -> None:
    principal = await auth.principal_for(world.users[who])
    sql, params = batches.page_query(principal, limit=51, cursor=None, state=None)
    async with in_transaction() as conn:
        # A handful of rows, so the planner may rightly read the whole table or walk the city-wide
        # (created_at, id) index and filter. Rule both out, inside a transaction that is rolled
        # back, so the plan shows whether each part of the query has an index of its own.
        await conn.execute_query("SET LOCAL enable_seqscan = off")
        await conn.execute_query("SET LOCAL lock_timeout = '10s'")
        await conn.execute_query("DROP INDEX batch_keyset_idx")
        rows = await conn.execute_query_dict(f"EXPLAIN {sql}", params)
        await conn.rollback()
    plan = "\n".join(row["QUERY PLAN"] for row in rows)
    assert "Seq Scan" not in plan, plan
    # One read per way of seeing a batch, each stopping after a page, merged.
    assert plan.count("->  Limit") == len(batches.reasons(principal)), plan
    for index in ("producer", "holder", "carrier", "destination"):
        assert f"batch_{index}_keyset_idx" in plan, plan
    if who == "town_manager":
        # Their town's batches, newest first from the region's index: no sort of the town's.
        assert re.search(
            r"->  Limit .*\n\s*->  Index (Only )?Scan Backward using batch_region_town_keyset_idx",
            plan,
        ), plan
