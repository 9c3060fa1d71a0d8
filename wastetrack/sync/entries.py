"""What an offline sync carries: a phone's backlog, each entry a custody event, a stream's
record, or something the API could not read as either (judged alone, never the request)."""

import uuid
from dataclasses import dataclass
from typing import Protocol

KINDS = ("event", "delivery", "cleanup", "pickup", "return")
"""The kinds of entry a sync carries; an entry without `kind` is a custody event."""


class StreamRecord(Protocol):
    """A stream's record (a delivery, a clean-up, a pickup, a return) as a command."""

    @property
    def kind(self) -> str: ...

    @property
    def client_event_id(self) -> uuid.UUID: ...

    def digest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Invalid:
    """An entry that is not a well-formed command: answered rejected, naming the field."""

    kind: str
    """The kind it claimed, or "invalid" when it named none the API knows."""
    client_event_id: uuid.UUID | None
    field: str | None
    detail: str
