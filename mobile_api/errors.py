"""One place that turns every error into application/problem+json."""

import logging
import re
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import unquote_plus, unquote_to_bytes

from asyncpg.exceptions import (
    DataError,
    IntegrityConstraintViolationError,
    PostgresError,
    TransactionRollbackError,
)
from fastapi import FastAPI, Request, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from tortoise.exceptions import IntegrityError, OperationalError

from mobile_api import openapi
from mobile_api.bodies import ForeignCharset, LoneSurrogate, RepeatedMember
from schemas.base import error_field
from wastetrack.core.errors import DomainError, Unauthorized
from wastetrack.custody import partitions

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)

# RFC 9457 problem details as this API writes them; `field` names the input at fault.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "field": {"type": ["string", "null"]},
    },
    "additionalProperties": True,
}
_PROBLEM_CONTENT = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problem(
    *,
    status: int,
    title: str,
    detail: str,
    code: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"https://wastetrack.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "field": field,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _postgres_error(error: BaseException) -> PostgresError | None:
    """The server's error behind one the ORM raised (Tortoise wraps it as its first argument
    and its cause), or the error itself when the driver raised it."""
    seen: list[BaseException] = [error]
    while seen:
        cause = seen.pop()
        if isinstance(cause, PostgresError):
            return cause
        seen.extend(e for e in (cause.__cause__, *cause.args[:1]) if isinstance(e, BaseException))
    return None


_KEY_COLUMNS = re.compile(r"^Key \(([^)]+)\)=")


def _column(error: PostgresError) -> str | None:
    """The column a constraint's refusal names: its own (not null), or the key's (foreign key,
    unique: "Key (organization_id)=(7) is not present…")."""
    if error.column_name:
        return str(error.column_name)
    found = _KEY_COLUMNS.match(error.detail or "")
    return found[1] if found else None


# Data errors (class 22) only a client's value causes: too long, a character the column cannot
# hold (NUL), a malformed number or time. Others of the class (an overflow, a division by zero)
# come as well from our own SQL over stored data: a bug, answered 500 (the schemas' types keep
# a client's number within its column).
_INPUT_DATA_ERRORS = frozenset({"22001", "22007", "22021", "22P02", "22P05"})


def _refused_value(error: PostgresError) -> JSONResponse | None:
    """A write the database refused for its values (SQLSTATE classes 22 and 23): a lost race
    for a unique key (409, retry), else the client's input (422, naming the column when the
    database does). Services check first; this is the backstop, logged so a missing check is
    found. None for any other error."""
    state = str(error.sqlstate or "")
    if state == "23505":
        return _lost_race("another request wrote the same record at the same time")
    if not (state.startswith("23") or state in _INPUT_DATA_ERRORS):
        return None
    log.warning("the database refused a value (%s): %s", state, error)
    column = _column(error)
    # A delete of a row others refer to: RESTRICT (23001), or NO ACTION's "is still referenced".
    if state == "23001" or (state == "23503" and "referenced from" in (error.detail or "")):
        return problem(
            status=409,
            title="Conflict",
            code="conflict",
            detail="other records still refer to this one",
        )
    if state == "23503":
        why = "no such record"
    elif state == "23502":
        why = "a value is required"
    elif state.startswith("23"):
        why = f"breaks the rule {error.constraint_name or state}"
    else:  # class 22: too long, out of range, a character the column cannot hold (NUL)
        why, column = f"a value does not fit its column: {error}", None
    return problem(
        status=422,
        title="Invalid input",
        code="validation_failed",
        detail=f"{column}: {why}" if column else why,
        field=column,
    )


def _internal_error(error: BaseException) -> JSONResponse:
    # Logged with its traceback; the client learns only that it was not its fault.
    log.error("unhandled error", exc_info=error)
    return problem(
        status=500,
        title="Internal server error",
        code="internal_error",
        detail="the server failed to answer this request; it has been logged",
    )


def _lost_race(why: str) -> JSONResponse:
    """A request that lost a race with a concurrent one and wrote nothing: the client retries."""
    return problem(status=409, title="Conflict", code="concurrent_write", detail=f"{why}; retry")


def _refusal(error: Any) -> dict[str, Any]:
    """One refused input as a problem lists it: its field (null for the body as a whole),
    rule and why."""
    if error["type"] == "json_invalid":
        # FastAPI locates a body that is no JSON at the parser's character position: no field.
        position, why = error["loc"][-1], (error.get("ctx") or {}).get("error", error["msg"])
        at = f" (at character {position})" if isinstance(position, int) else ""
        return {
            "field": None,
            "rule": "json_invalid",
            "detail": f"the body is not valid JSON: {why}{at}",
        }
    # FastAPI puts where the value came from first; a key of the body named "body" (unknown,
    # refused) is still that key.
    location = tuple(error["loc"])
    if location and location[0] in _REQUEST_PARTS:
        location = location[1:]
    return {
        "field": error_field({**error, "loc": location}) or None,
        "rule": error["type"],
        "detail": error["msg"],
    }


_REQUEST_PARTS = ("body", "query", "path", "form")


def _unparsed_body(error: StarletteHTTPException) -> dict[str, Any] | None:
    """A JSON body FastAPI could not parse for a reason other than its syntax (bytes that are
    no UTF-8, nesting deeper than the parser goes, an integer of over 4,300 digits) as the
    same `json_invalid` refusal a syntax error gets, a member an object names twice as
    `repeated`, naming it (`mobile_api.bodies`), and a multipart body Starlette could not
    parse (no boundary, no parts) as `multipart_invalid`; FastAPI and Starlette answer these
    with a bare 400."""
    if isinstance(error.__context__, MultiPartException):
        why = f"the body is not valid multipart: {error.__context__.message}"
        return {"type": "multipart_invalid", "loc": ("body",), "msg": why}
    cause = error.__cause__
    if isinstance(cause, UnicodeDecodeError):
        why = f"its bytes are not UTF-8 ({cause.reason})"
        return {
            "type": "json_invalid",
            "loc": ("body", cause.start),
            "msg": why,
            "ctx": {"error": why},
        }
    if isinstance(cause, LoneSurrogate):
        return {
            "type": "json_invalid",
            "loc": ("body",),
            "msg": str(cause),
            "ctx": {"error": str(cause)},
        }
    if isinstance(cause, RecursionError):
        why = "it nests arrays or objects deeper than the parser goes"
        return {"type": "json_invalid", "loc": ("body",), "msg": why, "ctx": {"error": why}}
    if type(cause) is ValueError and "integer string conversion" in str(cause):
        why = f"it holds a number longer than the parser reads ({cause})"
        return {"type": "json_invalid", "loc": ("body",), "msg": why, "ctx": {"error": why}}
    if isinstance(cause, RepeatedMember):
        # Named as an unknown key is: the object's member, at its place in the body.
        return {"type": "repeated", "loc": ("body", *cause.path), "msg": str(cause)}
    return None


def _not_read_as_json(error: Any) -> bool:
    """FastAPI hands an operation that takes a JSON body the raw bytes when the request's
    Content-Type is not JSON (none, a form, text): the body as a whole then fails as no
    object, which names no field and blames the content rather than the header."""
    return tuple(error["loc"]) == ("body",) and isinstance(error.get("input"), bytes)


def _media_type_refused(content_type: str | None) -> JSONResponse:
    sent = f"sent as {content_type}" if content_type else "sent without a Content-Type"
    why = f"the body is {sent}; this operation reads application/json, in UTF-8"
    return problem(
        status=415,
        title="Unsupported media type",
        code="unsupported_media_type",
        detail=f"Content-Type: {why}",
        field="Content-Type",
        errors=[{"field": "Content-Type", "rule": "media_type", "detail": why}],
    )


def _invalid_input(errors: list[dict[str, Any]]) -> JSONResponse:
    refusals = [_refusal(e) for e in errors]
    first = refusals[0] if refusals else {"field": None, "detail": "invalid request"}
    field, why = first["field"], str(first["detail"])
    return problem(
        status=422,
        title="Invalid input",
        code="validation_failed",
        detail=f"{field}: {why}" if field else why,
        field=field,
        errors=refusals,
    )


async def refuse_unknown_query(request: Request) -> None:
    """A query parameter an operation of the API does not take is refused as an unknown key of
    a body is (422 `extra_forbidden`, named), before the route reads anything: a misspelt
    filter (`regoin_id`) would otherwise be dropped, and a rate answered for the whole city.
    One it takes once, sent twice (`region_id=1&region_id=2`), is refused likewise (`repeated`):
    the framework would read the last and answer for it alone; so is a field of a form sent
    twice (a login's `username`, a photo upload's `file`), on every route, pages' forms too.
    A dependency of the app's routers, first of each route's; the dashboard's pages (not in
    the OpenAPI) and the public ones a label's QR opens take what a link may carry, and the
    probes (/healthz, /readyz, /metrics) what a monitor adds."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _TAKEN.get(id(route))
    if known is None or known.route is not route:
        known = _TAKEN[id(route)] = _Taken.of(route)
    form = getattr(request, "_form", None)  # read before any dependency, when the body is one
    if form is not None:
        _refuse_repeats("body", form.multi_items(), known.once_fields)
    if request.scope["query_string"]:
        _refuse_undecodable(request.scope["query_string"], known.queries)
    if request.scope["query_string"] and route.include_in_schema:
        for name, _value in request.query_params.multi_items():
            if name not in known.queries:
                refused = {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": "the operation takes no such query parameter",
                }
                raise RequestValidationError([refused])
        _refuse_repeats("query", request.query_params.multi_items(), known.once_queries)


def _refuse_undecodable(query: bytes, taken: frozenset[str]) -> None:
    """A parameter the route takes whose bytes are no UTF-8 (`%ED%A0%80`, an overlong `%C0%AF`):
    the framework reads each such byte as U+FFFD, and the route would act on, and keep, text
    nobody sent (a calendar load's reason in the audit log). Refused as a body's bytes are."""
    for pair in query.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = unquote_plus(raw_name.decode("latin-1"), errors="replace")
        if name not in taken:
            continue  # one the route does not take is refused by its name, or ignored by a page
        try:
            unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            refused = {
                "type": "string_unicode",
                "loc": ("query", name),
                "msg": "the parameter's bytes are not UTF-8 text",
            }
            raise RequestValidationError([refused]) from None


_PARTS = {"body": "field of its form", "query": "query parameter"}


def _refuse_repeats(part: str, items: list[tuple[str, Any]], once: frozenset[str]) -> None:
    """A parameter the route takes once, sent again; one it does not take is no concern here
    (a page's form may carry its others' fields: a row's button posts the ticked `ids`)."""
    seen: set[str] = set()
    for name, _value in items:
        if name in seen and name in once:
            refused = {
                "type": "repeated",
                "loc": (part, name),
                "msg": f"the operation takes this {_PARTS[part]} once",
            }
            raise RequestValidationError([refused])
        seen.add(name)


def _many(annotation: Any) -> bool:
    """Whether a parameter's type takes the parameter repeated (a list, optional or not)."""
    if get_origin(annotation) in (Union, UnionType):
        return any(_many(each) for each in get_args(annotation))
    return get_origin(annotation) in (list, set, frozenset, tuple)


@dataclass(frozen=True)
class _Taken:
    """What a route takes: its query parameters, and those of them and of its form's fields
    that come once (not lists)."""

    route: APIRoute
    queries: frozenset[str]
    once_queries: frozenset[str]
    once_fields: frozenset[str]

    @classmethod
    def of(cls, route: APIRoute) -> "_Taken":
        queries = [
            field
            for field in get_flat_params(route.dependant)
            if isinstance(field.field_info, params.Query)
        ]
        fields: list[tuple[str, Any]] = []
        dependants = [route.dependant]
        while dependants:
            dependant = dependants.pop()
            dependants.extend(dependant.dependencies)
            for field in dependant.body_params:
                model = field.field_info.annotation
                if isinstance(model, type) and issubclass(model, BaseModel):  # a form model
                    fields.extend(
                        (each.alias or name, each.annotation)
                        for name, each in model.model_fields.items()
                    )
                else:
                    fields.append((field.alias, model))
        return cls(
            route=route,
            queries=frozenset(field.alias for field in queries),
            once_queries=frozenset(f.alias for f in queries if not _many(f.field_info.annotation)),
            once_fields=frozenset(name for name, annotation in fields if not _many(annotation)),
        )


# What each route takes, by the route's identity (routes compare equal by path and methods),
# the route kept beside it: its id is never another's while it lives.
_TAKEN: dict[int, _Taken] = {}


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
"""The methods a route of the API may take (HEAD comes with GET)."""


def _allowed(request: Request) -> str:
    """Every method the request's path takes, for a 405's `Allow` (RFC 9110 §15.5.6): each of
    its routes', where Starlette names only the first route matching the path; HEAD with GET
    (middleware.HeadAsGet)."""
    # The app's own path: a mount (the static files) moved its prefix into root_path.
    scope = {**request.scope, "root_path": request.scope.get("app_root_path", "")}
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Mount):  # static files (the only mounts) take GET alone
            if route.matches(scope)[0] is not Match.NONE and isinstance(route.app, StaticFiles):
                methods.add("GET")
            continue
        methods |= {m for m in _METHODS if route.matches({**scope, "method": m})[0] is Match.FULL}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _document_problems(app: FastAPI) -> None:
    """Every error an operation can answer is problem+json: say so in the OpenAPI document."""

    def edit(document: openapi.Document) -> None:
        document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                ok = responses.get("200", {}).setdefault("content", {})
                problem_content = dict(_PROBLEM_CONTENT)
                if "text/html" in ok:  # a page: people see its errors as pages too
                    problem_content["text/html"] = {"schema": {"type": "string"}}
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = problem_content
                responses["default"] = {"description": "Problem", "content": problem_content}
        schemas = document["components"]["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)

    openapi.extend(app, edit)


def headers_of(error: DomainError) -> dict[str, str] | None:
    """The headers a refusal carries whatever the page shows it: Retry-After when it says
    when to try again (a rate limit, a login back-off), and on a 401 the scheme that would
    get in (RFC 9110 §15.5.2: a bearer token, an access token's or an API key's)."""
    headers = {}
    if "retry_after" in error.extra:
        headers["Retry-After"] = str(error.extra["retry_after"])
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="wastetrack"'
    return headers or None


def problem_of(error: DomainError, headers: dict[str, str] | None = None) -> JSONResponse:
    """A domain error's answer: its problem document, with the headers it carries (and
    `headers`)."""
    return problem(
        status=error.status,
        title=error.title,
        detail=error.detail,
        code=error.code,
        field=error.field,
        headers={**(headers_of(error) or {}), **(headers or {})} or None,
        **error.extra,
    )


def install(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, error: DomainError) -> JSONResponse:
        return problem_of(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        if any(_not_read_as_json(e) for e in errors):
            return _media_type_refused(request.headers.get("content-type"))
        return _invalid_input(errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if isinstance(error.__cause__, ForeignCharset):
            return _media_type_refused(request.headers.get("content-type"))
        unparsed = _unparsed_body(error)
        if unparsed is not None:
            return _invalid_input([unparsed])
        headers = getattr(error, "headers", None)
        if error.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed(request)}
        return problem(
            status=error.status_code,
            title=str(error.detail),
            detail=str(error.detail),
            code="http_error",
            headers=headers,
        )

    @app.exception_handler(IntegrityError)
    @app.exception_handler(OperationalError)
    @app.exception_handler(IntegrityConstraintViolationError)
    @app.exception_handler(DataError)
    async def _refused_by_database(_: Request, error: Exception) -> JSONResponse:
        if partitions.missing(error):
            log.error("custody log has no partition for a new batch", exc_info=error)
            return problem(
                status=503,
                title="Service unavailable",
                code="log_partition_missing",
                detail="the custody log has no partition for new batches yet (the background"
                " job makes them ahead); nothing was written, retry shortly",
                headers={"Retry-After": "30"},
            )
        cause = _postgres_error(error)
        refused = _refused_value(cause) if cause is not None else None
        if refused is not None:
            return refused
        if isinstance(error, IntegrityError):  # no SQLSTATE to tell: as a lost race
            return _lost_race("another request wrote the same record at the same time")
        raise error  # a statement the database could not run: ours to fix, answered 500

    @app.exception_handler(TransactionRollbackError)
    async def _rolled_back(_: Request, error: TransactionRollbackError) -> JSONResponse:
        # SQLSTATE class 40, a deadlock (40P01) or a serialization failure (40001) above all:
        # PostgreSQL rolled this request's transaction back to let a concurrent one through.
        # Nothing was written.
        log.warning("transaction rolled back by the database: %s", error.sqlstate)
        return _lost_race("the database let a concurrent request go first; nothing was written")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        return _internal_error(error)
