"""Webhook fan-out: offline sync throughput through `wastetrack serve` without subscriptions and
then with 5 subscriptions to a local HTTP listener (deliveries being sent meanwhile by the
service's background dispatcher), and every delivery checked against its signature.

    python bench/webhooks.py --json --workers 1 --sync-rounds 1

Prints one JSON object. Target (issue #13): ratio (with / without) >= 0.90; received equals
expected, each with a valid signature, none twice.
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from ingest import PASSWORD, SECRET, free_port, seed, start_server, sync_phase, token

from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core import db
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, Region

SUBSCRIPTIONS = 5


class Listener:
    """A minimal HTTP/1.1 receiver (keep-alive) that keeps every body with its headers."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.expected = 0
        self.complete = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in head[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append((head[0].split()[1], headers, body))
                if self.expected and len(self.received) >= self.expected:
                    self.complete.set()
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def add_manager(url: str) -> None:
    """A city manager, who sees every batch of the city and owns the subscriptions."""
    async with db.database(url, pool_size=2):
        city = await Region.get(code="371082")
        bureau = await registry.create_organization(
            name="荣成市生态环境局", kind=OrganizationKind.authority, region_id=city.id
        )
        await auth.create_user(
            username="manager", password=PASSWORD, role=Role.manager, organization_id=bureau.id
        )


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="wastetrack-bench-"))
    server_url = os.environ.get("WASTETRACK_DATABASE_URL") or db.start_embedded_server(work)
    url = db.with_database(server_url, f"wastetrack_bench_{uuid.uuid4().hex[:8]}")
    ids = await seed(url)
    await add_manager(url)
    listener = Listener()
    receiver = await asyncio.start_server(listener.handle, "127.0.0.1", 0)
    hook_port = receiver.sockets[0].getsockname()[1]
    port = free_port()
    env = {
        **os.environ,
        "WASTETRACK_DATABASE_URL": url,
        "WASTETRACK_DATA_DIR": str(work),
        "WASTETRACK_SECRET_KEY": SECRET,
        "WASTETRACK_ENVIRONMENT": "production",
        "WASTETRACK_RATE_LIMIT_LOGIN": "10000/minute",
        "WASTETRACK_RATE_LIMIT_LOGIN_FAILURES": "10000/minute",
        "WASTETRACK_WEBHOOKS_ALLOW_PRIVATE": "1",
        "WASTETRACK_WEBHOOKS_DISPATCH_SECONDS": "0.2",
    }
    server = start_server(env, port, arguments.workers)
    secrets: dict[str, str] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(1200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                    await asyncio.sleep(0.1)
            await sync_phase(http, ids, 1)  # warm-up
            plain_events, plain_seconds = await sync_phase(http, ids, arguments.sync_rounds)
            manager = await token(http, "manager")
            for index in range(SUBSCRIPTIONS):
                path = f"/hook{index}"
                created = await http.post(
                    "/m/v1/webhooks",
                    json={
                        "url": f"http://127.0.0.1:{hook_port}{path}",
                        "events": ["batch.event_recorded"],
                    },
                    headers=manager,
                )
                created.raise_for_status()
                secrets[path] = created.json()["secret"]
            fanned_events, fanned_seconds = await sync_phase(http, ids, arguments.sync_rounds)
            expected = fanned_events * SUBSCRIPTIONS
            began = time.perf_counter()
            listener.expected = expected
            if len(listener.received) >= expected:
                listener.complete.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.complete.wait(), timeout=600)
            drained_seconds = time.perf_counter() - began
            await asyncio.sleep(1)  # anything sent twice would arrive now
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        receiver.close()
    await db.drop_database(url)
    valid = 0
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for path, headers, body in listener.received:
        digest = hmac.new(secrets[path].encode(), body, hashlib.sha256).hexdigest()
        valid += hmac.compare_digest(headers.get("x-wastetrack-signature", ""), f"sha256={digest}")
        key = (path, json.loads(body)["id"])
        duplicates += key in seen
        seen.add(key)
    plain_rate = plain_events / plain_seconds
    fanned_rate = fanned_events / fanned_seconds
    return {
        "workers": arguments.workers,
        "subscriptions": SUBSCRIPTIONS,
        "sync_events_without": plain_events,
        "sync_events_per_s_without": round(plain_rate, 1),
        "sync_events_with": fanned_events,
        "sync_events_per_s_with": round(fanned_rate, 1),
        "ratio": round(fanned_rate / plain_rate, 3),
        "deliveries_expected": expected,
        "deliveries_received": len(listener.received),
        "deliveries_valid_signature": valid,
        "deliveries_duplicated": duplicates,
        "seconds_to_deliver_after_sync": round(drained_seconds, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "targets": {"ratio": ">= 0.90", "deliveries_received": "== deliveries_expected"},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of `wastetrack serve`"
    )
    parser.add_argument(
        "--sync-rounds",
        type=int,
        default=4,
        help="rounds of 250 chains (5 events each) through /m/v1/sync, per phase",
    )
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result, indent=None if parser.parse_args().json else 2))
