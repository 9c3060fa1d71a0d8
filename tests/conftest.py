"""A real PostgreSQL for the whole run: the embedded server in a temporary directory (or
WASTETRACK_DATABASE_URL's server), a fresh database per run, tables emptied after each test."""

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
from tortoise import connections, fields

# Code that reads the process's settings (get_settings) must not create keys in the user's
# own data directory, nor in one the user exported: the whole run gets a throwaway one, set
# before the imports below and removed when the run ends (the atexit call after them).
os.environ["WASTETRACK_DATA_DIR"] = tempfile.mkdtemp(prefix="wastetrack-test-")

from mobile_api.app import create_app
from tests.factories import World, build_world
from wastetrack.calendar import service as calendar
from wastetrack.calendar.models import CalendarDay
from wastetrack.core import db
from wastetrack.core.data import read_data_file
from wastetrack.core.settings import Settings

atexit.register(shutil.rmtree, os.environ["WASTETRACK_DATA_DIR"], ignore_errors=True)

# Reference data loaded by migrations: kept across tests.
REFERENCE_TABLES = {
    "waste_stream",
    "waste_category",
    "treatment_method",
    "sea_area",
    "indicator",
    "working_calendar",
}


@pytest.fixture(autouse=True, scope="session")
def _no_day_where_a_moment_belongs() -> Iterator[None]:
    """A plain `date` compared with (or written to) a timestamp column is midnight in the
    database session's zone, not the city's: every day's bounds come from
    `wastetrack.core.cityday`. The whole suite refuses such a value, so a query that slips one
    in fails in whichever test reaches it."""
    to_db_value = fields.DatetimeField.to_db_value

    def moments_only(self: fields.DatetimeField, value: object, instance: object) -> object:
        if isinstance(value, date) and not isinstance(value, datetime):
            raise TypeError(
                f"{self.model_field_name} holds moments; {value!r} is a day"
                " (use wastetrack.core.cityday.days_bounds)"
            )
        return to_db_value(self, value, instance)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fields.DatetimeField, "to_db_value", moments_only)
        yield


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key="test-secret-" + "x" * 40,
        public_base_url="http://testserver",
        login_max_failures=3,
        login_lock_seconds=60,
        # The suite logs in and opens public pages far more often than any person would;
        # tests/security/test_rate_limits.py checks the limits with its own, low ones.
        rate_limit_login="10000/minute",
        rate_limit_login_failures="10000/minute",
        rate_limit_refresh="10000/minute",
        rate_limit_public="10000/minute",
        photo_max_bytes=200_000,
    )


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    external = os.environ.get("WASTETRACK_DATABASE_URL")
    if external:
        return external
    return db.start_embedded_server(Path(tmp_path_factory.mktemp("pg")))


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    url = db.with_database(server_url, f"wastetrack_test_{uuid.uuid4().hex[:12]}")
    await db.migrate(url)
    yield url
    await db.drop_database(url)


@pytest.fixture(scope="session")
async def orm(database_url: str) -> AsyncIterator[list[str]]:
    async with db.database(database_url, pool_size=5):
        rows = await connections.get("default").execute_query_dict(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        yield [
            r["tablename"]
            for r in rows
            if r["tablename"] not in REFERENCE_TABLES and not r["tablename"].startswith("tortoise")
        ]


async def restore_pinned_calendar() -> None:
    """The working calendar is reference data kept across tests: put back what a test changed
    (days set by hand after the pinned edition's last year, and the pinned days themselves)."""
    pinned = read_data_file("wastetrack.calendar", calendar.PINNED_FILE)
    await CalendarDay.filter(day__gt=date(max(pinned["years"]), 12, 31)).delete()
    await calendar.load_pinned(connections.get("default"))


@pytest.fixture
async def restore_calendar(orm: list[str]) -> AsyncIterator[None]:
    yield
    await restore_pinned_calendar()


@pytest.fixture(autouse=True)
async def _clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    if (
        "orm" not in request.fixturenames
        and "world" not in request.fixturenames
        and "client" not in request.fixturenames
    ):
        yield
        return
    tables: list[str] = request.getfixturevalue("orm")
    yield
    await connections.get("default").execute_script(
        f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"
    )


@pytest.fixture
def app(settings: Settings, orm: list[str]):  # type: ignore[no-untyped-def]
    return create_app(settings, manage_database=False)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def world(orm: list[str], settings: Settings) -> World:
    return await build_world(settings)
