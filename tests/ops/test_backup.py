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
from typing import Any

import asyncpg
import httpx
import pytest

from tests.custody.helpers import advance, tag_bag
from tests.factories import World
from wastetrack.core import backup as backups
from wastetrack.core import db
from wastetrack.core.errors import ValidationFailed


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
        # A photo an older version left readable by all is restored as the service's alone.
        modes = [p.stat().st_mode & 0o777 for p in (copied, copied.parent, copied.parent.parent)]
        assert modes == [0o600, 0o700, 0o700]

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


def test_a_restore_is_whole_or_nothing_for_the_photos_too(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photos were unpacked after the database was restored: a full disk then left a
    restored database with part of its evidence. They are unpacked first, beside their folder,
    and put in place once the database is; a failure leaves neither. A data directory that
    holds photos already is refused before anything is restored."""
    source = tmp_path / "source"
    photo = source / "photos" / "ab" / ("ab" + "0" * 62 + ".jpg")
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"\xff\xd8\xff\xe0 not much of a photo")
    archive = tmp_path / "wastetrack.tar"
    _backup(database_url, source, archive)
    target_dir = tmp_path / "target"
    target_url = db.with_database(database_url, f"wastetrack_restore_{uuid.uuid4().hex[:8]}")
    asyncio.run(db.ensure_database(target_url))
    extract = tarfile.TarFile.extractall

    def full_disk(self: tarfile.TarFile, path: Any = ".", *args: Any, **kwargs: Any) -> None:
        if Path(path).name.startswith(".photos-"):
            raise OSError(28, "No space left on device")
        extract(self, path, *args, **kwargs)

    try:
        with monkeypatch.context() as patched:
            patched.setattr(tarfile.TarFile, "extractall", full_disk)
            with pytest.raises(OSError):
                backups.restore(
                    database_url=target_url, data_dir=target_dir, archive=archive, external=True
                )
        assert asyncio.run(_row_counts(target_url)) == {}
        assert [p.name for p in target_dir.iterdir()] == []
        kept = target_dir / "photos" / "cd" / "kept.jpg"
        kept.parent.mkdir(parents=True)
        kept.write_bytes(b"another installation's photo")
        secret = secrets.token_hex(24)
        done = _cli(
            "restore", str(archive), database_url=target_url, data_dir=target_dir, secret=secret
        )
        assert done.returncode == 2, done.stderr
        assert "nothing was restored" in done.stderr
        assert asyncio.run(_row_counts(target_url)) == {}
        kept.unlink()
        kept.parent.rmdir()
        restored = _cli(
            "restore", str(archive), database_url=target_url, data_dir=target_dir, secret=secret
        )
        assert restored.returncode == 0, restored.stderr
        assert json.loads(restored.stdout.splitlines()[-1])["photos"] == 1
        assert (target_dir / photo.relative_to(source)).read_bytes() == photo.read_bytes()
        assert [p.name for p in target_dir.iterdir()] == ["photos"]
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


def test_a_photo_in_a_linked_prefix_folder_is_in_the_backup(
    empty_database: str, tmp_path: Path
) -> None:
    """A disk filling up is relieved by moving a prefix folder (`photos/ab`) to another disk and
    linking it back, where the service keeps reading and writing: its photos are in the backup
    (they were left out, the manifest counting only the others); a link back into the photos
    folder is walked once."""
    data_dir = tmp_path / "data"
    other_disk = tmp_path / "other-disk" / "ab"
    other_disk.mkdir(parents=True)
    moved = other_disk / ("ab" + "0" * 62 + ".jpg")
    moved.write_bytes(b"\xff\xd8\xff\xe0 on the other disk")
    kept = data_dir / "photos" / "cd" / ("cd" + "1" * 62 + ".jpg")
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"\xff\xd8\xff\xe0 on the data disk")
    (data_dir / "photos" / "ab").symlink_to(other_disk, target_is_directory=True)
    (data_dir / "photos" / "cd" / "loop").symlink_to(data_dir / "photos", target_is_directory=True)
    (data_dir / "photos" / "aa").symlink_to(data_dir / "photos" / "cd", target_is_directory=True)
    made = _backup(empty_database, data_dir, tmp_path / "wastetrack.tar")
    assert made["photos"] == 2
    with tarfile.open(tmp_path / "wastetrack.tar") as tar:
        # Each under the name the service reads it by: the links back are aliases.
        assert {m.name for m in tar.getmembers() if m.isfile()} == {
            backups.MANIFEST,
            "database.dump",
            f"photos/ab/{moved.name}",
            f"photos/cd/{kept.name}",
        }


def test_a_link_to_a_disk_not_mounted_is_refused_before_anything_is_done(
    empty_database: str, tmp_path: Path
) -> None:
    """A prefix folder linked to a disk that is not mounted: a backup would leave its photos
    out, and a restore tripped on it once the database was loaded (a traceback, the database
    restored without those photos). Both refuse it first, naming the data directory."""
    source = tmp_path / "source"
    kept = source / "photos" / "ef" / ("ef" + "2" * 62 + ".jpg")
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"\xff\xd8\xff\xe0 evidence")
    archive = tmp_path / "wastetrack.tar"
    _backup(empty_database, source, archive)
    (source / "photos" / "ab").symlink_to(tmp_path / "unmounted" / "ab", target_is_directory=True)
    refused = tmp_path / "refused.tar"
    with pytest.raises(ValidationFailed, match="mount it or remove the link") as backed:
        _backup(empty_database, source, refused)
    assert backed.value.field == "data_dir"
    assert list(tmp_path.glob("refused.tar*")) == []
    target_dir = tmp_path / "target"
    (target_dir / "photos").mkdir(parents=True)
    (target_dir / "photos" / "ef").symlink_to(
        tmp_path / "unmounted" / "ef", target_is_directory=True
    )
    target_url = db.with_database(empty_database, f"wastetrack_restore_{uuid.uuid4().hex[:8]}")
    asyncio.run(db.ensure_database(target_url))
    try:
        with pytest.raises(ValidationFailed, match="nothing was restored") as restored:
            backups.restore(
                database_url=target_url, data_dir=target_dir, archive=archive, external=True
            )
        assert restored.value.field == "data_dir"
        assert asyncio.run(_row_counts(target_url)) == {}
    finally:
        asyncio.run(db.drop_database(target_url))


def test_only_the_owner_may_read_a_backup(empty_database: str, tmp_path: Path) -> None:
    archive = tmp_path / "wastetrack.tar"
    umask = os.umask(0o022)  # the usual one, which leaves new files readable by everyone
    try:
        _backup(empty_database, tmp_path, archive)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert not archive.with_name(archive.name + ".partial").exists()


def _archive_with_photos(database_url: str, tmp_path: Path, count: int) -> Path:
    source = tmp_path / "source"
    for n in range(count):
        photo = source / "photos" / "ef" / (f"ef{n}" + "2" * 61 + ".jpg")
        photo.parent.mkdir(parents=True, exist_ok=True)
        photo.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2000))
    archive = tmp_path / "wastetrack.tar"
    _backup(database_url, source, archive)
    return archive


def _rewritten(archive: Path, out: Path, change: str) -> Path:
    """The archive as a broken copy would leave it."""
    data = archive.read_bytes()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    if change == "cut inside a photo":
        out.write_bytes(data[: members[-1].offset_data + 100])
    elif change in ("a photo's byte changed", "a byte of the dump changed"):
        # A bad disk or copy: the names, sizes and headers as they were.
        member = members[-1] if change.startswith("a photo") else members[1]
        changed = bytearray(data)
        changed[member.offset_data + member.size // 2] ^= 0x55
        out.write_bytes(bytes(changed))
    elif change == "lost its last photo":  # cut at the last photo's header, padded as a tar ends
        out.write_bytes(data[: members[-1].offset] + bytes(1024))
    else:
        with tarfile.open(archive) as tar, tarfile.open(out, "w") as copy:
            for member in tar.getmembers():
                content = tar.extractfile(member).read()  # type: ignore[union-attr]
                if member.name == "manifest.json":
                    content = {
                        "not json": b"{format: 1",
                        "a list": b"[1, 2]",
                        "a photo's digest left out": json.dumps(
                            {**json.loads(content), "sha256": {"database.dump": "0" * 64}}
                        ).encode(),
                        "written before digests": json.dumps(
                            {k: v for k, v in json.loads(content).items() if k != "sha256"}
                        ).encode(),
                    }[change]
                    member.size = len(content)
                copy.addfile(member, io.BytesIO(content))
    return out


@pytest.mark.parametrize(
    "change",
    [
        "cut inside a photo",
        "lost its last photo",
        "not json",
        "a list",
        "a photo's byte changed",
        "a byte of the dump changed",
        "a photo's digest left out",
    ],
)
def test_a_damaged_archive_is_refused_before_anything_is_restored(
    empty_database: str, tmp_path: Path, change: str
) -> None:
    archive = _archive_with_photos(empty_database, tmp_path, 2)
    broken = _rewritten(archive, tmp_path / "broken.tar", change)
    target_dir = tmp_path / "target"
    target_url = db.with_database(empty_database, f"wastetrack_restore_{uuid.uuid4().hex[:8]}")
    try:
        done = _cli(
            "restore",
            str(broken),
            database_url=target_url,
            data_dir=target_dir,
            secret=secrets.token_hex(24),
        )
        assert done.returncode == 2, done.stderr
        assert "error (archive)" in done.stderr and "Traceback" not in done.stderr
        assert not (target_dir / "photos").exists()
    finally:
        asyncio.run(db.drop_database(target_url))


def test_a_backup_written_before_its_manifest_held_digests_is_restored(
    database_url: str, tmp_path: Path
) -> None:
    archive = _archive_with_photos(database_url, tmp_path, 2)
    older = _rewritten(archive, tmp_path / "older.tar", "written before digests")
    target_dir = tmp_path / "target"
    target_url = db.with_database(database_url, f"wastetrack_restore_{uuid.uuid4().hex[:8]}")
    try:
        done = _cli(
            "restore",
            str(older),
            database_url=target_url,
            data_dir=target_dir,
            secret=secrets.token_hex(24),
        )
        assert done.returncode == 0, done.stderr
        assert len(list((target_dir / "photos").rglob("*.jpg"))) == 2
    finally:
        asyncio.run(db.drop_database(target_url))


async def _burn_past(url: str, target: int) -> int:
    """Transaction ids used until the server's next one is past `target`: an installation
    that has run for a while."""
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        while (now := int(await conn.fetchval(_NEXT_TXID))) <= target:
            await conn.fetchval("SELECT pg_current_xact_id()")
        return now
    finally:
        await conn.close()


_NEXT_TXID = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"

# What the change feed and the audit log show of their rows, read as they read them
# (wastetrack.changes.paging): the rows of transactions that have all ended.
_SHOWN = """
import asyncio, json, sys
from wastetrack.auth.models import Role
from wastetrack.audit import service as audit
from wastetrack.changes import service as changes
from wastetrack.changes.models import START
from wastetrack.core import db
from wastetrack.core.principal import Principal

async def main(url):
    admin = Principal(user_id=0, username="t", role=Role.admin, organization_id=0,
                      region_path="")
    async with db.database(url, pool_size=2):
        entries, _ = await audit.list_entries(principal=admin, after=START, limit=500)
        found, _ = await changes.read_changes(principal=admin, after=START, limit=500)
    print(json.dumps({"audit_entry": len(entries), "change_log": len(found)}))

asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture
def young_server(tmp_path: Path) -> Iterator[str]:
    """A new machine's embedded server, as an external one: its URL."""
    server = db._embedded_server(tmp_path / "young")
    yield db.with_database(server.get_uri(), "wastetrack")
    server.cleanup()


async def test_a_restore_into_a_younger_server_keeps_the_feed_and_the_audit_log(
    client: httpx.AsyncClient, world: World, database_url: str, tmp_path: Path, young_server: str
) -> None:
    """A new machine's server has given fewer transaction ids than the backed-up one: the
    restored rows would be hidden from the change feed and the audit log. An external server
    is refused, nothing restored; the embedded one is moved on past the backup's ids."""
    young_url = young_server
    young_next = await _fetch_one(db.with_database(young_url, "postgres"), _NEXT_TXID)
    await _burn_past(database_url, int(str(young_next)) + 100)
    changed = await client.patch(
        f"/admin/v1/organizations/{world.orgs['clinic'].id}",
        json={"contact_phone": "0631-7000001"},
        headers=world.headers("admin"),
    )
    assert changed.status_code == 200, changed.text
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="collected")
    archive = tmp_path / "wastetrack.tar"
    await asyncio.to_thread(_backup, database_url, tmp_path / "source", archive)
    secret = world.settings.secret_key

    refused = await asyncio.to_thread(
        _cli, "restore", str(archive), database_url=young_url, data_dir=tmp_path, secret=secret
    )
    assert refused.returncode == 2, refused.stderr
    assert "pg_resetwal -e" in refused.stderr and "nothing was restored" in refused.stderr
    assert (
        await _fetch_one(young_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        == 0
    )

    # The embedded server of a new data directory (no WASTETRACK_DATABASE_URL), named
    # relative to the working directory (pg_resetwal runs in the cluster's own folder, where
    # the relative name once named another).
    target_dir = tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if k != "WASTETRACK_DATABASE_URL"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wastetrack.cli", "restore", str(archive)],
        env={
            **env,
            "WASTETRACK_DATA_DIR": "target",
            "WASTETRACK_SECRET_KEY": secret,
            "WASTETRACK_ENVIRONMENT": "test",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    target = db._embedded_server(target_dir)
    restored = db.with_database(target.get_uri(), "wastetrack")
    try:
        counts = await _row_counts(restored)
        shown = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", _SHOWN, restored],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        listed = json.loads(shown.stdout)
        assert listed == {t: min(counts[t], 500) for t in listed} and all(listed.values())
    finally:
        target.cleanup()


async def _fetch_one(url: str, sql: str) -> object:
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.parametrize("layout", ["linked", "mounted", "emptied"])
def test_a_photos_folder_on_another_disk_is_restored_into(
    database_url: str, tmp_path: Path, layout: str
) -> None:
    """The photos grow fastest, so `<data_dir>/photos` is often a link to a bigger disk, or the
    mount point of one (a fresh disk holds an empty `lost+found`, no file). The link failed the
    restore after the database was in (a traceback, no photo); the mounted disk was refused as
    holding files; folders left with no file failed the restore after the database was in. The
    photos are staged on that disk and put in place, file by file, beside what it holds."""
    archive = _archive_with_photos(database_url, tmp_path, 2)
    target_dir = tmp_path / "target"
    disk = tmp_path / "bigger-disk" / "photos"
    (disk / "lost+found").mkdir(parents=True)
    target_dir.mkdir()
    if layout == "emptied":  # folders of photos moved away before, no file left
        (disk / "ef" / "old").mkdir(parents=True)
    if layout == "linked":
        (target_dir / "photos").symlink_to(disk, target_is_directory=True)
    else:
        disk = disk.rename(target_dir / "photos")
    target_url = db.with_database(database_url, f"wastetrack_restore_{uuid.uuid4().hex[:8]}")
    asyncio.run(db.ensure_database(target_url))
    try:
        done = _cli(
            "restore",
            str(archive),
            database_url=target_url,
            data_dir=target_dir,
            secret=secrets.token_hex(24),
        )
        assert done.returncode == 0, done.stderr[-800:]
        assert json.loads(done.stdout.splitlines()[-1])["photos"] == 2
        assert sorted(p.name for p in disk.iterdir()) == ["ef", "lost+found"]
        assert len([p for p in (target_dir / "photos" / "ef").iterdir() if p.is_file()]) == 2
        assert (target_dir / "photos").is_symlink() == (layout == "linked")
    finally:
        asyncio.run(db.drop_database(target_url))
