"""The FastAPI application: routers, error mapping and the database's life."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from tortoise.transactions import in_transaction

from mobile_api import errors
from mobile_api.routers import (
    admin,
    auth,
    batches,
    catalog,
    cells,
    dashboard,
    events,
    household,
    indicators,
    manifests,
    medical,
    pesticide,
    photos,
    ports,
)
from wastetrack.alerts import service as alerts
from wastetrack.core import db
from wastetrack.core.settings import Settings, get_settings

log = logging.getLogger(__name__)


async def _watch_alerts(settings: Settings) -> None:
    """Raise time-based alerts (overdue storage) even when nobody is looking at them."""
    while True:
        try:
            async with in_transaction():
                await alerts.refresh(
                    weight_tolerance=settings.weight_discrepancy_tolerance,
                    idle_hours=settings.idle_batch_hours,
                )
        except Exception:  # a failed round must not end the watch
            log.exception("alert refresh failed")
        await asyncio.sleep(settings.alert_refresh_seconds)


def create_app(settings: Settings | None = None, *, manage_database: bool = True) -> FastAPI:
    """Build the app; with manage_database it migrates and opens the database at start-up."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not manage_database:
            yield
            return
        with db.server_database_url(settings) as url:
            await db.migrate(url)
            async with db.database(url, pool_size=settings.db_pool_size):
                # Everything loaded at start-up lives as long as the process: keep the
                # collector from walking it again on every full collection.
                gc.collect()
                gc.freeze()
                watcher = asyncio.create_task(_watch_alerts(settings))
                try:
                    yield
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher

    app = FastAPI(
        title="wastetrack",
        version="0.1.0",
        summary="Tracks solid waste from the QR tag to final treatment (无废城市).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    for module in (
        auth,
        catalog,
        batches,
        events,
        photos,
        ports,
        medical,
        household,
        pesticide,
        manifests,
        indicators,
        cells,
        admin,
        dashboard,
    ):
        app.include_router(module.router)
    app.include_router(batches.public_router)
    app.include_router(ports.public_router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.get("/healthz", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok"}

    return app
