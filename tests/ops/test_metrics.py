"""GET /metrics: Prometheus text, counted where results are produced, closed to strangers."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mobile_api.app import create_app
from tests.custody.helpers import tag_bag
from tests.factories import World, event, medical_bag
from wastetrack.alerts.models import Alert
from wastetrack.core.settings import Settings
from wastetrack.rollups import service as rollups

METRICS_TOKEN = "metrics-" + "m" * 32


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_sync_results_are_counted_by_status(client: httpx.AsyncClient, world: World) -> None:
    bag = medical_bag(carrier_organization_id=world.orgs["carrier"].id)
    headers = world.headers("clinic")
    before = await scrape(client)
    first = await client.post("/m/v1/sync", json={"events": [bag]}, headers=headers)
    assert first.json()["applied"] == 1
    entries = [
        bag,  # duplicate
        {**bag, "quantity": "9.9"},  # same id, other content: conflict
        event("collected", "NO-SUCH-CODE"),  # refused by the rules
        {"kind": "bogus", "client_event_id": str(uuid.uuid4())},  # not a known kind
    ]
    second = await client.post("/m/v1/sync", json={"events": entries}, headers=headers)
    assert [r["status"] for r in second.json()["results"]] == [
        "duplicate",
        "conflict",
        "rejected",
        "rejected",
    ]
    after = await scrape(client)

    def delta(**labels: str) -> float:
        name = "wastetrack_sync_results_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(kind="event", status="applied") == 1
    assert delta(kind="event", status="duplicate") == 1
    assert delta(kind="event", status="conflict") == 1
    assert delta(kind="event", status="rejected") == 1
    assert delta(kind="invalid", status="rejected") == 1


async def test_single_event_posts_are_counted(client: httpx.AsyncClient, world: World) -> None:
    body = medical_bag()
    body.pop("event_type")
    before = await scrape(client)
    for expected in (201, 200):
        response = await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))
        assert response.status_code == expected, response.text
    after = await scrape(client)
    name = "wastetrack_posted_results_total"
    for status in ("applied", "duplicate"):
        assert (
            value(after, name, kind="event", status=status)
            - value(before, name, kind="event", status=status)
            == 1
        )


async def test_latency_is_labelled_by_route_template(
    client: httpx.AsyncClient, world: World
) -> None:
    code = (
        await client.post(
            "/m/v1/sync", json={"events": [medical_bag()]}, headers=world.headers("clinic")
        )
    ).json()["results"][0]["batch_code"]
    response = await client.get(f"/m/v1/batches/{code}", headers=world.headers("clinic"))
    assert response.status_code == 200
    assert (await client.get("/no/such/page")).status_code == 404
    text = (await client.get("/metrics")).text
    scraped = samples(text)
    count = "wastetrack_http_request_duration_seconds_count"
    assert value(scraped, count, method="GET", route="/m/v1/batches/{code}", status="200") >= 1
    assert value(scraped, count, method="POST", route="/m/v1/sync", status="200") >= 1
    assert value(scraped, count, method="GET", route="unmatched", status="404") >= 1
    assert code not in text  # raw paths never become label values


async def test_a_method_no_route_takes_is_labelled_other(client: httpx.AsyncClient) -> None:
    """Any anonymous client may send PROPFIND, PURGE ... (any token under h11) to any path: each
    method kept as sent added a histogram series per route, in every worker until a restart."""
    for method in ("PROPFIND", "MKCOL", "PURGE", "SEARCH", "UNLOCK"):
        assert (await client.request(method, "/healthz")).status_code == 405
    scraped = (await client.get("/metrics")).text
    methods = {
        sample.labels.get("method")
        for family in text_string_to_metric_families(scraped)
        if family.name == "wastetrack_http_request_duration_seconds"
        for sample in family.samples
    }
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


async def test_open_alerts_by_kind_are_read_at_scrape_time(
    client: httpx.AsyncClient, world: World
) -> None:
    org = world.orgs["clinic"]
    now = datetime.now(UTC)
    for subject in ("A1", "A2"):
        await Alert.create(
            kind="idle_batch", subject=subject, organization=org, region_path="1", raised_at=now
        )
    await Alert.create(
        kind="weight_discrepancy",
        subject="A3",
        organization=org,
        region_path="1",
        raised_at=now,
        acknowledged_at=now,
    )
    scraped = await scrape(client)
    assert value(scraped, "wastetrack_open_alerts", kind="idle_batch") == 2
    assert ("wastetrack_open_alerts", frozenset({("kind", "weight_discrepancy")})) not in scraped


async def test_changes_to_the_metric_sums_not_folded_yet_are_read_at_scrape_time(
    client: httpx.AsyncClient, world: World
) -> None:
    assert value(await scrape(client), "wastetrack_metric_changes_pending") == 0
    await tag_bag(client, world)
    assert value(await scrape(client), "wastetrack_metric_changes_pending") >= 1
    await rollups.fold()
    assert value(await scrape(client), "wastetrack_metric_changes_pending") == 0


async def _remote_get(
    app: object, headers: dict[str, str] | None = None, client: tuple[str, int] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=client or ("203.0.113.7", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as remote:
        return await remote.get("/metrics", headers=headers or {})


async def test_metrics_from_another_host_need_the_token_or_a_manager(
    settings: Settings, world: World
) -> None:
    app = create_app(
        settings.model_copy(update={"metrics_token": METRICS_TOKEN}), manage_database=False
    )
    assert (await _remote_get(app)).status_code == 401
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await _remote_get(app, bearer)).status_code == 200
    assert (await _remote_get(app, {"Authorization": "Bearer wrong-token"})).status_code == 401
    assert (await _remote_get(app, world.headers("manager"))).status_code == 200
    refused = await _remote_get(app, world.headers("collector"))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    # Loopback through a proxy on the same host is not loopback.
    proxied = await _remote_get(app, {"X-Forwarded-For": "198.51.100.1"}, ("127.0.0.1", 1))
    assert proxied.status_code == 401
    assert (await _remote_get(app, client=("127.0.0.1", 1))).status_code == 200


def test_worker_processes_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "from wastetrack.core import observability as o;"
        "o.SYNC_RESULTS.labels('event', 'applied').inc()"
    )
    for _ in range(2):  # two workers, each counting once
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    expose = (
        "import sys; from wastetrack.core import observability as o;"
        "sys.stdout.write(o.exposition(open_alerts={'idle_batch': 3}).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", expose],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    scraped = samples(out)
    assert value(scraped, "wastetrack_sync_results_total", kind="event", status="applied") == 2
    assert value(scraped, "wastetrack_open_alerts", kind="idle_batch") == 3
