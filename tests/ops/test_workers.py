"""`wastetrack serve --workers N`: several processes answer, one of them runs the background
rounds; reading alerts writes nothing."""

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.custody.helpers import tag_bag
from tests.factories import World
from wastetrack.alerts.models import Alert
from wastetrack.core import db


@pytest.fixture
def serve_env(server_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    url = db.with_database(server_url, f"wastetrack_workers_{uuid.uuid4().hex[:8]}")
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    yield {
        **env,
        "WASTETRACK_DATABASE_URL": url,
        "WASTETRACK_DATA_DIR": str(tmp_path),
        "WASTETRACK_SECRET_KEY": "workers-test-secret-" + "w" * 32,
        "WASTETRACK_ENVIRONMENT": "test",  # answers name the worker (x-worker-pid)
        # Each worker tries one round at start-up, then not again during the test.
        "WASTETRACK_ALERT_REFRESH_SECONDS": "3600",
    }
    asyncio.run(db.drop_database(url))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def job_samples(text: str) -> dict[str, float]:
    wanted = {"wastetrack_job_duration_seconds_count", "wastetrack_job_skipped_total"}
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in wanted and sample.labels.get("job") == "alert_refresh"
    }


def test_two_workers_answer_and_only_one_runs_the_background_round(
    serve_env: dict[str, str],
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wastetrack.cli", "serve", "--workers", "2", "--port", str(port)],
        env=serve_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 120
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                # A new connection each time: the kernel hands it to whichever worker accepts.
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"}
                )
                pids.add(int(answer.headers["x-worker-pid"]))
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                time.sleep(0.2)
        assert len(pids) == 2
        assert pids <= {child.pid for child in psutil.Process(server.pid).children()}
        assert server.pid not in pids

        # Both workers have tried their start-up round: one ran it, the other skipped it.
        counts: dict[str, float] = {}
        while time.monotonic() < deadline:
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics")
            assert metrics.status_code == 200
            counts = job_samples(metrics.text)
            if sum(counts.values()) >= 2:
                break
            time.sleep(0.2)
        assert counts == {
            "wastetrack_job_duration_seconds_count": 1,
            "wastetrack_job_skipped_total": 1,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0


def hours_ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


async def test_listing_alerts_raises_none_until_a_refresh(
    client: httpx.AsyncClient, world: World
) -> None:
    await tag_bag(client, world, device_time=hours_ago(50))  # overdue storage
    listed = await client.get("/m/v1/alerts", headers=world.headers("manager"))
    assert listed.status_code == 200 and listed.json() == []
    assert await Alert.all().count() == 0
    refused = await client.post("/m/v1/alerts/refresh", headers=world.headers("clinic"))
    assert refused.status_code == 403
    raised = await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    assert raised.json() == {"raised": 1}
    listed = await client.get("/m/v1/alerts", headers=world.headers("manager"))
    assert [a["kind"] for a in listed.json()] == ["overdue_storage"]
