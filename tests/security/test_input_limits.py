"""Input limits: bodies capped before they are read, image pixels checked before decoding,
device clocks before 2000 refused, bad values named as 4xx problem+json."""

import base64
import struct
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest

from mobile_api.app import create_app
from tests.factories import PASSWORD, World, medical_bag
from wastetrack.core import ratelimit
from wastetrack.core.errors import TooManyRequests
from wastetrack.core.settings import Settings

PROBLEM = "application/problem+json"


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height pixels, with (almost) no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


async def test_a_body_over_the_cap_is_refused_from_its_content_length(
    settings: Settings, world: World
) -> None:
    app = create_app(settings.model_copy(update={"max_body_bytes": 4096}), manage_database=False)
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(100):
            read.append(1)
            yield b"x" * 1024

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        declared = await client.post(
            "/m/v1/sync",
            content=b"{" + b" " * 10_000 + b"}",
            headers={**world.headers("carrier"), "Content-Type": "application/json"},
        )
        streamed = await client.post(
            "/m/v1/sync",
            content=body(),
            headers={**world.headers("carrier"), "Content-Type": "application/json"},
        )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == PROBLEM
    assert len(read) < 100  # stopped while streaming, not after reading everything


async def test_a_png_declaring_20000_by_20000_pixels_is_refused_before_decoding(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/m/v1/photos",
        headers=world.headers("clinic"),
        files={"file": ("bomb.png", png_declaring(20000, 20000), "image/png")},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == "file"
    assert "pixels" in response.json()["detail"]


async def test_a_device_time_before_2000_is_refused_like_a_future_one(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = medical_bag()
    bag["device_time"] = "0001-01-01T00:00:00+00:00"
    response = await client.post("/m/v1/events", headers=world.headers("clinic"), json=bag)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "device_time"


async def test_ids_beyond_int32_and_nul_bytes_are_named_4xx(
    client: httpx.AsyncClient, world: World
) -> None:
    huge = await client.get("/m/v1/deliveries/99999999999", headers=world.headers("port"))
    assert huge.status_code == 422 and huge.json()["field"] == "delivery_id"
    nul = await client.post(
        "/m/v1/events", headers=world.headers("clinic"), json=medical_bag(note="a\x00b")
    )
    assert nul.status_code == 422 and nul.json()["field"] == "note"
    long = await client.post(
        "/admin/v1/regions",
        headers=world.headers("admin"),
        json={"code": "x" * 33, "name": "n", "level": "town"},
    )
    assert long.status_code == 422 and long.json()["field"] == "code"
    producer = await client.post(
        "/m/v1/events",
        headers=world.headers("clinic"),
        json=medical_bag(producer_organization_id=2**31),
    )
    assert producer.status_code == 422
    assert producer.json()["field"] == "producer_organization_id"


async def test_sync_entries_of_any_json_type_are_rejected_one_by_one(
    client: httpx.AsyncClient, world: World
) -> None:
    entries = [None, 3, "text", [1], {"kind": ["x"]}, medical_bag()]
    response = await client.post(
        "/m/v1/sync", headers=world.headers("clinic"), json={"events": entries}
    )
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["rejected"] * 5 + ["applied"]


async def test_an_unexpected_error_is_still_problem_json(settings: Settings, world: World) -> None:
    app = create_app(settings, manage_database=False)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "internal_error"
    assert "unexpected" not in response.text
    # Answered like any other: the request id to quote, and no sniffing of the body.
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_login_with_an_odd_username_is_a_named_422_never_a_500(
    client: httpx.AsyncClient, world: World
) -> None:
    for route in ("/m/v1/auth/token", "/dashboard/login"):
        for username in ("a" * 65, "a\x00b"):  # longer than any username; a NUL
            refused = await client.post(route, data={"username": username, "password": "x"})
            assert refused.status_code == 422, (route, refused.text)
            assert refused.json()["field"] == "username"


async def test_a_back_off_key_too_long_for_its_column_is_kept_by_its_digest(world: World) -> None:
    # A key holds the client's address (up to 64 characters behind a trusted proxy) and the
    # case-folded username, which can be three times as long ("ΐ" folds to three characters).
    key = f"login|{'f' * 64}|{'ΐ' * 64}".casefold()
    assert len(f"backoff|{key}") > 255
    claim = {"key": key, "free": 1, "first": 60, "longest": 60, "forget_after": 60}
    await ratelimit.claim_failure(**claim)
    with pytest.raises(TooManyRequests):
        await ratelimit.claim_failure(**claim)
    await ratelimit.forget(key=key)
    await ratelimit.claim_failure(**claim)


async def test_a_batch_list_names_a_bad_state_or_a_forged_cursor(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.headers("clinic")
    # The states are a closed list: a misspelt one is refused, not an empty page (a manager
    # would read it as no such batches; first written by an independent review).
    for bad in ("a\x00b", "bogus", "Tagged", "handed-over", "x" * 5000):
        state = await client.get("/m/v1/batches", params={"state": bad}, headers=headers)
        assert state.status_code == 422 and state.json()["field"] == "state", (bad, state.text)
    assert (
        await client.get("/m/v1/batches", params={"state": "tagged"}, headers=headers)
    ).is_success
    for forged_cursor in (
        "2026-01-01T00:00:00+00:00|99999999999",  # an id beyond int32
        "0001-01-01T00:00:00+14:00|5",  # a time before year 1 in UTC
        "2026-01-01T00:00:00|5",  # no offset
    ):
        cursor = base64.urlsafe_b64encode(forged_cursor.encode()).decode()
        page = await client.get("/m/v1/batches", params={"cursor": cursor}, headers=headers)
        assert page.status_code == 422, (forged_cursor, page.text)
        assert page.json()["field"] == "cursor"


async def test_dashboard_forms_name_ids_and_pages_out_of_range(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await client.post(
        "/dashboard/login", data={"username": "manager", "password": PASSWORD}
    )
    assert login.status_code == 303
    one = await client.post("/dashboard/alerts/99999999999/ack")
    assert one.status_code == 422 and one.json()["field"] == "alert_id"
    many = await client.post("/dashboard/alerts/ack", data={"ids": ["1", "99999999999"]})
    assert many.status_code == 422 and many.json()["field"].startswith("ids")
    page = await client.get("/dashboard/alerts", params={"page": str(10**20)})
    assert page.status_code == 422 and page.json()["field"] == "page"
    trace = await client.get("/dashboard/batches", params={"code": "a\x00b"})
    assert trace.status_code == 422 and trace.json()["field"] == "code"
