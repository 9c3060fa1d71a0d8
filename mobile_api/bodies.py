"""A request's JSON body read as the Internet's JSON is (RFC 8259 §8.1, I-JSON, RFC 7493): its
bytes UTF-8 (a leading byte order mark ignored), each member of an object named once.

Python's `json.loads` guesses UTF-16 or UTF-32 from a body's first bytes, and keeps the last of
a member sent twice: `{"quantity": "3.5", …, "quantity": "350"}` was recorded as 350, the first
value dropped unseen. Every route of the app is a `JsonRoute` (`Router` makes them), whose
request reads its body here; what it refuses reaches the error handlers as FastAPI's bare 400,
its cause the reason (`mobile_api.errors`)."""

import functools
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


class RepeatedMember(ValueError):
    """An object of the body names a member twice; `path` locates the second (keys and list
    indexes from the body's top)."""

    def __init__(self, path: tuple[str | int, ...]) -> None:
        super().__init__(f"the member {path[-1]!r} is sent twice in one object")
        self.path = path


class LoneSurrogate(ValueError):
    """A string of the body (a key or a value) holds half of a UTF-16 surrogate pair, escaped
    (`\\ud800`): JSON's syntax allows it, but it is no Unicode text (RFC 8259 §8.2; I-JSON,
    RFC 7493 §2.1, forbids it), no column keeps it and no answer can name it."""

    def __init__(self) -> None:
        super().__init__(
            "a string holds a lone UTF-16 surrogate (an escape such as \\ud800 without its"
            " pair), which is no Unicode text"
        )


# A surrogate's escape, in either half: only a body holding one can carry a lone one (UTF-8
# bytes of a surrogate are no UTF-8, refused at decoding).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_a_lone_surrogate(value: Any) -> bool:
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            todo.extend(node.keys())
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return False


class _Repeated(dict[str, Any]):
    """An object that named `name` twice, marked where it lies until its path is found."""

    name: str


def _marked(items: list[tuple[str, Any]], made: dict[str, Any]) -> _Repeated:
    marked = _Repeated(made)
    seen: set[str] = set()
    for name, _ in items:
        if name in seen:
            marked.name = name
            break
        seen.add(name)
    return marked


_CONTAINERS = (dict, list)


def _first_repeat(value: Any) -> tuple[str | int, ...] | None:
    """The path of a member sent twice: in the object that names one and opens first in the
    body. One walk over the body's objects and arrays, each visited once, its path built only
    for the object found (a body of 2 MB nested 700 deep is walked in well under a second)."""
    visited: list[tuple[int, str | int]] = []  # (parent's index, key in the parent) of each
    todo: list[tuple[Any, int, str | int]] = [(value, -1, "")]
    while todo:
        node, parent, key = todo.pop()
        visited.append((parent, key))
        if isinstance(node, _Repeated):
            path: list[str | int] = [node.name]
            at = len(visited) - 1
            while visited[at][0] >= 0:
                path.append(visited[at][1])
                at = visited[at][0]
            return tuple(reversed(path))
        at = len(visited) - 1
        inner = [
            (child, at, name)
            for name, child in (node.items() if isinstance(node, dict) else enumerate(node))
            if isinstance(child, _CONTAINERS)
        ]
        todo.extend(reversed(inner))
    return None


def loads(body: bytes) -> Any:
    """The body's JSON value; UnicodeDecodeError for bytes that are no UTF-8, LoneSurrogate
    for a string escaping half a surrogate pair, RepeatedMember for a member named twice,
    JSONDecodeError for bad syntax."""
    repeats: list[_Repeated] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        made = dict(items)
        if len(made) == len(items):
            return made
        repeats.append(_marked(items, made))
        return repeats[-1]

    text = body.decode("utf-8-sig")
    value = json.loads(text, object_pairs_hook=pairs)
    if _SURROGATE_ESCAPE.search(text) and _holds_a_lone_surrogate(value):
        raise LoneSurrogate
    if repeats:
        raise RepeatedMember(_first_repeat(value) or (repeats[0].name,))
    return value


class ForeignCharset(ValueError):
    """A JSON body declared in a character set other than UTF-8: JSON is exchanged as UTF-8
    (RFC 8259 §8.1), and read so its text would be another's (Latin-1's `Ã©` is UTF-8's
    `é`)."""


def check_charset(content_type: str) -> None:
    """ForeignCharset unless the media type's `charset`, when it names one, is UTF-8."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in ("utf-8", "utf8"):
                raise ForeignCharset(charset)


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            check_charset(self.headers.get("content-type", ""))
            self._json = loads(await self.body())
        return self._json


def read_json(request: Request) -> Any:
    """The request's body as its route read it, when it read it as JSON (else None): for a
    dependency that judges the body before the route's model reads each of its parts."""
    return getattr(request, "_json", None)


class JsonRoute(APIRoute):
    """A route whose JSON body is read by `loads`. A route that takes no body refuses a JSON
    object with members, as a route with a body refuses a member it does not know: `{"seq": 2}`
    sent to a producer's signature would otherwise sign with it unread. Sent as JSON, the first
    member is named (and a body that is no JSON is refused as a route with a body refuses it);
    sent as anything else (`curl -d` sends a form's type), the media type is refused, as a
    route with a body refuses it. An empty object, or no body, is no request of anything."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        bodiless = self.body_field is None

        async def read_strictly(request: Request) -> Response:
            strict = _JsonRequest(request.scope, request.receive)
            if bodiless:
                await _refuse_a_request(strict)
            return await handler(strict)

        return read_strictly


async def _refuse_a_request(request: Request) -> None:
    """Refuse a body sent to a route that takes none when it asks something (see `JsonRoute`),
    through the refusals FastAPI's own reading of a body raises for a route that takes one."""
    sent = await request.body()
    if not sent.strip():
        return
    if not _json_type(request.headers.get("content-type", "")):
        try:  # read leniently (any encoding, members repeated): whether it is JSON at all
            found = json.loads(sent)
        except (ValueError, RecursionError):  # no JSON: a form or text asks nothing here
            return
        if isinstance(found, dict) and found:
            # The body as FastAPI hands a route bytes of another media type: a 415.
            raise RequestValidationError(
                [{"type": "model_attributes_type", "loc": ("body",), "msg": "", "input": sent}]
            )
        return
    try:
        check_charset(request.headers.get("content-type", ""))
        found = loads(sent)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ]
        ) from error
    except Exception as error:  # not UTF-8, a member twice, too deep, a charset: the cause says
        raise HTTPException(
            status_code=400, detail="There was an error parsing the body"
        ) from error
    if isinstance(found, dict) and found:
        # Refused as a route with a body refuses an unknown member (the empty key named `""`).
        name = next(iter(found))
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("body", name),
                    "msg": "this route takes no body; nothing was done",
                    "input": found[name],
                }
            ]
        )


def _json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


Router = functools.partial(APIRouter, route_class=JsonRoute)
"""An APIRouter whose routes are `JsonRoute`s: every router of the app is made by it."""
