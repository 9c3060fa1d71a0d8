"""Running the service: the HTTP workers and the webhook deliverer beside them."""

import asyncio
import os
import tempfile
from typing import Annotated

import typer

from wastetrack.core import db
from wastetrack.core.settings import Settings, get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="default: WASTETRACK_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: WASTETRACK_PORT")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="worker processes; default: the CPU count")
    ] = None,
) -> None:
    """Start the HTTP service (migrating first; embedded PostgreSQL unless a URL is set) and
    the webhook deliverer process beside it."""
    import uvicorn

    from wastetrack.core import observability
    from wastetrack.webhooks import deliverer

    settings = get_settings()
    settings = settings.model_copy(
        update={"host": host or settings.host, "port": port or settings.port}
    )
    workers = workers or os.cpu_count() or 1
    observability.configure_logging(settings.log_format, level=settings.log_level)

    async def prepare(url: str) -> str:
        await db.migrate(url)
        return await db.service_url(url, settings)

    with db.server_database_url(settings) as url:
        # Migrated once here; the workers and the deliverer read this URL from the environment.
        service_url = os.environ["WASTETRACK_DATABASE_URL"] = asyncio.run(prepare(url))
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
                log_config=None,
                access_log=False,
            )


def _serve_workers(settings: Settings, workers: int) -> None:
    """Run the workers on the database serve has migrated: they only serve (one of them also
    runs the background rounds, see mobile_api.app)."""
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="wastetrack-metrics-") as metrics_dir:
        # The workers are spawned: they read their settings from this environment.
        os.environ["WASTETRACK_HOST"] = settings.host
        os.environ["WASTETRACK_PORT"] = str(settings.port)
        # Every worker writes its metric samples there and /metrics sums them.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        uvicorn.run(
            "mobile_api.app:create_worker_app",
            factory=True,
            workers=workers,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )


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
