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


def start_serving(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "wastetrack.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def both_workers(server: subprocess.Popen[bytes], port: int) -> set[int]:
    """The two workers' pids, once each has answered a connection of its own."""
    pids: set[int] = set()
    deadline = time.monotonic() + 120
    while len(pids) < 2 and time.monotonic() < deadline:
        try:
            # A new connection each time: the kernel hands it to one of the workers.
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"Connection": "close"})
            pids.add(int(answer.headers["x-worker-pid"]))
        except httpx.TransportError:
            assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.2)
    assert len(pids) == 2
    return pids


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)
    assert server.returncode == 0


def test_two_workers_answer_and_only_one_runs_the_background_round(
    serve_env: dict[str, str],
) -> None:
    port = free_port()
    server = start_serving(serve_env, port)
    try:
        pids = both_workers(server, port)
        assert pids <= {child.pid for child in psutil.Process(server.pid).children()}
        assert server.pid not in pids

        # Both workers have tried their start-up round: one ran it, the other skipped it.
        counts: dict[str, float] = {}
        deadline = time.monotonic() + 60
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
        stop(server)


async def answered_by(port: int, connections: int) -> list[int]:
    """Open `connections` kept-alive connections at once, then ask once on each: the worker
    that answered each."""
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    pids = []
    for reader, writer in opened:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower().split("\r\n")
        pids.append(int(next(h for h in head if h.startswith("x-worker-pid:")).split(":")[1]))
        writer.close()
    return pids


def listening_sockets(pid: int, port: int) -> set[str]:
    """The sockets (by inode) this process listens on at `port`."""
    return {
        os.readlink(f"/proc/{pid}/fd/{connection.fd}")
        for connection in psutil.Process(pid).net_connections("tcp")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    }


@pytest.mark.skipif(sys.platform != "linux", reason="workers share a port this way on Linux")
def test_connections_opened_at_once_are_spread_over_the_workers(
    serve_env: dict[str, str],
) -> None:
    """Each worker listens on a socket of its own, so a burst of phones (or a proxy's pool) is
    not taken whole by whichever worker wakes first."""
    port = free_port()
    server = start_serving(serve_env, port)
    try:
        pids = both_workers(server, port)
        listening = {pid: listening_sockets(pid, port) for pid in pids}
        assert all(len(sockets) == 1 for sockets in listening.values())
        assert len(set.union(*listening.values())) == 2  # not one socket shared
        assert not listening_sockets(server.pid, port)
        answered = asyncio.run(answered_by(port, 64))
        # Spread by the kernel's hash of each connection: one worker with fewer than 8 of 64
        # happens about once in 10**10 runs.
        assert {pid: answered.count(pid) >= 8 for pid in pids} == dict.fromkeys(pids, True)
    finally:
        stop(server)


@pytest.mark.skipif(sys.platform != "linux", reason="workers share a port this way on Linux")
def test_a_second_service_on_the_same_port_is_refused(serve_env: dict[str, str]) -> None:
    """The workers share their port with each other only: a second `serve` started by mistake
    on the same port stops at once instead of taking half the connections."""
    port = free_port()
    server = start_serving(serve_env, port)
    try:
        pids = both_workers(server, port)
        second = start_serving(serve_env, port)
        try:
            _, errors = second.communicate(timeout=60)
        finally:
            second.kill()
        assert second.returncode == 3  # uvicorn's start-up failure
        assert f"cannot listen on 127.0.0.1:{port}" in errors.decode()
        assert set(asyncio.run(answered_by(port, 8))) <= pids
    finally:
        stop(server)


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


def test_a_worker_loads_the_pdf_and_spreadsheet_libraries_only_to_use_them() -> None:
    """fpdf2 and openpyxl added 23 MB to every worker at start-up (the bench's target is 200 MB
    per worker), and most workers never print or export."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mobile_api.app; print(sorted({'fpdf', 'openpyxl'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_served_without_a_trusted_proxy_x_forwarded_for_moves_no_login_limit(
    serve_env: dict[str, str],
) -> None:
    """Unless WASTETRACK_TRUST_PROXY says a proxy writes it, X-Forwarded-For is the client's own
    word: served by uvicorn (whose default believes any loopback peer's), a peer over its login
    limit stays over it whatever address the header names."""
    port = free_port()
    server = start_serving({**serve_env, "WASTETRACK_RATE_LIMIT_LOGIN": "3/minute"}, port)
    try:
        both_workers(server, port)
        url = f"http://127.0.0.1:{port}/m/v1/auth/token"
        wrong = {"username": "nobody", "password": "wrong-password"}
        direct = [httpx.post(url, data=wrong).status_code for _ in range(3)]
        assert direct == [401, 401, 401]
        forwarded = [
            httpx.post(url, data=wrong, headers={"X-Forwarded-For": f"198.51.100.{n}"})
            for n in range(1, 4)
        ]
        assert [answer.status_code for answer in forwarded] == [429, 429, 429]
    finally:
        stop(server)
