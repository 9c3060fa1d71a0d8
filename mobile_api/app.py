"""The FastAPI application: routers, error mapping and the database's life."""

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import Depends, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from mobile_api import errors, media, openapi
from mobile_api.idempotency import Idempotency, document_keys
from mobile_api.middleware import BodyLimit, HeadAsGet, KnownHost, SecurityHeaders
from mobile_api.routers import (
    admin,
    apidocs,
    apikeys,
    audit,
    auth,
    batches,
    catalog,
    cells,
    changes,
    checkpoints,
    cosign,
    dashboard,
    events,
    fleet,
    household,
    indicators,
    manifests,
    medical,
    ops,
    pesticide,
    photos,
    ports,
    public,
    registers,
    webhooks,
)
from mobile_api.routers import app as phone_app
from schemas import sync
from wastetrack.alerts import service as alerts
from wastetrack.core import db, idempotency, observability, ratelimit
from wastetrack.core.settings import Settings, get_settings
from wastetrack.custody import checkpoints as custody_checkpoints
from wastetrack.custody import partitions as custody_partitions
from wastetrack.custody.posts import PostQueue
from wastetrack.rollups import service as rollups

log = logging.getLogger(__name__)
# pg advisory lock key of the background rounds ("wastetr" in ASCII): one worker runs them.
BACKGROUND_LOCK_KEY = 0x77617374657472


async def _watch_alerts(settings: Settings, lock: db.ClusterLock) -> None:
    """Raise time-based alerts (overdue storage) even when nobody is looking at them; with
    several workers only the one holding the cluster lock does, the others skip the round."""
    while True:
        try:
            leader = await lock.acquire()
        except Exception:  # database unreachable: try again next round
            log.exception("background lock unavailable")
            leader = False
        if leader:
            await _background_round(settings)
        else:
            observability.JOB_SKIPPED.labels("alert_refresh").inc()
        await asyncio.sleep(settings.alert_refresh_seconds)


async def _background_round(settings: Settings) -> None:
    try:
        # Admitted as a request's transaction is (db.transaction): a connection stays free for
        # the writes a transaction makes on a connection of its own.
        with observability.job_round("alert_refresh"):
            async with db.transaction():
                await alerts.refresh(settings=settings)
    except Exception:  # a failed round must not end the watch
        log.exception("alert refresh failed")
    try:
        # Each finished day of the custody log gets its signed checkpoint; a round that keeps
        # failing shows in /metrics (wastetrack_job_failures_total), not only in the logs.
        with observability.job_round("checkpoint_seal"):
            async with db.transaction():
                await custody_checkpoints.seal_completed_days(
                    timezone=settings.timezone, data_dir=settings.data_dir
                )
    except Exception:
        log.exception("checkpoint sealing failed")
    try:
        with observability.job_round("prune"):
            await ratelimit.prune()
            await idempotency.prune()
    except Exception:
        log.exception("pruning rate-limit counters or kept answers failed")


async def _fold_sums(settings: Settings, lock: db.ClusterLock) -> None:
    """Fold the changes recorded meanwhile into the metric sums, every few seconds, on the
    worker that holds the cluster lock (readers add what is not folded yet, so this only keeps
    their reads short)."""
    while True:
        await asyncio.sleep(settings.rollup_fold_seconds)
        try:
            if await lock.acquire():
                await _fold_round()
        except Exception:  # a failed round must not end the loop
            log.exception("folding the metric sums failed")


async def _fold_round() -> None:
    """One fold, admitted as a request's transaction is (as the other rounds are): it holds
    its connection for the whole fold, which must not be the one kept for a transaction's own
    writes."""
    with observability.job_round("rollup_fold"):
        async with db.transaction():
            await rollups.fold()


async def _keep_partitions_ahead(settings: Settings, lock: db.ClusterLock) -> None:
    """Keep empty custody log partitions ahead of the batch ids, on the worker that holds the
    cluster lock; the first round runs at start-up."""
    while True:
        try:
            if await lock.acquire():
                with observability.job_round("custody_partitions"):
                    made = await custody_partitions.ensure_ahead(
                        ahead=settings.custody_partitions_ahead
                    )
                if made:
                    log.info("custody log partitions made: %s", ", ".join(made))
        except Exception:  # a failed round must not end the loop
            log.exception("making custody log partitions failed")
        await asyncio.sleep(settings.custody_partition_seconds)


def create_worker_app() -> FastAPI:
    """The app of one of several uvicorn workers (`wastetrack serve --workers N`): the parent
    has started the database and migrated it, and passes its URL in WASTETRACK_DATABASE_URL."""
    return create_app(get_settings(), migrate=False)


# Every route of the API refuses a query parameter it does not take (errors.refuse_unknown_query).
KnownQuery = Depends(errors.refuse_unknown_query)


def create_app(
    settings: Settings | None = None, *, manage_database: bool = True, migrate: bool = True
) -> FastAPI:
    """Build the app; with manage_database it opens the database at start-up (migrating it
    first unless migrate is False)."""
    settings = settings or get_settings()
    observability.configure_logging(settings.log_format, level=settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not manage_database:
            yield
            return
        with db.server_database_url(settings) as url:
            if migrate:
                # Served as a role that can only append to the custody log, never edit it.
                url = await db.migrate_for_service(url, settings)
            async with db.database(
                url,
                pool_size=settings.db_pool_size,
                replica_url=settings.replica_url,
                replica_max_lag_seconds=settings.replica_max_lag_seconds,
            ):
                # Everything loaded at start-up lives as long as the process: keep the
                # collector from walking it again on every full collection.
                gc.collect()
                gc.freeze()
                # Webhook deliveries go out from their own process, not from a worker
                # (wastetrack.webhooks.deliverer, started by `wastetrack serve`).
                lock = db.ClusterLock(url, key=BACKGROUND_LOCK_KEY)
                tasks = [
                    asyncio.create_task(_watch_alerts(settings, lock)),
                    asyncio.create_task(_fold_sums(settings, lock)),
                    asyncio.create_task(_keep_partitions_ahead(settings, lock)),
                ]
                try:
                    yield
                finally:
                    for task in tasks:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                    await lock.close()

    app = _App(
        title="wastetrack",
        version="0.1.0",
        summary="Tracks solid waste from the QR tag to final treatment (无废城市).",
        lifespan=lifespan,
        docs_url=None,  # served by routers.apidocs, with no CDN
        redoc_url=None,
        # A path is answered as written or not at all: a code or plate ending in an encoded
        # slash ("%2F") would otherwise be redirected (307) to the record without it.
        redirect_slashes=False,
    )
    app.state.settings = settings
    # The worker's single posts, recorded together (wastetrack.custody.posts).
    app.state.posts = PostQueue(settings.secret_key)
    errors.install(app)
    media.document_tables(app)
    openapi.extend(app, sync.document_entries)
    document_keys(app)
    # Routes are matched in this order, every request: the routers phones post to most come
    # first (matching a post to /m/v1/events took 57 µs behind auth, catalog and batches).
    for module in (
        events,
        batches,
        auth,
        catalog,
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
        checkpoints,
        changes,
        apikeys,
        audit,
        registers,
        webhooks,
        cosign,
        fleet,
    ):
        app.include_router(module.router, dependencies=[KnownQuery])
    # The pages a printed QR opens take what a link may carry: a chat app adds its own
    # parameters to a scanned label's link.
    app.include_router(public.router)
    app.include_router(checkpoints.public_router, dependencies=[KnownQuery])
    app.include_router(phone_app.router)
    apidocs.install(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    if settings.environment == "test":
        # Which worker answered, for the tests of `serve --workers N` (never in production).
        @app.middleware("http")
        async def worker_pid(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            response = await call_next(request)
            response.headers["x-worker-pid"] = str(os.getpid())
            return response

    # A resend named by an Idempotency-Key gets the first answer; inside the body cap.
    app.add_middleware(Idempotency, settings=settings)
    # Bodies are capped before any route reads them.
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(HeadAsGet)
    # Outermost: a request for a name not the service's reaches nothing.
    app.add_middleware(KnownHost, settings=settings)
    app.include_router(ops.router)
    return app


class _App(FastAPI):
    """The app, with the request observer and the security headers outside Starlette's error
    middleware: every request is timed and logged, refused or not, and every answer carries
    its request id and security headers, the 500 of an unexpected error too."""

    def build_middleware_stack(self) -> ASGIApp:
        return ops.RequestObserver(SecurityHeaders(super().build_middleware_stack()))
