"""Records that bring waste into the custody chain (a vessel's delivery, a clean-up, a pickup
at a collection point): each line becomes a batch, tagged and put in the recorder's (or a
receiver's) hands through the chain itself, and a record is applied exactly once."""

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, Protocol, Self, TypeVar

from pydantic import ValidationError
from tortoise import Tortoise, connections
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from wastetrack.batches.models import Batch, Unit
from wastetrack.core.errors import Conflict, DomainError, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.records import IdempotentRecord
from wastetrack.custody import recorder
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.results import Status, others_id
from wastetrack.custody.rules import EventType


@dataclass(frozen=True, slots=True)
class IntakeLine:
    category: str
    quantity: Decimal
    unit: Unit


@dataclass(slots=True)
class RecordResult:
    client_event_id: uuid.UUID
    status: Status
    record_id: int | None = None
    error: DomainError | None = None
    flags: list[str] | None = None


class Submission(Protocol):
    """What a phone sends for a record: its own id for it, and content to digest (a
    `core.commands.Command`)."""

    SCANNED_FIELDS: ClassVar[tuple[str, ...]]

    @property
    def client_event_id(self) -> uuid.UUID: ...

    def named(self, code_of: Callable[[str], str | None]) -> Self: ...

    def digest(self) -> str: ...

    def same_content(self, digest: str) -> bool: ...


R = TypeVar("R", bound=IdempotentRecord)
M = TypeVar("M", bound=Model)


class Raced(Exception):
    """A concurrent send of the same record committed while this one was being applied (its
    custody events were found recorded): this one is answered as its resend."""


async def seen(
    model: type[R],
    submission: Submission,
    principal: Principal,
    flags: Callable[[R], list[str]] | None = None,
) -> RecordResult | None:
    """A resend's answer, when a record with this client_event_id exists: duplicate with the
    same content (and the record's flags, as its first answer gave them), conflict with other
    content; a record of another organization is a conflict that shows nothing of it."""
    client_event_id = submission.client_event_id
    known = await model.get_or_none(client_event_id=client_event_id)
    if known is None:
        if await _named_elsewhere(model, client_event_id):
            return RecordResult(client_event_id, "conflict", None, _elsewhere_refusal())
        return None
    if known.recorded_for() != principal.organization_id:
        return RecordResult(client_event_id, "conflict", None, others_id())
    if submission.same_content(known.payload_digest):
        return RecordResult(
            client_event_id, "duplicate", known.id, flags=flags(known) if flags else None
        )
    return RecordResult(
        client_event_id,
        "conflict",
        known.id,
        Conflict(
            "this client_event_id was already used for a record with other content",
            field="client_event_id",
        ),
    )


def _elsewhere_refusal() -> Conflict:
    """The refusal of an id another kind of record, tally or custody event holds."""
    return Conflict(
        "this client_event_id already names another kind of record or a custody event",
        field="client_event_id",
    )


RECORD_ID_LOCK_KEY = 0x72656364
"""First half of the advisory lock key a stream record's id takes while it is recorded ("recd" in
ASCII); a hash of the id is the second."""


async def _take_turns(client_event_id: uuid.UUID) -> None:
    """Records sent at once with one id, of one kind or two, take turns until the first commits:
    the second then finds it, in its own kind's table or another's."""
    await connections.get("default").execute_query(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))", [RECORD_ID_LOCK_KEY, str(client_event_id)]
    )


async def _named_elsewhere(model: type[Model], client_event_id: uuid.UUID) -> bool:
    """Whether a phone's id for a new record or tally already names another kind of record or
    tally, or a custody event: each kind keeps its own ids, so the same id sent as a clean-up
    and then as a pickup, a return or a sale would be two records of one id (the phone makes a
    fresh id per record)."""
    found = await connections.get("default").execute_query_dict(
        _elsewhere_sql(model._meta.db_table), [client_event_id]
    )
    return bool(found)


@cache
def _elsewhere_sql(own: str) -> str:
    """One statement looking an id up among the ids of every other table keeping one by it — the
    records, the tallies (sales, float replacements) and the custody events (`client_event`) —
    each by its unique index."""
    tables = sorted(
        {
            model._meta.db_table
            for models in Tortoise.apps.values()
            for model in models.values()
            if (field := model._meta.fields_map.get("client_event_id")) is not None
            and (field.unique or field.pk)
            and model._meta.db_table != own
        }
    )
    lookups = [f"SELECT 1 FROM {table} WHERE client_event_id = $1" for table in tables]
    return " UNION ALL ".join(lookups) + " LIMIT 1"


async def record_once(
    *,
    model: type[R],
    principal: Principal,
    submission: Submission,
    apply: Callable[[str], Awaitable[R]],
    flags: Callable[[R], list[str]] | None = None,
    code_of: Callable[[str], str | None] | None = None,
) -> RecordResult:
    """Apply a stream's record exactly once: a resend is answered from the stored record
    (duplicate, or conflict when its content differs, content being what its scanned fields
    name, by `code_of`); otherwise `apply(payload_digest)` runs its checks and writes in one
    savepoint, and a refusal it raises undoes all it wrote. An auditor records nothing
    (`check_may_write`, before any stream's own rule)."""
    principal.check_may_write()
    if submission.SCANNED_FIELDS and code_of is None:
        raise TypeError(f"{type(submission).__name__} names what it scanned: read it by code_of")
    submission = submission.named(code_of or (lambda text: None))
    client_event_id = submission.client_event_id
    payload_digest = submission.digest()
    await _take_turns(client_event_id)
    answer = await seen(model, submission, principal, flags)
    if answer is not None:
        return answer
    try:
        async with in_transaction():
            record = await apply(payload_digest)
    except (IntegrityError, Raced) as error:
        # A concurrent request with the same client_event_id committed first (the unique
        # record or custody-event id refused this one, or its events were found recorded):
        # answer as its resend. Any other integrity fault (a log partition missing, say)
        # goes on to its own handler.
        answer = await seen(model, submission, principal, flags)
        if answer is not None:
            return answer
        if isinstance(error, Raced):
            raise Conflict(
                "this record's custody events were recorded already, under another record",
                field="client_event_id",
            ) from None
        raise
    return RecordResult(
        client_event_id, "applied", record.id, flags=flags(record) if flags else None
    )


async def kept_once(
    *,
    model: type[M],
    client_event_id: uuid.UUID,
    content: Mapping[str, Any],
    create: Callable[[], Awaitable[M]],
    owned: Callable[[M], bool],
) -> tuple[M, bool]:
    """A tally kept by client_event_id (a sale, a float replacement), its row holding what was
    sent (`content`, field by field), and whether this call created it: a resend, even one
    racing the first send, gets the stored row and counts nothing twice; the id sent again with
    other content is a conflict, as for a record (`seen`), and changes nothing. A row the caller
    does not own (`owned`) is never shown: its id is a conflict."""

    def resent(known: M) -> tuple[M, bool]:
        if not owned(known):
            raise others_id()
        if any(getattr(known, name) != value for name, value in content.items()):
            raise Conflict(
                "this client_event_id was already used for a record with other content",
                field="client_event_id",
            )
        return known, False

    await _take_turns(client_event_id)
    known = await model.get_or_none(client_event_id=client_event_id)
    if known is not None:
        return resent(known)
    if await _named_elsewhere(model, client_event_id):
        raise _elsewhere_refusal()
    try:
        async with in_transaction():
            return await create(), True
    except IntegrityError:
        known = await model.get_or_none(client_event_id=client_event_id)
        if known is None:
            raise
        return resent(known)


# An intake event's fields that come from the record's line; the others (time, place) from the
# record itself.
_LINE_FIELDS = ("category", "quantity", "unit")


def _names(
    line: int,
    record_fields: Mapping[str, str] | None,
    record_names: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """How a record names the fields of its line's events, for every refusal of them (the
    event's contract, the recorder's rules): as the record says (a pickup's one line is the
    record itself), else a line's own fields within its line and the others as the record
    names them (`record_names`: the producer a delivery's vessel gives, say), or as they are.
    Only a line's fields are ever the line's."""
    if record_fields is not None:
        return dict(record_fields)
    return {name: f"lines[{line}].{name}" for name in _LINE_FIELDS} | dict(record_names or {})


def _event(fields: dict[str, Any], *, names: dict[str, str]) -> EventCommand:
    """The custody event a record's line makes. The record's own checks come first (its
    command, a delivery's line resolution); a value they let through and the event refuses is
    still the record's refusal, naming the record's field, never a 500."""
    try:
        return EventCommand.model_validate(fields)
    except ValidationError as error:
        raise ValidationFailed.of(error, fields=names) from None


def _event_id(record_id: uuid.UUID, index: int, step: str) -> uuid.UUID:
    """Stable ids for the custody events a record makes, so its resend makes none."""
    return uuid.uuid5(record_id, f"{index}:{step}")


async def take_in(
    *,
    principal: Principal,
    record_id: uuid.UUID,
    when: datetime,
    secret: str,
    stream: str,
    lines: list[IntakeLine],
    producer_id: int,
    handover_to: int | None,
    latitude: float | None,
    longitude: float | None,
    origin_site_id: int | None = None,
    collect: bool = True,
    destination_id: int | None = None,
    record_fields: Mapping[str, str] | None = None,
    record_names: Mapping[str, str] | None = None,
) -> list[Batch]:
    """Tag one batch per line and put it in the recorder's hands (collected), or hand it to
    `handover_to`; any refusal raises, naming the record's field (`record_fields`: an event's
    field → the record's, for a record that is its one line; else a line's fields within its
    line, the others as `record_names` names them, or as they are: `_names`), and the
    caller's savepoint undoes all."""
    place = {"device_time": when, "latitude": latitude, "longitude": longitude}
    tags = [
        _event(
            {
                **place,
                "client_event_id": _event_id(record_id, index, "tagged"),
                "event_type": EventType.tagged,
                "stream": stream,
                "category": line.category,
                "quantity": line.quantity,
                "unit": line.unit,
                "producer_organization_id": producer_id,
                "origin_site_id": origin_site_id,
                "destination_organization_id": destination_id,
            },
            names=_names(index, record_fields, record_names),
        )
        for index, line in enumerate(lines)
    ]
    batches = []
    for index, outcome in enumerate(
        await recorder.record_events(principal=principal, submissions=tags, secret=secret)
    ):
        if outcome.error is not None:
            field = outcome.error.field or "category"
            outcome.error.field = _names(index, record_fields, record_names).get(field, field)
            raise outcome.error
        if outcome.batch is None:  # recorded already: a concurrent send committed first
            raise Raced
        batches.append(outcome.batch)
    if not collect and handover_to is None:
        return batches
    step = EventType.handed_over if handover_to else EventType.collected
    follow = [
        _event(
            {
                **place,
                "client_event_id": _event_id(record_id, index, step.value),
                "event_type": step,
                "batch": batch.code,
                **({"to_organization_id": handover_to} if handover_to else {}),
            },
            names=_names(index, record_fields, record_names),
        )
        for index, batch in enumerate(batches)
    ]
    for index, outcome in enumerate(
        await recorder.record_events(principal=principal, submissions=follow, secret=secret)
    ):
        if outcome.error is not None:
            if outcome.error.field is not None:
                names = _names(index, record_fields, record_names)
                outcome.error.field = names.get(outcome.error.field, outcome.error.field)
            raise outcome.error
    return batches
