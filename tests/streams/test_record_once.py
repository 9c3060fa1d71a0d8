"""Record-once, shared by every stream record: a resend is answered from the stored record,
even one that races the first send; and one evidence check for the photos a record names."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest

from tests.factories import World
from tests.ports.test_ports import cleanup, float_replacement
from wastetrack.core import db
from wastetrack.evidence.models import Photo, PhotoHolder
from wastetrack.ports.models import CleanUp, FloatReplacement


async def stored_photo(world: World, who: str, sha256: str) -> str:
    """A photo as its upload leaves it in the database (the file itself is not looked at)."""
    user = world.users[who]
    await Photo.create(
        sha256=sha256,
        content_type="image/png",
        size_bytes=1,
        width=1,
        height=1,
        uploaded_by=user,
        organization_id=user.organization_id,
    )
    await PhotoHolder.create(photo_id=sha256, organization_id=user.organization_id)
    return sha256


@asynccontextmanager
async def inserts_held(database_url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold every INSERT into `table` until the block ends (SELECTs still run)."""
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            yield conn
    finally:
        await conn.close()


async def waiting_on_locks(conn: asyncpg.Connection, count: int) -> None:
    """Until `count` other sessions wait on a lock: each has passed its repeat check."""
    for _ in range(500):
        # Within a transaction the activity view is a snapshot unless cleared.
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} sessions never came to wait on a lock")


@pytest.mark.parametrize(
    ("second_changes", "second_status"),
    [({}, 200), ({"participants": 26}, 409)],
    ids=["same_content_is_a_duplicate", "other_content_is_a_conflict"],
)
async def test_a_resend_racing_the_first_send_is_answered_as_a_resend(
    client: httpx.AsyncClient,
    world: World,
    database_url: str,
    second_changes: dict[str, object],
    second_status: int,
) -> None:
    body = cleanup(world)
    async with inserts_held(database_url, "cleanup") as conn:
        sends = asyncio.gather(
            client.post("/m/v1/cleanups", json=body, headers=world.headers("port")),
            client.post(
                "/m/v1/cleanups",
                json={**body, **second_changes},
                headers=world.headers("port"),
            ),
        )
        # Both sends are past their repeat check, one held at the clean-up INSERT and the
        # other behind it on the rows the first wrote: neither has seen the other's record.
        await waiting_on_locks(conn, 2)
    statuses = sorted(r.status_code for r in await sends)
    assert statuses == sorted([201, second_status]), [r.text for r in sends.result()]
    first, second = sorted(sends.result(), key=lambda r: r.status_code != 201)
    if second_status == 200:
        assert second.json()["id"] == first.json()["id"]
    else:
        assert second.json()["field"] == "client_event_id"
    assert await CleanUp.all().count() == 1


async def test_a_tally_resent_while_its_first_send_is_held_is_counted_once(
    client: httpx.AsyncClient, world: World, database_url: str
) -> None:
    body = float_replacement(world)
    async with inserts_held(database_url, "float_replacement") as conn:
        sends = asyncio.gather(
            *(
                client.post("/m/v1/float-replacements", json=body, headers=world.headers("port"))
                for _ in range(2)
            )
        )
        await waiting_on_locks(conn, 2)  # both past their repeat check, held at the INSERT
    responses = await sends
    # One made it, the other found it made: answered with it (200).
    assert sorted(r.status_code for r in responses) == [200, 201], [r.text for r in responses]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert await FloatReplacement.all().count() == 1


async def test_a_cleanup_names_the_first_photo_not_uploaded(
    client: httpx.AsyncClient, world: World
) -> None:
    stored = await stored_photo(world, "port", "a" * 64)
    refused = await client.post(
        "/m/v1/cleanups",
        json=cleanup(world, photos=[stored, "b" * 64, "c" * 64]),
        headers=world.headers("port"),
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "photos[1]"
    assert "upload the photo" in refused.json()["detail"]
    kept = await client.post(
        "/m/v1/cleanups", json=cleanup(world, photos=[stored]), headers=world.headers("port")
    )
    assert kept.status_code == 201, kept.text
