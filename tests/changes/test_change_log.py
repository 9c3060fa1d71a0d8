"""The change log under the service's own database role: written by the triggers in the
changing transaction, readable, and never rewritten."""

import asyncpg
import httpx
import pytest

from tests.custody.helpers import tag_bag
from tests.factories import World
from wastetrack.core import db


async def test_the_service_role_writes_the_log_through_triggers_but_never_rewrites_it(
    database_url: str, client: httpx.AsyncClient, world: World
) -> None:
    await tag_bag(client, world)
    role_url = await db.ensure_app_role(database_url, password="role-test-password-0123456789")
    conn = await asyncpg.connect(**db.credentials_from_url(role_url))
    try:
        assert await conn.fetchval("SELECT current_user") == db.APP_ROLE
        assert await conn.fetchval("SELECT count(*) FROM change_log") == 1
        transaction = conn.transaction()
        await transaction.start()
        try:
            alert_id = await conn.fetchval(
                "INSERT INTO alert (kind, subject, organization_id, region_path, raised_at,"
                " details) VALUES ('test', 'x', $1, '/x', now(), '{}') RETURNING id",
                world.orgs["clinic"].id,
            )
            logged = await conn.fetchrow(
                "SELECT kind, subject, txid = pg_current_xact_id() AS same_transaction"
                " FROM change_log ORDER BY id DESC LIMIT 1"
            )
        finally:
            await transaction.rollback()
        assert dict(logged) == {
            "kind": "alert.raised",
            "subject": str(alert_id),
            "same_transaction": True,
        }
        assert await conn.fetchval("SELECT count(*) FROM change_log") == 1  # rolled back too
        for sql in (
            "DELETE FROM change_log",
            "UPDATE change_log SET kind = 'x'",
            "TRUNCATE change_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    finally:
        await conn.close()
