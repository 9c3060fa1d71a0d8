"""Record custody events, one at a time or as an offline sync."""

from typing import Any

from fastapi import APIRouter, Response
from pydantic import TypeAdapter, ValidationError

from mobile_api.deps import AppSettings, CurrentUser, Transaction
from mobile_api.errors import field_of
from schemas.events import EventCreate, EventResult, SyncRequest, SyncResponse
from wastetrack.core.errors import ValidationFailed
from wastetrack.custody import service as custody

router = APIRouter(prefix="/m/v1", tags=["events"])
_event = TypeAdapter(EventCreate)
_events = TypeAdapter(list[EventCreate])


@router.post("/events", response_model=EventResult, status_code=201)
async def record_event(
    body: EventCreate,
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> EventResult:
    """Record one custody event; a resend with the same client_event_id is not applied twice."""
    recorded = await custody.record_one(principal=user, submission=body, secret=settings.secret_key)
    if recorded.result.status == "duplicate":
        response.status_code = 200
    return recorded.result


@router.post("/sync", response_model=SyncResponse)
async def sync(
    body: SyncRequest, user: CurrentUser, settings: AppSettings, _: Transaction
) -> Response:
    """Apply events recorded offline, each exactly once, and say what became of each."""
    if len(body.events) > settings.sync_max_events:
        raise ValidationFailed(
            f"send at most {settings.sync_max_events} events per sync", field="events"
        )
    results: list[EventResult | None] = [None] * len(body.events)
    valid: list[tuple[int, EventCreate]] = []
    try:  # the usual case, every entry well-formed, in one pass
        valid = list(enumerate(_events.validate_python(body.events)))
        checked_one_by_one: list[tuple[int, Any]] = []
    except ValidationError:
        checked_one_by_one = list(enumerate(body.events))
    for index, raw in checked_one_by_one:
        try:
            valid.append((index, _event.validate_python(raw)))
        except ValidationError as error:
            first = error.errors()[0]
            results[index] = EventResult.model_validate(
                {
                    "client_event_id": _client_id(raw),
                    "status": "rejected",
                    "error": {
                        "code": "validation_failed",
                        "field": field_of(first["loc"]) or None,
                        "detail": first["msg"],
                    },
                }
            )
    if valid:
        outcomes = await custody.record_events(
            principal=user, submissions=[sub for _, sub in valid], secret=settings.secret_key
        )
        for (index, _sub), outcome in zip(valid, outcomes, strict=True):
            results[index] = outcome.result
    final = [r for r in results if r is not None]
    counts = {
        status: sum(r.status == status for r in final)
        for status in ("applied", "duplicate", "conflict", "rejected")
    }
    answer = SyncResponse(
        results=final,
        applied=counts["applied"],
        duplicates=counts["duplicate"],
        conflicts=counts["conflict"],
        rejected=counts["rejected"],
    )
    # Already a validated SyncResponse: serialize once instead of re-validating 500 results.
    return Response(answer.model_dump_json(), media_type="application/json")


def _client_id(raw: object) -> str | None:
    """The client_event_id of an entry that failed validation, when it is at least a UUID."""
    import uuid

    value = raw.get("client_event_id") if isinstance(raw, dict) else None
    try:
        return str(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None
