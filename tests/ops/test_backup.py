"""`wastetrack backup` / `wastetrack restore`: a round trip through the CLI keeps every row,
every photo and every chain verifiable."""

import asyncio
import io
import json
import os
import secrets
import stat
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.custody.helpers import advance, tag_bag
from tests.factories import World
from wastetrack.core import backup as backups
from wastetrack.core import db


def _cli(*args: str, database_url: str, data_dir: Path, secret: str) -> subprocess.CompletedProcess:
    # A separate process, as an operator runs it (and settings are read from its environment).
    env = {
        **os.environ,
        "WASTETRACK_DATABASE_URL": database_url,
        "WASTETRACK_DATA_DIR": str(data_dir),
        "WASTETRACK_SECRET_KEY": secret,
        "WASTETRACK_ENVIRONMENT": "test",
    }
    return subprocess.run(
        [sys.executable, "-m", "wastetrack.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def empty_database(server_url: str) -> Iterator[str]:
    """A database with no tables: its backup is small and restores in no time."""
    url = db.with_database(server_url, f"wastetrack_empty_{uuid.uuid4().hex[:8]}")
    asyncio.run(db.ensure_database(url))
    yield url
    asyncio.run(db.drop_database(url))


def _backup(database_url: str, data_dir: Path, out: Path) -> dict:
    # In this process (it opens no ORM): a test can step in between its parts.
    return backups.backup(database_url=database_url, data_dir=data_dir, out=out, external=True)


async def _row_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {
            t["tablename"]: await conn.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"')
            for t in tables
        }
    finally:
        await conn.close()


async def test_backup_and_restore_round_trip(
    client: httpx.AsyncClient, world: World, database_url: str, tmp_path: Path
) -> None:
    for until in ("collected", "treated"):
        bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
        await advance(client, world, bag["code"], until=until)
    source_dir, target_dir = tmp_path / "source", tmp_path / "target"
    photo = source_dir / "photos" / "ab" / ("ab" + "0" * 62 + ".jpg")
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"\xff\xd8\xff\xe0 not much of a photo")
    # An upload cut off while writing leaves its part file: no photo, not backed up.
    (photo.parent / "tmpa1b2c3.part").write_bytes(b"\xff\xd8")
    archive = tmp_path / "wastetrack.tar"
    secret = world.settings.secret_key

    made = _cli(
        "backup",
        "--out",
        str(archive),
        database_url=database_url,
        data_dir=source_dir,
        secret=secret,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout.splitlines()[-1])["photos"] == 1

    target_url = db.with_database(database_url, f"wastetrack_restore_{uuid.uuid4().hex[:8]}")
    try:
        restored = _cli(
            "restore", str(archive), database_url=target_url, data_dir=target_dir, secret=secret
        )
        assert restored.returncode == 0, restored.stderr
        report = json.loads(restored.stdout.splitlines()[-1])
        source_counts = await _row_counts(database_url)
        assert source_counts["batch"] == 2
        assert source_counts["custody_event"] == 2 + 5  # tagged, collected; tagged + 4 steps
        assert report["chains"] == {"checked": 2, "valid": 2, "broken": []}
        assert await _row_counts(target_url) == source_counts
        copied = target_dir / photo.relative_to(source_dir)
        assert copied.read_bytes() == photo.read_bytes()

        again = _cli(
            "restore", str(archive), database_url=target_url, data_dir=target_dir, secret=secret
        )
        assert again.returncode == 2
        assert "empty" in again.stderr
    finally:
        await db.drop_database(target_url)


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar file")
    done = _cli(
        "restore",
        str(junk),
        database_url="postgres://nobody@127.0.0.1:1/none",
        data_dir=tmp_path,
        secret=secrets.token_hex(24),
    )
    assert done.returncode == 2
    assert "archive" in done.stderr


def test_restore_refuses_a_member_that_would_land_outside_the_photos(
    empty_database: str, tmp_path: Path
) -> None:
    archive = tmp_path / "wastetrack.tar"
    _backup(empty_database, tmp_path / "source", archive)
    # Under photos/ by its name, in keys/ once joined to the data directory: a signing key.
    planted = b"a master key chosen by whoever wrote the archive"
    with tarfile.open(archive, "a") as tar:
        member = tarfile.TarInfo("photos/../keys/master-v9.key")
        member.size = len(planted)
        tar.addfile(member, io.BytesIO(planted))
    target_dir = tmp_path / "target"
    target_url = db.with_database(empty_database, f"wastetrack_restore_{uuid.uuid4().hex[:8]}")
    try:
        done = _cli(
            "restore",
            str(archive),
            database_url=target_url,
            data_dir=target_dir,
            secret=secrets.token_hex(24),
        )
        assert not (target_dir / "keys" / "master-v9.key").exists()
        assert not (target_dir / "photos").exists()
        assert done.returncode == 2, done.stderr
        assert "photos/../keys/master-v9.key" in done.stderr
        assert "nothing was restored" in done.stderr
    finally:
        asyncio.run(db.drop_database(target_url))


def test_a_photo_stored_while_the_backup_starts_is_in_it(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "photos" / "cd" / ("cd" + "1" * 62 + ".jpg")
    run_tool = backups._run

    def upload_then_dump(command: list[str], database_url: str) -> None:
        # An upload writes its file, then commits its row, just before the dump's snapshot:
        # the dump names the photo, so the archive must hold it.
        photo.parent.mkdir(parents=True, exist_ok=True)
        photo.write_bytes(b"\xff\xd8\xff\xe0 stored meanwhile")
        run_tool(command, database_url)

    monkeypatch.setattr(backups, "_run", upload_then_dump)
    made = _backup(empty_database, tmp_path, tmp_path / "wastetrack.tar")
    assert made["photos"] == 1
    with tarfile.open(tmp_path / "wastetrack.tar") as tar:
        assert f"photos/cd/{photo.name}" in tar.getnames()


def test_only_the_owner_may_read_a_backup(empty_database: str, tmp_path: Path) -> None:
    archive = tmp_path / "wastetrack.tar"
    umask = os.umask(0o022)  # the usual one, which leaves new files readable by everyone
    try:
        _backup(empty_database, tmp_path, archive)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert not archive.with_name(archive.name + ".partial").exists()
