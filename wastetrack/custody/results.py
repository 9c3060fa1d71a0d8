"""What one entry a phone sent came to — a custody event posted alone or in a sync, or a
stream's record — as the domain says it; the API's EventResult contract presents it."""

import uuid
from dataclasses import dataclass
from typing import Literal

from wastetrack.core.errors import Conflict, DomainError

Status = Literal["applied", "duplicate", "conflict", "rejected"]


def others_id() -> Conflict:
    """The refusal of a client id another organization recorded under, for a custody event or
    a stream's record alike: it shows nothing of that organization's record."""
    return Conflict(
        "this client_event_id was already used by another organization; a new record takes a"
        " new id",
        field="client_event_id",
    )


@dataclass(frozen=True, slots=True)
class EntryError:
    code: str
    field: str | None
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryResult:
    client_event_id: uuid.UUID | None
    status: Status
    batch_code: str | None = None
    event_id: uuid.UUID | None = None
    state: str | None = None
    record_id: int | None = None
    flags: list[str] | None = None
    error: EntryError | None = None

    @classmethod
    def refused(
        cls,
        client_event_id: uuid.UUID | None,
        error: DomainError,
        *,
        status: Status = "rejected",
        batch_code: str | None = None,
        event_id: uuid.UUID | None = None,
        record_id: int | None = None,
    ) -> "EntryResult":
        """An entry not applied (refused by a rule, or a conflicting resend), naming the field
        and the rule."""
        return cls(
            client_event_id=client_event_id,
            status=status,
            batch_code=batch_code,
            event_id=event_id,
            record_id=record_id,
            error=EntryError(error.code, error.field, error.detail),
        )
