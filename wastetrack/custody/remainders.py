"""The remainder of a partial acceptance (docs/metrics.md §3): the refused part leaves the
receipt as a batch of its own, in the original's cohort, rejected and back with whoever
delivered it, so it follows its own fate (returned, re-delivered) and is counted once."""

import uuid
from collections.abc import Awaitable, Callable, Collection
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from wastetrack.batches import identifiers
from wastetrack.batches.models import Batch, Unit
from wastetrack.catalog.service import CatalogSnapshot
from wastetrack.core.errors import Conflict, RuleViolation, ValidationFailed
from wastetrack.custody import chain, repository
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import (
    EventType,
    Outcome,
    State,
)
from wastetrack.custody.work import Work, children, issue_label, new_batch, new_event, remember

# The remainder of a partial acceptance (docs/metrics.md §3): the refused part leaves the
# receipt as a batch of its own, in the original's cohort, rejected and back with whoever
# delivered it, so it follows its own fate (returned, re-delivered) and is counted once.
MILLI = Decimal("0.001")


def known_kg(catalog: CatalogSnapshot, batch: Batch) -> Decimal | None:
    """The batch's declared mass: the declared kg, or for a batch counted in units or m³ the
    catalog's estimate, as the batch facts make it before anything is weighed; None when the
    catalog has none for its category (most hazardous waste)."""
    if batch.unit == Unit.KG:
        return Decimal(batch.quantity)
    return catalog.estimated_kg(batch.category_id, batch.unit, batch.quantity)


async def estimated_basis(work: Work | None, batch: Batch) -> bool:
    """Whether the batch's declared mass is the catalog's estimate, no declaration in kg (a
    refused part set against it is one too; a weighing is never off it): the batch is counted
    in items or m³, or is itself a remainder sized against an estimate. Outside a recording
    (`work` None: a manifest's decision judging its weighings) the tagging is the stored one."""
    if batch.unit != Unit.KG:
        return True
    if batch.split_from_id is None:
        return False
    return bool(((await _tagging(work, batch)).details or {}).get("estimated"))


def refused_kg(
    work: Work,
    batch: Batch,
    *,
    outcome: Outcome,
    weight_kg: Decimal | str | None,
    stated: Decimal | None,
    field: str | None = "refused_kg",
) -> Decimal | None:
    """What a receipt refuses in part: as stated, else the declared mass minus the accepted
    weight; None when nothing is left over. A part stated as heavy as a declaration in kg is
    no part: refusing it all is a rejection. Of a batch whose mass is not known (items of a
    category without a unit mass) only a stated part can be told from the rest: without one,
    the receipt is refused, naming `field` (`refused_kg` on a receipt, `outcome` on a
    correction into a partial acceptance), else the part would be refused and counted nowhere;
    so is a stated part as heavy as the declaration (a correction carries no part: it names
    its `outcome`);
    a correction that leaves a partial receipt recorded before this rule partial (`field`
    None) refuses no part, as it did. A partial acceptance weighed at 0 kg accepts nothing: it
    is refused naming `weight_kg` (a rejection says so), whether received or corrected so;
    weighed at or above the declaration with no part stated it refuses nothing, and is refused
    naming `weight_kg` too (an acceptance says so), else the log would keep a receipt that
    says part was refused of a batch received whole."""
    if outcome != Outcome.partially_accepted:
        return None
    if weight_kg is not None and Decimal(weight_kg) == 0:
        raise ValidationFailed(
            "a partial acceptance weighed at 0 kg accepts nothing: reject the batch instead",
            field="weight_kg",
        )
    if stated is not None and batch.unit == Unit.KG and stated >= batch.quantity:
        raise ValidationFailed(
            f"refused_kg {stated} is not a part of the {batch.quantity} kg declared:"
            " reject the batch instead",
            field=field or "outcome",
        )
    if stated is not None:
        return stated.quantize(MILLI, ROUND_HALF_UP) if stated > 0 else None
    declared = known_kg(work.catalog, batch)
    if declared is None and field is None:
        return None
    if declared is None:
        instead = (
            "state the refused part (refused_kg)"
            if field == "refused_kg"
            else "a correction states no refused part"
        )
        raise ValidationFailed(
            f"{batch.code} declares no known mass ({batch.quantity} {batch.unit}, no catalog"
            f" estimate), so no part of it can be told from the rest: {instead}; accept or"
            " reject the batch whole",
            field=field,
        )
    refused = part_refused(declared, weight_kg)
    if refused is None:
        instead = {
            "refused_kg": "accept the batch, or state the part refused (refused_kg)",
            "outcome": "leave the outcome as it is, or correct weight_kg to what was accepted",
        }.get(field or "", "correct the outcome to accepted")
        raise ValidationFailed(
            f"{batch.code} weighed at {weight_kg} kg of the {declared} kg declared leaves no"
            f" part refused: a partial acceptance of it refuses nothing; {instead}",
            field="weight_kg",
        )
    return refused


def part_refused(declared: Decimal, weight_kg: Decimal | str | None) -> Decimal | None:
    """What a receipt weighed at `weight_kg` refuses of a batch that declared `declared` kg:
    the difference, to the gram; None when nothing is left over (weighed at or above the
    declaration, or less than half a gram under it). The one rule for whether a partial
    acceptance refuses a part of a batch: custody splits it off by it, and a manifest's
    decision judges its batches' weights by it before recording anything."""
    refused = (declared - Decimal(weight_kg or 0)).quantize(MILLI, ROUND_HALF_UP)
    return refused if refused > 0 else None


async def deliverer(work: Work, batch: Batch, receiver_id: int) -> int:
    """Who brought the batch to the receiver, and so takes the refused part back: its holder;
    for a batch the receiver holds already, whoever handed it over to the receiver last (a
    clinic that brought its own bag, a facility that passed on what it had accepted); else,
    for one the receiver took itself, its carrier, else its producer."""
    if batch.holder_id != receiver_id:
        return batch.holder_id
    handovers = [
        e
        for e in work.new_events
        if e.batch_id == batch.id
        and e.event_type == EventType.handed_over.value
        and e.to_organization_id == receiver_id
    ]
    handover = (
        max(handovers, key=lambda e: e.seq)
        if handovers
        else await CustodyEvent.filter(
            batch_id=batch.id,
            event_type=EventType.handed_over.value,
            to_organization_id=receiver_id,
        )
        .order_by("-seq")
        .first()
    )
    giver = handover.organization_id if handover is not None else None
    for org_id in (giver, batch.carrier_id):
        if org_id is not None and org_id != receiver_id:
            return org_id
    return batch.producer_id


async def split(
    work: Work,
    batch: Batch,
    *,
    refused_kg: Decimal,
    stated: bool,
    holder_id: int,
    sub: EventCommand,
    reason: str | None,
    receipt: uuid.UUID,
) -> Batch:
    """A new batch for the refused part: its own code, the original's tagging time, refused by
    the receiver (a tagging and a rejection in its chain) and held by the deliverer; an HJ 1276
    identifier of its own when the original has one, numbered under the original's unit,
    waste code and day (`hj1276_prefix`) when the call writes. Its kg is
    an estimate when it was not stated and the declared mass it is set against is one. Its
    tagging names the receipt that refused it (`receipt`: that event's id), whose corrections
    alone resize or cancel it. The caller has checked `check_splittable` before changing
    anything."""
    estimated = not stated and await estimated_basis(work, batch)
    (batch_id,) = await repository.allocate_batch_ids(1)
    remainder = new_batch(
        work,
        id=batch_id,
        code=issue_label(work, batch.stream_id),
        stream_id=batch.stream_id,
        category_id=batch.category_id,
        waste_code=batch.waste_code,
        hazard=batch.hazard,
        producer_id=batch.producer_id,
        origin_site_id=batch.origin_site_id,
        region_path=batch.region_path,
        quantity=refused_kg,
        unit=Unit.KG,
        holder_id=holder_id,
        carrier_id=batch.carrier_id,
        destination_id=None,
        split_from_id=batch.id,
        tagged_at=batch.tagged_at,
        identifier=hj1276_prefix(batch),
    )
    new_event(
        work,
        remainder,
        None,
        event_type=EventType.tagged,
        state=State.tagged.value,
        digest=None,
        # Tagged when the original was: the remainder is the same waste, in the same cohort.
        device_time=batch.tagged_at,
        related_batch_id=batch.id,
        details={
            "split_from": batch.code,
            "receipt": str(receipt),
            "reason": reason,
            "stream": batch.stream_id,
            "category": batch.category_id,
            "quantity": str(refused_kg),
            "unit": Unit.KG.value,
            "estimated": estimated,
            "waste_code": batch.waste_code,
            **chain.fixed_at_tagging(remainder),
        },
    )
    new_event(
        work,
        remainder,
        None,
        event_type=EventType.received,
        state=State.rejected.value,
        digest=None,
        device_time=sub.device_time,
        outcome=Outcome.rejected.value,
        reason=reason,
        details={"split_from": batch.code},
    )
    return remainder


def hj1276_prefix(batch: Batch) -> str | None:
    """What a remainder of `batch` stores until its call numbers it: the prefix of the
    original's HJ 1276 identifier (unit, waste code, day), or None when it has none. The
    refused part is a batch of its own, with a label of its own, and the identifier names one
    batch."""
    if batch.identifier is None:
        return None
    return batch.identifier[: identifiers.PREFIX_LENGTH]


async def check_splittable(work: Work, batch: Batch) -> None:
    """A refused part is split from a single batch, once. A load is accepted or rejected whole:
    its mass is its bags', so a part refused from it would be counted beside them, under no
    bag. A batch with a remainder is not partially accepted again: the second refusal would be
    set against the whole declared mass, counting the first refused part twice. A remainder
    needs an HJ 1276 number left under its prefix (`identifiers.check_room`)."""
    if await children(work, [batch.id]):  # a load emptied earlier in the call is none
        raise RuleViolation(
            "a load is accepted or rejected whole; partial acceptance is for a single batch",
            field="outcome",
        )
    earlier = await _live_remainder(work, batch)
    if earlier is not None:
        raise RuleViolation(
            f"this batch was partially accepted before (remainder {earlier.code});"
            " a later receipt accepts or rejects it whole",
            field="outcome",
        )
    prefix = hj1276_prefix(batch)
    if prefix is not None:
        try:
            await identifiers.check_room(prefix, work.identifier_numbers)
        except Conflict as full:
            raise Conflict(
                f"the refused part would be a batch of its own, numbered under {batch.code}'s"
                f" HJ 1276 unit, waste code and day, and that day has no number left"
                f" ({full.detail}): accept or reject the batch whole",
                field="outcome",
            ) from None


async def follow_tagging(
    work: Work, sub: EventCommand, batch: Batch, fields: Collection[str]
) -> None:
    """A remainder is its original's waste, in its cohort: a corrected tagging time or
    category (`fields`: those of `event_time` and `category` the correction changed) carries
    over to the remainders split from the batch (and to theirs), as corrections in their
    chains. Only what was corrected: a remainder's own category (one in kg may take its
    own) stays when only the time was. Every remainder down the line is reached, whether or
    not the one between already held what was corrected."""
    found = {b.code for b in work.batches.values() if b.split_from_id == batch.id}
    found |= {
        str(code)
        for code in await Batch.filter(split_from_id=batch.id).values_list("code", flat=True)
    }
    missing = found - work.batches.keys()
    if missing:
        for locked in await repository.lock_batches(missing):
            remember(work, locked)
    for code in sorted(found):
        remainder = work.batches[code]
        corrected: dict[str, str] = {}
        if "event_time" in fields and remainder.tagged_at != batch.tagged_at:
            corrected["event_time"] = batch.tagged_at.isoformat()
        if "category" in fields and remainder.category_id != batch.category_id:
            corrected["category"] = batch.category_id
        if corrected:  # one that holds them already is left so; its own are reached still
            await _correct_remainder_tagging(work, sub, batch, remainder, corrected)
        await follow_tagging(work, sub, remainder, fields)


async def _correct_remainder_tagging(
    work: Work, sub: EventCommand, batch: Batch, remainder: Batch, corrected: dict[str, str]
) -> None:
    """The correction in the remainder's chain that carries its original's over."""
    tagging = await _tagging(work, remainder)
    new_event(
        work,
        remainder,
        None,
        event_type=EventType.corrected,
        state=remainder.state,
        digest=None,
        device_time=sub.device_time,
        corrects_id=tagging.id,
        reason=f"the tagging of {batch.code} was corrected",
        details={
            "split_from": batch.code,
            "corrected_fields": sorted(corrected),
            "corrected": corrected,
        },
    )
    if "event_time" in corrected:
        remainder.tagged_at = batch.tagged_at
    if "category" in corrected:
        remainder.category_id = batch.category_id


async def has_live_remainder(work: Work, batch: Batch) -> bool:
    """Whether a part of the batch was refused and split off, and that part not cancelled."""
    return await _live_remainder(work, batch) is not None


async def _live_remainders(work: Work, batch: Batch) -> list[Batch]:
    """The batch's remainders that are not cancelled, locked for this call."""
    found = {
        code
        for code, candidate in work.batches.items()
        if candidate.split_from_id == batch.id and candidate.state != State.cancelled
    }
    found |= set(
        map(
            str,
            await Batch.filter(split_from_id=batch.id)
            .exclude(state=State.cancelled.value)
            .values_list("code", flat=True),
        )
    )
    missing = found - work.batches.keys()
    if missing:
        for locked in await repository.lock_batches(missing):
            remember(work, locked)
    return [
        work.batches[code] for code in sorted(found) if work.batches[code].state != State.cancelled
    ]


async def _live_remainder(work: Work, batch: Batch) -> Batch | None:
    """A remainder of the batch that is not cancelled (a batch has one at most: it is partially
    accepted once), locked for this call."""
    live = await _live_remainders(work, batch)
    return live[0] if live else None


async def _tagging(work: Work | None, batch: Batch) -> CustodyEvent | repository.NewEvent:
    made = () if work is None else work.new_events
    return next(
        (e for e in made if e.batch_id == batch.id and e.seq == 1), None
    ) or await CustodyEvent.get(batch_id=batch.id, seq=1)


async def _corrections_of(work: Work, target: Any) -> list[CustodyEvent | repository.NewEvent]:
    """The corrections of an event so far, in their order."""
    return [
        *await CustodyEvent.filter(corrects_id=target.id).order_by("seq"),
        *(e for e in work.new_events if e.corrects_id == target.id),
    ]


async def remainder_of_receipt(work: Work, batch: Batch, receipt: Any) -> Batch | None:
    """The live remainder this receipt refused, locked for this call; never one another
    receipt of the batch made. A remainder's tagging names its receipt (`receipt`); one split
    before it did is the receipt's by the receipt's own word: the code its details, or a
    correction of it, gave as its remainder."""
    live = await _live_remainders(work, batch)
    if not live:
        return None
    named = {(receipt.details or {}).get("remainder")}
    named |= {(fix.details or {}).get("remainder") for fix in await _corrections_of(work, receipt)}
    for remainder in live:
        link = ((await _tagging(work, remainder)).details or {}).get("receipt")
        if link == str(receipt.id) or (link is None and remainder.code in named):
            return remainder
    return None


async def corrected_value(work: Work, target: Any, name: str, column: str) -> Any:
    """A field of an event as its corrections so far leave it."""
    value = getattr(target, column)
    for fix in await _corrections_of(work, target):
        corrected = (fix.details or {}).get("corrected", {})
        if name in corrected:
            value = corrected[name]
    return value


async def follow_remainder(
    work: Work,
    sub: EventCommand,
    batch: Batch,
    target: Any,
    changed: dict[str, Any],
    *,
    deliverer: int | None,
    latest: bool,
) -> Callable[[], Awaitable[str | None]]:
    """The one rule for correcting a receipt's outcome or weight: the remainder that receipt
    refused (`remainder_of_receipt`, never another receipt's) follows (made, resized or
    cancelled) while it still lies where the split left it; once anyone has recorded a step on
    it, a correction that would change it is refused (one that leaves it as it is stands). A
    part is made or resized only while the receipt is the batch's latest receipt or treatment
    (`latest`): a later one weighed the batch again, and its mass is that weighing's, so a part
    refused against the declaration at the earlier receipt would be counted beside it. A new
    remainder goes back to whoever delivered the batch (None: not known, a receipt recorded
    before receipts kept it and followed by other steps; then none is made). Checks now,
    before the correction changes anything, and returns the step that applies it (which gives
    the remainder's code)."""
    was = Outcome(await corrected_value(work, target, "outcome", "outcome"))
    outcome = Outcome(changed.get("outcome") or was)
    weight = changed.get("weight_kg")
    if weight is None:
        weight = await corrected_value(work, target, "weight_kg", "weight_kg")
    details = target.details or {}
    stated = Decimal(details["refused_kg"]) if details.get("refused_basis") == "stated" else None
    field = "outcome" if "outcome" in changed else "weight_kg"
    refused = refused_kg(
        work,
        batch,
        outcome=outcome,
        weight_kg=weight,
        stated=stated,
        # Into a partial acceptance names the outcome; one left partial (a form sends every
        # field again) refuses no part it did not before.
        field="outcome" if outcome != was else None,
    )
    remainder = await remainder_of_receipt(work, batch, target)
    reason = f"the partial acceptance of {batch.code} was corrected"
    sized = Decimal(remainder.quantity) if remainder is not None else None
    if refused is not None and refused != sized and not latest:
        raise RuleViolation(
            f"this correction would {'resize' if remainder is not None else 'split off'} a"
            " refused part, but a later receipt or treatment weighed the batch since: its mass"
            " is that weighing's, and the part would be counted beside it",
            field=field,
        )

    async def make() -> str | None:
        if refused is None:
            return None
        assert deliverer is not None  # checked below, before anything changes
        made = await split(
            work,
            batch,
            refused_kg=refused,
            stated=stated is not None,
            holder_id=deliverer,
            sub=sub,
            reason=sub.reason or target.reason,
            receipt=target.id,
        )
        return made.code

    if remainder is None:
        if refused is not None:
            if deliverer is None:
                raise RuleViolation(
                    "this correction would split off a refused part, but the receipt does not"
                    " say who delivered the batch and later steps follow it",
                    field=field,
                )
            await check_splittable(work, batch)
        return make
    live = remainder
    if refused == Decimal(live.quantity):

        async def keep() -> str | None:
            return live.code

        return keep
    own: list[CustodyEvent | repository.NewEvent] = [
        *await CustodyEvent.filter(batch_id=live.id).order_by("seq"),
        *(e for e in work.new_events if e.batch_id == live.id),
    ]
    if any("split_from" not in (e.details or {}) for e in own):
        raise RuleViolation(
            f"the refused part left as batch {live.code}, on which steps have been recorded"
            " since: this correction would change it; correct that batch instead",
            field=field,
        )
    marker = {"split_from": batch.code}

    async def follow() -> str | None:
        if refused is None:
            new_event(
                work,
                live,
                None,
                event_type=EventType.cancelled,
                state=State.cancelled.value,
                digest=None,
                device_time=sub.device_time,
                reason=reason,
                details=marker,
            )
            return None
        new_event(
            work,
            live,
            None,
            event_type=EventType.corrected,
            state=live.state,
            digest=None,
            device_time=sub.device_time,
            corrects_id=own[0].id,
            reason=reason,
            details={
                **marker,
                "corrected_fields": ["quantity"],
                "corrected": {"quantity": str(refused)},
            },
        )
        live.quantity = refused
        return live.code

    return follow
