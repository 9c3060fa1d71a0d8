"""Webhook fan-out: offline sync throughput through `wastetrack serve` without subscriptions and
then with 5 subscriptions to a local HTTP listener in its own process (deliveries being sent
meanwhile by the service's webhook deliverer process), and every delivery checked against its
signature.

    python bench/webhooks.py --json --workers 1 --sync-rounds 1

Prints one JSON object. Target (issue #13): ratio (with / without) >= 0.90; received equals
expected, each with a valid signature, none twice.
"""

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
from ingest import PASSWORD, SECRET, free_port, seed, start_server, sync_phase, token

from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core import db
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, Region

SUBSCRIPTIONS = 5  # issue #13's case; --subscriptions 0 measures the bench's own drift


class Listener:
    """A minimal HTTP/1.1 receiver (keep-alive) that writes every request it receives as one
    JSON line (path, signature headers, body) to a file. It runs in its own process
    (`--listen FILE`), so that receiving does not slow the bench's sync client."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in head[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = {
                    "path": head[0].split()[1],
                    "id": headers.get("webhook-id", ""),
                    "timestamp": headers.get("webhook-timestamp", ""),
                    "signature": headers.get("webhook-signature", ""),
                    "body": body.decode(),  # UTF-8 JSON: encodes back to the same bytes
                }
                self.out.write(json.dumps(received, ensure_ascii=False) + "\n")
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def serve(self) -> None:
        """Print the port, then receive until killed (flushing the file every 0.1 s)."""
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        while True:
            await asyncio.sleep(0.1)
            self.out.flush()


class Received:
    """The listener process and the lines it has written so far."""

    def __init__(self, path: Path, *, nice: int) -> None:
        self.path = path
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--listen", str(path), "--listener-nice", str(nice)],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self._file = path.open("rb")
        self.count = 0

    def poll(self) -> int:
        """How many requests have arrived (as far as the listener has flushed)."""
        self.count += self._file.read().count(b"\n")
        return self.count

    def stop(self) -> list[dict[str, str]]:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._file.close()
        with self.path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def deliverer_of(server: subprocess.Popen[bytes]) -> psutil.Process | None:
    """The webhook deliverer that `wastetrack serve` started."""
    for child in psutil.Process(server.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "deliver" in child.cmdline():
                return child
    return None


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
    listener = Received(work / "received.jsonl", nice=arguments.listener_nice)
    hook_port = listener.port
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
    deliverer_cpu = 0.0
    during = [0.0, 0.0]
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
            deliverer = deliverer_of(server)
            assert deliverer is not None, "serve started no webhook deliverer"
            deliverer_cpu = -cpu_seconds(deliverer)
            for index in range(arguments.subscriptions):
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
            listening = psutil.Process(listener.process.pid)
            during = [-cpu_seconds(deliverer), -cpu_seconds(listening)]
            fanned_events, fanned_seconds = await sync_phase(http, ids, arguments.sync_rounds)
            during = [during[0] + cpu_seconds(deliverer), during[1] + cpu_seconds(listening)]
            expected = fanned_events * arguments.subscriptions
            began = time.perf_counter()
            for _ in range(6000):  # 10 minutes at most
                if listener.poll() >= expected:
                    break
                await asyncio.sleep(0.1)
            drained_seconds = time.perf_counter() - began
            deliverer_cpu += cpu_seconds(deliverer)
            await asyncio.sleep(1)  # anything sent twice would arrive now
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        received = listener.stop()
    await db.drop_database(url)
    valid = 0
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for delivery in received:
        body = delivery["body"].encode()
        signed = f"{delivery['id']}.{delivery['timestamp']}.".encode() + body
        digest = hmac.new(secrets[delivery["path"]].encode(), signed, hashlib.sha256).digest()
        valid += hmac.compare_digest(
            delivery["signature"], "v1," + base64.b64encode(digest).decode()
        )
        key = (delivery["path"], json.loads(body)["id"])
        duplicates += key in seen
        seen.add(key)
    plain_rate = plain_events / plain_seconds
    fanned_rate = fanned_events / fanned_seconds
    return {
        "workers": arguments.workers,
        "subscriptions": arguments.subscriptions,
        "sync_events_without": plain_events,
        "sync_events_per_s_without": round(plain_rate, 1),
        "sync_events_with": fanned_events,
        "sync_events_per_s_with": round(fanned_rate, 1),
        "ratio": round(fanned_rate / plain_rate, 3),
        "deliveries_expected": expected,
        "deliveries_received": len(received),
        "deliveries_valid_signature": valid,
        "deliveries_duplicated": duplicates,
        "seconds_to_deliver_after_sync": round(drained_seconds, 1),
        # From creating the subscriptions until everything arrived, user + system.
        "deliverer_cpu_seconds": round(deliverer_cpu, 1),
        # While the second phase synced: what the deliverer and the listener took meanwhile.
        "deliverer_cpu_seconds_during_sync": round(during[0], 2),
        "listener_cpu_seconds_during_sync": round(during[1], 2),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "listener_nice": arguments.listener_nice,
        "targets": {"ratio": ">= 0.90", "deliveries_received": "== deliveries_expected"},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--listen", type=Path, help=argparse.SUPPRESS)  # the listener process
    parser.add_argument(
        "--listener-nice",
        type=int,
        default=0,
        help="lower the listener's CPU priority (it stands for the integrator's own machine)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of `wastetrack serve`"
    )
    parser.add_argument(
        "--subscriptions",
        type=int,
        default=SUBSCRIPTIONS,
        help="subscriptions in the second phase (0: how much the second phase differs anyway)",
    )
    parser.add_argument(
        "--sync-rounds",
        type=int,
        default=4,
        help="rounds of 250 chains (5 events each) through /m/v1/sync, per phase",
    )
    parsed = parser.parse_args()
    if parsed.listen:
        os.nice(parsed.listener_nice)
        with parsed.listen.open("w", encoding="utf-8") as out:
            asyncio.run(Listener(out).serve())
    else:
        result = asyncio.run(main(parsed))
        print(json.dumps(result, indent=None if parsed.json else 2))
