"""A streaming standby of the test session's embedded server, made for this module by
`replica.start` (what `wastetrack replica start` runs) and dropped when the module ends."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from wastetrack.core import replica
from wastetrack.core.db import credentials_from_url


@pytest.fixture(scope="module")
def standby_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("standby") / "replica"


@pytest.fixture(scope="module")
async def standby(server_url: str, database_url: str, standby_dir: Path) -> AsyncIterator[str]:
    """The standby's URL, pointing at the session's test database."""
    if os.environ.get("WASTETRACK_DATABASE_URL"):
        pytest.skip("a replica is made of the embedded server")
    started = await replica.start(
        primary_url=server_url,
        pgdata=standby_dir,
        database=credentials_from_url(database_url)["database"],
        user="postgres",
    )
    yield started["replica_url"]
    await replica.drop(primary_url=server_url, pgdata=standby_dir)


@pytest.fixture
async def replica_admin(standby: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser session on the standby, to pause and resume its replay."""
    conn = await asyncpg.connect(**credentials_from_url(standby))
    yield conn
    await conn.execute("SELECT pg_wal_replay_resume()")
    await conn.close()
