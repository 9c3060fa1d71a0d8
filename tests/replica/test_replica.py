"""A read replica on one machine: the dashboard, metrics and exports read the standby; writes,
reads inside a write transaction and the phone's own reads stay on the primary; /readyz reports
the lag and stays ready."""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from mobile_api.app import create_app
from tests.custody.helpers import tag_bag
from tests.factories import World
from wastetrack.core import replica
from wastetrack.core.db import credentials_from_url
from wastetrack.core.settings import Settings

METRIC = "/m/v1/metrics/utilization"
EXPORT = {"format": "csv"}


@pytest.fixture
async def on_replica(standby: str) -> AsyncIterator[str]:
    """Reads marked for the replica go to the standby for the test (as with the setting)."""
    async with replica.serving(standby, pool_size=2):
        yield standby


async def replayed(admin: asyncpg.Connection) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    target = await replica.primary_lsn(connections.get("default"))
    for _ in range(200):
        done = await admin.fetchval("SELECT pg_last_wal_replay_lsn()::text")
        if replica.lsn_value(done) >= target:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the standby did not catch up within 10 s")


async def paused(admin: asyncpg.Connection) -> None:
    await admin.execute("SELECT pg_wal_replay_pause()")
    for _ in range(100):
        if await admin.fetchval("SELECT pg_get_wal_replay_pause_state()") == "paused":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("replay did not pause")


def page(response: httpx.Response) -> str:
    """The page without its per-response CSP nonce."""
    assert response.status_code == 200, response.text
    return re.sub(r'nonce="[^"]*"', "", response.text)


def manager(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    # The dashboard takes the same access token in its cookie.
    client.cookies.set("wt_session", world.tokens["manager"])
    return world.headers("manager")


async def test_dashboard_metrics_and_exports_read_the_replica_and_writes_the_primary(
    client: httpx.AsyncClient, world: World, on_replica: str, replica_admin: asyncpg.Connection
) -> None:
    headers = manager(client, world)
    await tag_bag(client, world, quantity="4")
    await replayed(replica_admin)
    before = await client.get(METRIC, headers=headers)
    assert before.status_code == 200, before.text
    before_csv = await client.get(METRIC, params=EXPORT, headers=headers)
    before_page = page(await client.get("/dashboard"))

    await paused(replica_admin)
    late = await tag_bag(client, world, quantity="7")  # written on the primary
    # The phone reads back what it recorded: a write-path read, on the primary.
    own = await client.get(f"/m/v1/batches/{late['code']}", headers=world.headers("clinic"))
    assert own.status_code == 200, own.text
    assert not await replica_admin.fetchval(
        "SELECT count(*) FROM batch WHERE code = $1", late["code"]
    )
    # The replica has not replayed it: the dashboard, the metric and its export do not see it.
    stale = await client.get(METRIC, headers=headers)
    assert stale.json() == before.json()
    assert (await client.get(METRIC, params=EXPORT, headers=headers)).text == before_csv.text
    assert page(await client.get("/dashboard")) == before_page

    await replica_admin.execute("SELECT pg_wal_replay_resume()")
    await replayed(replica_admin)
    fresh = await client.get(METRIC, headers=headers)
    assert fresh.json() != before.json()
    generated = {s["stream"]: s["generated_kg"] for s in fresh.json()["streams"]}
    old = {s["stream"]: s["generated_kg"] for s in before.json()["streams"]}
    assert float(generated["medical"]) == float(old["medical"]) + 7
    assert page(await client.get("/dashboard")) != before_page


async def test_without_a_replica_the_same_routes_read_the_primary(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = manager(client, world)
    before = await client.get(METRIC, headers=headers)
    await tag_bag(client, world, quantity="7")
    after = await client.get(METRIC, headers=headers)
    old = {s["stream"]: s["generated_kg"] for s in before.json()["streams"]}
    new = {s["stream"]: s["generated_kg"] for s in after.json()["streams"]}
    assert float(new["medical"]) == float(old.get("medical", 0)) + 7


async def test_reads_inside_a_transaction_stay_on_the_primary(
    world: World, on_replica: str
) -> None:
    async with replica.reading() as outside:
        (row,) = await connections.get("default").execute_query_dict(
            "SELECT pg_is_in_recovery() AS standby"
        )
    assert outside and row["standby"]
    async with in_transaction(), replica.reading() as inside:
        (row,) = await connections.get("default").execute_query_dict(
            "SELECT pg_is_in_recovery() AS standby"
        )
    assert not inside and not row["standby"]


async def test_readyz_reports_the_lag_and_stays_ready_when_the_replica_lags(
    settings: Settings,
    orm: list[str],
    world: World,
    client: httpx.AsyncClient,
    on_replica: str,
    replica_admin: asyncpg.Connection,
) -> None:
    await replayed(replica_admin)
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["replica"]["configured"] and ready["replica"]["state"] == "ok"
    assert ready["replica"]["lag_seconds"] == 0

    strict = create_app(
        settings.model_copy(update={"replica_max_lag_seconds": 0.001}), manage_database=False
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=strict), base_url="http://testserver"
    ) as strict_client:
        await paused(replica_admin)
        await asyncio.sleep(0.05)
        await tag_bag(client, world, quantity="1")
        lagging = await strict_client.get("/readyz")
    assert lagging.status_code == 200
    body = lagging.json()
    assert body["status"] == "degraded"
    assert body["replica"]["state"] == "degraded"
    assert body["replica"]["replay_paused"] is True
    assert body["replica"]["lag_bytes"] > 0 and body["replica"]["lag_seconds"] > 0


async def test_an_unreachable_replica_degrades_readyz_and_reads_fall_back_to_the_primary(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    headers = manager(client, world)
    async with replica.serving(f"postgresql://postgres@:5999/none?host={tmp_path}"):
        await tag_bag(client, world, quantity="7")
        metric = await client.get(METRIC, headers=headers)
        ready = await client.get("/readyz")
    assert metric.status_code == 200
    assert {s["stream"]: float(s["generated_kg"]) for s in metric.json()["streams"]}["medical"] == 7
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["replica"] == {
        "configured": True,
        "state": "degraded",
        "error": "unreachable",
    }


async def test_starting_again_reuses_the_running_standby(
    server_url: str, database_url: str, standby: str, standby_dir: Path
) -> None:
    where = {
        "primary_url": server_url,
        "pgdata": standby_dir,
        "database": credentials_from_url(database_url)["database"],
        "user": "postgres",
    }
    again = await replica.start(**where)
    assert again == {"replica_url": standby, "created": False, "started": False}
    status = await replica.status(**where)
    assert status["running"] and status["standby"] and status["replica_url"] == standby
    assert status["lag_bytes"] >= 0


async def test_a_fresh_lag_after_an_idle_spell_is_not_read_as_the_idle_time(
    orm: list[str],
    world: World,
    client: httpx.AsyncClient,
    standby: str,
    replica_admin: asyncpg.Connection,
) -> None:
    async with replica.serving(standby, pool_size=2):
        await replayed(replica_admin)
        await asyncio.sleep(2)  # no commit meanwhile: the last one replayed is 2 s old
        checked = time.time()
        caught_up = await replica.health(max_lag_seconds=30)
        assert caught_up["lag_bytes"] == 0 and caught_up["lag_seconds"] == 0

        await paused(replica_admin)
        await tag_bag(client, world, quantity="1")  # not replayed
        lagging = await replica.health(max_lag_seconds=30)
        assert lagging["lag_bytes"] > 0
        # Not the 2 s since the last replayed commit: no more than since it was seen caught up.
        assert 0 < lagging["lag_seconds"] <= time.time() - checked + 0.001  # rounded to ms


async def test_reads_go_to_the_primary_while_the_replica_lags_too_far(
    orm: list[str],
    world: World,
    client: httpx.AsyncClient,
    standby: str,
    replica_admin: asyncpg.Connection,
) -> None:
    async def reads_the_replica() -> bool:
        async with replica.reading() as on_replica:
            (row,) = await connections.get("default").execute_query_dict(
                "SELECT pg_is_in_recovery() AS standby,"
                " current_setting('transaction_isolation') AS isolation,"
                " current_setting('transaction_read_only') AS read_only"
            )
        assert on_replica == row["standby"]
        if on_replica:  # a read-only snapshot from BEGIN on
            assert (row["isolation"], row["read_only"]) == ("repeatable read", "on")
        return on_replica

    async with replica.serving(standby, pool_size=2, max_lag_seconds=0.5):
        await replayed(replica_admin)
        assert await reads_the_replica()

        await paused(replica_admin)
        await tag_bag(client, world, quantity="1")
        await asyncio.sleep(0.6)
        assert (await replica.health(max_lag_seconds=0.5))["state"] == "degraded"
        assert not await reads_the_replica()  # by the verdict just taken, without asking again

        await replica_admin.execute("SELECT pg_wal_replay_resume()")
        await replayed(replica_admin)
        assert (await replica.health(max_lag_seconds=0.5))["state"] == "ok"
        assert await reads_the_replica()
