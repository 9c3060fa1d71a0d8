"""Offline sync: a phone's backlog of custody events and stream records (deliveries,
clean-ups, pickups, returns), each checked on its own and applied exactly once, in one
transaction."""

import logging
from collections.abc import Awaitable, Callable, Sequence

from pydantic import ValidationError

from wastetrack.core import observability
from wastetrack.core.errors import DomainError, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.custody import intake, recorder
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.results import EntryError, EntryResult
from wastetrack.household import service as household
from wastetrack.household.models import Pickup
from wastetrack.pesticide import service as pesticide
from wastetrack.ports import cleanups, deliveries
from wastetrack.ports.models import CleanUp
from wastetrack.sync.entries import Invalid, StreamRecord

Entry = EventCommand | StreamRecord | Invalid
log = logging.getLogger(__name__)

_recorders: dict[str, Callable[..., Awaitable[intake.RecordResult]]] = {
    "delivery": deliveries.record_delivery,
    "cleanup": cleanups.record_cleanup,
    "pickup": household.record_pickup,
    "return": pesticide.record_return,
}


def check_count(count: int, *, max_entries: int) -> None:
    """A sync holds at most `max_entries` entries (WASTETRACK_SYNC_MAX_EVENTS): refused whole,
    naming `events` (the phone sends fewer). The route counts a body's entries by it before
    any entry is read, and `apply` again."""
    if count > max_entries:
        raise ValidationFailed(f"send at most {max_entries} entries per sync", field="events")


async def apply(
    *,
    principal: Principal,
    entries: Sequence[Entry],
    secret: str,
    max_entries: int,
) -> list[EntryResult]:
    """One result per entry, in the order sent. Stream records go first (they make batches);
    events follow, in the order `recorder.sync_order` gives. A record sent after an event with
    its id waits until the events are recorded, and is judged then, as in a later sync: each
    kind keeps its own ids, however the phone batched its queue (no event can name a batch a
    record makes: its code is the server's). An auditor's sync is refused whole, whatever it
    holds, as an auditor's post is."""
    principal.check_may_write()
    check_count(len(entries), max_entries=max_entries)
    results: list[EntryResult | None] = [None] * len(entries)
    events: list[tuple[int, EventCommand]] = []
    after_events: list[tuple[int, StreamRecord]] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, Invalid):
            results[index] = EntryResult(
                client_event_id=entry.client_event_id,
                status="rejected",
                error=EntryError("validation_failed", entry.field, entry.detail),
            )
        elif isinstance(entry, EventCommand):
            events.append((index, entry))
        elif any(sub.client_event_id == entry.client_event_id for _, sub in events):
            after_events.append((index, entry))
        else:
            results[index] = await _apply_record(principal, entry, secret)
    if events:
        outcomes = await recorder.record_events(
            principal=principal, submissions=[sub for _, sub in events], secret=secret
        )
        for (index, _sub), outcome in zip(events, outcomes, strict=True):
            results[index] = outcome.result
    for index, record in after_events:
        results[index] = await _apply_record(principal, record, secret)
    answered = [r for r in results if r is not None]
    observability.sync_results(kinds=[_kind(entry) for entry in entries], results=answered)
    return answered


def _kind(entry: Entry) -> str:
    return "event" if isinstance(entry, EventCommand) else entry.kind


async def _apply_record(principal: Principal, record: StreamRecord, secret: str) -> EntryResult:
    try:
        result = await _recorders[record.kind](
            principal=principal, submission=record, secret=secret
        )
    except DomainError as error:
        return EntryResult.refused(record.client_event_id, error)
    except ValidationError as error:
        # A model made from the record refused what the record's command let through (its
        # savepoint undid what it wrote): that record is refused, never the whole sync.
        log.warning("a %s refused past its command, by %s", record.kind, error.title)
        return EntryResult.refused(record.client_event_id, ValidationFailed.of(error))
    if result.error is not None:
        return EntryResult.refused(
            record.client_event_id,
            result.error,
            status=result.status,
        )
    return EntryResult(
        client_event_id=record.client_event_id,
        status=result.status,
        batch_code=await _batch_code(record.kind, result.record_id),
        record_id=result.record_id,
        flags=result.flags,
    )


# The records that become one batch, whose code the answer carries as a single post's does (the
# phone labels the bag with it); a delivery's lines are batches of their own, a return none.
_ONE_BATCH: dict[str, type[Pickup] | type[CleanUp]] = {"pickup": Pickup, "cleanup": CleanUp}


async def _batch_code(kind: str, record_id: int | None) -> str | None:
    model = _ONE_BATCH.get(kind)
    if model is None or record_id is None:
        return None
    codes = await model.filter(id=record_id).values_list("batch__code", flat=True)
    return str(codes[0]) if codes else None
