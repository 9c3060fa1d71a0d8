"""The Idempotency-Key header on any request that writes (POST, PUT, PATCH, DELETE): a client
that may send a request twice (a timeout, an answer lost on the way) names it with a key of its
choosing; the first successful answer is kept for 24 hours and given again, unchanged, to a
resend of the same request, which writes nothing. Routes with an id of their own for exactly
once (a phone's client_event_id) need none; every other create route gets it this way."""

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from tempfile import SpooledTemporaryFile
from typing import Any

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobile_api import openapi
from mobile_api.errors import problem, problem_of
from wastetrack.apikeys import service as apikeys
from wastetrack.auth import service as auth
from wastetrack.core import idempotency, keys
from wastetrack.core.errors import DomainError
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
FIELD = "Idempotency-Key"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class Idempotency:
    """Pure ASGI: inside the body cap (a body is read whole only once it is known to fit)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            await self.app(scope, receive, send)
            return
        sent = [value for name, value in scope.get("headers", []) if name == HEADER]
        found = None
        if sent and _takes_a_sender(scope):
            found = await self._owner(_first_header(scope, b"authorization"))
        if found is None:  # no key, or no sender it could belong to: the route answers
            await self.app(scope, receive, send)
            return
        key = sent[0].decode("latin-1")
        if len(sent) > 1 or not _KEY.fullmatch(key):
            refusal = _refusal("bad_request")
            await refusal(scope, receive, send)
            return
        owner, principal = found
        body = await _spooled_body(receive)
        if body is None:  # cut off (the client left, or the body cap stopped it): no claim
            return
        with body:
            plain = await _fingerprint(scope, body)
            fingerprint = _keyed(plain, keys.ring(self.settings.secret_key).kept_digest)
            kept = await idempotency.claim(owner=owner, key=key, fingerprint=fingerprint)
            if kept is not None:
                if principal.api_key_id is not None:
                    # A resend is a request of the key's, whatever answers it: the route
                    # counts a first request, the key's rate limit this one.
                    try:
                        await apikeys.count_use(principal, self.settings)
                    except DomainError as error:
                        await problem_of(error)(scope, receive, send)
                        return
                await _answer_kept(kept, (fingerprint, plain), scope, receive, send)
                return
            await self._first(scope, _replay(body, receive), send, owner=owner, key=key)

    async def _owner(self, authorization: bytes | None) -> tuple[str, Principal] | None:
        """Whose key it is, and who: a user (from a valid access token) or a live API key.
        Credentials the route would refuse own nothing, so it answers them (401), kept answers
        or not: a key revoked after its first request gets no replay of it. The header is read
        as the routes read it (their OAuth2PasswordBearer), so a request they authenticate is
        one this owns."""
        scheme, token = get_authorization_scheme_param((authorization or b"").decode("latin-1"))
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            if token.startswith(apikeys.TOKEN_PREFIX):
                principal, _ = await apikeys.key_principal(
                    token=token, secret=self.settings.secret_key
                )
                return "key:" + hashlib.sha256(token.encode()).hexdigest(), principal
            principal = await auth.principal_from_access_token(token=token, settings=self.settings)
        except DomainError:
            return None
        return f"user:{principal.user_id}", principal

    async def _first(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, key: str
    ) -> None:
        """Answer the request, keeping a successful answer (without its body when it holds a
        secret, marked `Cache-Control: no-store`); anything else frees the key."""
        status = 500
        content_type = ""
        secret = False
        chunks: list[bytes] = []

        async def keeping(message: Message) -> None:
            nonlocal status, content_type, secret
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", []))
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                secret = b"no-store" in headers.get(b"cache-control", b"")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        # The request's transaction marks the claim committed with its writes (deps).
        scope.setdefault("state", {})[idempotency.CLAIM] = (owner, key)
        answered = asyncio.Event()
        holding = asyncio.create_task(_hold(answered, owner=owner, key=key))
        failed = False
        try:
            await self.app(scope, receive, keeping)
        except BaseException:
            failed = True
            raise
        finally:
            answered.set()  # the holder stops after a renewal under way, never inside one
            await holding
            if failed:  # released once no renewal can land after it
                await idempotency.release(owner=owner, key=key)
        if not 200 <= status < 300:
            await idempotency.release(owner=owner, key=key)
            return
        # What the request wrote is committed: a resend must get this answer, never run again,
        # so keeping it is tried again before the claim is left to its lease.
        for attempt in range(KEEP_ATTEMPTS):
            try:
                await idempotency.keep(
                    owner=owner,
                    key=key,
                    status=status,
                    content_type=content_type,
                    body=None if secret else b"".join(chunks),
                )
                return
            except Exception:
                if attempt + 1 == KEEP_ATTEMPTS:
                    log.exception("keeping the answer of an idempotent request failed")
                    return
                await asyncio.sleep(0.2 * 2**attempt)


# How often keeping a committed request's answer is tried (0.2 s, 0.4 s, … apart).
KEEP_ATTEMPTS = 4


async def _hold(answered: asyncio.Event, *, owner: str, key: str) -> None:
    """Renew the claim's lease every quarter lease until its request is answered (it may wait
    for the pool, or run long), so a resend meanwhile is told to wait, never answered twice."""
    interval = idempotency.LEASE.total_seconds() / 4
    while True:
        try:
            await asyncio.wait_for(answered.wait(), interval)
            return
        except TimeoutError:
            pass
        try:
            await idempotency.renew(owner=owner, key=key)
        except Exception:  # the next round tries again; the lease is four rounds long
            log.warning("renewing an idempotency claim failed", exc_info=True)


def _keyed(plain: str, key: bytes) -> str:
    """The fingerprint kept: the request's digest under the installation's key. A plain one
    would give back what the body held and its sender can guess the rest of (a farmer's number
    behind its masked form)."""
    return hmac.new(key, plain.encode(), hashlib.sha256).hexdigest()


async def _fingerprint(scope: Scope, body: SpooledTemporaryFile[bytes]) -> str:
    """The request a key names: its method, path, query and content. A multipart body's
    content is its parts as the route reads them, not its bytes: a resend is framed by a new
    random boundary."""
    digest = hashlib.sha256(
        b"\n".join([scope["method"].encode(), scope["path"].encode(), scope["query_string"], b""])
    )
    media = (_first_header(scope, b"content-type") or b"").partition(b";")[0].strip().lower()
    parts = await _parts(scope, body) if media == b"multipart/form-data" else None
    if parts is not None:
        digest.update(parts)
    else:
        async for chunk in _chunks(body):
            digest.update(chunk)
    return digest.hexdigest()


async def _parts(scope: Scope, body: SpooledTemporaryFile[bytes]) -> bytes | None:
    """Each part of a multipart body, in order, as Starlette's parser reads it for the route:
    a field's name and value, a file's name, filename, type and SHA-256. None when the body
    does not parse; the route refuses it, and its bytes name it."""
    try:
        form = await Request(scope, _streamed(body, None)).form()
    except Exception:  # MultiPartException, or a malformed header python-multipart rejects
        return None
    parts: list[list[str | None]] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                digest = hashlib.sha256()
                while chunk := await value.read(1 << 16):
                    digest.update(chunk)
                parts.append(["file", name, value.filename, value.content_type, digest.hexdigest()])
            else:
                parts.append(["field", name, value])
    finally:
        await form.close()
    return json.dumps(parts, ensure_ascii=False).encode()


def _takes_a_sender(scope: Scope) -> bool:
    """Whether the route answering `scope` authenticates a sender from `Authorization`: a write
    the API document gives security. The others — the log-in, the refresh, the log-out, the
    public credits look-up, and the dashboard's forms outside the document, which a cookie
    authenticates — do not, so a key sent to them, with credentials or without, has no owner
    and is ignored."""
    app = scope.get("app")
    if app is None:
        return True
    secured = getattr(app.state, "writes_with_sender", None)
    if secured is None:
        secured = app.state.writes_with_sender = _writes_with_sender(app.openapi())
    return any(
        method == scope["method"] and path.fullmatch(scope["path"]) for method, path in secured
    )


def _writes_with_sender(document: dict[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """Each write the API document gives security: its method and its path's pattern (a
    `{parameter}` is one segment)."""
    return [
        (method.upper(), re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method.upper() in _WRITES and operation.get("security")
    ]


def document_keys(app: FastAPI) -> None:
    """Every write the API document gives security takes the key (`_takes_a_sender`): add the
    optional header, under the rule the middleware judges it by, to each such operation, so a
    client generated from the document knows it (and its answers' `Idempotent-Replayed`)."""

    def edit(document: openapi.Document) -> None:
        for operations in document.get("paths", {}).values():
            for method, operation in operations.items():
                if method.upper() not in _WRITES or not operation.get("security"):
                    continue
                operation.setdefault("parameters", []).append(
                    {
                        "name": FIELD,
                        "in": "header",
                        "required": False,
                        "description": "names the request, so a resend writes nothing and gets"
                        " the first successful answer again (24 hours), or, for an answer holding"
                        " a secret shown once, a 409 `answer_not_kept`: 1 to 255 visible ASCII"
                        " characters",
                        "schema": {"type": "string", "pattern": _KEY.pattern},
                    }
                )
                for status, answer in operation.get("responses", {}).items():
                    if status.startswith("2"):
                        answer.setdefault("headers", {})["Idempotent-Replayed"] = {
                            "description": "`true` on the first answer given again to a resend"
                            " (never one holding a secret shown once: it is not kept)",
                            "schema": {"type": "string", "enum": ["true"]},
                        }

    openapi.extend(app, edit)


def _first_header(scope: Scope, name: bytes) -> bytes | None:
    """A header's first value, as the routes read it (Starlette's Headers.get)."""
    return next((value for key, value in scope.get("headers", []) if key == name), None)


# Each refusal of a key: its status, title and what the key did.
_REFUSALS = {
    "bad_request": (
        400,
        "Bad request",
        "is sent once, its value 1 to 255 visible ASCII characters",
    ),
    "idempotency_key_reused": (
        422,
        "Idempotency key reused",
        "named another request (method, path or body)",
    ),
    "request_in_progress": (409, "Request in progress", "names a request still being answered"),
    "answer_not_kept": (
        409,
        "Answered once",
        "names a request answered already, whose answer was not kept (it held a secret shown"
        " once, or was lost after the request's writes committed): it is not run again",
    ),
}


def _refusal(code: str) -> Response:
    status, title, rule = _REFUSALS[code]
    return problem(status=status, title=title, detail=f"{FIELD} {rule}", code=code, field=FIELD)


_IN_MEMORY = 1 << 20
"""A body is read whole before its key is claimed: up to this many bytes in memory, the rest of
a larger one (a photo) spooled to disk, so uploads sent at once do not hold their bytes."""
_CHUNK = 1 << 16


async def _spooled_body(receive: Receive) -> SpooledTemporaryFile[bytes] | None:
    """The request's body, read to its end into a spool, or None when it was cut off."""
    spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=_IN_MEMORY)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            spool.close()
            return None
        chunk = message.get("body", b"")
        if spool.tell() + len(chunk) > _IN_MEMORY:
            await asyncio.to_thread(spool.write, chunk)  # on disk: off the event loop
        else:
            spool.write(chunk)
        if not message.get("more_body", False):
            return spool


async def _chunks(body: SpooledTemporaryFile[bytes]) -> AsyncIterator[bytes]:
    """The spooled body from its start, a chunk at a time (read off the event loop once it
    is on disk)."""
    on_disk = body.seek(0, 2) > _IN_MEMORY
    body.seek(0)
    while chunk := await asyncio.to_thread(body.read, _CHUNK) if on_disk else body.read(_CHUNK):
        yield chunk


def _streamed(body: SpooledTemporaryFile[bytes], then: Receive | None) -> Receive:
    """The spooled body as a request's messages, then whatever the client sends next (a
    disconnect) when `then` is given."""
    chunks: AsyncIterator[bytes] | None = None
    ahead: bytes | None = None
    done = False

    async def receive() -> Message:
        nonlocal chunks, ahead, done
        if done:
            if then is None:
                return {"type": "http.disconnect"}
            return await then()
        if chunks is None:
            chunks = _chunks(body)
            ahead = await anext(chunks, b"")
        current, ahead = ahead or b"", await anext(chunks, None)
        done = ahead is None
        return {"type": "http.request", "body": current, "more_body": not done}

    return receive


def _replay(body: SpooledTemporaryFile[bytes], receive: Receive) -> Receive:
    """The body read already, then whatever the client sends next (a disconnect)."""
    return _streamed(body, receive)


async def _answer_kept(
    kept: idempotency.Kept,
    fingerprints: tuple[str, str],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """`fingerprints`: the request's kept one, and its plain one, which a key claimed before
    they were keyed (December 2026) still holds."""
    refusal = None
    if kept.fingerprint not in fingerprints:
        refusal = _refusal("idempotency_key_reused")
    elif kept.status is None or kept.answering:
        refusal = _refusal("request_in_progress")
        refusal.headers["Retry-After"] = "1"
    elif kept.body is None or kept.status == idempotency.COMMITTED:
        refusal = _refusal("answer_not_kept")
    if refusal is not None:
        await refusal(scope, receive, send)
        return
    body = kept.body or b""  # never None here: refused above
    headers = [(b"idempotent-replayed", b"true")]
    if kept.status != 204:  # a 204 carries no content, nor its headers
        headers += [
            (b"content-type", (kept.content_type or "application/json").encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
        ]
    await send({"type": "http.response.start", "status": kept.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
