"""The deliverer process that `wastetrack serve` supervises: it sends at a lower CPU priority,
one deliverer at a time cluster-wide, is started again when it dies, and ends with the
process that started it."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import asyncpg
import httpx
import psutil
import pytest
from tortoise import connections

from tests.custody.helpers import advance, tag_bag
from tests.factories import World
from tests.webhooks.conftest import Listener
from tests.webhooks.helpers import subscribe
from tests.webhooks.test_dispatcher import verified
from wastetrack.core import db
from wastetrack.core.settings import Settings
from wastetrack.webhooks.deliverer import APPLICATION_NAME, BackendPriority

# A stand-in for `wastetrack serve`: supervises a deliverer until it is killed.
SUPERVISOR = (
    "import os, time\n"
    "from wastetrack.webhooks import deliverer\n"
    "with deliverer.supervised(os.environ):\n"
    "    time.sleep(600)\n"
)


@pytest.fixture
def deliverer_env(database_url: str, settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "WASTETRACK_DATABASE_URL": database_url,
        "WASTETRACK_DATA_DIR": str(settings.data_dir),
        "WASTETRACK_SECRET_KEY": settings.secret_key,
        "WASTETRACK_ENVIRONMENT": "test",
        "WASTETRACK_WEBHOOKS_ALLOW_PRIVATE": "1",
        "WASTETRACK_WEBHOOKS_DISPATCH_SECONDS": "0.1",
        "WASTETRACK_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def spawn(deliverer_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start python with these arguments in the deliverer's environment; killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*arguments: str) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen([sys.executable, *arguments], env=deliverer_env))
        return started[-1]

    yield start
    for process in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
        if process.poll() is None:
            process.kill()
            process.wait()


async def until(check, what: str, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def deliverers_of(supervisor: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(supervisor.pid).children()
    except psutil.NoSuchProcess:
        return []


async def test_the_supervised_deliverer_sends_is_restarted_and_ends_with_its_parent(
    client: httpx.AsyncClient,
    world: World,
    listener: Listener,
    spawn: Callable[..., subprocess.Popen[bytes]],
) -> None:
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="collected")
    supervisor = spawn("-c", SUPERVISOR)
    # A second deliverer, run alone as on another machine: the lock lets one send at a time.
    spawn("-m", "wastetrack.cli", "deliver")

    await until(lambda: len(listener.received) >= 2, "the first deliveries")
    first = deliverers_of(supervisor)
    assert len(first) == 1
    # Lower priority than the workers (set once it has started: the other deliverer, started
    # directly, may have sent these while the supervised one was still importing).
    await until(lambda: first[0].nice() == os.nice(0) + 10, "the deliverer's lower priority")
    # So are the PostgreSQL backends that run the deliverers' queries (same machine and user).
    # (A backend shows in pg_stat_activity a moment before its connection's hook lowers it.)
    for _ in range(50):
        backends = await connections.get("default").execute_query_dict(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", [APPLICATION_NAME]
        )
        nices = {os.getpriority(os.PRIO_PROCESS, b["pid"]) for b in backends}
        if nices == {os.nice(0) + 10}:
            break
        await asyncio.sleep(0.1)
    assert nices == {os.nice(0) + 10}
    first[0].kill()
    await until(
        lambda: [p.pid for p in deliverers_of(supervisor)] not in ([], [first[0].pid]),
        "the deliverer to be started again",
    )
    other = await tag_bag(client, world)
    await until(lambda: len(listener.received) >= 3, "the delivery after the restart")

    bodies = [verified(r, hook["secret"]) for r in listener.received]
    assert [(b["data"]["batch"], b["data"]["event_type"]) for b in bodies] == [
        (bag["code"], "tagged"),
        (bag["code"], "collected"),
        (other["code"], "tagged"),
    ]
    assert not [i for i, n in Counter(b["id"] for b in bodies).items() if n > 1]

    # serve killed without a chance to stop it: its deliverer does not linger.
    (second,) = deliverers_of(supervisor)
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait()
    await until(lambda: not second.is_running() or second.status() == "zombie", "exit", 60)


async def test_a_local_backend_is_lowered_to_the_deliverers_priority_never_raised(
    database_url: str,
) -> None:
    connection = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        pid = await connection.fetchval("SELECT pg_backend_pid()")
        if not psutil.pid_exists(pid):
            pytest.skip("the test server is not on this machine")
        before = os.getpriority(os.PRIO_PROCESS, pid)
        await BackendPriority(nice=before + 3, local=False)(connection)
        assert os.getpriority(os.PRIO_PROCESS, pid) == before  # a remote server: untouched
        await BackendPriority(nice=before + 3, local=True)(connection)
        assert os.getpriority(os.PRIO_PROCESS, pid) == before + 3
        await BackendPriority(nice=before + 1, local=True)(connection)
        assert os.getpriority(os.PRIO_PROCESS, pid) == before + 3  # never raised again
    finally:
        await connection.close()
