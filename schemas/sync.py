"""An offline sync as phones send it: a backlog of custody events and stream records, each
told apart by its `kind` and judged alone."""

import copy
from typing import Annotated, Any, get_args
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


def _members() -> dict[str, type[Schema]]:
    """SyncEntry's members by their tag, as the union names them."""
    members = {}
    for member in get_args(get_args(SyncEntry)[0]):
        model, *metadata = get_args(member)
        members[next(m.tag for m in metadata if isinstance(m, Tag))] = model
    return members


def document_entries(document: dict[str, Any]) -> None:
    """The sync entry in the OpenAPI document as the union `SyncEntry` reads, told apart by
    `kind` (its discriminator): `SyncEvent`, a custody event that may say `kind: event` and is
    one when it names no kind; `SyncDelivery` and the other records, each with `kind` required
    (posted to their own routes they need none). Pydantic documents the union's members as
    they are posted alone, a plain `oneOf`."""
    schemas = document["components"]["schemas"]
    records = _members()
    event = copy.deepcopy(schemas[records.pop("event").__name__])
    event["title"] = "SyncEvent"
    event["properties"] = {
        "kind": {
            "type": "string",
            "const": "event",
            "default": "event",
            "description": "a custody event when the entry names no kind",
        },
        **event["properties"],
    }
    members = {"event": ("SyncEvent", event)}
    for kind, model in records.items():
        record = copy.deepcopy(schemas[model.__name__])
        record["title"] = name = "Sync" + model.__name__.removesuffix("Create")
        record["required"] = ["kind", *record.get("required", [])]
        members[kind] = (name, record)
    mapping = {}
    for kind, (name, schema) in members.items():
        schemas[name] = schema
        mapping[kind] = f"#/components/schemas/{name}"
    entries = schemas[SyncRequest.__name__]["properties"]["events"]
    entries["items"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }


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
