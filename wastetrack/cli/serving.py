"""Running the service: the HTTP workers and the webhook deliverer beside them."""

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from types import FrameType
from typing import Annotated, Any

import typer

from wastetrack.cli.running import or_exit
from wastetrack.core import db
from wastetrack.core.errors import RuleViolation
from wastetrack.core.settings import Settings, a_host, get_settings

_OWN_SOCKETS = hasattr(socket, "SO_REUSEPORT") and sys.platform == "linux"
"""Whether each worker binds a socket of its own: where the kernel spreads connections over
sockets sharing a port (Linux)."""


SERVER_OPTIONS: dict[str, Any] = {
    # uvicorn keeps the app's structured logging (one line per request is the app's own, so
    # uvicorn's access log is off).
    "log_config": None,
    "access_log": False,
    # The client's address and scheme are the app's to read (deps: X-Forwarded-For only under
    # WASTETRACK_TRUST_PROXY): uvicorn would take them from any loopback peer's headers, and a
    # local process could then rotate X-Forwarded-For past the per-address login limits.
    "proxy_headers": False,
}
"""How uvicorn serves the app, one worker or several."""


def _a_host_option(host: str | None) -> str | None:
    """`--host`, held to WASTETRACK_HOST's rule (every label prints it); empty: the setting."""
    try:
        return a_host(host) if host else host
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def serve(
    host: Annotated[
        str | None, typer.Option(help="default: WASTETRACK_HOST", callback=_a_host_option)
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="default: WASTETRACK_PORT")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="worker processes; default: the CPU count")
    ] = None,
    allow_demo_logins: Annotated[
        bool,
        typer.Option(
            help="serve beyond loopback even while demo accounts keep their published passwords"
        ),
    ] = False,
) -> None:
    """Start the HTTP service (migrating first; embedded PostgreSQL unless a URL is set) and
    the webhook deliverer process beside it. Reached by other machines (`reached_by_others`)
    it refuses to start while demo accounts can log in with the passwords published in the
    source."""
    import uvicorn

    from wastetrack.core import observability
    from wastetrack.webhooks import deliverer

    settings = get_settings()
    settings = settings.model_copy(
        update={
            "host": host or settings.host,
            "port": port or settings.port,
            "allow_demo_logins": allow_demo_logins or settings.allow_demo_logins,
        }
    )
    workers = workers or os.cpu_count() or 1
    observability.configure_logging(settings.log_format, level=settings.log_level)
    if workers > 1 and _OWN_SOCKETS:
        refuse_port_in_use(settings.host, settings.port)  # before migrating or starting anything

    async def prepare(url: str) -> str:
        service_url = await db.migrate_for_service(url, settings)
        reached = settings.demo_logins_refused()
        if reached is not None:
            await _refuse_published_logins(url, reached=reached)
        return service_url

    with _stopping_on_sigterm(), db.server_database_url(settings) as url:
        # Migrated once here; the workers and the deliverer read this URL from the environment.
        service_url = os.environ["WASTETRACK_DATABASE_URL"] = or_exit(
            lambda: asyncio.run(prepare(url))
        )
        settings = settings.model_copy(update={"database_url": service_url})
        with deliverer.supervised(os.environ):
            if workers > 1:
                _serve_workers(settings, workers)
                return
            from mobile_api.app import create_app

            # log_config=None: uvicorn keeps the app's structured logging (one line per request
            # is the app's own, so uvicorn's access log is off).
            uvicorn.run(
                create_app(settings, migrate=False),
                host=settings.host,
                port=settings.port,
                **SERVER_OPTIONS,
            )


@contextlib.contextmanager
def _stopping_on_sigterm() -> Iterator[None]:
    """Make SIGTERM end serve through its `finally` blocks and atexit, which stop the webhook
    deliverer and the embedded PostgreSQL. Python's default lets SIGTERM kill the process where
    it stands; and a single uvicorn server, once it has shut down on SIGTERM, puts back the
    handler it found and raises the signal again: with the default one the process would die
    there, leaving PostgreSQL holding the data directory. With this handler it raises
    SystemExit instead, after uvicorn's own graceful shutdown. (With N workers uvicorn's
    supervisor handles SIGTERM itself and returns; this handler only covers the start-up.)"""

    def exit_cleanly(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # as serve exits when uvicorn's supervisor stops on SIGTERM

    previous = signal.signal(signal.SIGTERM, exit_cleanly)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _refuse_published_logins(url: str, *, reached: tuple[str, str]) -> None:
    """Refuse to serve other machines while anyone could log in to a demo account, an
    administrator's among them, with the password printed in the source."""
    from wastetrack import demo

    async with db.database(url, pool_size=2):
        exposed = await demo.published_logins()
    if exposed:
        setting, why = reached
        raise RuleViolation(
            f"the demo accounts {', '.join(exposed)} still have their published passwords and"
            f" {why}: deactivate each (`wastetrack user deactivate --username U`), or pass"
            " --allow-demo-logins to show the demo to others on purpose",
            field=setting,
        )


def _serve_workers(settings: Settings, workers: int) -> None:
    """Run the workers on the database serve has migrated: they only serve (one of them also
    runs the background rounds, see mobile_api.app)."""
    with tempfile.TemporaryDirectory(prefix="wastetrack-metrics-") as metrics_dir:
        # The workers are spawned: they read their settings from this environment.
        os.environ["WASTETRACK_HOST"] = settings.host
        os.environ["WASTETRACK_PORT"] = str(settings.port)
        os.environ["WASTETRACK_ALLOW_DEMO_LOGINS"] = str(settings.allow_demo_logins).lower()
        # Every worker writes its metric samples there and /metrics sums them.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        run_workers(
            "mobile_api.app:create_worker_app",
            host=settings.host,
            port=settings.port,
            workers=workers,
        )


def run_workers(app: str, *, host: str, port: int, workers: int) -> None:
    """Serve the ASGI app factory `app` ("module:function") from `workers` uvicorn processes,
    each listening on a socket of its own on the same port where the system allows it (see
    `_OwnSocketPerWorker`), restarted by uvicorn's supervisor when one dies. Exits with
    uvicorn's start-up failure status (3) when the port is taken or a worker cannot start."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    with contextlib.ExitStack() as held:
        listener: Any
        if _OWN_SOCKETS:
            port = held.enter_context(_claiming(host, port))
            listener = _OwnSocketPerWorker(host, port)
        config = uvicorn.Config(
            app, factory=True, workers=workers, host=host, port=port, **SERVER_OPTIONS
        )
        if not _OWN_SOCKETS:
            listener = config.bind_socket()
        supervisor = Multiprocess(config, sockets=[listener])
        supervisor.run()
    # The supervisor stops, and returns normally, when a worker fails to start.
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        sys.exit(STARTUP_FAILURE)


def refuse_port_in_use(host: str, port: int) -> None:
    """Exit with status 3 when something listens on the port already, even another instance of
    this service (whose workers' sockets would share it with ours and split its connections)."""
    with _refused_when_taken(host, port):
        _free_port(host, port)


def _free_port(host: str, port: int) -> int:
    """The port (a free one when `port` is 0), after a plain bind that fails if it is taken."""
    with socket.socket(_family(host)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _claiming(host: str, port: int) -> Iterator[int]:
    """Hold the port for this service's workers while they serve, and yield it (a free one
    chosen now when `port` is 0, so every worker binds the same). The holder is bound with
    SO_REUSEPORT alone, never listening: it takes no connection, lets the workers bind beside
    it, and makes the port taken for anyone else's plain bind, another instance's check
    above included."""
    with _refused_when_taken(host, port):
        port = _free_port(host, port)
        holder = socket.socket(_family(host))
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    with holder:
        yield port


@contextlib.contextmanager
def _refused_when_taken(host: str, port: int) -> Iterator[None]:
    from uvicorn.config import STARTUP_FAILURE

    try:
        yield
    except OSError as error:
        print(f"cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)  # uvicorn's supervisor stops instead of retrying a worker


class _OwnSocketPerWorker:
    """Stands in for the listening socket uvicorn hands each worker it starts: unpickled in the
    worker, it becomes a socket of that worker's own bound to the shared port (SO_REUSEPORT),
    and the kernel spreads new connections evenly over the workers. On one shared socket,
    whichever worker wakes first takes every connection waiting, so a burst of phones, or a
    proxy's pool of kept-alive connections, lands on one worker while the others idle."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return (_bind_shared_port, (self.host, self.port))


def _bind_shared_port(host: str, port: int) -> socket.socket:
    """The calling worker's own socket on the port all workers share: bound, not listening yet,
    so that no connection waits for a worker that is still starting (uvicorn listens on it once
    the app has started)."""
    with _refused_when_taken(host, port):
        sock = socket.socket(_family(host))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def deliver(
    parent: Annotated[
        int | None, typer.Option(hidden=True, help="exit when this process is gone (serve's)")
    ] = None,
) -> None:
    """Send webhook deliveries (serve starts this itself; run it alone, e.g. on another
    machine, with WASTETRACK_DATABASE_URL set). One deliverer sends at a time cluster-wide."""
    from wastetrack.core import observability
    from wastetrack.webhooks import deliverer

    settings = get_settings()
    observability.configure_logging(settings.log_format, level=settings.log_level)
    with db.server_database_url(settings) as url:
        deliverer.main(settings=settings, url=url, parent=parent)
