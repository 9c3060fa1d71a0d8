"""Offline sync: a phone's backlog of custody events, port deliveries and clean-ups, each
checked on its own and applied exactly once, in one transaction."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.base import error_field
from schemas.events import EventCreate, EventResult
from schemas.household import PickupCreate
from schemas.pesticide import ReturnCreate
from schemas.ports import CleanUpCreate, DeliveryCreate
from wastetrack.core import observability
from wastetrack.core.errors import DomainError, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.custody import intake, recorder
from wastetrack.household import service as household
from wastetrack.pesticide import service as pesticide
from wastetrack.ports import cleanups, deliveries

_events = TypeAdapter(list[EventCreate])
_event = TypeAdapter(EventCreate)
_records: dict[str, TypeAdapter[Any]] = {
    "delivery": TypeAdapter(DeliveryCreate),
    "cleanup": TypeAdapter(CleanUpCreate),
    "pickup": TypeAdapter(PickupCreate),
    "return": TypeAdapter(ReturnCreate),
}
_recorders: dict[str, Callable[..., Awaitable[intake.RecordResult]]] = {
    "delivery": deliveries.record_delivery,
    "cleanup": cleanups.record_cleanup,
    "pickup": household.record_pickup,
    "return": pesticide.record_return,
}


async def apply(
    *,
    principal: Principal,
    entries: list[Any],
    secret: str,
    max_entries: int,
) -> list[EventResult]:
    """One result per entry, in the order sent. Deliveries and clean-ups go first (they make
    batches); events follow, each batch's in device-time order."""
    if len(entries) > max_entries:
        raise ValidationFailed(f"send at most {max_entries} entries per sync", field="events")
    results: list[EventResult | None] = [None] * len(entries)
    events: list[tuple[int, dict[str, Any]]] = []
    for index, raw in enumerate(entries):
        # A phone's backlog may hold anything: each entry is judged alone, never the request.
        if not isinstance(raw, dict):
            results[index] = _invalid(raw, None, "each entry must be a JSON object")
            continue
        kind = raw.get("kind", "event")
        if not isinstance(kind, str):
            results[index] = _invalid(raw, "kind", "kind must be a string")
        elif kind == "event":
            events.append((index, {k: v for k, v in raw.items() if k != "kind"}))
        elif kind in _records:
            results[index] = await _apply_record(principal, kind, raw, secret)
        else:
            results[index] = _invalid(
                raw, "kind", "kind must be event, delivery, cleanup, pickup or return"
            )
    valid: list[tuple[int, EventCreate]] = []
    try:  # the usual case, every event well-formed, in one pass
        valid = list(
            zip(
                [i for i, _ in events],
                _events.validate_python([raw for _, raw in events]),
                strict=True,
            )
        )
    except ValidationError:
        for index, raw in events:
            try:
                valid.append((index, _event.validate_python(raw)))
            except ValidationError as error:
                first = error.errors()[0]
                results[index] = _invalid(raw, error_field(first) or None, first["msg"])
    if valid:
        outcomes = await recorder.record_events(
            principal=principal, submissions=[sub for _, sub in valid], secret=secret
        )
        for (index, _sub), outcome in zip(valid, outcomes, strict=True):
            results[index] = outcome.result
    answered = [r for r in results if r is not None]
    observability.sync_results(entries=entries, results=answered)
    return answered


async def _apply_record(
    principal: Principal,
    kind: str,
    raw: dict[str, Any],
    secret: str,
) -> EventResult:
    try:
        record = _records[kind].validate_python(raw)
    except ValidationError as error:
        first = error.errors()[0]
        return _invalid(raw, error_field(first) or None, first["msg"])
    recorder = _recorders[kind]
    try:
        result = await recorder(principal=principal, submission=record, secret=secret)
    except DomainError as error:
        return _refused(record.client_event_id, error)
    if result.error is not None:
        return _refused(record.client_event_id, result.error, status=result.status)
    return EventResult(
        client_event_id=record.client_event_id,
        status=result.status,  # type: ignore[arg-type]
        record_id=result.record_id,
        flags=result.flags,
    )


def _refused(
    client_event_id: uuid.UUID, error: DomainError, status: str = "rejected"
) -> EventResult:
    return EventResult.model_validate(
        {
            "client_event_id": client_event_id,
            "status": status,
            "error": {"code": error.code, "field": error.field, "detail": error.detail},
        }
    )


def _invalid(raw: object, field: str | None, detail: str) -> EventResult:
    return EventResult.model_validate(
        {
            "client_event_id": _client_id(raw),
            "status": "rejected",
            "error": {"code": "validation_failed", "field": field, "detail": detail},
        }
    )


def _client_id(raw: object) -> str | None:
    """The client_event_id of an entry that failed validation, when it is at least a UUID."""
    value = raw.get("client_event_id") if isinstance(raw, dict) else None
    try:
        return str(uuid.UUID(str(value))) if value else None
    except ValueError:
        return None
