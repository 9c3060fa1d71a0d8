"""Recording custody events: one path for single posts, batch creation and offline sync.

Each submission is applied exactly once (its client_event_id and payload digest), by the handler
of its event type: a sync's backlog in device-time order as far as clocks are trusted (see
`sync_order`), or in arrival order (single posts recorded together, see `posts`); everything is
written in a few set-based statements, at the end or, for a long call, in parts while the rest
is still being decided (`_Writes`)."""

import asyncio
import copy
import heapq
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import TransactionManagementError

from wastetrack.alerts import service as alerts
from wastetrack.batches import identifiers
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.batches.tagging import tag
from wastetrack.core.errors import (
    Conflict,
    DomainError,
    NotFound,
)
from wastetrack.core.principal import Principal
from wastetrack.custody import corrections, repository, transitions
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.results import EntryResult, others_id
from wastetrack.custody.rules import EventType, Outcome, Party
from wastetrack.custody.transitions import check_allowed
from wastetrack.custody.work import Work, begin, check_common, code_by_id, pin_identifiers, remember
from wastetrack.evidence import service as evidence
from wastetrack.rollups import service as rollups
from wastetrack.rollups.facts import FACT_EVENTS

log = logging.getLogger(__name__)


@dataclass
class Recorded:
    """What one submission came to: the result for the phone, the error for callers that raise
    it, and the batch as it now stands when the event was applied."""

    result: EntryResult
    error: DomainError | None = None
    batch: Batch | None = None


async def record_events(
    *, principal: Principal, submissions: list[EventCommand], secret: str
) -> list[Recorded]:
    """Apply events exactly once each, in the order `sync_order` gives; a refused event is
    reported and never stops the others. Runs inside the caller's transaction."""
    principal.check_may_write()
    return await _record([principal] * len(submissions), submissions, sync_order, secret)


CLOCK_STEP = timedelta(minutes=1)
"""How far a phone's clock may be pulled back between two steps (a network time correction)
without its backlog being reordered."""


def sync_order(submissions: list[EventCommand], batches_of: list[list[str]]) -> list[int]:
    """The order a phone's backlog is applied in: by device time, as a backlog may come in any
    order, except that clocks are trusted only so far. An event never goes before one sent
    earlier on a batch it acts on (its own, the children an aggregation takes, the container an
    undone aggregation empties) unless it is more than `CLOCK_STEP` earlier (a clock pulled back
    a few seconds between two steps does not reorder them), nor before the tagging of any of
    those batches. A correction never goes before one sent earlier on the same batch, however
    its clock reads: per field the latest correction wins, and the latest is the one sent last
    (a clock set back between two corrections would otherwise let the earlier one win). A step
    that waits goes on before the steps its clock puts after it on the same batches, wherever
    they were sent: those wait too (a box handed on after a bag was packed into it waits for the
    packing, which waits for the bag's tagging, even when the handover was sent first). Steps
    whose clocks disagree in a circle (pulled back a little at a time) go in the order sent."""
    # Which steps go after which: a batch's tagging before its other steps; of two other steps
    # on a batch, judged on the clocks' own readings, the one sent later after the other unless
    # its clock is more than CLOCK_STEP earlier, and then before it.
    tagging = [sub.event_type == EventType.tagged for sub in submissions]
    taggings: dict[str, list[int]] = {}
    on_batch: dict[str, list[int]] = {}
    for index, acted_on in enumerate(batches_of):
        if tagging[index]:
            if acted_on:
                taggings.setdefault(acted_on[0], []).append(index)
        else:
            for code in dict.fromkeys(acted_on):
                on_batch.setdefault(code, []).append(index)
    after: list[set[int]] = [set() for _ in submissions]
    for code, sent in on_batch.items():
        for first in taggings.get(code, ()):
            after[first].update(sent)
        for position, first in enumerate(sent):
            for later in sent[position + 1 :]:
                a, b = submissions[first], submissions[later]
                corrections = a.event_type == b.event_type == EventType.corrected
                if a.device_time - b.device_time <= CLOCK_STEP or corrections:
                    after[first].add(later)
                else:
                    after[later].add(first)
    # A circle of steps is one group, in the order sent (a tagging never is in one: nothing
    # goes before it). The groups go by device time, each at the latest time of its own steps
    # and of the groups it waits for; a tagging first at a time, then the order sent.
    groups = _circles(after)
    group_of = [0] * len(submissions)
    for number, members in enumerate(groups):
        for member in members:
            group_of[member] = number
    following: list[set[int]] = [set() for _ in groups]
    waiting = [0] * len(groups)
    for step, steps_after in enumerate(after):
        for later in steps_after:
            here, there = group_of[step], group_of[later]
            if here != there and there not in following[here]:
                following[here].add(there)
                waiting[there] += 1
    times = [max(submissions[m].device_time for m in members) for members in groups]

    def rank(number: int) -> tuple[datetime, bool, int, int]:
        members = groups[number]
        return (times[number], not tagging[members[0]], members[0], number)

    ready = [rank(number) for number in range(len(groups)) if not waiting[number]]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        time, *_, number = heapq.heappop(ready)
        order += groups[number]
        for later in following[number]:
            times[later] = max(times[later], time)
            waiting[later] -= 1
            if not waiting[later]:
                heapq.heappush(ready, rank(later))
    return order


def _circles(after: list[set[int]]) -> list[list[int]]:
    """The strongly connected components of the graph `after` (node -> the nodes that follow
    it), each in ascending order (Tarjan's algorithm, without recursion: a sync holds up to 500
    steps). The standard library's graphlib sorts only a graph without circles."""
    index: list[int | None] = [None] * len(after)
    low = [0] * len(after)
    on_stack = [False] * len(after)
    stack: list[int] = []
    found: list[list[int]] = []
    counter = 0
    for root in range(len(after)):
        if index[root] is not None:
            continue
        work = [(root, iter(sorted(after[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            node, successors = work[-1]
            for successor in successors:
                if index[successor] is None:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack[successor] = True
                    work.append((successor, iter(sorted(after[successor]))))
                    break
                if on_stack[successor]:
                    low[node] = min(low[node], index[successor] or 0)
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    members: list[int] = []
                    while True:
                        member = stack.pop()
                        on_stack[member] = False
                        members.append(member)
                        if member == node:
                            break
                    found.append(sorted(members))
    return found


async def record_posts(
    posts: list[tuple[Principal, EventCommand]], *, secret: str
) -> list[Recorded]:
    """Apply single posts of several principals together, in the order they arrived (as
    separate posts are), each exactly once and judged alone (see `posts.PostQueue`). Runs
    inside the caller's transaction."""
    return await _record(
        [principal for principal, _ in posts],
        [submission for _, submission in posts],
        lambda submissions, _batches: list(range(len(submissions))),
        secret,
    )


async def _record(
    principals: list[Principal],
    submissions: list[EventCommand],
    ordered: Callable[[list[EventCommand], list[list[str]]], list[int]],
    secret: str,
) -> list[Recorded]:
    """Apply submissions[i] as principals[i], in the order `ordered` gives from the
    submissions and the codes of the batches each acts on; one read before, the writes after
    (in parts while deciding, see `_Writes`)."""
    work = await begin(
        principals[0],
        secret=secret,
        texts=(text for sub in submissions for text in (sub.batch, *(sub.children or ()))),
    )
    outcomes: list[Recorded | None] = [None] * len(submissions)
    codes_of: list[str | None] = []
    for index, sub in enumerate(submissions):
        try:
            codes_of.append(_code_of(sub, work.reader))
        except DomainError as error:
            codes_of.append(None)
            outcomes[index] = _rejected(sub, error)
    known = await _load(work, principals, submissions, codes_of)
    writes = _Writes(work, submissions)
    try:
        # Each applied event's batch as that event left it: later events of the call (another
        # post of a flush, say) go on changing the batch itself.
        as_left: list[tuple[Batch, Batch]] = []
        acted_on = [
            [code, *_others_of(work, sub, code)] if code is not None else []
            for sub, code in zip(submissions, codes_of, strict=True)
        ]
        for index in ordered(submissions, acted_on):
            if outcomes[index] is not None:
                continue
            sub = submissions[index]
            # The rules, the event's actor and organization, its labels and clock anomalies are
            # the submitter's.
            work.principal = principals[index]
            # Content is the batches named, however the phone scanned or typed them.
            named = sub.named(work.reader.code)
            digest = named.digest()
            seen = known.get(sub.client_event_id)
            if seen is not None:
                outcomes[index] = _seen_before(named, seen, work)
                continue
            try:
                event = await _apply(work, sub, codes_of[index], digest)
            except DomainError as error:
                outcomes[index] = _rejected(sub, error)
                continue
            known[sub.client_event_id] = {
                "payload_digest": digest,
                "id": event.id,
                "state_after": event.state_after,
                "batch__code": code_by_id(work, event.batch_id),
                "organization_id": work.principal.organization_id,
            }
            batch = work.batches[known[sub.client_event_id]["batch__code"]]
            as_left.append((copy.copy(batch), batch))
            outcomes[index] = Recorded(
                EntryResult(
                    client_event_id=sub.client_event_id,
                    status="applied",
                    batch_code=batch.code,
                    event_id=event.id,
                    state=_state_shown(work, sub, batch, event.state_after),
                ),
                batch=as_left[-1][0],
            )
            await writes.send_part()
        await writes.finish()
    except BaseException as error:
        await writes.abandon(error)
        raise
    for left, batch in as_left:  # what the write gave every batch it wrote
        left.identifier, left.last_hash = batch.identifier, batch.last_hash
        left.updated_at = batch.updated_at
    applied = {e.client_event_id for e in work.new_events}
    await alerts.flag_clock_anomalies(
        anomalies=[a for a in work.clock_anomalies if a.client_event_id in applied], now=work.now
    )
    return [outcome for outcome in outcomes if outcome is not None]


PART_EVENTS = 100
"""A call (a sync) sends a part each time it has decided this many more events (remainders and
aggregations count theirs), and decides on while the database writes it, on another core,
until a handler's own read waits for the part."""


class _Writes:
    """The rows a call decided, on their way to the database: in parts while it decides, the
    rest at the end, then the roll-up facts of them all (which read those rows). A part holds
    the events decided since the last one, the batches they made and changed (every handler
    that changes a batch gives it an event), the labels issued and bound; the batches' rows as
    they stand when the part is taken, so a later part writes a batch's later state. Parts go
    out in order on the call's connection, one at a time; a part is never cancelled midway (a
    cancelled call waits for it, see `abandon`)."""

    def __init__(self, work: Work, submissions: list[EventCommand]) -> None:
        self.work = work
        # A batch the call makes may take an HJ 1276 identifier, numbered at the end in
        # prefix order (`identifiers.number`) before the call's client ids are claimed, as
        # every call does, so that no two calls wait for each other's counters and ids.
        self.in_parts = not any(_may_number(sub) for sub in submissions)
        # How many of the work's events, labels, bound labels and new batches are taken.
        self.events = self.labels = self.bound = self.batches = 0
        self.sent: asyncio.Task[None] | None = None
        """The part being written."""

    async def send_part(self) -> None:
        """Send what was decided since the last part once it is a part's worth."""
        if not self.in_parts or len(self.work.new_events) - self.events < PART_EVENTS:
            return
        rows = self._take(self._made())
        if self.sent is not None:  # most often written by now: a part writes faster
            await asyncio.shield(self.sent)
        self.sent = asyncio.ensure_future(repository.write(rows))
        await asyncio.sleep(0)  # let it go out before the next events are decided

    async def finish(self) -> None:
        """The rest, after the part being written; then the roll-up facts."""
        work = self.work
        if self.sent is not None:
            await asyncio.shield(self.sent)
        if len(work.new_events) > self.events:
            made = self._made()
            await identifiers.number(made)
            pin_identifiers(work, made)
            await repository.write(self._take(made))
        if work.new_events:
            await rollups.apply(
                batch_ids=[e.batch_id for e in work.new_events if e.event_type in FACT_EVENTS]
                + sorted(work.refresh),
                timezone=work.timezone,
            )

    async def abandon(self, error: BaseException) -> None:
        """When the call fails with `error`: wait for the part still being written, so that
        its transaction rolls back on an idle connection, even if cancelled meanwhile. When
        `error` is only the aborted transaction a failed part left behind, the part's own
        error is raised instead; a part that failed beside another error is logged."""
        sent, cancelled = self.sent, False
        if sent is None:
            return
        while not sent.done():
            try:
                await asyncio.wait([sent])
            except asyncio.CancelledError:
                cancelled = True
        failed = None if sent.cancelled() else sent.exception()
        if failed is not None and failed is not error:
            if isinstance(error, TransactionManagementError) and not cancelled:
                raise failed
            log.error("a part of a failing recording call failed too", exc_info=failed)
        if cancelled:
            raise asyncio.CancelledError

    def _made(self) -> list[Batch]:
        """The batches made since the last part."""
        return list(self.work.new_batches.values())[self.batches :]

    def _take(self, made: list[Batch]) -> repository.Part:
        work = self.work
        events = work.new_events[self.events :]
        fresh = {batch.id for batch in made}
        changed = [
            work.batches[code_by_id(work, batch_id)]
            for batch_id in dict.fromkeys(e.batch_id for e in events)
            if batch_id not in fresh
        ]
        for batch in (*made, *changed):
            batch.updated_at = work.now
        rows = repository.part(
            labels=work.new_labels[self.labels :],
            bound_labels=work.bound_labels[self.bound :],
            new_batches=made,
            changed_batches=changed,
            events=events,
            bound_at=work.now,
        )
        self.events, self.labels = len(work.new_events), len(work.new_labels)
        self.bound, self.batches = len(work.bound_labels), len(work.new_batches)
        return rows


def _may_number(sub: EventCommand) -> bool:
    """Whether the event may make a batch that takes an HJ 1276 identifier: a tagging with a
    waste code, or a step that may split off a refused part (`remainders.split`): a partial
    acceptance, or a correction (of a receipt into one)."""
    if sub.event_type == EventType.tagged:
        return bool(sub.waste_code)
    return sub.event_type == EventType.corrected or (
        sub.event_type == EventType.received and sub.outcome == Outcome.partially_accepted
    )


def _others_of(work: Work, sub: EventCommand, code: str) -> list[str]:
    """The codes of the other batches an event on `code` acts on, which `sync_order` orders it
    among: the children an aggregation takes (unreadable ones left to its handler), and the
    container an undone aggregation takes its child out of (the container's contents change,
    as they did when the child was packed)."""
    if sub.event_type == EventType.aggregated and sub.children:
        found = (work.reader.code(scanned) for scanned in sub.children)
        return [child for child in found if child]
    if sub.event_type == EventType.corrected and sub.aggregated is False:
        child = work.batches.get(code)
        container = None if child is None else work.codes_by_id.get(child.parent_id or 0)
        return [container] if container else []
    return []


def _code_of(sub: EventCommand, reader: batches.ScanReader) -> str | None:
    if sub.batch is None:
        return None
    return reader.resolve(sub.batch)


def _rejected(sub: EventCommand, error: DomainError) -> Recorded:
    return Recorded(EntryResult.refused(sub.client_event_id, error), error)


def _state_shown(work: Work, sub: EventCommand, batch: Batch | None, state: str) -> str | None:
    """The batch state an answer gives. A correction's is the batch's state when it was made,
    which its recorder may no longer see (it corrects its own record of a batch that has left
    it, docs/custody.md): such a recorder is not told it."""
    if sub.event_type == EventType.corrected and (
        batch is None or not batches.parties(work.principal, batch)
    ):
        return None
    return state


def _seen_before(sub: EventCommand, seen: dict[str, Any], work: Work) -> Recorded:
    """A resend's answer from the event recorded under its client id: that event, or a
    conflict when the content differs. An id another organization recorded under is a
    conflict that shows nothing of that organization's event."""
    if seen["organization_id"] != work.principal.organization_id:
        error = others_id()
        return Recorded(EntryResult.refused(sub.client_event_id, error, status="conflict"), error)
    if sub.same_content(seen["payload_digest"]):
        return Recorded(
            EntryResult(
                client_event_id=sub.client_event_id,
                status="duplicate",
                batch_code=seen["batch__code"],
                event_id=seen["id"],
                state=_state_shown(
                    work, sub, work.batches.get(seen["batch__code"]), seen["state_after"]
                ),
            )
        )
    error = Conflict(
        "this client_event_id was already used for an event with other content",
        field="client_event_id",
    )
    return Recorded(
        EntryResult.refused(
            sub.client_event_id,
            error,
            status="conflict",
            batch_code=seen["batch__code"],
            event_id=seen["id"],
        ),
        error,
    )


# The acting organization matters only to tagging, receiving and treating, and to a
# carrier's vehicle (wastetrack.fleet) when collecting or moving waste.
_NEEDS_OWN = {
    EventType.tagged,
    EventType.received,
    EventType.treated,
    EventType.collected,
    EventType.in_transit,
}


async def _load(
    work: Work,
    principals: list[Principal],
    submissions: list[EventCommand],
    codes_of: list[str | None],
) -> dict[uuid.UUID, dict[str, Any]]:
    """Lock every batch and label the call touches, in one order, fetch what it refers to and
    take batch ids for its taggings, in one round trip; returns the events already recorded
    under the call's client ids."""
    wanted: set[str] = {code for code in codes_of if code}
    for sub in submissions:
        for child in sub.children or []:
            code = work.reader.code(child)
            if code:
                wanted.add(code)
    # An undone packing judges the containers its batch is in, up to the outermost: they are
    # locked with the call's own batches, in one id order, so that two calls never wait on
    # each other (`work.locked_container` finds them held).
    undoing = [
        code
        for sub, code in zip(submissions, codes_of, strict=True)
        if code and sub.event_type == EventType.corrected and sub.aggregated is False
    ]
    org_ids = {
        principal.organization_id
        for principal, sub in zip(principals, submissions, strict=True)
        if sub.event_type in _NEEDS_OWN
    }
    for sub in submissions:
        org_ids.update(
            i
            for i in (
                sub.to_organization_id,
                sub.destination_organization_id,
                sub.producer_organization_id,
                sub.carrier_organization_id,
            )
            if i
        )
    loaded = await repository.load(
        codes=wanted,
        undoing=undoing,
        organization_ids=org_ids,
        site_ids={sub.origin_site_id for sub in submissions if sub.origin_site_id},
        new_batches=sum(sub.event_type == EventType.tagged for sub in submissions),
        # read after the locks: a resend that waited for its original's lock sees it committed
        client_event_ids=[sub.client_event_id for sub in submissions],
    )
    for batch in loaded.batches:
        remember(work, batch)
    work.labels = {label.code: label for label in loaded.labels}
    work.organizations = {org.id: org for org in loaded.organizations}
    work.sites = loaded.sites
    work.batch_ids = loaded.batch_ids
    work.photos = await evidence.held_photos(
        {sub.photo_sha256 for sub in submissions if sub.photo_sha256},
        {principal.organization_id for principal in principals},
    )
    return loaded.known


_HANDLERS = {**transitions.HANDLERS, EventType.corrected: corrections.corrected}


async def _apply(
    work: Work, sub: EventCommand, code: str | None, digest: str
) -> repository.NewEvent:
    if sub.event_type == EventType.tagged:
        return await tag(work, sub, code, digest)
    batch = work.batches.get(code or "")
    if batch is None:
        raise NotFound(batches.NOT_FOUND, field="batch")
    relation = batches.parties(work.principal, batch)
    if sub.event_type == EventType.corrected and await corrections.recorded_by(
        work, sub, batch, work.principal.organization_id
    ):
        relation.add(Party.recorder)
    if not relation:
        raise NotFound(batches.NOT_FOUND, field="batch")
    check_allowed(work.principal, batch, relation, sub.event_type)
    check_common(work, sub, batch.tagged_at, batch)
    handler = _HANDLERS[sub.event_type]
    return await handler(work, sub, batch, digest)
