"""Pure ASGI middleware around the whole app: security headers on every HTML page, requests
for a host not the service's refused, request bodies capped before they are read, and HEAD
answered as GET without its body."""

import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobile_api.deps import proxied
from wastetrack.core.settings import Settings

PROBLEM = "application/problem+json"

# Scripts only from this origin or inline with the request's nonce; no plugins, no framing,
# forms post only here. Styles may be inline (the templates and ECharts use them).
_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)


class SecurityHeaders:
    """Content-Security-Policy (with a per-request script nonce the templates read from
    `request.state.csp_nonce`), X-Content-Type-Options, X-Frame-Options and Referrer-Policy on
    every HTML response; nosniff on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = next(
                    (v for k, v in headers if k.lower() == b"content-type"), b""
                ).lower()
                added = [(b"x-content-type-options", b"nosniff")]
                if content_type.startswith(b"text/html"):
                    added += [
                        (b"content-security-policy", _CSP.format(nonce=nonce).encode()),
                        (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"same-origin"),
                    ]
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in added if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeadAsGet:
    """HEAD is answered as GET is, with the same status and headers and no body (RFC 9110
    §9.3.2: every general-purpose server supports it); the routes declare GET alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, send_headers_only)
        finally:  # the route it matched, for the request's log line and its timing
            if "route" in as_get:
                scope["route"] = as_get["route"]


class KnownHost:
    """Refuse a request naming in Host a name this service does not answer to
    (`Settings.answers_to`): a 400 problem naming `Host`, before any route runs. A web page
    whose owner points its name at this machine (DNS rebinding) is then no page of this
    service's, so the browser's same-origin rule keeps it from reading any answer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            # The name the client asked for: Host, and what a proxy the service trusts says
            # it was asked (X-Forwarded-Host), which the dashboard takes as its own origin.
            for named in (
                request.headers.get("host"),
                proxied(request, self.settings, "x-forwarded-host"),
            ):
                if named is not None and not self.settings.answers_to(named):
                    detail = (
                        f"this service does not answer to {named[:255]!r}: a name not its own may"
                        " be a web page's pointed at this machine; list it in"
                        " WASTETRACK_ALLOWED_HOSTS or WASTETRACK_PUBLIC_BASE_URL"
                    )
                    await _refuse(send, 400, detail, "host_unknown", field="Host")
                    return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse a request body larger than the route allows before reading it (Content-Length),
    and stop one sent without a length (chunked) as soon as it passes the cap: 413
    problem+json either way. Photo uploads get their own, larger cap."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _cap(self, path: str) -> int:
        if path.startswith("/m/v1/photos"):
            # Room for multipart framing, and for the route to name a modestly oversized
            # file itself (422 on `file`); anything far larger is cut off here.
            return 2 * self.settings.photo_max_bytes + 64 * 1024
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self._cap(scope["path"])
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _refuse(send, 400, "invalid Content-Length", "bad_request")
                return
            if declared > cap:
                await _refuse(send, 413, f"the request body may not exceed {cap} bytes")
                return
        received = 0
        over = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    # Stop reading here: the app sees the client gone, and whatever it
                    # answers to that is replaced by the 413 below.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _refuse(send, 413, f"the request body may not exceed {cap} bytes")


async def _refuse(
    send: Send,
    status: int,
    detail: str,
    code: str = "body_too_large",
    *,
    field: str | None = None,
) -> None:
    body: dict[str, Any] = {
        "type": f"https://wastetrack.dev/problems/{code}",
        "title": "Request body too large" if status == 413 else "Bad request",
        "status": status,
        "detail": detail,
        "code": code,
        "field": field,
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
