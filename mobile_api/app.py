"""The FastAPI application: routers, error mapping and the database's life."""

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI

from mobile_api import errors
from mobile_api.routers import admin, auth, batches, catalog, events, photos, ports
from wastetrack.core import db
from wastetrack.core.settings import Settings, get_settings


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
                yield

    app = FastAPI(
        title="wastetrack",
        version="0.1.0",
        summary="Tracks solid waste from the QR tag to final treatment (无废城市).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    for module in (auth, catalog, batches, events, photos, ports, admin):
        app.include_router(module.router)
    app.include_router(batches.public_router)
    app.include_router(ports.public_router)

    @app.get("/healthz", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok"}

    return app
