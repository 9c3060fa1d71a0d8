"""Ingest throughput: offline sync and single-event posts through `wastetrack serve --workers
N`, against references measured in the same run on the same server: raw asyncpg executemany of
the same rows (for sync) and 32 asyncpg connections committing one event row per transaction
(for single posts: measured just before and just after them and averaged, and again once the
service has stopped; the faster of the two is the reference). Then the framework floor
(bench/floor.py): as many posts and synced events, validated and inserted through FastAPI and
the service's transaction dependency with no rules; `floor_ratio` and `floor_sync_ratio` bound
`single_ratio` and `ratio` on this machine while each post (each sync request) has a
transaction of its own, and `single_vs_floor` and `sync_vs_floor` say how much of that the
service keeps.

    python bench/ingest.py --json --workers 2

Prints one JSON object. Targets (2 cores): ratio >= 0.20, single_ratio >= 0.12,
single_p99_ms <= 3 x single_p50_ms, server_peak_rss_mb (the largest worker) <= 200.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from floor import insert_statement

from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core import db
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, RegionLevel

PASSWORD = "bench-password-1"
SECRET = "bench-secret-" + "z" * 40


async def seed(url: str) -> dict[str, int]:
    """A city, a community with its collectors, and a licensed incinerator."""
    await db.migrate(url)
    async with db.database(url, pool_size=2):
        city = await registry.create_region(code="371082", name="荣成市", level=RegionLevel.city)
        community = await registry.create_organization(
            name="北山社区", kind=OrganizationKind.community, region_id=city.id
        )
        plant = await registry.create_organization(
            name="焚烧发电厂", kind=OrganizationKind.treatment_facility, region_id=city.id
        )
        await registry.add_licence(
            organization_id=plant.id, category_key="hh.residual", method_codes=["R1", "D10"]
        )
        for index in range(32):
            await auth.create_user(
                username=f"collector{index}",
                password=PASSWORD,
                role=Role.collector,
                organization_id=community.id,
            )
        await auth.create_user(
            username="plant",
            password=PASSWORD,
            role=Role.facility_operator,
            organization_id=plant.id,
        )
        return {"plant": plant.id}


def event(kind: str, code: str | None, when: datetime, **fields: Any) -> dict[str, Any]:
    body = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": kind,
        "device_time": when.isoformat(),
        "latitude": 37.16,
        "longitude": 122.48,
        **fields,
    }
    if code:
        body["batch"] = code
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RssWatch(threading.Thread):
    """Samples the resident memory of the server and its worker processes every 50 ms: the
    peak of each process, and of their sum."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peaks: dict[int, int] = {}
        self.peak_total = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                processes = [self.process, *self.process.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for process in processes:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)
            self.peak_total = max(self.peak_total, total)
            time.sleep(0.05)

    def serving_peaks(self, workers: int) -> list[int]:
        """The peaks of the processes that serve: the largest ones (with several workers the
        parent only supervises, and multiprocessing adds a small resource tracker)."""
        return sorted(self.peaks.values(), reverse=True)[:workers]


class CpuMeter:
    """CPU seconds used so far by the service (the server and its workers) and by PostgreSQL
    (the embedded server's postmaster and its backends), to split a phase's cost between the
    Python and the database. An external database (WASTETRACK_DATABASE_URL) is not measured."""

    def __init__(self, server_pid: int, pgdata: Path | None) -> None:
        self.service = psutil.Process(server_pid)
        self.postmaster = (
            psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
            if pgdata is not None
            else None
        )

    @staticmethod
    def _seconds(root: psutil.Process | None) -> float | None:
        if root is None:
            return None
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue  # a backend that ended since the list was read
            total += times.user + times.system
        return total

    def read(self) -> tuple[float | None, float | None]:
        return self._seconds(self.service), self._seconds(self.postmaster)


def cpu_ms_per_event(
    before: tuple[float | None, float | None], after: tuple[float | None, float | None], events: int
) -> dict[str, float | None]:
    """Milliseconds of CPU per event in the service and in PostgreSQL between two readings."""
    return {
        name: None if a is None or b is None else round((b - a) * 1000 / events, 2)
        for name, a, b in zip(("service", "database"), before, after, strict=True)
    }


def machine_busy_seconds() -> float:
    """CPU seconds all the machine's cores have spent working (user, system, interrupts), so far."""
    times = psutil.cpu_times()
    fields = ("user", "nice", "system", "irq", "softirq")
    return sum(float(getattr(times, name, 0.0)) for name in fields)


async def token(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await http.post(
        "/m/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def sync_phase(
    http: httpx.AsyncClient, ids: dict[str, int], requests: int
) -> tuple[int, float]:
    """Collectors sync tag→collect→dispatch; the plant syncs receive→treat; 500 events each."""
    collector = await token(http, "collector0")
    plant = await token(http, "plant")
    start_time = datetime.now(UTC) - timedelta(hours=6)
    events = 0
    elapsed = 0.0
    for _ in range(requests):
        # Chains start with new batches; the server makes their codes, so tag first.
        tags = [
            event(
                "tagged",
                None,
                start_time,
                stream="household",
                category="hh.residual",
                quantity="12.5",
                unit="kg",
            )
            for _ in range(250)
        ]
        began = time.perf_counter()
        answer = await http.post("/m/v1/sync", json={"events": tags}, headers=collector)
        elapsed += time.perf_counter() - began
        codes = [r["batch_code"] for r in answer.json()["results"] if r["status"] == "applied"]
        events += len(codes)
        onward = []
        for code in codes:
            onward.append(event("collected", code, start_time + timedelta(minutes=10)))
            onward.append(
                event(
                    "in_transit",
                    code,
                    start_time + timedelta(minutes=20),
                    destination_organization_id=ids["plant"],
                )
            )
        for chunk in (onward[:500], onward[500:]):
            if chunk:
                began = time.perf_counter()
                answer = await http.post("/m/v1/sync", json={"events": chunk}, headers=collector)
                elapsed += time.perf_counter() - began
                events += answer.json()["applied"]
        at_plant = []
        for code in codes:
            at_plant.append(
                event(
                    "received",
                    code,
                    start_time + timedelta(hours=1),
                    outcome="accepted",
                    weight_kg="12.4",
                )
            )
            at_plant.append(event("treated", code, start_time + timedelta(hours=2), method="R1"))
        for chunk in (at_plant[:500], at_plant[500:]):
            if chunk:
                began = time.perf_counter()
                answer = await http.post("/m/v1/sync", json={"events": chunk}, headers=plant)
                elapsed += time.perf_counter() - began
                events += answer.json()["applied"]
    return events, elapsed


class Phone:
    """One phone's keep-alive HTTP/1.1 connection, written by hand: httpx costs the shared
    2-core machine about as much CPU per request as the server does, and real phones bring
    their own CPUs."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Bearer {token}"

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        payload = json.dumps(body).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:")
        )
        return status, json.loads(await self.reader.readexactly(length))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def single_phase(
    base_url: str, clients: int, per_client: int, meter: CpuMeter
) -> dict[str, Any]:
    """32 phones, each on its own open connection, tag a batch, then post collected and
    in_transit one event at a time."""
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {"tagged": [], "collected": [], "in_transit": []}
    when = datetime.now(UTC) - timedelta(hours=1)
    host, port = base_url.removeprefix("http://").split(":")
    # Every phone has logged in before anything is timed (argon2 costs tens of ms per login).
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        logins = await asyncio.gather(
            *(token(http, f"collector{index}") for index in range(clients))
        )
    phones = [Phone(host, int(port), login["Authorization"].split()[1]) for login in logins]
    for phone in phones:
        await phone.connect()

    async def work(phone: Phone, rounds: int, timed: bool) -> None:
        for _ in range(rounds):
            began = time.perf_counter()
            body = event(
                "tagged",
                None,
                when,
                stream="household",
                category="hh.residual",
                quantity="8",
                unit="kg",
            )
            body.pop("event_type")
            status, created = await phone.post("/m/v1/batches", body)
            if timed:
                latencies.append(time.perf_counter() - began)
                by_kind["tagged"].append(latencies[-1])
            assert status == 201, created
            for kind, minutes in (("collected", 5), ("in_transit", 10)):
                began = time.perf_counter()
                status, answer = await phone.post(
                    "/m/v1/events", event(kind, created["code"], when + timedelta(minutes=minutes))
                )
                if timed:
                    latencies.append(time.perf_counter() - began)
                    by_kind[kind].append(latencies[-1])
                assert status == 201, answer

    # One untimed chain per phone first, so the timed part is not 32 phones firing their
    # first request in the same instant.
    await asyncio.gather(*(work(phone, 1, timed=False) for phone in phones))
    began, cpu_before, busy_before = time.perf_counter(), meter.read(), machine_busy_seconds()
    await asyncio.gather(*(work(phone, per_client // 3, timed=True) for phone in phones))
    total, cpu_after = time.perf_counter() - began, meter.read()
    busy = machine_busy_seconds() - busy_before
    for phone in phones:
        await phone.close()
    ordered = sorted(latencies)
    return {
        "single_events_per_s": round(len(latencies) / total, 1),
        "single_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "single_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        "single_requests": len(latencies),
        "single_p99_ms_by_kind": {
            kind: round(sorted(values)[int(len(values) * 0.99) - 1] * 1000, 1)
            for kind, values in by_kind.items()
        },
        "single_cpu_ms_per_event": cpu_ms_per_event(cpu_before, cpu_after, len(latencies)),
        # Cores the whole machine kept busy (service, PostgreSQL, this client, the kernel): how
        # close the phase came to using every core.
        "single_machine_busy_cores": round(busy / total, 2),
    }


async def fresh_copy_of_log(conn: asyncpg.Connection, table: str) -> None:
    """An empty table with custody_event's columns and indexes (no triggers, no foreign keys),
    for the references and the floor to insert into."""
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(f"CREATE TABLE {table} (LIKE custody_event INCLUDING ALL)")


async def raw_executemany(url: str, repeats: int) -> tuple[int, float]:
    """The same custody_event rows, inserted by plain asyncpg executemany (500 rows per
    transaction, as one sync request) into a copy table; the median of several passes."""
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        rows = await conn.fetch("SELECT * FROM custody_event")
        statement = insert_statement("bench_copy", list(rows[0].keys()))
        values = [tuple(row.values()) for row in rows]
        timings = []
        for _ in range(repeats):
            await fresh_copy_of_log(conn, "bench_copy")
            began = time.perf_counter()
            for start in range(0, len(values), 500):
                async with conn.transaction():
                    await conn.executemany(statement, values[start : start + 500])
            timings.append(time.perf_counter() - began)
        return len(values), statistics.median(timings)
    finally:
        await conn.close()


async def raw_single_commits(
    url: str, *, connections: int, rows: int, repeats: int = 3
) -> tuple[int, float]:
    """custody_event rows inserted by plain asyncpg into a copy table from 32 connections at
    once, each row its own transaction (as one event posted by one phone); the median time of
    `repeats` runs, each into an empty copy."""
    pool = [await asyncpg.connect(**db.credentials_from_url(url)) for _ in range(connections)]
    try:
        source = await pool[0].fetch("SELECT * FROM custody_event LIMIT $1", rows)
        statement = insert_statement("bench_single", list(source[0].keys()))
        values = [tuple(row.values()) for row in source]

        async def phone(conn: asyncpg.Connection, share: list[tuple[Any, ...]]) -> None:
            for row in share:
                await conn.execute(statement, *row)  # autocommit: one transaction per row

        timings = []
        for _ in range(repeats):
            await fresh_copy_of_log(pool[0], "bench_single")
            began = time.perf_counter()
            await asyncio.gather(
                *(phone(conn, values[index::connections]) for index, conn in enumerate(pool))
            )
            timings.append(time.perf_counter() - began)
        return len(values), statistics.median(timings)
    finally:
        for conn in pool:
            await conn.close()


def start_server(
    env: dict[str, str], port: int, workers: int, profile: str | None = None
) -> subprocess.Popen[bytes]:
    """The service as an operator starts it: `wastetrack serve --workers N` (under py-spy,
    sampling every worker into collapsed stacks, with --profile)."""
    spy = ["py-spy", "record", "--subprocesses", "--rate", "500", "--format", "raw"]
    spy += ["-o", str(profile), "--"]
    return subprocess.Popen(
        [
            *(spy if profile else []),
            sys.executable,
            "-m",
            "wastetrack.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env={**env, "WASTETRACK_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,  # the bench's stdout is its JSON alone (py-spy talks there)
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def start_floor(url: str, port: int, workers: int, work: Path) -> subprocess.Popen[bytes]:
    """The framework floor (bench/floor.py) under uvicorn, with the service's worker count;
    each worker marks itself ready in work/floor-ready, and the log goes to work/floor.log."""
    (work / "floor-ready").mkdir()
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "floor.py"),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env={
            **os.environ,
            "FLOOR_DATABASE_URL": url,
            "FLOOR_READY_DIR": str(work / "floor-ready"),
        },
        stdout=subprocess.DEVNULL,
        stderr=(work / "floor.log").open("wb"),
        start_new_session=True,
    )


async def floor_phase(
    url: str,
    scratch: Path,
    pgdata: Path | None,
    workers: int,
    clients: int,
    per_client: int,
    sync_events: int,
) -> dict[str, Any]:
    """32 phones post as many collected events as the single phase posted to the framework
    floor (validated, one row committed each), then about as many events as the sync phase
    synced go in sync requests of its sizes (250, 500, 500 a round): the least a post and a
    synced event cost in this stack while each has a transaction of its own."""
    sync_sizes = [250, 500, 500] * max(1, round(sync_events / 1250))
    setup = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        await fresh_copy_of_log(setup, "bench_floor")
    finally:
        await setup.close()
    port = free_port()
    server = start_floor(url, port, workers, scratch)
    meter = CpuMeter(server.pid, pgdata)
    try:
        while len(list((scratch / "floor-ready").iterdir())) < workers:
            assert server.poll() is None, (scratch / "floor.log").read_text()
            await asyncio.sleep(0.1)
        phones = [Phone("127.0.0.1", port, "floor") for _ in range(clients)]
        for phone in phones:
            await phone.connect()
        when = datetime.now(UTC) - timedelta(hours=1)

        async def work(phone: Phone, posts: int) -> None:
            for _ in range(posts):
                status, answer = await phone.post(
                    "/floor", event("collected", "floor", when + timedelta(minutes=5))
                )
                assert status == 201, answer

        await asyncio.gather(*(work(phone, 3) for phone in phones))
        posts = per_client // 3 * 3
        began, cpu_before = time.perf_counter(), meter.read()
        await asyncio.gather(*(work(phone, posts) for phone in phones))
        total, cpu_after = time.perf_counter() - began, meter.read()
        for phone in phones:
            await phone.close()
        # Sync: one request at a time, as the sync phase sends them; the first is a warm-up.
        synced, sync_seconds = 0, 0.0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for request, size in enumerate([500, *sync_sizes]):
                body = {
                    "events": [
                        event("collected", "floor", when + timedelta(minutes=5))
                        for _ in range(size)
                    ]
                }
                if request == 1:
                    sync_cpu_before = meter.read()
                began = time.perf_counter()
                answer = await http.post("/floor/sync", json=body)
                answer.raise_for_status()
                if request:
                    sync_seconds += time.perf_counter() - began
                    synced += answer.json()["applied"]
            sync_cpu = cpu_ms_per_event(sync_cpu_before, meter.read(), synced)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    return {
        "floor_posts_per_s": round(clients * posts / total, 1),
        "floor_cpu_ms_per_post": cpu_ms_per_event(cpu_before, cpu_after, clients * posts),
        "floor_sync_events_per_s": round(synced / sync_seconds, 1),
        "floor_sync_cpu_ms_per_event": sync_cpu,
    }


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="wastetrack-bench-"))
    server_url = os.environ.get("WASTETRACK_DATABASE_URL") or db.start_embedded_server(work)
    url = db.with_database(server_url, f"wastetrack_bench_{uuid.uuid4().hex[:8]}")
    ids = await seed(url)
    port = free_port()
    env = {
        **os.environ,
        "WASTETRACK_DATABASE_URL": url,
        "WASTETRACK_DATA_DIR": str(work),
        "WASTETRACK_SECRET_KEY": SECRET,
        "WASTETRACK_ENVIRONMENT": "production",
        # 32 phones log in from one address in a few seconds: far past the per-address limit.
        "WASTETRACK_RATE_LIMIT_LOGIN": "10000/minute",
        "WASTETRACK_RATE_LIMIT_LOGIN_FAILURES": "10000/minute",
    }
    load_before = os.getloadavg()
    server = start_server(env, port, arguments.workers, arguments.profile)
    watch = RssWatch(server.pid)
    watch.start()
    meter = CpuMeter(
        server.pid, None if "WASTETRACK_DATABASE_URL" in os.environ else work / "pgdata"
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, limits=httpx.Limits(max_connections=64)
        ) as http:
            for _ in range(1200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                    await asyncio.sleep(0.1)
            await sync_phase(http, ids, 1)  # warm-up
            sync_cpu_before = meter.read()
            synced, sync_seconds = await sync_phase(http, ids, arguments.sync_rounds)
            sync_cpu = cpu_ms_per_event(sync_cpu_before, meter.read(), synced)
            # The raw single commits just before and just after the single phase, the service
            # idle: the machine's speed drifts within a run, and commits that wait for the disk
            # drift most. Once more after the service has stopped (below): whichever is faster
            # is the reference.
            single_rows = 32 * (arguments.single_per_client // 3) * 3
            references = [await raw_single_commits(url, connections=32, rows=single_rows)]
            single = await single_phase(
                f"http://127.0.0.1:{port}", 32, arguments.single_per_client, meter
            )
            references.append(await raw_single_commits(url, connections=32, rows=single_rows))
    finally:
        watch.running = False
        # py-spy writes its profile on SIGINT; the service stops on it too
        os.killpg(server.pid, signal.SIGINT if arguments.profile else signal.SIGTERM)
        server.wait(timeout=60)
    try:
        rows, raw_seconds = await raw_executemany(url, repeats=5)
        stopped = await raw_single_commits(url, connections=32, rows=single_rows)
        floor = await floor_phase(
            url,
            work,
            None if "WASTETRACK_DATABASE_URL" in os.environ else work / "pgdata",
            arguments.workers,
            32,
            arguments.single_per_client,
            synced,
        )
    finally:
        await db.drop_database(url)
    sync_rate = synced / sync_seconds
    raw_rate = rows / raw_seconds
    around = [rows_committed / seconds for rows_committed, seconds in references]
    alone = stopped[0] / stopped[1]
    # The stricter of the two: the service's background rounds (the fold, autovacuum after the
    # sync phase) may slow the references taken beside it.
    raw_single_rate = max(statistics.mean(around), alone)
    peaks = watch.serving_peaks(arguments.workers)
    return {
        "workers": arguments.workers,
        "sync_events": synced,
        "sync_events_per_s": round(sync_rate, 1),
        "sync_cpu_ms_per_event": sync_cpu,
        "raw_executemany_rows": rows,
        "raw_executemany_rows_per_s": round(raw_rate, 1),
        "ratio": round(sync_rate / raw_rate, 3),
        **single,
        "raw_single_commit_rows": single_rows,
        "raw_single_commit_rows_per_s": round(raw_single_rate, 1),
        "raw_single_commit_rows_per_s_before_after": [round(r, 1) for r in around],
        "raw_single_commit_rows_per_s_service_stopped": round(alone, 1),
        "single_ratio": round(single["single_events_per_s"] / raw_single_rate, 3),
        **floor,
        "floor_ratio": round(floor["floor_posts_per_s"] / raw_single_rate, 3),
        "single_vs_floor": round(single["single_events_per_s"] / floor["floor_posts_per_s"], 3),
        "floor_sync_ratio": round(floor["floor_sync_events_per_s"] / raw_rate, 3),
        "sync_vs_floor": round(sync_rate / floor["floor_sync_events_per_s"], 3),
        "server_peak_rss_mb": round(max(peaks) / 2**20, 1),
        "worker_peak_rss_mb": [round(peak / 2**20, 1) for peak in peaks],
        "server_peak_rss_mb_total": round(watch.peak_total / 2**20, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "targets": {
            "ratio": ">= 0.20",
            "single_ratio": ">= 0.12",
            "single_p99_ms": "<= 3 x single_p50_ms",
            "server_peak_rss_mb": "<= 200 (per worker)",
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes of `wastetrack serve`"
    )
    parser.add_argument(
        "--sync-rounds",
        type=int,
        default=10,
        help="rounds of 250 chains (5 events each) through /m/v1/sync",
    )
    parser.add_argument(
        "--single-per-client",
        type=int,
        default=45,
        help="single-event posts per client (32 clients)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="sample the server with py-spy into collapsed stacks"
    )
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result) if parser.parse_args().json else json.dumps(result, indent=2))
