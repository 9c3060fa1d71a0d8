"""/healthz answers while the process lives; /readyz only when the database is usable."""

import httpx
from tortoise import connections
from tortoise.backends.asyncpg import AsyncpgDBClient

from wastetrack.core import observability


async def test_ready_when_migrations_are_applied(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "migrations": len(observability.migrations_on_disk()),
        "replica": {"configured": False},
    }


async def test_not_ready_while_a_migration_is_pending(client: httpx.AsyncClient) -> None:
    db = connections.get("default")
    last = max(observability.migrations_on_disk())
    await db.execute_query(
        "DELETE FROM tortoise_migrations WHERE app = 'wastetrack' AND name = $1", [last]
    )
    try:
        response = await client.get("/readyz")
    finally:
        await db.execute_query(
            "INSERT INTO tortoise_migrations (app, name, applied_at)"
            " VALUES ('wastetrack', $1, now())",
            [last],
        )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["field"] == "migrations"
    assert body["pending"] == [last]
    assert (await client.get("/readyz")).status_code == 200


async def test_not_ready_on_a_database_a_newer_release_migrated(client: httpx.AsyncClient) -> None:
    """A release rolled back onto a database a newer one migrated does not know the schema it
    would write to: not ready, naming the migrations it lacks (ops review)."""
    db = connections.get("default")
    newer = "9999_from_a_newer_release"
    await db.execute_query(
        "INSERT INTO tortoise_migrations (app, name, applied_at) VALUES ('wastetrack', $1, now())",
        [newer],
    )
    try:
        response = await client.get("/readyz")
    finally:
        await db.execute_query(
            "DELETE FROM tortoise_migrations WHERE app = 'wastetrack' AND name = $1", [newer]
        )
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["field"], body["unknown"]) == ("migrations", [newer]), body
    assert (await client.get("/readyz")).status_code == 200


async def test_not_ready_when_the_database_is_unreachable(client: httpx.AsyncClient) -> None:
    # A real client aimed at a port where nothing listens.
    dead = AsyncpgDBClient(
        connection_name="default",
        host="127.0.0.1",
        port=1,
        user="postgres",
        password="",
        database="postgres",
        minsize=1,
        maxsize=1,
    )
    token = connections.set("default", dead)
    try:
        unready = await client.get("/readyz")
        alive = await client.get("/healthz")
    finally:
        connections.reset(token)
    assert unready.status_code == 503
    assert unready.headers["content-type"] == "application/problem+json"
    assert unready.json()["field"] == "database"
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}
