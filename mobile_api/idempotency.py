"""The Idempotency-Key header on any request that writes (POST, PUT, PATCH, DELETE): a client
that may send a request twice (a timeout, an answer lost on the way) names it with a key of its
choosing; the first successful answer is kept for 24 hours and given again, unchanged, to a
resend of the same request, which writes nothing. Routes with an id of their own for exactly
once (a phone's client_event_id) need none; every other create route gets it this way."""

import hashlib
import re

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobile_api.errors import problem
from wastetrack.apikeys import service as apikeys
from wastetrack.auth import service as auth
from wastetrack.core import idempotency
from wastetrack.core.errors import DomainError
from wastetrack.core.settings import Settings

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
        headers = dict(scope.get("headers", []))
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _KEY.match(key):
            refusal = _refusal(400, "Bad request", "is 1 to 255 visible ASCII characters")
            await refusal(scope, receive, send)
            return
        owner = await self._owner(headers.get(b"authorization"))
        if owner is None:  # no credentials the key could belong to: the route answers
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive)
        fingerprint = hashlib.sha256(
            b"\n".join(
                [scope["method"].encode(), scope["path"].encode(), scope["query_string"], body]
            )
        ).hexdigest()
        kept = await idempotency.claim(owner=owner, key=key, fingerprint=fingerprint)
        if kept is not None:
            await _answer_kept(kept, fingerprint, scope, receive, send)
            return
        await self._first(scope, _replay(body, receive), send, owner=owner, key=key)

    async def _owner(self, authorization: bytes | None) -> str | None:
        """Whose key it is: a user (from a valid access token) or an API key."""
        scheme, _, token = (authorization or b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        if token.startswith(apikeys.TOKEN_PREFIX):
            return "key:" + hashlib.sha256(token.encode()).hexdigest()
        try:
            principal = await auth.principal_from_access_token(token=token, settings=self.settings)
        except DomainError:
            return None
        return f"user:{principal.user_id}"

    async def _first(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, key: str
    ) -> None:
        """Answer the request, keeping a successful answer; anything else frees the key."""
        status = 500
        content_type = ""
        chunks: list[bytes] = []

        async def keeping(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = next(
                    (
                        v.decode("latin-1")
                        for k, v in message.get("headers", [])
                        if k == b"content-type"
                    ),
                    "",
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, keeping)
        except BaseException:
            await idempotency.release(owner=owner, key=key)
            raise
        if 200 <= status < 300:
            await idempotency.keep(
                owner=owner,
                key=key,
                status=status,
                content_type=content_type,
                body=b"".join(chunks),
            )
        else:
            await idempotency.release(owner=owner, key=key)


def _refusal(status: int, title: str, rule: str) -> Response:
    code = {400: "bad_request", 409: "request_in_progress", 422: "idempotency_key_reused"}
    return problem(
        status=status, title=title, detail=f"{FIELD} {rule}", code=code[status], field=FIELD
    )


async def _whole_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then whatever the client sends next (a disconnect)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


async def _answer_kept(
    kept: idempotency.Kept, fingerprint: str, scope: Scope, receive: Receive, send: Send
) -> None:
    if kept.fingerprint != fingerprint:
        reused = _refusal(
            422, "Idempotency key reused", "named another request (method, path or body)"
        )
        await reused(scope, receive, send)
        return
    if kept.status is None:
        busy = _refusal(409, "Request in progress", "names a request still being answered")
        busy.headers["Retry-After"] = "1"
        await busy(scope, receive, send)
        return
    body = kept.body or b""
    await send(
        {
            "type": "http.response.start",
            "status": kept.status,
            "headers": [
                (b"content-type", (kept.content_type or "application/json").encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
