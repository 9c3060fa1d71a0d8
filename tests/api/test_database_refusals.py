"""The backstop for a value the database refuses that no check caught: a unique key another
request took first is a lost race (409, retry); any other constraint (SQLSTATE class 23) or a
value that does not fit its column (class 22: too long, out of range, a NUL) is the client's
input, 422 naming the column when the database does; a statement it cannot run is ours, 500."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from asyncpg.exceptions import UniqueViolationError
from tortoise import connections

from mobile_api.app import create_app
from tests.factories import World
from wastetrack.auth.models import RefreshToken
from wastetrack.core.ratelimit import RateLimitCounter
from wastetrack.core.settings import Settings

PROBLEM = "application/problem+json"


async def _duplicate_key() -> None:
    now = datetime.now(UTC)
    for _ in range(2):
        await RateLimitCounter.create(key="twice", count=1, expires_at=now, touched_at=now)


async def _driver_duplicate_key() -> None:
    raise UniqueViolationError("duplicate key value violates unique constraint")


async def _no_such_user() -> None:
    now = datetime.now(UTC)
    await RefreshToken.create(
        jti=uuid.uuid4(), family=uuid.uuid4(), user_id=999_999, expires_at=now
    )


async def _sql(statement: str, *values: object) -> None:
    await connections.get("default").execute_query(statement, list(values))


ACTIONS: dict[str, Callable[[], Awaitable[None]]] = {
    "duplicate": _duplicate_key,
    "driver-duplicate": _driver_duplicate_key,
    "no-such-user": _no_such_user,
    "missing-count": lambda: _sql(
        "INSERT INTO rate_limit_counter (key, count, expires_at, touched_at)"
        " VALUES ('k', NULL, now(), now())"
    ),
    "check": lambda: _sql(
        "DO $$ BEGIN RAISE check_violation USING CONSTRAINT = 'region_code_format'; END $$"
    ),
    "still-referenced": lambda: _sql("DELETE FROM region WHERE parent_id IS NULL"),
    "too-long": lambda: _sql(
        "INSERT INTO rate_limit_counter (key, count, expires_at, touched_at)"
        " VALUES (repeat('x', 300), 1, now(), now())"
    ),
    "nul": lambda: _sql("SELECT $1::text", "a\x00b"),
    "not-a-number": lambda: _sql("SELECT $1::text::int", "12a"),
    # A computation of our own that fails (an overflow, a division by zero) is our bug.
    "out-of-range": lambda: _sql("SELECT 2147483647::int + 1"),
    "division": lambda: _sql("SELECT 1 / 0"),
    "syntax": lambda: _sql("SELEC 1"),
}


@pytest.fixture
async def refusing(settings: Settings, world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The app with one route per refused write."""
    app = create_app(settings, manage_database=False)

    async def act(name: str) -> None:
        await ACTIONS[name]()

    app.add_api_route("/test/refused/{name}", act, methods=["POST"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.parametrize(
    ("name", "status", "code", "field"),
    [
        ("duplicate", 409, "concurrent_write", None),
        ("driver-duplicate", 409, "concurrent_write", None),
        ("no-such-user", 422, "validation_failed", "user_id"),
        ("missing-count", 422, "validation_failed", "count"),
        ("check", 422, "validation_failed", None),
        ("still-referenced", 409, "conflict", None),
        ("too-long", 422, "validation_failed", None),
        ("nul", 422, "validation_failed", None),
        ("not-a-number", 422, "validation_failed", None),
        ("out-of-range", 500, "internal_error", None),
        ("division", 500, "internal_error", None),
        ("syntax", 500, "internal_error", None),
    ],
)
async def test_a_value_the_database_refuses_is_answered_by_its_sqlstate(
    refusing: httpx.AsyncClient, name: str, status: int, code: str, field: str | None
) -> None:
    response = await refusing.post(f"/test/refused/{name}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["code"], problem["field"]) == (code, field)
    if name == "check":
        assert "region_code_format" in problem["detail"]
    if name == "too-long":
        assert "too long" in problem["detail"]
