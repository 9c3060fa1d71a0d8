"""A pooled connection goes back to the pool without a reset round trip, unless a transaction
was left open on it: that one is rolled back before anyone else gets the connection."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise import connections


def _pool() -> Any:
    return connections.get("default")._pool  # type: ignore[attr-defined]


@asynccontextmanager
async def _back_from_the_pool(pool: Any, pid: int) -> AsyncIterator[Any]:
    """The pooled connection of backend `pid` as the next user gets it (every idle connection
    is taken until it comes back)."""
    held = []
    try:
        for _ in range(pool.get_max_size()):
            conn = await pool.acquire()
            held.append(conn)
            if await conn.fetchval("SELECT pg_backend_pid()") == pid:
                yield conn
                return
        raise AssertionError("the released connection never came back")
    finally:
        for conn in held:
            await pool.release(conn)


async def test_an_open_transaction_is_rolled_back_before_the_connection_is_reused(
    orm: list[str],
) -> None:
    pool = _pool()
    async with pool.acquire() as conn:
        await conn.execute("BEGIN; CREATE TEMPORARY TABLE left_open (n int) ON COMMIT DROP")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    async with _back_from_the_pool(pool, pid) as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT to_regclass('left_open')") is None


async def test_a_connection_released_outside_a_transaction_is_not_reset(orm: list[str]) -> None:
    pool = _pool()
    async with pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("SELECT set_config('application_name', 'marked', false)")
    async with _back_from_the_pool(pool, pid) as conn:
        # RESET ALL (asyncpg's default reset) would have undone the mark.
        assert await conn.fetchval("SHOW application_name") == "marked"
        await conn.execute("RESET application_name")
