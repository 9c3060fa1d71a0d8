"""Operating the service: liveness, readiness, Prometheus metrics, and the request middleware
that times and logs every request under a request id."""

import hmac
import ipaddress
import time
import uuid
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core import observability, replica
from wastetrack.core.errors import Forbidden, Unauthorized

router = Router(tags=["ops"])
_bearer = HTTPBearer(auto_error=False)
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
log = structlog.get_logger("wastetrack.request")


def _direct_from_loopback(request: Request) -> bool:
    """A client on this machine that did not come through a proxy (a proxy on the same host
    would make every visitor look local)."""
    if request.client is None or any(name in request.headers for name in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def _metrics_reader(
    request: Request,
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if _direct_from_loopback(request):
        return
    if credentials is None:
        raise Unauthorized("metrics need WASTETRACK_METRICS_TOKEN or a manager's access token")
    token = credentials.credentials
    expected = settings.metrics_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return
    principal = await auth.principal_from_access_token(token=token, settings=settings)
    if principal.role not in (Role.manager, Role.admin):
        raise Forbidden("metrics are for managers and administrators", field="role")


@router.get("/healthz")
async def health() -> dict[str, str]:
    """Liveness: the process answers (the database is not consulted)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "database unreachable, or its migrations not the code's"}},
)
async def ready(settings: AppSettings) -> dict[str, Any]:
    """Readiness: the database answers and every migration shipped with the code is applied;
    a lagging or unreachable read replica makes it degraded, still ready (200)."""
    result = await observability.readiness()
    result["replica"] = await replica.health(max_lag_seconds=settings.replica_max_lag_seconds)
    if result["replica"].get("state") == "degraded":
        result["status"] = "degraded"
    return result


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    dependencies=[Depends(_metrics_reader)],
)
async def metrics() -> Response:
    """Prometheus metrics: open to loopback, else WASTETRACK_METRICS_TOKEN or a manager."""
    body = observability.exposition(
        open_alerts=await observability.open_alerts_by_kind(),
        pending_changes=await observability.metric_changes_pending(),
    )
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)


class RequestObserver:
    """Gives every request an id (a sane X-Request-ID, or a new one) echoed in the response,
    times it by route template for the metrics, and logs one line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with observability.request_context(request_id) as party:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                status = 500
                log.exception("request_failed", **_line(scope, status, started), **party)
                raise
            finally:
                line = _line(scope, status, started)
                observability.REQUEST_DURATION.labels(
                    line["method"], line["route"], str(status)
                ).observe(line["duration_ms"] / 1000)
            if observability.logs_info("wastetrack.request"):
                log.info("request", **line, **party)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if observability.REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


# The methods the app answers; any other token a client sends (PROPFIND, PURGE, ... any at all
# under h11) is "other": each would add a histogram series per route until a restart.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _line(scope: Scope, status: int, started: float) -> dict[str, Any]:
    route = scope.get("route")
    method = scope["method"]
    return {
        "method": method if method in _METHODS else "other",
        # The template, never the raw path: bounded label values, no codes or ids.
        "route": getattr(route, "path", None) or "unmatched",
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
