"""Domain errors: one base class carrying an HTTP status and a stable error code."""

from typing import Any


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
