"""Corrections: what a correction may change, by the type of the event it corrects, and how a
corrected tagging, receipt or treatment carries over to the batch (docs/metrics.md §2)."""

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from tortoise import connections

from wastetrack.batches.models import Batch, Label, Unit
from wastetrack.batches.tagging import check_quantity, flag_before_printing
from wastetrack.catalog import service as catalog
from wastetrack.catalog.service import FINAL_MODES
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import (
    Forbidden,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.reported import check_reported
from wastetrack.core.timefmt import local_limit
from wastetrack.custody import aggregations, remainders, repository, transitions
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import (
    CORRECTABLE_ON_ANY,
    REFUSAL_NEEDS_REASON,
    REFUSING,
    SPECS,
    EventType,
    Outcome,
    Rollup,
    State,
    events_counted,
    may_correct,
)
from wastetrack.custody.work import Work, locked_container, new_event
from wastetrack.manifests import quantity as manifest_quantity
from wastetrack.manifests.models import ManifestRevision
from wastetrack.manifests.queries import deciding_manifest, open_manifest_of
from wastetrack.ports import lines as delivery_lines
from wastetrack.registry import access

# What a correction may change, by the type of the event it corrects (the spec's `correctable`,
# docs/metrics.md §2); position, photo, reason and note may be corrected on any event.
CORRECTABLE: dict[str, tuple[str, ...]] = {
    event: spec.correctable for event, spec in SPECS.items() if spec.correctable
}
_ANY_EVENT = CORRECTABLE_ON_ANY
_CORRECTION_FIELDS = (*dict.fromkeys(f for fs in CORRECTABLE.values() for f in fs), *_ANY_EVENT)
# What a transfer manifest's decision states of the receipts it records: its decision, the
# quantity received and the reason.
_DECIDED_ON_MANIFEST = ("outcome", "weight_kg", "reason")


async def recorded_by(work: Work, sub: EventCommand, batch: Batch, organization_id: int) -> bool:
    """Whether the organization recorded the event a correction applies to (the original a
    correction of a correction names too; one written earlier in this call too)."""
    try:
        target = await _correction_target(work, sub, batch)
    except ValidationFailed:
        return False  # no event of this batch: the batch stays unknown to a stranger
    return bool(target.organization_id == organization_id)


async def _correction_target(work: Work, sub: EventCommand, batch: Batch) -> Any:
    """The event a correction applies to: a correction of a correction names the same original
    event, so per field the latest correction wins."""
    target: CustodyEvent | repository.NewEvent | None = None
    wanted = sub.corrects
    while True:
        target = next(
            (e for e in work.new_events if e.id == wanted and e.batch_id == batch.id), None
        ) or await CustodyEvent.get_or_none(id=wanted, batch_id=batch.id)
        if target is None:
            raise ValidationFailed("corrects must name an event of this batch", field="corrects")
        if target.event_type != EventType.corrected:
            return target
        wanted = target.corrects_id


def _steps_in_call(work: Work, batch: Batch) -> tuple[list[repository.NewEvent], list[UUID]]:
    """What this call, not written yet, changes in the batch's steps, as `aggregations.is_step`
    reads the written log: the steps it records (no correction, no scan a correction of it
    undid), and the scans its corrections undid (written before, or in it) — the written log's
    readers leave those out too. A correction keeps `aggregated` as text ("false")."""
    mine = [e for e in work.new_events if e.batch_id == batch.id]
    undone = [
        e.corrects_id
        for e in mine
        if e.event_type == EventType.corrected
        and e.corrects_id is not None
        and (e.details.get("corrected") or {}).get("aggregated") == "false"
    ]
    steps = [e for e in mine if e.event_type != EventType.corrected and e.id not in undone]
    return steps, undone


# SQL over the custody_event row e: a step, and none a correction of this call undid (its
# parameter: their ids, `_steps_in_call`).
def _written_step(undone_parameter: int) -> str:
    return f"{aggregations.is_step('e')} AND NOT e.id = ANY(${undone_parameter}::uuid[])"


async def _is_latest_step(
    work: Work, batch: Batch, target: Any, *, among: tuple[EventType, ...] | None = None
) -> bool:
    """Whether no step follows the event (its state is the batch's): corrections and undone
    aggregations are no steps (`aggregations.is_step`); `among`: no step of these types (the
    batch's latest receipt or treatment)."""
    steps, undone = _steps_in_call(work, batch)
    if any(e.seq > target.seq and (among is None or e.event_type in among) for e in steps):
        return False
    types = [e.value for e in among] if among is not None else None
    (row,) = await connections.get("default").execute_query_dict(
        "SELECT EXISTS (SELECT 1 FROM custody_event e WHERE e.batch_id = $1 AND e.seq > $2"
        f" AND {_written_step(4)}"
        " AND ($3::text[] IS NULL OR e.event_type = ANY($3::text[]))) AS later",
        [batch.id, target.seq, types, undone],
    )
    return not row["later"]


# The steps that decide a batch's fate, and weigh it (docs/metrics.md §3-4).
_FATE_STEPS = events_counted(Rollup.fate)


async def corrected(
    work: Work, sub: EventCommand, batch: Batch, digest: str
) -> repository.NewEvent:
    target = await _correction_target(work, sub, batch)
    principal = work.principal
    if not may_correct(
        role=principal.role,
        organization_id=principal.organization_id,
        recorded_by=target.organization_id,
    ):
        raise Forbidden(
            "only the recording organization or a manager may correct an event", field="corrects"
        )
    allowed = CORRECTABLE.get(target.event_type, ())
    changed = {
        name: getattr(sub, name) for name in _CORRECTION_FIELDS if getattr(sub, name) is not None
    }
    for name in changed:
        if name not in allowed and name not in _ANY_EVENT:
            raise ValidationFailed(
                f"{name} cannot be corrected on a {target.event_type} event"
                f" (correctable there: {', '.join(allowed + _ANY_EVENT)})",
                field=name,
            )
    if not changed and not sub.note:
        raise ValidationFailed(
            "a correction must change a field of the event it corrects, or add a note",
            field="corrects",
        )
    if target.event_type == EventType.received:
        _check_not_the_parts_refusal(batch, target, changed)
        await _check_not_decided_on_manifest(work, batch, target, changed)
        if changed.keys() & {"outcome", "reason"}:
            await _check_refusal_reasoned(work, target, changed)
    state = batch.state
    follow = None
    deliverer: int | None = None
    if target.event_type == EventType.received and changed.keys() & {"outcome", "weight_kg"}:
        deliverer = (target.details or {}).get("delivered_by")
        if deliverer is None and await _is_latest_step(work, batch, target):
            # A receipt recorded before receipts kept it: the batch is still as delivered.
            deliverer = await remainders.deliverer(work, batch, target.organization_id)
        follow = await remainders.follow_remainder(
            work,
            sub,
            batch,
            target,
            changed,
            deliverer=deliverer,
            latest=await _is_latest_step(work, batch, target, among=_FATE_STEPS),
        )
    batch_state_before = batch.state
    if target.event_type == EventType.tagged:
        await _check_not_resized(work, batch, changed)
        before = {"event_time": batch.tagged_at, "category": batch.category_id}
        await _correct_tagging(work, batch, changed, tagger=target.organization_id)
        after = {"event_time": batch.tagged_at, "category": batch.category_id}
        if before["event_time"] != after["event_time"]:
            label = await Label.get_or_none(code=batch.code)
            if label is not None:
                flag_before_printing(work, sub, batch, label)
        # What the correction changed, not what it restated (a form sends every field again).
        if followed := {name for name in before if before[name] != after[name]}:
            await remainders.follow_tagging(work, sub, batch, followed)
    returned: dict[str, int] = {}
    if target.event_type != EventType.tagged and ("outcome" in changed or "method" in changed):
        state = await _corrected_state(work, sub, batch, target, changed, deliverer=deliverer)
        if target.event_type == EventType.received and state != batch_state_before:
            if state == State.rejected:
                # Whom the rejection gave the batch back to, as a receipt's details say it.
                returned = {"delivered_by": batch.holder_id}
    undone: dict[str, str] = {}
    if "aggregated" in changed:
        state, container = await _undo_aggregation(work, batch, target, changed["aggregated"])
        undone = {"out_of": container}
    remainder = await follow() if follow is not None else None
    follows = {"remainder": remainder} if remainder else {}
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.corrected,
        state=state,
        digest=digest,
        corrects_id=target.id,
        reason=sub.reason,
        details={
            "corrected_fields": sorted(changed),
            "corrected": {name: _text(value) for name, value in sorted(changed.items())},
            **follows,
            **returned,
            **undone,
        },
    )


def _text(value: Any) -> str:
    """A corrected value as the correction's details keep it (a flag as JSON spells it)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _undo_aggregation(work: Work, batch: Batch, target: Any, value: bool) -> tuple[str, str]:
    """`aggregated: false` on a child's own `aggregated` event: the batch was never in that
    container. It leaves the container and is again in the state it was in just before the
    aggregation (the state the event before it left, after its corrections), with whoever held
    it then (an aggregation moves no custody); its fate is its own again, and the container's
    facts are recomputed (its contents changed). The container keeps its history, treated or
    not. Returns the batch's state and the container's code."""
    if value:
        raise ValidationFailed(
            "aggregated is corrected only to false, undoing the aggregation: a batch goes into"
            " a container by an aggregated event, never by a correction",
            field="aggregated",
        )
    container_id = target.related_batch_id
    if container_id is None:
        raise ValidationFailed(
            "an aggregation is undone one batch at a time: correct the aggregated event of the"
            " batch taken out, on that batch, not the container's",
            field="aggregated",
        )
    held_by = await locked_container(work, container_id)
    container = held_by.code
    await transitions.refuse_if_listed(work, held_by, EventType.aggregated, field="aggregated")
    undone = await _aggregation_undone(work, batch, target)
    later = not await _is_latest_step(work, batch, target)
    if undone or later or batch.parent_id != container_id:
        since = (
            " and the batch has been aggregated again or has later steps of its own since"
            if later
            else ""
        )
        raise RuleViolation(
            f"this batch's aggregation into {container} was already undone{since}"
            if undone
            else f"the batch has later steps than its aggregation into {container}: it is no"
            " longer there to take out",
            field="aggregated",
        )
    before = await _state_before(work, batch, target)
    batch.parent_id = None
    # The scan was no step: the bag's idle and in-transit clocks go back to its latest step.
    batch.last_device_time = await _latest_step_time(work, batch, before=target.seq)
    work.refresh.add(container_id)
    return before, container


async def _latest_step_time(
    work: Work, batch: Batch, *, before: int, after: int = 0
) -> datetime | None:
    """The latest device time of the batch's steps between its events `after` and `before`, as
    `new_event` keeps `last_device_time`: corrections and undone aggregations are no steps
    (`aggregations.is_step`). Steps of this call not written yet count too."""
    steps, undone = _steps_in_call(work, batch)
    (row,) = await connections.get("default").execute_query_dict(
        "SELECT max(e.device_time) AS at FROM custody_event e"
        f" WHERE e.batch_id = $1 AND e.seq < $2 AND e.seq > $4 AND {_written_step(3)}",
        [batch.id, before, undone, after],
    )
    pending = [e.device_time for e in steps if after < e.seq < before]
    times = [t for t in (row["at"], *pending) if t is not None]
    return max(times, default=None)


async def _aggregation_undone(work: Work, batch: Batch, target: Any) -> bool:
    """Whether a correction already undid this aggregation (every correction names the
    original event, a correction of a correction too)."""
    corrections: list[Any] = [
        e for e in work.new_events if e.batch_id == batch.id and e.corrects_id == target.id
    ]
    corrections += await CustodyEvent.filter(batch_id=batch.id, corrects_id=target.id)
    return any("aggregated" in ((e.details or {}).get("corrected") or {}) for e in corrections)


async def _state_before(work: Work, batch: Batch, target: Any) -> str:
    """The batch's state just before the event: the one its chain's previous event (a
    correction records the state it left the batch in) left it in."""
    previous = next(
        (e for e in work.new_events if e.batch_id == batch.id and e.seq == target.seq - 1), None
    ) or await CustodyEvent.get(batch_id=batch.id, seq=target.seq - 1)
    return str(previous.state_after)


def _check_not_the_parts_refusal(
    batch: Batch, target: CustodyEvent, changed: dict[str, Any]
) -> None:
    """A remainder's own rejection is the refusal its original's receipt made of the part (its
    details name the batch it was split from): its outcome and weight are that receipt's, and
    are corrected there (which takes the part in, resizes it or cancels it). Corrected on the
    part, the log would say both that the receipt refused it and that it was accepted, and
    its cohort would weigh it beside the accepted rest."""
    split_from = (target.details or {}).get("split_from")
    named = [name for name in ("outcome", "weight_kg") if name in changed]
    if split_from is None or batch.split_from_id is None or not named:
        return
    raise RuleViolation(
        f"this is the refusal of a part of batch {split_from} made by its receipt: correct that"
        " receipt (its outcome or weight), which takes the part in, resizes it or cancels it",
        field=named[0],
    )


async def _check_not_resized(work: Work, batch: Batch, changed: dict[str, Any]) -> None:
    """A declaration a refused part was sized against is no longer corrected: the declared
    quantity and unit, and for a batch in items or m³ the category's unit mass or density too
    (correct the receipt, which resizes the part). Nor is a remainder's own size, which is its
    original's receipt's: the refused kg, and its category when the original is in items or
    m³, whose estimate sized it; nor its tagging time, its original's (the same cohort: a
    correction of the original's carries over)."""
    if batch.split_from_id is not None:
        original = next(
            (b for b in work.batches.values() if b.id == batch.split_from_id), None
        ) or await Batch.get(id=batch.split_from_id)
        if "event_time" in changed:
            raise RuleViolation(
                f"this batch is the part a receipt refused of batch {original.code}: it was"
                f" tagged when that batch was, in the same cohort, so correct the tagging of"
                f" {original.code}, which carries over to this part",
                field="event_time",
            )
        sizing = ["quantity", "unit"] + (["category"] if original.unit != Unit.KG else [])
        resized = [name for name in sizing if name in changed]
        if resized:
            raise RuleViolation(
                f"this batch is the part a receipt refused of batch {original.code}: its size"
                " is that receipt's, so correct the receipt (its weight or outcome), which"
                " resizes this part",
                field=resized[0],
            )
    sizing = ["quantity", "unit"] + (["category"] if batch.unit != Unit.KG else [])
    resized = [name for name in sizing if name in changed]
    if resized and await remainders.has_live_remainder(work, batch):
        raise RuleViolation(
            "a receipt refused part of this batch against its declaration: correct that"
            " receipt (its weight or outcome) rather than the declaration",
            field=resized[0],
        )


async def _check_not_decided_on_manifest(
    work: Work, batch: Batch, target: Any, changed: dict[str, Any]
) -> None:
    """A receipt a manifest's decision recorded changes only with that decision, which is
    signed and locked: corrected here, it would leave the manifest, its PDF and its public page
    stating another."""
    stated = [name for name in _DECIDED_ON_MANIFEST if name in changed]
    if not stated:
        return
    manifest = await deciding_manifest(
        code=batch.code, client_event_id=target.client_event_id, secret=work.secret
    )
    if manifest is not None:
        raise RuleViolation(
            f"this receipt is the receiver's decision on transfer manifest {manifest.number},"
            f" signed and locked: its {stated[0]} is the manifest's, and a custody correction"
            " would leave the manifest stating another",
            field=stated[0],
            manifest_id=manifest.id,
        )


async def _correct_tagging(
    work: Work, batch: Batch, changed: dict[str, Any], *, tagger: int | None
) -> None:
    """The batch carries its tagging after corrections: time, quantity, unit, category. Every
    check comes before the first change: a refused correction leaves the batch as it was (other
    events of the same call, a sync's or a flush's, are written with it)."""
    tagged_at: datetime = changed.get("event_time", batch.tagged_at)
    if "event_time" in changed:
        check_reported(tagged_at, now=work.now, field="event_time")
        first = await _first_step_recorded(work, batch)
        if first is not None and tagged_at > first:
            raise ValidationFailed(
                f"event_time would put the tagging after the batch's next step was recorded"
                f" ({local_limit(first, work.timezone, earliest=False)}, city time)",
                field="event_time",
            )
        await _check_tagged_for_on(work, batch, tagger, tagged_at)
    category_id = batch.category_id
    if "category" in changed:
        category = await catalog.category_for_stream(
            stream=batch.stream_id, category=changed["category"]
        )
        if category.key != batch.category_id:
            await transitions.check_licensed_history(work, batch, category.key)
        try:
            await catalog.validate_waste_code(category=category.key, waste_code=batch.waste_code)
        except ValidationFailed as error:
            # The batch's waste code is not corrected: the category that breaks it is named.
            error.field = "category"
            error.detail = (
                f"category {category.key} does not fit the batch's waste code"
                f" {batch.waste_code}: {error.detail}"
            )
            raise
        category_id = category.key
    unit = changed.get("unit", batch.unit)
    quantity = Decimal(changed.get("quantity", batch.quantity))
    if changed.keys() & {"quantity", "unit"}:
        # The field the correction sent: a unit alone can make the kept quantity implausible.
        # A correction of neither leaves the quantity as it stands.
        check_quantity(quantity, Unit(unit), field="quantity" if "quantity" in changed else "unit")
    if "category" in changed or "unit" in changed:
        await delivery_lines.check_corrected_line(
            batch_id=batch.id,
            split_from_id=batch.split_from_id,
            category=category_id,
            unit=Unit(unit),
            field="category" if "category" in changed else "unit",
        )
    if sizing := [name for name in ("quantity", "unit", "category") if name in changed]:
        declared = copy.copy(batch)
        declared.category_id, declared.quantity, declared.unit = category_id, quantity, Unit(unit)
        await _check_manifest_quantity(work, declared, field=sizing[0])
    if "event_time" in changed:
        # The tagging (the batch's first event) is a step at its corrected time: a tagged
        # batch idles from it, as its storage limit counts from it.
        later = await _latest_step_time(work, batch, before=batch.last_seq + 1, after=1)
        batch.last_device_time = max(t for t in (tagged_at, later) if t is not None)
    batch.tagged_at = tagged_at
    batch.category_id = category_id
    batch.quantity = quantity
    batch.unit = Unit(unit)


async def _check_manifest_quantity(work: Work, declared: Batch, *, field: str) -> None:
    """A batch on a draft or open transfer manifest keeps that manifest's quantity within the
    tolerance of what its batches declare (`manifests.quantity`, the draft's and a revision's
    rule): a declaration corrected out of it would have the manifest print a quantity its
    batches do not bear out and make the receiver's honest weighing a discrepancy. A signed
    manifest's quantity is revised first: a pending revision's quantity that the corrected
    declarations bear out lets the correction through, and the revision applies once every
    party approves. A draft is not revised: it is cancelled and drafted again."""
    manifest = await open_manifest_of(declared.code, drafts=True)
    if manifest is None:
        return
    await manifest_quantity.judged_alone(manifest.id)
    manifest = await open_manifest_of(declared.code, drafts=True)  # as it stands now
    if manifest is None:
        return
    listed = [
        declared if other.id == declared.id else work.batches.get(other.code, other)
        for other in await Batch.filter(code__in=manifest.batch_codes)
    ]
    sum_kg = manifest_quantity.declared_kg(work.catalog, listed)
    tolerance = work.manifest_tolerance
    pending = await ManifestRevision.filter(manifest_id=manifest.id, state="pending")
    quantities = [Decimal(manifest.quantity_kg)] + [
        Decimal(r.changes["quantity_kg"]) for r in pending if "quantity_kg" in r.changes
    ]
    if all(manifest_quantity.off(quantity, sum_kg, tolerance) for quantity in quantities):
        then = (
            "propose a revision of its quantity_kg first, which applies once every party approves"
            if manifest.producer_signed_at is not None
            else "cancel the draft and draft it again"
        )
        raise RuleViolation(
            f"batch {declared.code} is on transfer manifest {manifest.number}, which declares"
            f" {manifest.quantity_kg} kg: corrected so, its batches would declare {sum_kg} kg,"
            f" more than {manifest_quantity.percent(tolerance)} % off; {then}",
            field=field,
            manifest_id=manifest.id,
        )


async def _check_tagged_for_on(
    work: Work, batch: Batch, tagger: int | None, tagged_at: datetime
) -> None:
    """A tagging of another organization's waste holds on its day (its service agreement, or
    label stock issued to the producer, `access.may_tag_for`): its recorder correcting its time
    is held to the same rule on the new day, or a tagging could be moved onto a day no
    agreement covered. A manager's correction (an overrider's) is not a tagging of its own."""
    principal = work.principal
    if tagger is None or principal.organization_id != tagger or batch.producer_id == tagger:
        return
    label = await Label.get_or_none(code=batch.code)
    day = local_date(tagged_at, work.timezone)
    try:
        await access.check_may_tag_for(
            principal=principal,
            producer_id=batch.producer_id,
            stream=batch.stream_id,
            label_organization_id=label.organization_id if label else None,
            on=day,
            # The tagging pinned the batch at its origin site's region (a producer's own site).
            site_region_path=batch.region_path if batch.origin_site_id is not None else None,
        )
    except Forbidden as error:
        error.field = "event_time"
        error.detail = f"on {day.isoformat()}, {error.detail}"
        raise


async def _first_step_recorded(work: Work, batch: Batch) -> datetime | None:
    """When the server first recorded a step after the tagging (`aggregations.is_step`: no
    correction, no scan undone), if it has: the tagging happened before then, whatever the
    phones' clocks said (a tagging corrected for a phone's wrong clock may move past the steps
    that phone dated, not past their recording)."""
    steps, undone = _steps_in_call(work, batch)
    if any(e.seq > 1 for e in steps):
        return work.now
    (row,) = await connections.get("default").execute_query_dict(
        "SELECT min(e.server_time) AS at FROM custody_event e WHERE e.batch_id = $1"
        f" AND e.seq > 1 AND {_written_step(2)}",
        [batch.id, undone],
    )
    first: datetime | None = row["at"]
    return first


async def _check_refusal_reasoned(work: Work, target: Any, changed: dict[str, Any]) -> None:
    """A receipt that refuses waste states why (`REFUSING`) as its corrections leave it, as
    when it was recorded: a correction may neither turn a receipt into a refusal without a
    reason nor take a refusal's reason away."""
    outcome = Outcome(
        changed.get("outcome")
        or await remainders.corrected_value(work, target, "outcome", "outcome")
    )
    reason = changed.get("reason")
    if reason is None:
        reason = await remainders.corrected_value(work, target, "reason", "reason")
    if outcome in REFUSING and not reason:
        raise ValidationFailed(REFUSAL_NEEDS_REASON, field="reason")


async def _corrected_state(
    work: Work,
    sub: EventCommand,
    batch: Batch,
    target: Any,
    changed: dict[str, Any],
    *,
    deliverer: int | None,
) -> str:
    """A corrected receipt outcome or treatment method; when it changes the state the event
    leaves (after the corrections before this one), the event must still be the batch's latest
    step."""
    if target.event_type == EventType.received:
        outcome = Outcome(changed["outcome"])
        weighed = sub.weight_kg
        if weighed is None:  # the receipt's weight, as its corrections so far leave it
            weighed = await remainders.corrected_value(work, target, "weight_kg", "weight_kg")
        if outcome != Outcome.rejected and weighed is None:
            raise ValidationFailed(
                "weight_kg is required when waste is accepted", field="weight_kg"
            )
        new_state = State.rejected if outcome == Outcome.rejected else State.received
        if outcome != Outcome.rejected:
            # A refusal corrected into taking the waste in needs the licence on the receipt's
            # day, as a receipt recorded so would have.
            try:
                await transitions.licensed_methods(
                    work,
                    batch,
                    on=local_date(target.device_time, work.timezone),
                    facility_id=target.organization_id,
                )
            except Forbidden as error:
                error.field = "outcome"
                raise
    else:
        try:
            new_state, _ = await transitions.treatment_state(
                work,
                batch,
                changed["method"],
                facility_id=target.organization_id,
                on=local_date(target.device_time, work.timezone),  # the treatment's own day
            )
        except Forbidden as error:
            error.field = "method"  # what the correction changes, whatever the licence lacks
            raise
    left = await _state_left(work, target)
    if new_state == left:
        return batch.state
    if not await _is_latest_step(work, batch, target):
        raise RuleViolation(
            f"this correction would change the batch's state from {left.value} to"
            f" {new_state.value}, but later steps follow that event: correct those first",
            field="corrects",
        )
    if target.event_type == EventType.received:
        # Custody as the receipt would have left it: with the receiver, or back with whoever
        # delivered the batch (the receipt is the latest step: the batch is still as delivered).
        transitions.take_custody(
            batch,
            EventType.received,
            actor=target.organization_id,
            outcome=outcome,
            deliverer=deliverer or await remainders.deliverer(work, batch, target.organization_id),
        )
    return new_state.value


async def _state_left(work: Work, target: Any) -> State:
    """The state a receipt or treatment leaves the batch in, after its corrections so far."""
    if target.event_type == EventType.received:
        outcome = await remainders.corrected_value(work, target, "outcome", "outcome")
        return State.rejected if outcome == Outcome.rejected else State.received
    code = await remainders.corrected_value(work, target, "method", "method_id")
    method = work.catalog.methods.get(code or "")
    if method is None:  # a method the catalog no longer lists: as the event recorded it
        return State(target.state_after)
    return State.treated if method.mode in FINAL_MODES else State.stored
