"""The schema comes from migrations, and the migrations describe the models."""

import os
import subprocess
import sys
import uuid

import asyncpg
from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from wastetrack.core import db


async def test_models_and_migrations_agree(orm: list[str]) -> None:
    config = db.tortoise_config("postgres://unused@127.0.0.1/unused")
    detector = MigrationAutodetector(Tortoise.apps, config["apps"])  # type: ignore[arg-type]
    writers = await detector.changes()
    assert writers == [], f"models differ from migrations: {[w.name for w in writers]}"


def _cli_migrate(url: str) -> subprocess.CompletedProcess[str]:
    # A separate process: Tortoise's migration runner re-initialises the global ORM state.
    env = {**os.environ, "WASTETRACK_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "wastetrack.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_empty_database_migrates_with_catalog(server_url: str) -> None:
    url = db.with_database(server_url, f"wastetrack_empty_{uuid.uuid4().hex[:8]}")
    try:
        first = _cli_migrate(url)
        assert first.returncode == 0, first.stderr
        second = _cli_migrate(url)  # nothing left to apply, nothing broken
        assert second.returncode == 0, second.stderr
        conn = await asyncpg.connect(**db.credentials_from_url(url))
        try:
            streams = await conn.fetchval("SELECT count(*) FROM waste_stream")
            hw = {
                r["code"]
                for r in await conn.fetch(
                    "SELECT code FROM waste_category WHERE stream_id = 'hazardous'"
                )
            }
            pending = {
                r["code"]
                for r in await conn.fetch(
                    "SELECT code FROM treatment_method WHERE mode = 'pending'"
                )
            }
        finally:
            await conn.close()
        assert streams == 5
        assert {"HW08", "HW49", "HW50"} <= hw
        assert not {"HW41", "HW42", "HW43", "HW44"} & hw
        assert pending == {"R12", "R13", "D13", "D14", "D15"}
    finally:
        await db.drop_database(url)
