"""The schema comes from migrations, and the migrations describe the models."""

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
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
        # Every migration can be undone: down to nothing, then up again.
        down = _migrate_down_to_nothing(url)
        assert down.returncode == 0, down.stderr
        conn = await asyncpg.connect(**db.credentials_from_url(url))
        try:
            left = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'tortoise_migrations'"
            )
        finally:
            await conn.close()
        assert left == 0
        again = _cli_migrate(url)
        assert again.returncode == 0, again.stderr
    finally:
        await db.drop_database(url)


def _migrate_down_to_nothing(url: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import asyncio, sys\n"
        "from tortoise.migrations.api import migrate\n"
        "from wastetrack.core import db\n"
        "asyncio.run(migrate(config=db.tortoise_config(sys.argv[1], pool_size=2),"
        " target='wastetrack.__first__', direction='backward'))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, url],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# --- migrations are history ------------------------------------------------------------------

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
HISTORY = MIGRATIONS / "HISTORY"
HOW_TO = "append its line: (cd migrations && sha256sum NNNN_name.py >> HISTORY)"


def _recorded() -> dict[str, str]:
    lines = [line.split() for line in HISTORY.read_text().splitlines() if line.strip()]
    return {name: digest for digest, name in lines}


def test_a_migration_once_recorded_is_never_edited_or_removed() -> None:
    recorded = _recorded()
    present = sorted(p.name for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    for name, digest in recorded.items():
        path = MIGRATIONS / name
        assert path.exists(), f"{name} was removed: migrations are history, never deleted"
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert actual == digest, (
            f"{name} was edited: migrations are history; change the schema with a new migration"
        )
    unrecorded = [name for name in present if name not in recorded]
    assert not unrecorded, f"new migrations {unrecorded} are not in migrations/HISTORY: {HOW_TO}"


def test_the_history_of_migrations_only_grows() -> None:
    """No commit ever changed or removed a line of migrations/HISTORY (only additions pass)."""
    root = MIGRATIONS.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    log = subprocess.run(
        ["git", "log", "--format=", "-p", "--", "migrations/HISTORY"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    removed = [
        line for line in log.splitlines() if line.startswith("-") and not line.startswith("---")
    ]
    assert not removed, f"lines of migrations/HISTORY were changed or removed: {removed}"


# --- data migrations pin the edition they load -----------------------------------------------

# Migrates the database given, then prints every data file read meanwhile: `read_data_file` is
# wrapped before any loader imports it by name, and reads made while importing are dropped.
_MIGRATE_RECORDING_READS = (
    "import asyncio, json, sys\n"
    "from wastetrack.core import data\n"
    "read, reads = data.read_data_file, []\n"
    "def recording(package, name):\n"
    "    reads.append([package, name])\n"
    "    return read(package, name)\n"
    "data.read_data_file = recording\n"
    "from wastetrack.core import db\n"
    "reads.clear()\n"
    "asyncio.run(db.migrate(sys.argv[1]))\n"
    "print(json.dumps(reads))\n"
)
# The editions the old data migrations load: changing what they load fails here.
PINNED_READS = [
    ["wastetrack.catalog", "editions/catalog.2026-11/streams.json"],
    ["wastetrack.ports", "editions/sea_areas.2026-11.json"],
    ["wastetrack.indicators", "editions/indicators.2026-11.json"],
]


def _migrate_recording_reads(url: str) -> list[list[str]]:
    run = subprocess.run(
        [sys.executable, "-c", _MIGRATE_RECORDING_READS, url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    reads: list[list[str]] = json.loads(run.stdout.splitlines()[-1])
    return reads


async def test_data_migrations_read_only_pinned_editions(server_url: str) -> None:
    """Migrations are history: a fresh database must get what each data migration loaded when
    it was written, so every data file read while migrating an empty database is a frozen
    edition (under an `editions/` folder) or a file a migration names in a string (the
    calendar's), never today's copy of a file that changes."""
    url = db.with_database(server_url, f"wastetrack_pins_{uuid.uuid4().hex[:8]}")
    try:
        reads = _migrate_recording_reads(url)
    finally:
        await db.drop_database(url)
    assert all(pinned in reads for pinned in PINNED_READS), reads
    sources = "\n".join(p.read_text("utf-8") for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    unpinned = [
        f"{package}: {name}"
        for package, name in reads
        if not name.startswith("editions/") and f'"{name}"' not in sources
    ]
    assert not unpinned, f"data migrations read files that are not a pinned edition: {unpinned}"
