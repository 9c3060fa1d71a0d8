"""One place that turns every error into application/problem+json."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from tortoise.exceptions import IntegrityError

from schemas.base import field_of
from wastetrack.core.errors import DomainError

PROBLEM = "application/problem+json"


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


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, error: DomainError) -> JSONResponse:
        headers = None
        if "retry_after" in error.extra:
            headers = {"Retry-After": str(error.extra["retry_after"])}
        return problem(
            status=error.status,
            title=error.title,
            detail=error.detail,
            code=error.code,
            field=error.field,
            headers=headers,
            **error.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": field_of(e["loc"]), "rule": e["type"], "detail": e["msg"]}
            for e in error.errors()
        ]
        first = errors[0] if errors else {"field": None, "detail": "invalid request"}
        return problem(
            status=422,
            title="Invalid input",
            code="validation_failed",
            detail=f"{first['field']}: {first['detail']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(
            status=error.status_code,
            title=str(error.detail),
            detail=str(error.detail),
            code="http_error",
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, error: IntegrityError) -> JSONResponse:
        # Only a race between two concurrent requests reaches here; services check first.
        return problem(
            status=409,
            title="Conflict",
            code="concurrent_write",
            detail="another request wrote the same record at the same time; retry",
        )
