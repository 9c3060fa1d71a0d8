"""An offline sync as phones send it: a backlog of custody events and stream records, each
told apart by its `kind` and judged alone."""

from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from schemas.base import Schema, error_field
from schemas.events import EventCreate, EventResult
from schemas.household import PickupCreate
from schemas.pesticide import ReturnCreate
from schemas.ports import CleanUpCreate, DeliveryCreate
from wastetrack.sync.entries import KINDS, Invalid


def _kind(entry: Any) -> str | None:
    """The union's tag: an entry's `kind`, a custody event when it names none."""
    kind = (
        entry.get("kind", "event") if isinstance(entry, dict) else getattr(entry, "kind", "event")
    )
    return kind if kind in KINDS else None


def _without_kind(entry: Any) -> Any:
    """A custody event may say `kind: event`; the event itself has no such field."""
    if isinstance(entry, dict) and "kind" in entry:
        return {k: v for k, v in entry.items() if k != "kind"}
    return entry


def _judged_alone(entry: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A phone's backlog may hold anything: an entry that is not a well-formed command becomes
    an `Invalid` answered on its own, never a refusal of the whole sync."""
    if not isinstance(entry, dict):
        return Invalid("invalid", None, None, "each entry must be a JSON object")
    kind = entry.get("kind", "event")
    if not isinstance(kind, str):
        return Invalid("invalid", _client_id(entry), "kind", "kind must be a string")
    if kind not in KINDS:
        return Invalid(
            "invalid",
            _client_id(entry),
            "kind",
            "kind must be " + ", ".join(KINDS[:-1]) + f" or {KINDS[-1]}",
        )
    try:
        return handler(entry)
    except ValidationError as error:
        first = error.errors()[0]
        # The location starts with the union's tag; the client knows its entry by its fields.
        field = error_field({**first, "loc": first["loc"][1:]})
        return Invalid(kind, _client_id(entry), field or None, first["msg"])


def _client_id(entry: dict[str, Any]) -> UUID | None:
    """The client_event_id of an entry that failed validation, when it is at least a UUID."""
    value = entry.get("client_event_id")
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


SyncEntry = Annotated[
    Annotated[EventCreate, BeforeValidator(_without_kind), Tag("event")]
    | Annotated[DeliveryCreate, Tag("delivery")]
    | Annotated[CleanUpCreate, Tag("cleanup")]
    | Annotated[PickupCreate, Tag("pickup")]
    | Annotated[ReturnCreate, Tag("return")],
    Discriminator(_kind),
    WrapValidator(_judged_alone),
]
"""One entry of a sync: a custody event (no `kind`, or `kind: event`) or a stream's record,
told apart by `kind`."""


class SyncRequest(Schema):
    events: list[SyncEntry] = Field(
        min_length=1,
        description="up to 500 entries, each checked on its own: custody events, or records"
        " with kind `delivery`, `cleanup`, `pickup` or `return`",
    )


class SyncResponse(Schema):
    results: list[EventResult]
    applied: int
    duplicates: int
    conflicts: int
    rejected: int
