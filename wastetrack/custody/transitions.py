"""The steps of a batch's custody after its tagging: the guards of the spec (`rules.SPECS`), its
custody effect and target state (`step`), and what only some event types do besides (licences,
manifests, vehicles, remainders, aggregation)."""

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.catalog import service as catalog
from wastetrack.catalog.models import TreatmentMethod
from wastetrack.catalog.service import FINAL_MODES
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import (
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.cosign.service import producer_confirmation
from wastetrack.custody import remainders, repository, rules
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import (
    REFUSAL_NEEDS_REASON,
    REFUSING,
    SPECS,
    Carrier,
    EventType,
    Holder,
    Outcome,
    Party,
    State,
    may_correct,
)
from wastetrack.custody.work import (
    Work,
    begin,
    check_order,
    children,
    holding_organization,
    locked_container,
    new_event,
    organization,
    remember,
)
from wastetrack.fleet import plates
from wastetrack.manifests.commands import ManifestStep
from wastetrack.manifests.models import state_label
from wastetrack.manifests.queries import open_manifest_of
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind


def check_allowed(
    principal: Principal, batch: Batch, relation: set[Party], event_type: EventType
) -> None:
    """Refuse an event the spec does not allow this user on this batch (`rules.check_allowed`)."""
    rules.check_allowed(
        event_type,
        role=principal.role,
        state=batch.state,
        relation=relation,
        producer_holds=batch.holder_id == batch.producer_id,
    )


def refusal(principal: Principal, batch: Batch, event_type: EventType) -> str | None:
    """Why the spec would refuse this user the event on this batch now (`check_allowed`), or
    None where it allows it."""
    try:
        check_allowed(principal, batch, batches.parties(principal, batch), event_type)
    except DomainError as refused:
        return refused.detail
    return None


def allowed_actions(principal: Principal, batch: Batch) -> list[str]:
    """The event types this user may record next on this batch."""
    return [e.value for e in SPECS if refusal(principal, batch, e) is None]


def refuse_on_batch(
    principal: Principal, batch: Batch, event_type: EventType, *, holds: bool
) -> None:
    """The rules of a step that ask of its batch itself, beyond the spec (`check_allowed`): a
    container is a load the user's organization tagged itself (a container is never in a
    cohort, its contents are, docs/metrics.md §4: another producer's waste would lose its
    own mass by becoming one); a container that `holds` batches is not cancelled. The handlers
    judge a step by them, and the scan offers no step they refuse (`next_actions`)."""
    if event_type is EventType.aggregated and batch.producer_id != principal.organization_id:
        raise RuleViolation(
            "a container is a load your organization tagged itself; another producer's waste"
            " does not become a container",
            field="batch",
        )
    if event_type is EventType.cancelled and holds:
        raise RuleViolation(
            "a container that holds batches cannot be cancelled", field="event_type"
        )


async def next_actions(principal: Principal, batch: Batch) -> list[str]:
    """The event types this user may record next on this batch: what the spec allows, less
    the steps the manifest rule would refuse (`_manifest_rule`: an open manifest's own steps,
    a batch taken by an organization no signed manifest names, as a carrier's collection of
    hazardous waste always is; `_LISTED`: a listed batch's cancellation, more waste into a
    listed load), the steps the batch itself refuses (`refuse_on_batch`), and a correction
    where the user may correct none of the batch's events (`rules.may_correct`). A handover's
    taker is the organization it names, unknown until then: the rule judges it when it is
    recorded."""
    allowed = allowed_actions(principal, batch)
    holds = EventType.cancelled.value in allowed and (
        await Batch.filter(parent_id=batch.id).exists()
    )
    actions = []
    for action in allowed:
        try:
            refuse_on_batch(principal, batch, EventType(action), holds=holds)
        except DomainError:
            continue
        actions.append(action)
    if EventType.corrected.value in actions:
        # A correction corrects an event its organization recorded (or a manager's any).
        recorders = await (
            CustodyEvent.filter(batch_id=batch.id)
            .exclude(event_type=EventType.corrected)
            .distinct()
            .values("organization_id")
        )
        if not any(
            may_correct(
                role=principal.role,
                organization_id=principal.organization_id,
                recorded_by=row["organization_id"],
            )
            for row in recorders
        ):
            actions.remove(EventType.corrected.value)
    rules = (await catalog.snapshot()).streams[batch.stream_id].rules or {}
    if not rules.get("manifest"):
        return actions
    # For one taker, the rule tells these steps apart only by whether an open manifest records
    # them itself (`_MANIFEST_ACTIONS`): asked once per kind, not once per step.
    refused: dict[bool, bool] = {}
    offered = []
    for action in actions:
        if action in _TAKEN_BY_ACTOR:
            kind = action in _MANIFEST_ACTIONS
            if kind not in refused:
                try:
                    await _manifest_rule(
                        rules, EventType(action), batch, principal.organization_id, own_step=False
                    )
                    refused[kind] = False
                except DomainError:
                    refused[kind] = True
            if refused[kind]:
                continue
        offered.append(action)
    if any(action in _LISTED for action in offered):
        try:
            await _refuse_while_manifest_open(rules, batch, why="", field="batch", drafts=True)
        except DomainError:
            offered = [action for action in offered if action not in _LISTED]
    return offered


def take_custody(
    batch: Batch,
    event_type: EventType,
    *,
    actor: int,
    receiver: Organization | None = None,
    outcome: Outcome | None = None,
    deliverer: int | None = None,
) -> None:
    """Apply the spec's custody effect: whom the batch is with, and its carrier. A tagging's
    (the producer, the stated carrier) is the new batch's. An acceptor (a receipt, recorded or
    corrected: `actor` is the receiving facility) keeps the batch if it accepts it, in whole or
    part; a batch it rejects goes back to whoever delivered it (`deliverer`), as a refused
    part does, with no destination."""
    spec = SPECS[event_type]
    if spec.holder == Holder.actor:
        batch.holder_id = actor
    elif spec.holder == Holder.receiver:
        assert receiver is not None
        batch.holder_id = receiver.id
    elif spec.holder == Holder.acceptor:
        assert outcome is not None
        if outcome == Outcome.rejected:
            assert deliverer is not None
            batch.holder_id = deliverer
            batch.destination_id = None
        else:
            batch.holder_id = actor
            batch.destination_id = actor
    if spec.carrier == Carrier.actor or (
        spec.carrier == Carrier.actor_if_none
        and batch.carrier_id is None
        and actor != batch.producer_id
    ):
        batch.carrier_id = actor
    elif spec.carrier == Carrier.receiver_if_carrier:
        assert receiver is not None
        if receiver.kind == OrganizationKind.carrier:
            batch.carrier_id = receiver.id


def step(
    work: Work,
    sub: EventCommand,
    batch: Batch,
    digest: str,
    *,
    receiver: Organization | None = None,
    **values: Any,
) -> repository.NewEvent:
    """The event as its spec says: the custody effect, then the spec's one target state."""
    event_type = sub.event_type
    target = SPECS[event_type].target
    assert target is not None, f"{event_type} computes its state: its handler records it"
    take_custody(batch, event_type, actor=work.principal.organization_id, receiver=receiver)
    return new_event(
        work, batch, sub, event_type=event_type, state=target.value, digest=digest, **values
    )


async def _vehicle(work: Work, sub: EventCommand, batch: Batch, carrier_id: int) -> dict[str, Any]:
    """The vehicle a carrier takes the batch into, for the event's details: required, and
    checked against the carrier's fleet, as the stream's rule `vehicle_required` says."""
    carrier = organization(work, carrier_id, "vehicle_plate")
    if carrier.kind != OrganizationKind.carrier:
        return {}
    rule = (work.catalog.streams[batch.stream_id].rules or {}).get("vehicle_required")
    plate = await plates.plate_for_carriage(
        organization_id=carrier.id,
        plate=sub.vehicle_plate,
        rule=rule,
        at=sub.device_time,
        timezone=work.timezone,
        enrolled_cache=work.fleets,
    )
    return {"vehicle_plate": plate} if plate else {}


async def _collected(
    work: Work, sub: EventCommand, batch: Batch, digest: str
) -> repository.NewEvent:
    await _check_manifest(work, sub, batch, work.principal.organization_id)
    vehicle = await _vehicle(work, sub, batch, work.principal.organization_id)
    # Last of the checks: it spends the producer's PIN.
    confirmed = await producer_confirmation(work, sub, batch)
    return step(work, sub, batch, digest, details={**confirmed, **vehicle})


# While a manifest is open (signed by its producer, not yet decided by its receiver), these
# steps of its batches are the manifest's own, and how each is recorded there: a party's scan of
# one would leave the manifest unable to record it (the state machine refuses a repeated step).
_MANIFEST_ACTIONS = {
    EventType.in_transit: "the leg's carrier signs its leg of the manifest",
    EventType.stored: "the receiver records the arrival and its decision on the manifest first",
    EventType.received: "the receiver records the arrival and its decision on the manifest",
}


# The steps whose taker is the actor's organization (the handlers below pass it to
# `_check_manifest`), so that the scan can ask the manifest rule before they are recorded.
_TAKEN_BY_ACTOR = frozenset(
    {EventType.collected, EventType.in_transit, EventType.stored, EventType.received}
)


async def _check_manifest(
    work: Work, sub: EventCommand, batch: Batch, taker_id: int, *, handover: bool = False
) -> None:
    """The manifest rule (`_manifest_rule`) on an event being recorded."""
    rules = work.catalog.streams[batch.stream_id].rules or {}
    await _manifest_rule(
        rules,
        sub.event_type,
        batch,
        taker_id,
        own_step=isinstance(sub, ManifestStep),
        handover=handover,
    )


async def _manifest_rule(
    rules: dict[str, Any],
    event_type: EventType,
    batch: Batch,
    taker_id: int,
    *,
    own_step: bool,
    handover: bool = False,
) -> None:
    """Streams whose rules say `manifest` change hands only as the manifest that governs the
    batch lets the organization taking it (`taker_id`) take it (`repository.on_signed_manifest`:
    an open one, to the carrier of its next unsigned leg, then to its receiver; a decided one,
    only what it refused, back towards its producer; a cancelled one, to its producer); a step
    by whoever holds the batch already moves nothing. While that manifest is open, its batches
    go in transit, are stored and are received only by its own steps (`own_step`: a
    `ManifestStep`; a later leg's signature records the handover from the previous carrier
    itself). A `handover` to the carrier of a later leg is refused once that carrier has signed
    it (the signature recorded the handover) and while an earlier leg is unsigned (its
    signature needs the batch). The scan asks it too (`next_actions`), so it offers no step
    refused here."""
    if not rules.get("manifest"):
        return
    action = _MANIFEST_ACTIONS.get(event_type)
    if action is not None and not own_step:
        await _refuse_while_manifest_open(
            rules,
            batch,
            why=f"the manifest records its {event_type.value} step ({action})",
            field="event_type",
        )
    if taker_id == batch.holder_id:
        return
    field = "to_organization_id" if handover else "batch"
    refused = batch.state == State.rejected
    if not await repository.on_signed_manifest(batch.code, taker_id, producer=refused):
        raise RuleViolation(
            f"{batch.stream_id} waste changes hands only as the transfer manifest its producer"
            f" signed allows, and it does not let organization {taker_id} take it: an open"
            " manifest goes to the carrier of its next unsigned leg, then to its receiver; a"
            " decided one lets only what it refused go back towards its producer; a cancelled"
            " one, only to its producer",
            field=field,
        )
    if not handover:
        return
    signed, early = await repository.later_leg(batch.code, taker_id)
    if signed:
        # A handover synced after the next carrier signed its leg: the receiver could then not
        # take the batch (left handed over, not in transit); the manifest holds that handover.
        raise RuleViolation(
            "this carrier has signed its manifest leg already: record the handover there",
            field=field,
        )
    if early:
        # The earlier leg's signature puts the batch in transit from its carrier's hands:
        # handed on first, that leg could never be signed.
        raise RuleViolation(
            "an earlier leg of the manifest is not signed yet: its carrier signs it before"
            " handing the batch on to this carrier",
            field=field,
        )


# The steps a batch a manifest lists, a draft included, takes no more, whoever records them:
# the producer's signature hands it over as listed, so it is cancelled nowhere (and packed into
# nothing, which `_aggregated` asks of each child), and a listed load's contents stay as listed:
# it takes no more waste, nor gives a batch back by an undone packing (the manifest declares
# its mass, and its receiver was judged licensed for what it held). The scan offers neither
# (`next_actions`).
_LISTED = {
    EventType.cancelled: "cancel that manifest first",
    EventType.aggregated: "a listed load holds what it held, no more and no less, until then",
}


async def refuse_if_listed(
    work: Work, batch: Batch, event_type: EventType, *, field: str = "batch"
) -> None:
    """A step of `_LISTED` on a batch a manifest lists, a draft included: refused naming the
    manifest (and `field`). A container's contents are the contents of every load it is packed
    in, at any depth: a packing is judged against each of them, each load locked as it is
    climbed (`work.locked_container`; an undone packing's loads were locked with the call's
    batches, `repository.load`), so a draft of one made at the same moment has one winner."""
    container: Batch | None = batch
    while container is not None:
        await _refuse_while_manifest_open(
            work.catalog.streams[container.stream_id].rules or {},
            container,
            why=_LISTED[event_type],
            field=field,
            drafts=True,
        )
        if event_type != EventType.aggregated or container.parent_id is None:
            return
        container = await locked_container(work, container.parent_id)


async def _refuse_while_manifest_open(
    rules: dict[str, Any], batch: Batch, *, why: str, field: str, drafts: bool = False
) -> None:
    """The one refusal of a step that an open manifest (signed by its producer, not yet
    decided by its receiver; with `drafts`, a draft too) owns on its batch, saying `why` and
    naming the manifest."""
    if not rules.get("manifest"):
        return
    manifest = await open_manifest_of(batch.code, drafts=drafts)
    if manifest is not None:
        raise RuleViolation(
            f"batch {batch.code} is on transfer manifest {manifest.number}"
            f" ({state_label(manifest.state)}), open until its receiver's decision: {why}",
            field=field,
            manifest_id=manifest.id,
        )


async def _handed_over(
    work: Work, sub: EventCommand, batch: Batch, digest: str
) -> repository.NewEvent:
    assert sub.to_organization_id is not None
    receiver = holding_organization(work, sub.to_organization_id, "to_organization_id")
    await _check_manifest(work, sub, batch, receiver.id, handover=True)
    if receiver.id == batch.holder_id:
        raise ValidationFailed(
            "the batch is already held by this organization", field="to_organization_id"
        )
    vehicle = await _vehicle(work, sub, batch, receiver.id)
    # Last of the checks: it spends the producer's PIN.
    confirmed = await producer_confirmation(work, sub, batch)
    return step(
        work,
        sub,
        batch,
        digest,
        receiver=receiver,
        to_organization_id=receiver.id,
        details={**confirmed, **vehicle},
    )


async def _in_transit(
    work: Work, sub: EventCommand, batch: Batch, digest: str
) -> repository.NewEvent:
    await _check_manifest(work, sub, batch, work.principal.organization_id)
    vehicle = await _vehicle(work, sub, batch, work.principal.organization_id)
    if sub.destination_organization_id:
        destination = holding_organization(
            work, sub.destination_organization_id, "destination_organization_id"
        )
        batch.destination_id = destination.id
    return step(work, sub, batch, digest, details={"destination": batch.destination_id, **vehicle})


async def _stored(work: Work, sub: EventCommand, batch: Batch, digest: str) -> repository.NewEvent:
    await _check_manifest(work, sub, batch, work.principal.organization_id)
    return step(work, sub, batch, digest)


async def _facility(work: Work, org_id: int) -> Organization:
    org = work.organizations.get(org_id)
    if org is None:  # a treatment's facility, met through a manager's correction
        org = work.organizations[org_id] = await Organization.get(id=org_id)
    if not registry.treats(org):
        raise Forbidden("only a treatment facility may receive or treat waste", field="batch")
    return org


async def _licence(work: Work, org_id: int, category: str, day: date) -> list[str] | None:
    """The methods the facility's licence covering the category on the day allows; None
    without one (cached for the call)."""
    key = (org_id, category, day)
    if key not in work.licences:
        licence = await registry.licence_covering(
            organization_id=org_id, category_key=category, on=day
        )
        work.licences[key] = list(licence.method_codes) if licence else None
    return work.licences[key]


async def _contents(work: Work, batch: Batch, recategorized: Mapping[int, str]) -> list[str]:
    """The categories of everything aggregated into the batch, at any depth (none for a
    single batch): a container's waste is its contents'. A batch `recategorized` names counts
    with the category given there."""
    categories: dict[int, str] = {}
    frontier = [batch.id]
    while frontier:
        found = await children(work, frontier)
        frontier = [i for i in found if i not in categories and i != batch.id]
        categories |= found
    own = recategorized.get(batch.id, batch.category_id)
    return sorted({recategorized.get(i, c) for i, c in categories.items()} - {own})


async def licensed_methods(
    work: Work,
    batch: Batch,
    *,
    on: date,
    facility_id: int | None = None,
    recategorized: Mapping[int, str] | None = None,
) -> list[str]:
    """The methods the facility (by default the acting one) may use on this batch on the day
    of the event (its city day, as for agreements and vehicle permits: an offline receipt
    synced after midnight is judged on its own day): those its licences allow for the
    batch's category and, for a container, for every category aggregated into it, at any
    depth (each bag's waste is received and treated with it); refused without a valid
    licence for each, or when those licences share no method (the waste could be taken in
    and never treated). `recategorized` judges batches (this one, or any inside it) as if of
    the category it gives them (a tagging's category corrected: `check_licensed_history`)."""
    org = await _facility(work, facility_id or work.principal.organization_id)
    whose = "your" if org.id == work.principal.organization_id else "the treating"
    as_if = recategorized or {}
    own = as_if.get(batch.id, batch.category_id)
    categories = (own, *await _contents(work, batch, as_if))
    methods: list[str] | None = None
    for category in categories:
        allowed = await _licence(work, org.id, category, on)
        if allowed is None:
            inside = "" if category == own else f" (aggregated into {batch.code})"
            raise Forbidden(
                f"{whose} facility holds no valid licence for {category}{inside} on"
                f" {on.isoformat()}",
                field="batch",
            )
        methods = allowed if methods is None else [m for m in methods if m in allowed]
    if not methods:
        raise Forbidden(
            f"{whose} facility's licences for {', '.join(categories)} (aggregated into"
            f" {batch.code}) share no method on {on.isoformat()}: nothing could treat it",
            field="batch",
        )
    return methods


async def receivable_methods(
    principal: Principal, held: list[Batch], *, facility_id: int, on: date, secret: str
) -> list[str]:
    """The methods the facility may use on these batches taken in together on the day, by the
    rule their receipts and treatments are judged by (`licensed_methods`, for each batch and
    everything aggregated into it): for a transfer manifest's receiver, judged before the
    batches' receipts are recorded. Refused (403 on `batch`) where a licence is missing, or
    where no one method covers them all (one decision names one method for them all)."""
    work = await begin(principal, secret=secret)
    for batch in held:
        remember(work, batch)
    methods: list[str] | None = None
    for batch in held:
        allowed = await licensed_methods(work, batch, on=on, facility_id=facility_id)
        methods = allowed if methods is None else [m for m in methods if m in allowed]
    if not methods:
        raise Forbidden(
            f"the facility's licences share no method for {', '.join(b.code for b in held)}"
            f" on {on.isoformat()}: nothing could treat them together",
            field="batch",
        )
    return methods


async def check_licensed_history(work: Work, batch: Batch, category: str) -> None:
    """A tagging's category corrected after the batch was received or treated: each receipt
    and treatment recorded (of the batch, of its remainders, which take the category, and of
    the containers they went into) is judged again as `licensed_methods` judged it, with the
    new category, on its own day, by the facility that recorded it, and for a treatment its
    method after corrections. Refused on `category`: a correction does not make waste a
    facility was not licensed for look as if it had been."""
    batches = [batch]
    for original in batches:  # grows as it goes: the remainders, and theirs
        parts = {b.id: b for b in await Batch.filter(split_from_id=original.id)}
        parts |= {b.id: b for b in work.batches.values() if b.split_from_id == original.id}
        batches += parts.values()
    holders: dict[int, Batch] = {}
    for found in batches:
        current: Batch | None = found
        while current is not None and current.id not in holders:
            holders[current.id] = current
            parent_id = current.parent_id
            current = (
                None
                if parent_id is None
                else next((b for b in work.batches.values() if b.id == parent_id), None)
                or await Batch.get(id=parent_id)
            )
    judged: list[CustodyEvent | repository.NewEvent] = [
        *await CustodyEvent.filter(
            batch_id__in=list(holders),
            event_type__in=[EventType.received.value, EventType.treated.value],
        ),
        *(
            e
            for e in work.new_events
            if e.batch_id in holders and e.event_type in (EventType.received, EventType.treated)
        ),
    ]
    as_if = dict.fromkeys((b.id for b in batches), category)
    for event in judged:
        if (
            event.event_type == EventType.received
            and Outcome(await remainders.corrected_value(work, event, "outcome", "outcome"))
            == Outcome.rejected
        ):
            continue  # a refusal at the gate took nothing in
        day = local_date(event.device_time, work.timezone)
        try:
            allowed = await licensed_methods(
                work,
                holders[event.batch_id],
                on=day,
                facility_id=event.organization_id,
                recategorized=as_if,
            )
        except Forbidden as error:
            raise Forbidden(
                f"batch {holders[event.batch_id].code} was {event.event_type} on"
                f" {day.isoformat()} by a facility that, with the category {category}, would"
                f" have been refused: {error.detail}",
                field="category",
            ) from None
        if event.event_type == EventType.treated:
            method = await remainders.corrected_value(work, event, "method", "method_id")
            if method not in allowed:
                raise Forbidden(
                    f"batch {holders[event.batch_id].code} was treated by {method} on"
                    f" {day.isoformat()}, which the facility's licence for {category} does"
                    " not cover",
                    field="category",
                )


async def _received(
    work: Work, sub: EventCommand, batch: Batch, digest: str
) -> repository.NewEvent:
    if sub.outcome != Outcome.rejected:
        # Taking waste in needs the licence; refusing it at the gate handles nothing.
        await licensed_methods(work, batch, on=local_date(sub.device_time, work.timezone))
    await _check_manifest(work, sub, batch, work.principal.organization_id)
    outcome = sub.outcome
    if outcome in (Outcome.accepted, Outcome.partially_accepted) and sub.weight_kg is None:
        raise ValidationFailed("weight_kg is required when waste is accepted", field="weight_kg")
    if outcome in REFUSING and not sub.reason:
        raise ValidationFailed(REFUSAL_NEEDS_REASON, field="reason")
    assert outcome is not None
    refused = remainders.refused_kg(
        work, batch, outcome=outcome, weight_kg=sub.weight_kg, stated=sub.refused_kg
    )
    if refused is not None:
        await remainders.check_splittable(work, batch)  # before the batch changes
    deliverer = await remainders.deliverer(work, batch, work.principal.organization_id)
    take_custody(
        batch,
        EventType.received,
        actor=work.principal.organization_id,
        outcome=outcome,
        deliverer=deliverer,
    )
    state = State.rejected if outcome == Outcome.rejected else State.received
    receipt = uuid.uuid4()  # the remainder's tagging names it
    remainder = (
        await remainders.split(
            work,
            batch,
            refused_kg=refused,
            stated=sub.refused_kg is not None,
            holder_id=deliverer,
            sub=sub,
            reason=sub.reason,
            receipt=receipt,
        )
        if refused is not None
        else None
    )
    # Who delivered: a refused part goes back to them, now or when a correction splits it later.
    details: dict[str, Any] = {"delivered_by": deliverer}
    if remainder is not None:
        details |= {
            "remainder": remainder.code,
            "refused_kg": str(remainder.quantity),
            "refused_basis": "stated" if sub.refused_kg is not None else "declared",
        }
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.received,
        state=state.value,
        digest=digest,
        id=receipt,
        outcome=outcome.value,
        reason=sub.reason,
        details=details,
    )


async def treatment_state(
    work: Work,
    batch: Batch,
    code: str | None,
    *,
    on: date,
    facility_id: int | None = None,
) -> tuple[State, TreatmentMethod]:
    """The one rule for a treatment's method, recorded or corrected: known, covered by the
    treating facility's licence (by default the actor's; a correction's: the treatment's
    facility) on the treatment's day, and allowed by the stream.
    Storage and grouping (R12, R13, D13-D15) are not a fate: the batch stays `stored` at the
    facility."""
    allowed = await licensed_methods(work, batch, on=on, facility_id=facility_id)
    method = work.catalog.methods.get(code or "")
    if method is None:
        raise ValidationFailed(f"unknown treatment method {code!r}", field="method")
    if method.code not in allowed:
        raise Forbidden(
            f"the treating facility's licence does not cover method {method.code}",
            field="method",
        )
    stream_methods = (work.catalog.streams[batch.stream_id].rules or {}).get("treatment_methods")
    if stream_methods is not None and method.code not in stream_methods:
        raise RuleViolation(
            f"{batch.stream_id} waste may only be treated by {', '.join(stream_methods)}",
            field="method",
        )
    return (State.treated if method.mode in FINAL_MODES else State.stored), method


async def _treated(work: Work, sub: EventCommand, batch: Batch, digest: str) -> repository.NewEvent:
    state, method = await treatment_state(
        work, batch, sub.method, on=local_date(sub.device_time, work.timezone)
    )
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.treated,
        state=state.value,
        digest=digest,
        method_id=method.code,
        mode=method.mode,
    )


async def _aggregated(
    work: Work, sub: EventCommand, parent: Batch, digest: str
) -> repository.NewEvent:
    assert sub.children is not None
    refuse_on_batch(work.principal, parent, EventType.aggregated, holds=False)
    children: list[Batch] = []
    for index, scanned in enumerate(sub.children):
        field_name = f"children[{index}]"
        code = work.reader.code(scanned)
        child = work.batches.get(code or "")
        relation = batches.parties(work.principal, child) if child else set()
        if child is None or not relation:
            raise NotFound(batches.NOT_FOUND, field=field_name)
        if child.id == parent.id or child in children:
            raise ValidationFailed(
                "a batch cannot be aggregated twice or into itself", field=field_name
            )
        if child.stream_id != parent.stream_id:
            raise ValidationFailed("children must belong to the parent's stream", field=field_name)
        try:
            check_allowed(work.principal, child, relation, EventType.aggregated)
        except DomainError as error:
            error.field = field_name
            raise
        check_order(work, sub, child, field=field_name)
        # Packed (aggregated, a final state), it could take no leg or decision of its manifest.
        # Listed, a draft included: the manifest records its steps on the batch itself, and the
        # producer's signature hands it over as listed.
        await _refuse_while_manifest_open(
            work.catalog.streams[child.stream_id].rules or {},
            child,
            why="it is packed into a container only after that",
            field=field_name,
            drafts=True,
        )
        children.append(child)
    await refuse_if_listed(work, parent, EventType.aggregated)
    ancestor = parent.parent_id
    if ancestor and any(child.id == ancestor for child in children):
        raise ValidationFailed("a batch cannot contain its own container", field="children")
    for child in children:
        child.parent_id = parent.id
        new_event(
            work,
            child,
            None,
            event_type=EventType.aggregated,
            state=State.aggregated.value,
            digest=None,
            device_time=sub.device_time,
            related_batch_id=parent.id,
            details={"into": parent.code, "event": str(sub.client_event_id)},
        )
    return new_event(
        work,
        parent,
        sub,
        event_type=EventType.aggregated,
        state=parent.state,
        digest=digest,
        details={"children": [c.code for c in children]},
    )


async def _cancelled(
    work: Work, sub: EventCommand, batch: Batch, digest: str
) -> repository.NewEvent:
    holds = bool(await children(work, [batch.id]))
    refuse_on_batch(work.principal, batch, EventType.cancelled, holds=holds)
    # Cancelled, a draft would list a batch in no register or figure, and its signature fail.
    await refuse_if_listed(work, batch, EventType.cancelled)
    return step(work, sub, batch, digest, reason=sub.reason)


# The handler of each event type after tagging, but corrections (wastetrack.custody.corrections).
HANDLERS = {
    EventType.collected: _collected,
    EventType.handed_over: _handed_over,
    EventType.in_transit: _in_transit,
    EventType.stored: _stored,
    EventType.received: _received,
    EventType.treated: _treated,
    EventType.aggregated: _aggregated,
    EventType.cancelled: _cancelled,
}
