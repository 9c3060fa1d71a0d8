"""The steps of a batch's custody after its tagging: who may record which event (the guards
of `rules.RULES`) and what each event does to the batch."""

from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import EventCreate
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.catalog.service import FINAL_MODES
from wastetrack.core import codes
from wastetrack.core.errors import (
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.cosign.service import producer_confirmation
from wastetrack.custody import remainders, repository
from wastetrack.custody.rules import (
    FINAL_STATES,
    RULES,
    EventType,
    Outcome,
    Party,
    State,
)
from wastetrack.custody.work import Work, new_event, organization
from wastetrack.fleet import service as fleet
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind


def check_allowed(
    principal: Principal, batch: Batch, relation: set[Party], event_type: EventType
) -> None:
    rule = RULES[event_type]
    if principal.role not in rule.roles:
        raise Forbidden(
            f"a {principal.role.value} cannot record a {event_type.value} event", field="event_type"
        )
    if batch.state not in rule.from_states:
        detail = (
            f"the batch is {batch.state}, a final state: nothing may follow it"
            if batch.state in FINAL_STATES
            else f"a {event_type.value} event cannot follow the state {batch.state}"
        )
        raise RuleViolation(detail, field="event_type")
    if not relation & rule.parties:
        raise Forbidden(
            f"your organization may not record {event_type.value} for this batch"
            f" (it must be the batch's {' or '.join(sorted(p.value for p in rule.parties))})",
            field="batch",
        )


def allowed_actions(principal: Principal, batch: Batch) -> list[str]:
    """The event types this user may record next on this batch."""
    relation = batches.parties(principal, batch)
    actions = []
    for event_type in RULES:
        try:
            check_allowed(principal, batch, relation, event_type)
        except DomainError:
            continue
        actions.append(event_type.value)
    return actions


async def _vehicle(work: Work, sub: EventCreate, batch: Batch, carrier_id: int) -> dict[str, Any]:
    """The vehicle a carrier takes the batch into, for the event's details: required, and
    checked against the carrier's fleet, as the stream's rule `vehicle_required` says."""
    carrier = organization(work, carrier_id, "vehicle_plate")
    if carrier.kind != OrganizationKind.carrier:
        return {}
    rule = (work.catalog.streams[batch.stream_id].rules or {}).get("vehicle_required")
    plate = await fleet.plate_for_carriage(
        organization_id=carrier.id,
        plate=sub.vehicle_plate,
        rule=rule,
        on=sub.device_time.astimezone(ZoneInfo(work.timezone)).date(),
        enrolled_cache=work.fleets,
    )
    return {"vehicle_plate": plate} if plate else {}


async def _collected(
    work: Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    org = work.principal.organization_id
    vehicle = await _vehicle(work, sub, batch, org)
    # Last of the checks: it spends the producer's PIN.
    confirmed = await producer_confirmation(work, sub, batch)
    if batch.carrier_id is None and org != batch.producer_id:
        batch.carrier_id = org
    batch.holder_id = org
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.collected,
        state=State.collected.value,
        digest=digest,
        details={**confirmed, **vehicle},
    )


async def _check_manifest(work: Work, batch: Batch) -> None:
    """Streams whose rules say `manifest` move only on a manifest the producer has signed."""
    rules = work.catalog.streams[batch.stream_id].rules or {}
    if rules.get("manifest") and not await repository.on_signed_manifest(batch.code):
        raise RuleViolation(
            f"{batch.stream_id} waste moves only on a transfer manifest signed by its producer",
            field="batch",
        )


async def _handed_over(
    work: Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    assert sub.to_organization_id is not None
    await _check_manifest(work, batch)
    receiver = organization(work, sub.to_organization_id, "to_organization_id")
    if receiver.id == batch.holder_id:
        raise ValidationFailed(
            "the batch is already held by this organization", field="to_organization_id"
        )
    vehicle = await _vehicle(work, sub, batch, receiver.id)
    # Last of the checks: it spends the producer's PIN.
    confirmed = await producer_confirmation(work, sub, batch)
    batch.holder_id = receiver.id
    if receiver.kind == OrganizationKind.carrier:
        batch.carrier_id = receiver.id
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.handed_over,
        state=State.handed_over.value,
        digest=digest,
        to_organization_id=receiver.id,
        details={**confirmed, **vehicle},
    )


async def _in_transit(
    work: Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    await _check_manifest(work, batch)
    org = work.principal.organization_id
    vehicle = await _vehicle(work, sub, batch, org)
    batch.holder_id = org
    batch.carrier_id = org
    if sub.destination_organization_id:
        destination = organization(
            work, sub.destination_organization_id, "destination_organization_id"
        )
        batch.destination_id = destination.id
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.in_transit,
        state=State.in_transit.value,
        digest=digest,
        details={"destination": batch.destination_id, **vehicle},
    )


async def _stored(work: Work, sub: EventCreate, batch: Batch, digest: str) -> repository.NewEvent:
    batch.holder_id = work.principal.organization_id
    return new_event(
        work, batch, sub, event_type=EventType.stored, state=State.stored.value, digest=digest
    )


async def _licensed_methods(work: Work, batch: Batch) -> list[str]:
    """The methods the acting facility may use on this batch's category; refused without a
    valid licence."""
    org = work.organizations[work.principal.organization_id]
    if org.kind != OrganizationKind.treatment_facility:
        raise Forbidden("only a treatment facility may receive or treat waste", field="batch")
    key = (org.id, batch.category_id)
    if key not in work.licences:
        licence = await registry.licence_covering(
            organization_id=org.id,
            category_key=batch.category_id,
            on=work.now.date(),
        )
        work.licences[key] = list(licence.method_codes) if licence else None
    methods = work.licences[key]
    if methods is None:
        raise Forbidden(
            f"your facility holds no valid licence for {batch.category_id}",
            field="batch",
        )
    return methods


async def _received(work: Work, sub: EventCreate, batch: Batch, digest: str) -> repository.NewEvent:
    await _licensed_methods(work, batch)
    outcome = sub.outcome
    if outcome in (Outcome.accepted, Outcome.partially_accepted) and sub.weight_kg is None:
        raise ValidationFailed("weight_kg is required when waste is accepted", field="weight_kg")
    if outcome in (Outcome.partially_accepted, Outcome.rejected) and not sub.reason:
        raise ValidationFailed(
            "reason is required when waste is refused in whole or part", field="reason"
        )
    assert outcome is not None
    refused = remainders.refused_kg(
        work, batch, outcome=outcome, weight_kg=sub.weight_kg, stated=sub.refused_kg
    )
    deliverer = remainders.deliverer(batch, work.principal.organization_id)
    if outcome == Outcome.rejected:
        batch.destination_id = None
        state = State.rejected
    else:
        batch.holder_id = work.principal.organization_id
        batch.destination_id = work.principal.organization_id
        state = State.received
    remainder = (
        await remainders.split(
            work, batch, refused_kg=refused, holder_id=deliverer, sub=sub, reason=sub.reason
        )
        if refused is not None
        else None
    )
    details: dict[str, Any] = {}
    if remainder is not None:
        details = {
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
        outcome=outcome.value,
        reason=sub.reason,
        details=details,
    )


async def _treated(work: Work, sub: EventCreate, batch: Batch, digest: str) -> repository.NewEvent:
    allowed = await _licensed_methods(work, batch)
    snap = work.catalog
    method = snap.methods.get(sub.method or "")
    if method is None:
        raise ValidationFailed(f"unknown treatment method {sub.method!r}", field="method")
    if method.code not in allowed:
        raise Forbidden(f"your licence does not cover method {method.code}", field="method")
    stream_methods = (snap.streams[batch.stream_id].rules or {}).get("treatment_methods")
    if stream_methods is not None and method.code not in stream_methods:
        raise RuleViolation(
            f"{batch.stream_id} waste may only be treated by {', '.join(stream_methods)}",
            field="method",
        )
    # Storage and grouping (R12, R13, D13-D15) are not a fate: the batch waits at the facility.
    state = State.treated if method.mode in FINAL_MODES else State.stored
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
    work: Work, sub: EventCreate, parent: Batch, digest: str
) -> repository.NewEvent:
    assert sub.children is not None
    children: list[Batch] = []
    for index, scanned in enumerate(sub.children):
        field_name = f"children[{index}]"
        code = codes.code_from_scan(scanned, secret=work.secret)
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
        children.append(child)
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
    work: Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    if await Batch.filter(parent_id=batch.id).exists() or any(
        b.parent_id == batch.id for b in work.touched.values()
    ):
        raise RuleViolation(
            "a container that holds batches cannot be cancelled", field="event_type"
        )
    return new_event(
        work,
        batch,
        sub,
        event_type=EventType.cancelled,
        state=State.cancelled.value,
        digest=digest,
        reason=sub.reason,
    )


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
