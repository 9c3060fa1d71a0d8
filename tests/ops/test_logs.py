"""Structured logs: one JSON line per request under a request id, one per recorded entry."""

import io
import json
import logging
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from mobile_api.app import create_app
from tests.factories import NOW, PASSWORD, World, event, medical_bag
from tests.household import test_sorting as household
from wastetrack.alerts.models import Alert
from wastetrack.batches.models import Batch
from wastetrack.core import observability, ratelimit
from wastetrack.core.settings import Settings

point_url = household.point_url  # a collection point's QR URL, for pickups


@pytest.fixture
def log_lines(client: httpx.AsyncClient) -> Iterator[io.StringIO]:
    # After the app (which configures logging for stderr) is built: capture its lines instead.
    stream = io.StringIO()
    observability.configure_logging("json", stream=stream)
    yield stream
    observability.configure_logging("json")


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_sync_logs_each_entry_under_the_request_id(
    client: httpx.AsyncClient, world: World, log_lines: io.StringIO
) -> None:
    applied = medical_bag()
    refused = event("collected", "NO-SUCH-CODE")
    response = await client.post(
        "/m/v1/sync",
        json={"events": [applied, refused]},
        headers={**world.headers("clinic"), "X-Request-ID": "phone-42.sync:7"},
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "phone-42.sync:7"
    lines = parsed(log_lines)
    entries = {line["client_event_id"]: line for line in lines if line["event"] == "sync_entry"}
    assert entries[applied["client_event_id"]]["status"] == "applied"
    assert entries[refused["client_event_id"]]["status"] == "rejected"
    assert entries[refused["client_event_id"]]["error_field"] is not None
    (request,) = [line for line in lines if line["event"] == "request"]
    assert request["route"] == "/m/v1/sync"
    assert request["method"] == "POST"
    assert request["status"] == 200
    assert request["duration_ms"] > 0
    for line in [request, *entries.values()]:
        assert line["request_id"] == "phone-42.sync:7"
        assert line["user"] == world.users["clinic"].id
        assert line["organization"] == world.orgs["clinic"].id
        assert line["level"] == "info"


async def test_single_event_is_logged_with_its_client_event_id(
    client: httpx.AsyncClient, world: World, log_lines: io.StringIO
) -> None:
    body = medical_bag()
    body.pop("event_type")
    response = await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))
    assert response.status_code == 201
    (entry,) = [line for line in parsed(log_lines) if line["event"] == "posted_entry"]
    assert entry["client_event_id"] == body["client_event_id"]
    assert entry["status"] == "applied"
    assert entry["request_id"] == response.headers["X-Request-ID"]


async def test_pickup_posts_are_logged_with_their_client_event_id(
    client: httpx.AsyncClient, world: World, point_url: str, log_lines: io.StringIO
) -> None:
    body = household.pickup(point_url)
    for expected in (201, 200):
        response = await client.post("/m/v1/pickups", json=body, headers=world.headers("collector"))
        assert response.status_code == expected, response.text
    entries = [line for line in parsed(log_lines) if line["event"] == "posted_entry"]
    assert [(e["kind"], e["client_event_id"], e["status"]) for e in entries] == [
        ("record", body["client_event_id"], "applied"),
        ("record", body["client_event_id"], "duplicate"),
    ]
    assert entries[1]["request_id"] == response.headers["X-Request-ID"]
    assert entries[1]["user"] == world.users["collector"].id


async def test_a_dashboard_request_is_logged_with_its_user_and_organization(
    client: httpx.AsyncClient, world: World, log_lines: io.StringIO
) -> None:
    """docs/operations.md: each request's line names its user and organization. The dashboard's
    cookie login named neither, so a manager's acknowledgement of an alert there was logged as
    nobody's (readme review); one function (`deps.acting`) names them for every login."""
    bag = await client.post("/m/v1/events", json=medical_bag(), headers=world.headers("clinic"))
    assert bag.status_code == 201, bag.text
    alert = await Alert.create(
        kind="idle_batch",
        subject=f"{bag.json()['batch_code']}:1",
        batch_id=(await Batch.get(code=bag.json()["batch_code"])).id,
        organization_id=world.orgs["clinic"].id,
        region_path=world.principals["clinic"].region_path,
        raised_at=NOW - timedelta(hours=1),
        details={"code": bag.json()["batch_code"], "state": "tagged"},
    )
    login = await client.post(
        "/dashboard/login", data={"username": "manager", "password": PASSWORD}
    )
    assert login.status_code == 303, login.text
    assert (await client.get("/dashboard/alerts")).status_code == 200
    ack = await client.post(f"/dashboard/alerts/{alert.id}/ack", data={"back": "/dashboard/alerts"})
    assert ack.status_code == 303, ack.text
    manager = world.principals["manager"]
    logged = {
        (line["method"], line["route"]): (line["user"], line["organization"])
        for line in parsed(log_lines)
        if line.get("event") == "request"
    }
    named = (manager.user_id, manager.organization_id)
    assert logged[("GET", "/dashboard/alerts")] == named
    assert logged[("POST", "/dashboard/alerts/{alert_id}/ack")] == named


@pytest.mark.parametrize("sent", [None, "has spaces", "x" * 65, "a/b"])
async def test_missing_or_odd_request_ids_are_replaced(
    client: httpx.AsyncClient, log_lines: io.StringIO, sent: str | None
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": sent} if sent else {})
    generated = response.headers["X-Request-ID"]
    assert generated != sent
    assert uuid.UUID(hex=generated)
    (request,) = [line for line in parsed(log_lines) if line["event"] == "request"]
    assert request["request_id"] == generated
    assert request["user"] is None


async def test_standard_library_records_become_json(log_lines: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").warning("port %d in use", 8000)
    (line,) = parsed(log_lines)
    assert line["event"] == "port 8000 in use"
    assert line["level"] == "warning"
    assert line["logger"] == "uvicorn.error"


async def test_an_unexpected_error_logs_no_password_nor_secret_on_a_console(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login that fails after its password was checked (the database gone, here a failing
    call) is a 500 problem, and its log line, on a console for people, prints the traceback
    without each frame's variables — neither the password sent nor the master secret."""
    master = secrets.token_hex(32)
    app = create_app(settings.model_copy(update={"secret_key": master}), manage_database=False)
    stream = io.StringIO()
    observability.configure_logging("console", stream=stream)

    async def gone(**_: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(ratelimit, "forget", gone)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            failed = await c.post(
                "/m/v1/auth/token",
                data={"username": "collector", "password": PASSWORD},
                headers={"X-Request-ID": "probe-2"},
            )
    finally:
        observability.configure_logging("json")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.headers["x-request-id"] == "probe-2"  # the client can name the log line
    assert failed.headers["x-content-type-options"] == "nosniff"
    logged = stream.getvalue()
    assert "database went away" in logged and "probe-2" in logged
    assert PASSWORD not in logged and master[:16] not in logged
