"""The webhook deliverer: its own process, at a lower CPU priority than the HTTP workers, that
runs the dispatcher's rounds (wastetrack.webhooks.dispatcher.run) while it holds the cluster's
webhook lock, so that one deliverer sends at a time however many machines run one.

`wastetrack serve` starts one beside its workers (`supervised`): restarted when it dies, stopped
when serve stops, and it ends by itself when serve dies without stopping it (it watches its
parent). `wastetrack deliver` runs one alone, e.g. on another machine.

Its PostgreSQL backends (the server processes that run its queries) are lowered to its own
priority too, when the server runs on this machine and this process may renice them (the same
OS user, or root; the embedded server): a niced client whose queries run at full priority would
still take the workers' CPU."""

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import psutil
from tortoise import Tortoise

from wastetrack.core import db
from wastetrack.core.settings import Settings, loopback
from wastetrack.webhooks import dispatcher, sending

log = logging.getLogger(__name__)
# pg advisory lock key of the deliverer ("webhook" in ASCII), apart from the workers' own.
LOCK_KEY = 0x776562686F6F6B
_PARENT_POLL_SECONDS = 0.5
_RESTART_SECONDS = 1.0
_STOP_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# How the deliverer's connections are named in pg_stat_activity.
APPLICATION_NAME = "wastetrack-deliverer"


def _is_local(host: str) -> bool:
    """A Unix socket directory or a loopback address: the server may run on this machine."""
    return host.startswith("/") or loopback(host)


class BackendPriority:
    """An asyncpg `init` hook, run on every new pooled connection: lower the connection's
    PostgreSQL backend to `nice` when it is a local postgres process this user may renice.
    Otherwise (a remote server, another OS user, no permission) it does nothing, and says so
    once at debug level."""

    def __init__(self, *, nice: int, local: bool) -> None:
        self.nice = nice
        self.local = local
        self._told = False

    def _skip(self, why: str) -> None:
        if not self._told:
            log.debug("webhook deliverer: PostgreSQL backends keep their priority (%s)", why)
            self._told = True

    async def __call__(self, connection: Any) -> None:
        if not self.local:
            self._skip("the server is not on this machine")
            return
        pid = int(await connection.fetchval("SELECT pg_backend_pid()"))
        try:
            # A pid from a server in another pid namespace (a container behind a loopback
            # port) could name some other local process: only ever renice a postgres.
            if not psutil.Process(pid).name().startswith("postgres"):
                self._skip(f"process {pid} is not a local postgres")
            elif os.getpriority(os.PRIO_PROCESS, pid) < self.nice:  # only ever lower it
                os.setpriority(os.PRIO_PROCESS, pid, self.nice)
        except (psutil.Error, OSError) as error:
            self._skip(f"{type(error).__name__}: {error}")


@contextlib.asynccontextmanager
async def database(url: str, *, nice: int) -> AsyncIterator[None]:
    """The deliverer's ORM connections (db.database's, two of them): named APPLICATION_NAME,
    their backends at priority `nice` where this process may set it."""
    config = db.tortoise_config(url, pool_size=2)
    credentials = config["connections"]["default"]["credentials"]
    credentials["application_name"] = APPLICATION_NAME
    credentials["init"] = BackendPriority(nice=nice, local=_is_local(credentials["host"]))
    await Tortoise.init(config=config, _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


async def deliver(*, settings: Settings, url: str) -> None:
    """Open the database and send deliveries for ever, while this process holds the lock."""
    lock = db.ClusterLock(url, key=LOCK_KEY)
    try:
        async with (
            database(url, nice=os.nice(0)),
            sending.sender(allow_private=settings.webhooks_allow_private) as client,
        ):
            await dispatcher.run(settings, client, leader=lock.acquire)
    finally:
        await lock.close()


async def _until_gone(parent: int) -> None:
    """Return when `parent` is not, or no longer, this process's parent (it died, maybe even
    before this process got here, and this process was handed to another). A poll: an asyncio
    reader on a pidfd did not fire in our containers."""
    while os.getppid() == parent:  # noqa: ASYNC110
        await asyncio.sleep(_PARENT_POLL_SECONDS)


async def _main(*, settings: Settings, url: str, parent: int | None) -> None:
    work = asyncio.create_task(deliver(settings=settings, url=url))
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, work.cancel)
    waits: set[asyncio.Task[None]] = {work}
    if parent is not None:
        waits.add(asyncio.create_task(_until_gone(parent)))
    done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    if work not in done:
        log.warning("the process that started the webhook deliverer is gone; stopping")
    for task in waits:
        task.cancel()
    for task in waits:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _terminated_with(parent: int) -> bool:
    """Have the kernel send SIGTERM here when the parent dies (Linux); False when it has
    already died."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    return os.getppid() == parent


def main(*, settings: Settings, url: str, parent: int | None = None) -> None:
    """The deliverer process: lower its CPU priority by webhooks_nice, then deliver until
    SIGTERM or SIGINT, or until `parent` is no longer its parent process."""
    if parent is not None and not _terminated_with(parent):
        log.warning("the process that started the webhook deliverer is gone; not starting")
        return
    if settings.webhooks_nice:
        os.nice(settings.webhooks_nice)
    asyncio.run(_main(settings=settings, url=url, parent=parent))


def command() -> list[str]:
    """How serve starts a deliverer that exits with it."""
    return [sys.executable, "-m", "wastetrack.cli", "deliver", "--parent", str(os.getpid())]


@contextlib.contextmanager
def supervised(env: Mapping[str, str]) -> Iterator[None]:
    """Run a deliverer process for the life of the block, started again a second after it
    dies; on the way out it is stopped (SIGTERM, then SIGKILL after 10 s)."""
    stopping = threading.Event()
    guard = threading.Lock()
    current: list[subprocess.Popen[bytes]] = []

    def supervise() -> None:
        while not stopping.is_set():
            with guard:
                if stopping.is_set():
                    return
                process = subprocess.Popen(command(), env=dict(env))
                current[:] = [process]
            code = process.wait()
            if stopping.is_set():
                return
            log.warning("webhook deliverer exited (%s); starting it again", code)
            stopping.wait(_RESTART_SECONDS)

    thread = threading.Thread(target=supervise, name="webhook-deliverer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with guard:
            stopping.set()
            running = list(current)
        for process in running:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        thread.join(timeout=_STOP_SECONDS)
