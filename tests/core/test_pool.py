"""A pooled connection goes back to the pool without a reset round trip, unless a transaction
was left open on it: that one is rolled back before anyone else gets the connection. Requests
waiting for a connection begin in arrival order."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tortoise import connections

from wastetrack.core import db


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


async def test_requests_get_their_connections_in_arrival_order(
    orm: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every transaction's connection busy, waiting requests get a connection first come
    first served, and none that arrives later overtakes them when a connection comes free;
    meanwhile a write outside the transactions still finds the connection kept for it."""
    pool = _pool()
    size = pool.get_max_size() - db.OWN_WRITES  # the transactions admitted at once
    all_busy, release = asyncio.Event(), asyncio.Event()
    served: list[str] = []
    acquire = type(pool).acquire

    async def acquire_in_turn(self: Any, *args: Any, **kwargs: Any) -> Any:
        connection = await acquire(self, *args, **kwargs)
        served.append(asyncio.current_task().get_name())  # type: ignore[union-attr]
        return connection

    # Tortoise awaits pool.acquire() for every transaction: record who got a connection when.
    monkeypatch.setattr(type(pool), "acquire", acquire_in_turn)

    async def request(*, hold: bool = False) -> None:
        async with db.transaction():
            await connections.get("default").execute_query("SELECT 1")
            if hold:
                if served.count("holder") == size:
                    all_busy.set()
                await release.wait()

    holders = [asyncio.create_task(request(hold=True), name="holder") for _ in range(size)]
    await all_busy.wait()

    async def own_write() -> None:  # a rate-limit count, say, while the transactions wait
        async with db.pool().acquire_connection() as connection:
            await connection.fetchval("SELECT 1")

    await asyncio.wait_for(asyncio.create_task(own_write(), name="own write"), timeout=10)
    waiting = []
    for n in range(10):
        waiting.append(asyncio.create_task(request(), name=f"waiter {n}"))
        await asyncio.sleep(0.005)
    release.set()
    # Latecomers keep arriving while the waiters are being served.
    late = []
    for n in range(20):
        late.append(asyncio.create_task(request(), name=f"late {n}"))
        await asyncio.sleep(0.001)
    await asyncio.gather(*holders, *waiting, *late)
    assert [name for name in served if name not in ("holder", "own write")] == [
        f"waiter {n}" for n in range(10)
    ] + [f"late {n}" for n in range(20)]
