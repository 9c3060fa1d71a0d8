"""Rate limits per client address and account, counted in PostgreSQL so that every worker
shares them, answered with 429 problem+json and Retry-After."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mobile_api.app import create_app
from tests.factories import PASSWORD, World
from wastetrack.core.ratelimit import RateLimitCounter, backoff_seconds, prune
from wastetrack.core.settings import Settings


def limited(settings: Settings, **limits: object) -> Settings:
    return settings.model_copy(update={"trust_proxy": True, **limits})


async def _client(settings: Settings) -> httpx.AsyncClient:
    app = create_app(settings, manage_database=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def workers(settings: Settings, world: World) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two app instances — two workers — with low limits and the same database."""
    low = limited(
        settings,
        rate_limit_public="3/minute",
        rate_limit_login="50/minute",
        rate_limit_login_failures="5/hour",
        login_max_failures=2,
        login_lock_seconds=30,
    )
    clients = [await _client(low), await _client(low)]
    yield clients
    for c in clients:
        await c.aclose()


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login(client: httpx.AsyncClient, username: str, password: str, address: str) -> int:
    response = await client.post(
        "/m/v1/auth/token",
        data={"username": username, "password": password},
        headers=_from(address),
    )
    return response.status_code


async def test_public_lookups_are_limited_per_address_across_workers(
    workers: list[httpx.AsyncClient],
) -> None:
    body = {"farmer_phone": "13800000000"}
    first, second = workers
    statuses = [
        (await c.post("/p/v1/credits", json=body, headers=_from("203.0.113.7"))).status_code
        for c in (first, second, first)
    ]
    assert 429 not in statuses
    refused = await second.post("/p/v1/credits", json=body, headers=_from("203.0.113.7"))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    other = await first.post("/p/v1/credits", json=body, headers=_from("203.0.113.8"))
    assert other.status_code != 429  # another address has its own count
    assert await RateLimitCounter.filter(key__contains="203.0.113.7").exists()


async def test_public_pages_are_limited_too(workers: list[httpx.AsyncClient]) -> None:
    client = workers[0]
    statuses = [
        (await client.get("/q/NOSUCHCODE", headers=_from("198.51.100.1"))).status_code
        for _ in range(4)
    ]
    assert statuses[-1] == 429 and 429 not in statuses[:3]


async def test_spraying_usernames_from_one_address_is_throttled(
    workers: list[httpx.AsyncClient],
) -> None:
    client = workers[0]
    for name in ("a1", "a2", "a3", "a4", "a5"):
        assert await _login(client, name, "wrong-password", "192.0.2.9") == 401
    # Even a right password waits: the address has used up its failures.
    assert await _login(client, "clinic", PASSWORD, "192.0.2.9") == 429
    assert await _login(client, "clinic", PASSWORD, "192.0.2.10") == 200


async def test_hops_a_client_writes_before_the_proxys_own_change_no_address(
    workers: list[httpx.AsyncClient],
) -> None:
    """A proxy appends the address it saw to the X-Forwarded-For it was sent: the hops before
    it are the client's own words, and a new one per request is still one address."""
    client = workers[0]
    for n in range(5):
        assert await _login(client, f"b{n}", "wrong-password", f"10.9.9.{n}, 192.0.2.20") == 401
    assert await _login(client, "clinic", PASSWORD, "10.9.9.99, 192.0.2.20") == 429


async def test_a_proxys_hop_on_a_header_line_of_its_own_is_the_address(
    workers: list[httpx.AsyncClient],
) -> None:
    """A proxy may append its hop as a line of its own (RFC 9110 §5.3 reads the lines as one
    list): the client's first line, new each time, was taken for the address."""
    client = workers[0]

    async def login(first: str, username: str, password: str) -> int:
        lines = [("X-Forwarded-For", first), ("X-Forwarded-For", "192.0.2.21")]
        form = {"username": username, "password": password}
        return (await client.post("/m/v1/auth/token", data=form, headers=lines)).status_code

    for n in range(5):
        assert await login(f"10.8.8.{n}", f"c{n}", "wrong-password") == 401
    assert await login("10.8.8.99", "clinic", PASSWORD) == 429


async def test_failed_logins_back_off_per_address_and_never_lock_out_the_owner(
    workers: list[httpx.AsyncClient],
) -> None:
    client = workers[1]
    for _ in range(2):
        assert await _login(client, "admin", "wrong-password", "192.0.2.66") == 401
    refused = await client.post(
        "/m/v1/auth/token",
        data={"username": "admin", "password": PASSWORD},
        headers=_from("192.0.2.66"),
    )
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 30
    # The attacker's failures do not reach the admin's own address.
    assert await _login(client, "admin", PASSWORD, "192.0.2.1") == 200


async def test_a_burst_of_guesses_is_held_to_the_back_off_and_the_cap(
    workers: list[httpx.AsyncClient],
) -> None:
    """Guesses sent at once are counted as they start, not after their hash: twelve at once
    were all checked against the account, the right one among them let in, and twelve names
    sprayed at once all checked against an address allowed five failures an hour."""
    client = workers[0]
    guesses = [_login(client, "admin", f"wrong-{n}", "192.0.2.88") for n in range(11)]
    statuses = await asyncio.gather(*guesses, _login(client, "admin", PASSWORD, "192.0.2.88"))
    assert len([s for s in statuses if s != 429]) <= 2, statuses  # two are free, then 30 s
    sprayed = [_login(workers[n % 2], f"c{n}", "wrong", "192.0.2.89") for n in range(12)]
    assert (await asyncio.gather(*sprayed)).count(401) <= 5
    # A right password takes its count back: the owner's logins never use the cap up.
    for _ in range(6):
        assert await _login(client, "clinic", PASSWORD, "192.0.2.90") == 200
    assert await _login(client, "c-new", "wrong", "192.0.2.90") == 401


async def test_a_login_refused_by_one_limit_counts_against_neither(
    workers: list[httpx.AsyncClient],
) -> None:
    """A right password the address cap refuses (never judged) earns its account no back-off,
    and a guess the back-off refuses uses none of the address's cap."""
    client = workers[0]
    for n in range(5):  # someone at the same address (a clinic's NAT) uses the cap up
        assert await _login(client, f"d{n}", "wrong", "192.0.2.91") == 401
    for _ in range(3):
        assert await _login(client, "clinic", PASSWORD, "192.0.2.91") == 429
    await RateLimitCounter.filter(key__contains="login-failures").delete()  # the hour ends
    assert await _login(client, "clinic", PASSWORD, "192.0.2.91") == 200
    for _ in range(2):  # the account backs off after two failures from this address
        assert await _login(client, "admin", "wrong", "192.0.2.92") == 401
    for _ in range(3):
        assert await _login(client, "admin", "wrong", "192.0.2.92") == 429
    for n in range(3):  # five failures an hour: two used, the three refused used none
        assert await _login(client, f"e{n}", "wrong", "192.0.2.92") == 401
    assert await _login(client, "e9", "wrong", "192.0.2.92") == 429


async def test_the_dashboard_login_backs_off_with_retry_after_too(
    workers: list[httpx.AsyncClient],
) -> None:
    """The dashboard answers its login form with a page, and a back-off with when to come back."""
    client = workers[0]
    form = {"username": "manager", "password": "wrong-password"}
    same = {"Sec-Fetch-Site": "same-origin", **_from("192.0.2.77")}
    for _ in range(2):
        assert (await client.post("/dashboard/login", data=form, headers=same)).status_code == 401
    refused = await client.post(
        "/dashboard/login", data={**form, "password": PASSWORD}, headers=same
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert 0 < int(refused.headers["Retry-After"]) <= 30


def test_back_off_doubles_and_is_capped() -> None:
    waits = [backoff_seconds(failures=n, free=3, first=30, longest=900) for n in range(2, 10)]
    assert waits == [0, 30, 60, 120, 240, 480, 900, 900]


async def test_login_attempts_per_address_are_limited(settings: Settings, world: World) -> None:
    client = await _client(limited(settings, rate_limit_login="2/minute"))
    try:
        statuses = [await _login(client, "clinic", PASSWORD, "192.0.2.50") for _ in range(3)]
    finally:
        await client.aclose()
    assert statuses == [200, 200, 429]


async def test_counters_of_ended_windows_are_pruned(world: World) -> None:
    now = datetime.now(UTC)
    for key, ended in (("old", timedelta(days=2)), ("recent", timedelta(hours=1))):
        await RateLimitCounter.create(
            key=key, count=3, expires_at=now - ended, touched_at=now - ended
        )
    await RateLimitCounter.create(
        key="live", count=1, expires_at=now + timedelta(minutes=1), touched_at=now
    )
    assert await prune() == 1
    assert sorted(await RateLimitCounter.all().values_list("key", flat=True)) == ["live", "recent"]
