"""The cluster lock that elects the one worker running background rounds."""

import asyncio

from wastetrack.core import db


async def test_loops_of_one_process_share_the_lock_and_its_connection(database_url: str) -> None:
    first, second = db.ClusterLock(database_url, key=4242), db.ClusterLock(database_url, key=4242)
    try:
        # Two background loops of one worker ask at the same instant: one connection, held.
        assert await asyncio.gather(*(first.acquire() for _ in range(5))) == [True] * 5
        connection = first._conn
        assert await first.acquire() and first._conn is connection
        # Another worker's lock is refused while this one holds it, and taken when it goes.
        assert await second.acquire() is False
        await first.close()
        assert await second.acquire() is True
    finally:
        await first.close()
        await second.close()


async def test_a_holder_that_lost_the_lock_knows_it(database_url: str) -> None:
    """The lock went while the holder's connection still looked open (here released under it;
    in life a partition or a restart): the holder asks the server, stops leading, and never
    leads beside the worker that took over."""
    first, second = db.ClusterLock(database_url, key=4243), db.ClusterLock(database_url, key=4243)
    try:
        assert await first.acquire() is True
        assert await first._conn.fetchval("SELECT pg_advisory_unlock($1)", 4243)
        assert await second.acquire() is True
        assert await first.acquire() is False
        await second.close()
        assert await first.acquire() is True
    finally:
        await first.close()
        await second.close()
