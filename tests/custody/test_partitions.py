"""The partitioned custody log: partitions made ahead, exactly-once through client_event, a
batch's chain read from one partition, and the migration that converts a log with events."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from tortoise import connections

from tests.custody.helpers import advance, post_event, tag_bag
from tests.factories import World, event, medical_bag
from wastetrack.core import db
from wastetrack.custody import partitions
from wastetrack.custody.models import ClientEvent, CustodyEvent

SPAN = 1_000_000


async def _set_batch_sequence(value: int) -> None:
    await connections.get("default").execute_query(
        "SELECT setval(pg_get_serial_sequence('batch', 'id'), $1)", [value]
    )


async def test_partitions_are_made_ahead_of_the_batch_ids_once(orm: list[str]) -> None:
    # Far beyond the ids the other tests reach, so that nothing there exists yet.
    await _set_batch_sequence(50 * SPAN + 5)
    made = await partitions.ensure_ahead(ahead=2)
    assert made == ["custody_event_p0050", "custody_event_p0051", "custody_event_p0052"]
    assert await partitions.ensure_ahead(ahead=2) == []  # already ahead: nothing made
    ranges = {(p.low, p.high) for p in await partitions.partitions()}
    assert {(50 * SPAN, 51 * SPAN), (51 * SPAN, 52 * SPAN), (52 * SPAN, 53 * SPAN)} <= ranges


async def test_an_event_beyond_the_last_partition_needs_the_job_first(
    client: httpx.AsyncClient, world: World
) -> None:
    last = (await partitions.partitions())[-1]
    await _set_batch_sequence(last.high + 10)
    bag = medical_bag()
    bag.pop("event_type")
    refused = await client.post("/m/v1/batches", json=bag, headers=world.headers("clinic"))
    # No partition for the row: the service's own condition, not a conflict; nothing is
    # written, and the phone is told to retry.
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "log_partition_missing"
    assert refused.headers["Retry-After"] == "30"
    assert await CustodyEvent.all().count() == 0
    assert await partitions.ensure_ahead(ahead=1)
    recorded = await client.post("/m/v1/batches", json=bag, headers=world.headers("clinic"))
    assert recorded.status_code == 201, recorded.text
    (stored,) = await CustodyEvent.all()
    assert stored.batch_id > last.high


async def test_the_service_role_can_make_partitions_but_not_empty_them(
    database_url: str, orm: list[str]
) -> None:
    role_url = await db.ensure_app_role(database_url, password="role-test-password-0123456789")
    conn = await asyncpg.connect(**db.credentials_from_url(role_url))
    try:
        await conn.execute("SELECT setval(pg_get_serial_sequence('batch', 'id'), $1)", 7 * SPAN)
        made = await conn.fetchval("SELECT wastetrack_custody_partitions_ahead(1)")
        assert "custody_event_p0008" in made
        for sql in (
            "TRUNCATE custody_event_p0000",
            "DELETE FROM custody_event_p0000",
            "DELETE FROM client_event",
            "CREATE TABLE custody_event_p9999 (LIKE custody_event)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    finally:
        await conn.close()


async def test_a_repeated_client_event_id_is_recorded_once(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = medical_bag()
    first = await client.post("/m/v1/sync", json={"events": [bag]}, headers=world.headers("clinic"))
    again = await client.post(
        "/m/v1/sync", json={"events": [bag, bag]}, headers=world.headers("clinic")
    )
    assert first.json()["results"][0]["status"] == "applied"
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    (claim,) = await ClientEvent.all()
    (stored,) = await CustodyEvent.all()
    assert (claim.client_event_id, claim.batch_id, claim.event_id) == (
        stored.client_event_id,
        stored.batch_id,
        stored.id,
    )


async def test_a_client_event_id_claimed_meanwhile_fails_the_whole_write(
    database_url: str, client: httpx.AsyncClient, world: World
) -> None:
    """What a concurrent resend meets: another transaction claims the id after this request
    looked it up; the write waits for it, then fails whole, and nothing of it is written. The
    post is tried once more on its own (wastetrack.custody.posts) and then finds the claim:
    here an event of other content, so a conflict (a resend of the same content is answered
    `duplicate`)."""
    other = await tag_bag(client, world)
    (taken,) = await CustodyEvent.filter(batch__code=other["code"])
    bag = medical_bag()
    bag.pop("event_type")
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        await conn.execute("BEGIN")
        await conn.execute(
            "INSERT INTO client_event VALUES ($1, $2, $3)",
            uuid.UUID(bag["client_event_id"]),
            taken.batch_id,
            taken.id,
        )
        posting = asyncio.create_task(
            client.post("/m/v1/batches", json=bag, headers=world.headers("clinic"))
        )
        for _ in range(500):  # until the request's write waits for the claim
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting or posting.done():
                break
            await asyncio.sleep(0.01)
        assert waiting == 1
        await conn.execute("COMMIT")
        response = await posting
    finally:
        await conn.close()
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["field"]) == ("conflict", "client_event_id")
    assert await CustodyEvent.all().count() == 1  # the other batch's tagging only
    assert await ClientEvent.all().count() == 2


async def test_a_chain_read_touches_one_partition(client: httpx.AsyncClient, world: World) -> None:
    await _set_batch_sequence(SPAN + 1)
    await partitions.ensure_ahead(ahead=1)
    batch = await tag_bag(client, world)
    batch_id = (await CustodyEvent.get(batch__code=batch["code"])).batch_id
    assert len(await partitions.partitions()) >= 3
    rows = await connections.get("default").execute_query_dict(
        "EXPLAIN (FORMAT JSON) SELECT * FROM custody_event WHERE batch_id = $1 ORDER BY seq",
        [batch_id],
    )
    plan = rows[0]["QUERY PLAN"]
    touched = {name for name in _relations(plan) if name.startswith("custody_event")}
    assert touched == {"custody_event_p0001"}


def _relations(plan: object) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.append(node["Relation Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(plan) if isinstance(plan, str) else plan)
    return found


def _migrate(url: str, target: str) -> subprocess.CompletedProcess[str]:
    # A separate process: Tortoise's migration runner re-initialises the global ORM state.
    script = (
        "import asyncio, sys\n"
        "from tortoise.migrations.api import migrate\n"
        "from wastetrack.core import db\n"
        "asyncio.run(migrate(config=db.tortoise_config(sys.argv[1], pool_size=2),"
        " target=sys.argv[2] or None))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, url, target],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def _kind(conn: asyncpg.Connection) -> str:
    """'r' for a plain table, 'p' for a partitioned one."""
    kind: str = await conn.fetchval(
        "SELECT relkind::text FROM pg_class WHERE relname = 'custody_event'"
    )
    return kind


async def _snapshot(conn: asyncpg.Connection) -> dict[str, object]:
    return {
        "events": [
            tuple(r) for r in await conn.fetch("SELECT * FROM custody_event ORDER BY batch_id, seq")
        ],
        "feed": await conn.fetchval("SELECT count(*) FROM change_log"),
    }


async def test_the_migration_converts_a_log_with_events_both_ways(
    database_url: str, client: httpx.AsyncClient, world: World
) -> None:
    bags = [await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)]
    bags.append(await tag_bag(client, world))
    await advance(client, world, bags[0]["code"], until="received")
    received = (await CustodyEvent.filter(batch__code=bags[0]["code"]).order_by("seq"))[-1]
    correction = event(
        "corrected", bags[0]["code"], minutes=80, corrects=str(received.id), weight_kg="3.9"
    )
    assert (await post_event(client, world, "facility", correction)).status_code == 201
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        before = await _snapshot(conn)
        claims = await conn.fetch("SELECT * FROM client_event ORDER BY client_event_id")
        down = _migrate(database_url, "wastetrack.0028_label_identifiers")
        assert down.returncode == 0, down.stderr
        assert await _kind(conn) == "r"  # a plain table again, the same rows
        assert await _snapshot(conn) == before
        up = _migrate(database_url, "")
        assert up.returncode == 0, up.stderr
        assert await _kind(conn) == "p"
        assert await _snapshot(conn) == before  # no row lost, no change fed twice
        assert await conn.fetch("SELECT * FROM client_event ORDER BY client_event_id") == claims
    finally:
        await conn.close()
    for bag in bags:
        verdict = await client.get(
            f"/m/v1/batches/{bag['code']}/verify", headers=world.headers("clinic")
        )
        assert verdict.json()["valid"] is True, verdict.text
    resend = await post_event(client, world, "facility", correction)
    assert resend.status_code == 200 and resend.json()["status"] == "duplicate"


def test_a_new_database_has_partitions_ahead_and_the_command_lists_them(
    server_url: str, tmp_path: Path
) -> None:
    url = db.with_database(server_url, f"wastetrack_parts_{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "WASTETRACK_DATABASE_URL": url, "WASTETRACK_DATA_DIR": str(tmp_path)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "wastetrack.cli", "custody-partitions"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        listed = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        asyncio.run(db.drop_database(url))
    assert listed["made"] == []  # the migration made them
    assert listed["partitions"] == [
        ["custody_event_p0000", 0, SPAN],
        ["custody_event_p0001", SPAN, 2 * SPAN],
        ["custody_event_p0002", 2 * SPAN, 3 * SPAN],
    ]
