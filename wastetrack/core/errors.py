"""Domain errors: one base class carrying an HTTP status and a stable error code."""

from collections.abc import Mapping
from typing import Any, Self

from pydantic import ValidationError

from wastetrack.core.commands import error_field


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    title = "Invalid input"

    @classmethod
    def of(cls, error: ValidationError, *, fields: Mapping[str, str] | None = None) -> Self:
        """A command the domain made from a request refused a value: the request's refusal,
        naming the first field at fault and its rule, never a pydantic error (a 500). `fields`
        names the command's fields as the request names them (`quantity` made from
        `lines[2]`, say)."""
        names = fields or {}
        errors = []
        for refused in error.errors():
            name = error_field(refused)
            errors.append(
                {"field": names.get(name, name), "rule": refused["type"], "detail": refused["msg"]}
            )
        first = errors[0]
        return cls(
            f"{first['field']}: {first['detail']}", field=first["field"] or None, errors=errors
        )


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Not authenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    """The service cannot answer now (it is stopping, say); nothing was written."""

    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


class RuleViolation(DomainError):
    """A custody rule refused the action (order of events, role, licence)."""

    status = 409
    code = "rule_violation"
    title = "Refused by a custody rule"
