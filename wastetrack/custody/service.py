"""Recording custody events: one path for single posts, batch creation and offline sync."""

import functools
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from schemas.events import EventCreate, EventResult
from wastetrack.alerts import service as alerts
from wastetrack.auth.models import Role
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch, Label, Unit
from wastetrack.catalog import service as catalog
from wastetrack.catalog.service import FINAL_MODES, CatalogSnapshot
from wastetrack.core import codes, keys, observability
from wastetrack.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.hashing import hmac_sha256_hex, sha256_hex
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
from wastetrack.custody import repository
from wastetrack.custody.checkpoints import LegacyChain
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import (
    FINAL_STATES,
    RULES,
    EventType,
    Outcome,
    Party,
    State,
)
from wastetrack.evidence.models import Photo
from wastetrack.registry import access
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind, Site
from wastetrack.rollups import service as rollups
from wastetrack.rollups.facts import FACT_EVENTS

TAGGING_ROLES = frozenset({Role.generator, Role.collector, Role.carrier, Role.port_operator})
MAX_QUANTITY = {Unit.KG: Decimal(100_000), Unit.COUNT: Decimal(100_000), Unit.M3: Decimal(10_000)}
CLOCK_SKEW = timedelta(minutes=10)
# No phone records waste before this; earlier times are clocks reset to their epoch.
DEVICE_TIME_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
# Event fields added after phones first stored payload digests (see payload_digest).
LATE_FIELDS = ("refused_kg",)


@dataclass
class Recorded:
    """What one submission came to: the result for the phone, the error for callers that raise
    it, and the batch as it now stands when the event was applied."""

    result: EventResult
    error: DomainError | None = None
    batch: Batch | None = None


@dataclass
class _Work:
    """Everything one call loaded up front, and the rows it will write at the end."""

    principal: Principal
    secret: str
    now: datetime
    catalog: CatalogSnapshot
    timezone: str
    batches: dict[str, Batch] = field(default_factory=dict)
    codes_by_id: dict[int, str] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    organizations: dict[int, Organization] = field(default_factory=dict)
    photos: set[str] = field(default_factory=set)
    licences: dict[tuple[int, str], list[str] | None] = field(default_factory=dict)
    sites: dict[int, int] = field(default_factory=dict)
    batch_ids: list[int] = field(default_factory=list)
    new_labels: list[repository.NewLabel] = field(default_factory=list)
    bound_labels: list[str] = field(default_factory=list)
    new_batches: dict[int, Batch] = field(default_factory=dict)
    new_events: list[repository.NewEvent] = field(default_factory=list)
    touched: dict[int, Batch] = field(default_factory=dict)
    clock_anomalies: list[alerts.ClockAnomaly] = field(default_factory=list)


def payload_digest(submission: EventCreate) -> str:
    """The same content always serializes the same way: fields in declaration order. Fields
    added later count only when given, so a resend recorded before them stays a duplicate."""
    late = {name for name in LATE_FIELDS if getattr(submission, name) is None}
    return hashlib.sha256(submission.model_dump_json(exclude=late).encode()).hexdigest()


def event_hash(
    event: CustodyEvent | repository.NewEvent,
    *,
    batch_code: str,
    related_code: str | None,
    key: bytes | None,
) -> str:
    """HMAC-SHA256 under the chain_mac key over the event's content and the previous event's
    hash; without a key, the plain SHA-256 of chains recorded before keys (see LegacyChain)."""
    content = {
        "prev_hash": event.prev_hash,
        "batch": batch_code,
        "seq": event.seq,
        "event_type": event.event_type,
        "state_after": event.state_after,
        "outcome": event.outcome,
        "reason": event.reason,
        "method": event.method_id,
        "mode": event.mode,
        "to_organization": event.to_organization_id,
        "related_batch": related_code,
        "corrects": event.corrects_id,
        "details": event.details,
        "device_time": event.device_time.astimezone(UTC),
        "server_time": event.server_time.astimezone(UTC),
        "actor": event.actor_id,
        "organization": event.organization_id,
        "latitude": event.latitude,
        "longitude": event.longitude,
        "weight_kg": Decimal(event.weight_kg) if event.weight_kg is not None else None,
        "photo": event.photo_sha256,
        "client_event_id": event.client_event_id,
    }
    return sha256_hex(content) if key is None else hmac_sha256_hex(key, content)


async def record_events(
    *, principal: Principal, submissions: list[EventCreate], secret: str
) -> list[Recorded]:
    """Apply events exactly once each, per batch in device-time order; a refused event is
    reported and never stops the others. Runs inside the caller's transaction."""
    if principal.role == Role.auditor:
        raise Forbidden("auditors read; they do not record events", field="role")
    work = _Work(
        principal=principal,
        secret=secret,
        now=datetime.now(UTC),
        catalog=await catalog.snapshot(),
        timezone=get_settings().timezone,
    )
    outcomes: list[Recorded | None] = [None] * len(submissions)
    codes_of: list[str | None] = []
    for index, sub in enumerate(submissions):
        try:
            codes_of.append(_code_of(sub, secret))
        except DomainError as error:
            codes_of.append(None)
            outcomes[index] = _rejected(sub, error)
    await _load(work, submissions, codes_of)
    work.batch_ids = await repository.allocate_batch_ids(
        sum(sub.event_type == EventType.tagged for sub in submissions)
    )

    known = await repository.known_events([s.client_event_id for s in submissions])
    order = sorted(range(len(submissions)), key=lambda i: submissions[i].device_time)
    for index in order:
        if outcomes[index] is not None:
            continue
        sub = submissions[index]
        digest = payload_digest(sub)
        seen = known.get(sub.client_event_id)
        if seen is not None:
            outcomes[index] = _seen_before(sub, seen, digest)
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
            "batch__code": _code_by_id(work, event.batch_id),
        }
        outcomes[index] = Recorded(
            EventResult(
                client_event_id=sub.client_event_id,
                status="applied",
                batch_code=known[sub.client_event_id]["batch__code"],
                event_id=event.id,
                state=event.state_after,
            ),
            batch=work.batches[known[sub.client_event_id]["batch__code"]],
        )
    await _write(work)
    applied = {e.client_event_id for e in work.new_events}
    await alerts.flag_clock_anomalies(
        anomalies=[a for a in work.clock_anomalies if a.client_event_id in applied], now=work.now
    )
    return [outcome for outcome in outcomes if outcome is not None]


async def _write(work: _Work) -> None:
    """Everything the call decided, in an order that satisfies the foreign keys."""
    for batch in work.touched.values():
        batch.updated_at = work.now
    await repository.insert_labels(work.new_labels, bound_at=work.now)
    await repository.bind_labels(work.bound_labels, bound_at=work.now)
    await repository.insert_batches(list(work.new_batches.values()))
    await repository.update_batches(
        [b for b in work.touched.values() if b.id not in work.new_batches]
    )
    await repository.insert_events(work.new_events)
    await rollups.apply(
        batch_ids=[e.batch_id for e in work.new_events if e.event_type in FACT_EVENTS],
        timezone=work.timezone,
    )


def _code_of(sub: EventCreate, secret: str) -> str | None:
    if sub.batch is None:
        return None
    return batches.resolve_code(sub.batch, secret=secret)


def _code_by_id(work: _Work, batch_id: int) -> str:
    return work.codes_by_id[batch_id]


def _remember(work: _Work, batch: Batch) -> None:
    work.batches[batch.code] = batch
    work.codes_by_id[batch.id] = batch.code


def _rejected(sub: EventCreate, error: DomainError) -> Recorded:
    return Recorded(
        EventResult.model_validate(
            {
                "client_event_id": sub.client_event_id,
                "status": "rejected",
                "error": {"code": error.code, "field": error.field, "detail": error.detail},
            }
        ),
        error,
    )


def _seen_before(sub: EventCreate, seen: dict[str, Any], digest: str) -> Recorded:
    if seen["payload_digest"] == digest:
        return Recorded(
            EventResult(
                client_event_id=sub.client_event_id,
                status="duplicate",
                batch_code=seen["batch__code"],
                event_id=seen["id"],
                state=seen["state_after"],
            )
        )
    error = Conflict(
        "this client_event_id was already used for an event with other content",
        field="client_event_id",
    )
    return Recorded(
        EventResult.model_validate(
            {
                "client_event_id": sub.client_event_id,
                "status": "conflict",
                "batch_code": seen["batch__code"],
                "event_id": seen["id"],
                "error": {"code": error.code, "field": error.field, "detail": error.detail},
            }
        ),
        error,
    )


async def _load(work: _Work, submissions: list[EventCreate], codes_of: list[str | None]) -> None:
    """Lock every batch and label the call touches, in one order, and fetch what it refers to."""
    wanted: set[str] = {code for code in codes_of if code}
    for sub in submissions:
        for child in sub.children or []:
            code = codes.code_from_scan(child, secret=work.secret)
            if code:
                wanted.add(code)
    if wanted:
        for batch in await repository.lock_batches(wanted):
            _remember(work, batch)
        label_codes = [c for c in wanted if c not in work.batches]
        if label_codes:
            for label in await Label.filter(code__in=label_codes).select_for_update():
                work.labels[label.code] = label
    # The acting organization matters only to tagging, receiving and treating.
    needs_own = {EventType.tagged, EventType.received, EventType.treated}
    org_ids = (
        {work.principal.organization_id}
        if any(sub.event_type in needs_own for sub in submissions)
        else set()
    )
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
    if org_ids:
        for org in await Organization.filter(id__in=org_ids).select_related("region"):
            work.organizations[org.id] = org
    site_ids = {sub.origin_site_id for sub in submissions if sub.origin_site_id}
    if site_ids:
        sites = await Site.filter(id__in=site_ids).values_list("id", "organization_id")
        work.sites = {int(site_id): int(org_id) for site_id, org_id in sites}
    shas = {sub.photo_sha256 for sub in submissions if sub.photo_sha256}
    if shas:
        work.photos = set(await Photo.filter(sha256__in=shas).values_list("sha256", flat=True))  # type: ignore[arg-type]


def _organization(work: _Work, organization_id: int, field_name: str) -> Organization:
    org = work.organizations.get(organization_id)
    if org is None:
        raise ValidationFailed(f"no organization {organization_id}", field=field_name)
    return org


def _check_common(
    work: _Work, sub: EventCreate, tagged_at: datetime | None, batch: Batch | None = None
) -> None:
    if sub.device_time > work.now + CLOCK_SKEW:
        raise ValidationFailed("device_time lies in the future", field="device_time")
    if sub.device_time < DEVICE_TIME_FLOOR:
        raise ValidationFailed(
            f"device_time precedes {DEVICE_TIME_FLOOR:%Y-%m-%d}: the phone's clock is wrong",
            field="device_time",
        )
    if tagged_at is not None and sub.device_time < tagged_at - CLOCK_SKEW:
        raise ValidationFailed("device_time precedes the batch's tagging", field="device_time")
    if sub.photo_sha256 and sub.photo_sha256 not in work.photos:
        raise ValidationFailed("upload the photo before referring to it", field="photo_sha256")
    previous = batch.last_device_time if batch is not None else None
    if batch is not None and previous is not None and sub.device_time < previous - CLOCK_SKEW:
        # Flagged, not refused: a phone with a wrong clock, or one that synced late.
        work.clock_anomalies.append(
            alerts.ClockAnomaly(
                batch_id=batch.id,
                code=batch.code,
                seq=batch.last_seq + 1,
                organization_id=work.principal.organization_id,
                region_path=batch.region_path,
                device_time=sub.device_time,
                previous_device_time=previous,
                client_event_id=sub.client_event_id,
            )
        )


def _new_event(
    work: _Work,
    batch: Batch,
    sub: EventCreate | None,
    *,
    event_type: EventType,
    state: str,
    digest: str | None,
    **values: Any,
) -> repository.NewEvent:
    """Append one event to the batch's chain (in memory until the call writes)."""
    details = values.pop("details", {})
    # Events the service writes itself (a remainder's) may carry the time of what caused them.
    when = values.pop("device_time", None) or (sub.device_time if sub else work.now)
    if sub is not None and sub.note:
        details = {**details, "note": sub.note}
    event = repository.NewEvent(
        id=uuid.uuid4(),
        batch_id=batch.id,
        seq=batch.last_seq + 1,
        event_type=event_type.value,
        state_after=state,
        device_time=when,
        server_time=work.now,
        actor_id=work.principal.user_id,
        organization_id=work.principal.organization_id,
        latitude=sub.latitude if sub else None,
        longitude=sub.longitude if sub else None,
        weight_kg=sub.weight_kg if sub else None,
        photo_sha256=sub.photo_sha256 if sub else None,
        client_event_id=sub.client_event_id if sub else None,
        payload_digest=digest,
        prev_hash=batch.last_hash or "0" * 64,
        details=details,
        **values,
    )
    related = values.get("related_batch_id")
    event.hash = event_hash(
        event,
        batch_code=batch.code,
        related_code=_code_by_id(work, related) if related else None,
        key=keys.ring(work.secret).key(keys.CHAIN_MAC),
    )
    batch.state = state
    batch.last_seq = event.seq
    batch.last_hash = event.hash
    batch.last_device_time = event.device_time
    work.new_events.append(event)
    work.touched[batch.id] = batch
    return event


async def _apply(
    work: _Work, sub: EventCreate, code: str | None, digest: str
) -> repository.NewEvent:
    if sub.event_type == EventType.tagged:
        return await _tag(work, sub, code, digest)
    batch = work.batches.get(code or "")
    if batch is None:
        raise NotFound(batches.NOT_FOUND, field="batch")
    relation = batches.parties(work.principal, batch)
    if not relation:
        raise NotFound(batches.NOT_FOUND, field="batch")
    _check_allowed(work.principal, batch, relation, sub.event_type)
    _check_common(work, sub, batch.tagged_at, batch)
    handler = _HANDLERS[sub.event_type]
    return await handler(work, sub, batch, digest)


def _check_allowed(
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
            _check_allowed(principal, batch, relation, event_type)
        except DomainError:
            continue
        actions.append(event_type.value)
    return actions


def _issue_label(work: _Work, stream: str) -> str:
    """A new code, issued to the acting organization as a label of the stream."""
    code = codes.new_code()
    work.new_labels.append(
        repository.NewLabel(
            code=code,
            organization_id=work.principal.organization_id,
            stream_id=stream,
            issued_by_id=work.principal.user_id,
            issued_at=work.now,
        )
    )
    return code


def _new_batch(work: _Work, **fields: Any) -> Batch:
    """A batch about to be tagged (its chain empty), written with the call's other changes."""
    batch = Batch(
        **fields,
        state=State.tagged.value,
        created_at=work.now,
        updated_at=work.now,
        last_seq=0,
        last_hash="",
        last_device_time=None,
    )
    _remember(work, batch)
    work.new_batches[batch.id] = batch
    return batch


async def _tag(work: _Work, sub: EventCreate, code: str | None, digest: str) -> repository.NewEvent:
    principal = work.principal
    if principal.role not in TAGGING_ROLES:
        raise Forbidden(f"a {principal.role.value} cannot tag batches", field="event_type")
    label: Label | None = None
    if code is not None:
        if code in work.batches:
            raise Conflict("this label is bound to a batch already", field="batch")
        label = work.labels.get(code)
        # A label of the user's own stock, or of stock issued to the producer it tags for.
        if label is None or label.organization_id not in (
            principal.organization_id,
            sub.producer_organization_id,
        ):
            raise NotFound(batches.NOT_FOUND, field="batch")
    stream = sub.stream or (label.stream_id if label else None)
    if stream is None:
        raise ValidationFailed("stream is required for a new batch", field="stream")
    if label is not None and stream != label.stream_id:
        raise ValidationFailed(
            f"this label was issued for the {label.stream_id} stream",
            field="stream",
        )
    category = await catalog.category_for_stream(stream=stream, category=sub.category or "")
    await catalog.validate_waste_code(category=category.key, waste_code=sub.waste_code)
    rules = work.catalog.streams[stream].rules or {}
    for required in rules.get("tag_requires", []):
        if not getattr(sub, required):
            raise ValidationFailed(f"{required} is required to tag {stream} waste", field=required)
    assert sub.quantity is not None and sub.unit is not None
    if sub.quantity > MAX_QUANTITY[sub.unit]:
        raise ValidationFailed(
            f"quantity above {MAX_QUANTITY[sub.unit]} {sub.unit.value} is implausible"
            " for one batch",
            field="quantity",
        )
    producer = _organization(
        work, sub.producer_organization_id or principal.organization_id, "producer_organization_id"
    )
    await access.check_may_tag_for(
        principal=principal,
        producer_id=producer.id,
        stream=stream,
        label_organization_id=label.organization_id if label else None,
        on=sub.device_time.date(),
    )
    if sub.origin_site_id is not None and work.sites.get(sub.origin_site_id) != producer.id:
        raise ValidationFailed(
            "the origin site must belong to the producer", field="origin_site_id"
        )
    carrier = (
        _organization(work, sub.carrier_organization_id, "carrier_organization_id").id
        if sub.carrier_organization_id
        else (principal.organization_id if principal.organization_id != producer.id else None)
    )
    destination = (
        _organization(work, sub.destination_organization_id, "destination_organization_id").id
        if sub.destination_organization_id
        else None
    )
    _check_common(work, sub, None)
    if label is None:
        code = _issue_label(work, stream)
    else:
        code = label.code
        work.bound_labels.append(code)
    batch = _new_batch(
        work,
        id=work.batch_ids.pop(),
        code=code,
        stream_id=stream,
        category_id=category.key,
        waste_code=sub.waste_code,
        hazard=sub.hazard or list(category.hazard),
        producer_id=producer.id,
        origin_site_id=sub.origin_site_id,
        region_path=producer.region.path,
        quantity=sub.quantity,
        unit=sub.unit,
        holder_id=producer.id,
        carrier_id=carrier,
        destination_id=destination,
        tagged_at=sub.device_time,
    )
    return _new_event(
        work,
        batch,
        sub,
        event_type=EventType.tagged,
        state=State.tagged.value,
        digest=digest,
        details={
            "stream": stream,
            "category": category.key,
            "quantity": str(sub.quantity),
            "unit": sub.unit.value,
            "waste_code": sub.waste_code,
        },
    )


async def _collected(
    work: _Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    org = work.principal.organization_id
    if batch.carrier_id is None and org != batch.producer_id:
        batch.carrier_id = org
    batch.holder_id = org
    return _new_event(
        work, batch, sub, event_type=EventType.collected, state=State.collected.value, digest=digest
    )


async def _check_manifest(work: _Work, batch: Batch) -> None:
    """Streams whose rules say `manifest` move only on a manifest the producer has signed."""
    rules = work.catalog.streams[batch.stream_id].rules or {}
    if rules.get("manifest") and not await repository.on_signed_manifest(batch.code):
        raise RuleViolation(
            f"{batch.stream_id} waste moves only on a transfer manifest signed by its producer",
            field="batch",
        )


async def _handed_over(
    work: _Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    assert sub.to_organization_id is not None
    await _check_manifest(work, batch)
    receiver = _organization(work, sub.to_organization_id, "to_organization_id")
    if receiver.id == batch.holder_id:
        raise ValidationFailed(
            "the batch is already held by this organization", field="to_organization_id"
        )
    batch.holder_id = receiver.id
    if receiver.kind == OrganizationKind.carrier:
        batch.carrier_id = receiver.id
    return _new_event(
        work,
        batch,
        sub,
        event_type=EventType.handed_over,
        state=State.handed_over.value,
        digest=digest,
        to_organization_id=receiver.id,
    )


async def _in_transit(
    work: _Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    await _check_manifest(work, batch)
    org = work.principal.organization_id
    batch.holder_id = org
    batch.carrier_id = org
    if sub.destination_organization_id:
        destination = _organization(
            work, sub.destination_organization_id, "destination_organization_id"
        )
        batch.destination_id = destination.id
    return _new_event(
        work,
        batch,
        sub,
        event_type=EventType.in_transit,
        state=State.in_transit.value,
        digest=digest,
        details={"destination": batch.destination_id},
    )


async def _stored(work: _Work, sub: EventCreate, batch: Batch, digest: str) -> repository.NewEvent:
    batch.holder_id = work.principal.organization_id
    return _new_event(
        work, batch, sub, event_type=EventType.stored, state=State.stored.value, digest=digest
    )


async def _licensed_methods(work: _Work, batch: Batch) -> list[str]:
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


async def _received(
    work: _Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    await _licensed_methods(work, batch)
    outcome = sub.outcome
    if outcome in (Outcome.accepted, Outcome.partially_accepted) and sub.weight_kg is None:
        raise ValidationFailed("weight_kg is required when waste is accepted", field="weight_kg")
    if outcome in (Outcome.partially_accepted, Outcome.rejected) and not sub.reason:
        raise ValidationFailed(
            "reason is required when waste is refused in whole or part", field="reason"
        )
    assert outcome is not None
    refused = _refused_kg(
        work, batch, outcome=outcome, weight_kg=sub.weight_kg, stated=sub.refused_kg
    )
    deliverer = _deliverer(batch, work.principal.organization_id)
    if outcome == Outcome.rejected:
        batch.destination_id = None
        state = State.rejected
    else:
        batch.holder_id = work.principal.organization_id
        batch.destination_id = work.principal.organization_id
        state = State.received
    remainder = (
        await _split_remainder(
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
    return _new_event(
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


# The remainder of a partial acceptance (docs/metrics.md §3): the refused part leaves the
# receipt as a batch of its own, in the original's cohort, rejected and back with whoever
# delivered it, so it follows its own fate (returned, re-delivered) and is counted once.
MILLI = Decimal("0.001")


def _declared_kg(work: _Work, batch: Batch) -> Decimal:
    """The mass a receipt is set against: the declared kg, or for a batch counted in units or
    m³ the catalog's estimate, as the batch facts make it before anything is weighed."""
    if batch.unit == Unit.KG:
        return Decimal(batch.quantity)
    column = "unit_mass_kg" if batch.unit == Unit.COUNT else "density_kg_m3"
    # The facts inherit a factor from the parent and grandparent category only.
    for key in work.catalog.ancestors(batch.category_id)[:3]:
        factor = getattr(work.catalog.categories[key], column)
        if factor is not None:
            return (Decimal(batch.quantity) * Decimal(factor)).quantize(MILLI, ROUND_HALF_UP)
    return Decimal(0)


def _refused_kg(
    work: _Work,
    batch: Batch,
    *,
    outcome: Outcome,
    weight_kg: Decimal | str | None,
    stated: Decimal | None,
) -> Decimal | None:
    """What a receipt refuses in part: as stated, else the declared mass minus the accepted
    weight; None when nothing is left over."""
    if outcome != Outcome.partially_accepted:
        return None
    refused = stated if stated is not None else _declared_kg(work, batch) - Decimal(weight_kg or 0)
    return refused.quantize(MILLI, ROUND_HALF_UP) if refused > 0 else None


def _deliverer(batch: Batch, receiver_id: int) -> int:
    """Who brought the batch to the receiver, and so takes the refused part back."""
    for org_id in (batch.holder_id, batch.carrier_id):
        if org_id is not None and org_id != receiver_id:
            return org_id
    return batch.producer_id


async def _split_remainder(
    work: _Work,
    batch: Batch,
    *,
    refused_kg: Decimal,
    holder_id: int,
    sub: EventCreate,
    reason: str | None,
) -> Batch:
    """A new batch for the refused part: its own code, the original's tagging time, refused by
    the receiver (a tagging and a rejection in its chain) and held by the deliverer."""
    (batch_id,) = await repository.allocate_batch_ids(1)
    remainder = _new_batch(
        work,
        id=batch_id,
        code=_issue_label(work, batch.stream_id),
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
    )
    _new_event(
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
            "reason": reason,
            "stream": batch.stream_id,
            "category": batch.category_id,
            "quantity": str(refused_kg),
            "unit": Unit.KG.value,
            "waste_code": batch.waste_code,
        },
    )
    _new_event(
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


async def _follow_tagging_time(work: _Work, sub: EventCreate, batch: Batch) -> None:
    """A remainder stays in its original's cohort: a corrected tagging time carries over to
    the remainders split from the batch (and to theirs), as corrections in their chains."""
    found = {b.code for b in work.batches.values() if b.split_from_id == batch.id}
    found |= {
        str(code)
        for code in await Batch.filter(split_from_id=batch.id).values_list("code", flat=True)
    }
    missing = found - work.batches.keys()
    if missing:
        for locked in await repository.lock_batches(missing):
            _remember(work, locked)
    for code in sorted(found):
        remainder = work.batches[code]
        if remainder.tagged_at == batch.tagged_at:
            continue
        tagging = next(
            (e for e in work.new_events if e.batch_id == remainder.id and e.seq == 1), None
        ) or await CustodyEvent.get(batch_id=remainder.id, seq=1)
        _new_event(
            work,
            remainder,
            None,
            event_type=EventType.corrected,
            state=remainder.state,
            digest=None,
            device_time=sub.device_time,
            corrects_id=tagging.id,
            reason=f"the tagging time of {batch.code} was corrected",
            details={
                "split_from": batch.code,
                "corrected_fields": ["event_time"],
                "corrected": {"event_time": batch.tagged_at.isoformat()},
            },
        )
        remainder.tagged_at = batch.tagged_at
        await _follow_tagging_time(work, sub, remainder)


async def _live_remainder(work: _Work, batch: Batch) -> Batch | None:
    """The batch's remainder that is not cancelled, locked for this call."""
    for candidate in work.batches.values():
        if candidate.split_from_id == batch.id and candidate.state != State.cancelled:
            return candidate
    found = (
        await Batch.filter(split_from_id=batch.id)
        .exclude(state=State.cancelled.value)
        .values_list("code", flat=True)
    )
    for code in found:
        if code not in work.batches:
            for locked in await repository.lock_batches({str(code)}):
                _remember(work, locked)
        remainder = work.batches[str(code)]
        if remainder.state != State.cancelled:
            return remainder
    return None


async def _corrected_value(work: _Work, target: Any, name: str, column: str) -> Any:
    """A field of an event as its corrections so far leave it."""
    value = getattr(target, column)
    fixes: list[CustodyEvent | repository.NewEvent] = [
        *await CustodyEvent.filter(corrects_id=target.id).order_by("seq"),
        *(e for e in work.new_events if e.corrects_id == target.id),
    ]
    for fix in fixes:
        corrected = (fix.details or {}).get("corrected", {})
        if name in corrected:
            value = corrected[name]
    return value


async def _follow_remainder(
    work: _Work,
    sub: EventCreate,
    batch: Batch,
    target: Any,
    changed: dict[str, Any],
    *,
    deliverer: int,
) -> Callable[[], Awaitable[str | None]]:
    """The one rule for correcting a receipt's outcome or weight: its remainder follows (made,
    resized or cancelled) while it still lies where the split left it; once anyone has recorded
    a step on it, the correction is refused. Checks now, before the correction changes
    anything, and returns the step that applies it (which gives the remainder's code)."""
    outcome = Outcome(
        changed.get("outcome") or await _corrected_value(work, target, "outcome", "outcome")
    )
    weight = changed.get("weight_kg")
    if weight is None:
        weight = await _corrected_value(work, target, "weight_kg", "weight_kg")
    details = target.details or {}
    stated = Decimal(details["refused_kg"]) if details.get("refused_basis") == "stated" else None
    refused = _refused_kg(work, batch, outcome=outcome, weight_kg=weight, stated=stated)
    remainder = await _live_remainder(work, batch)
    reason = f"the partial acceptance of {batch.code} was corrected"

    async def make() -> str | None:
        if refused is None:
            return None
        made = await _split_remainder(
            work,
            batch,
            refused_kg=refused,
            holder_id=deliverer,
            sub=sub,
            reason=sub.reason or target.reason,
        )
        return made.code

    if remainder is None:
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
            field="outcome" if "outcome" in changed else "weight_kg",
        )
    marker = {"split_from": batch.code}

    async def follow() -> str | None:
        if refused is None:
            _new_event(
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
        _new_event(
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


async def _treated(work: _Work, sub: EventCreate, batch: Batch, digest: str) -> repository.NewEvent:
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
    return _new_event(
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
    work: _Work, sub: EventCreate, parent: Batch, digest: str
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
            _check_allowed(work.principal, child, relation, EventType.aggregated)
        except DomainError as error:
            error.field = field_name
            raise
        children.append(child)
    ancestor = parent.parent_id
    if ancestor and any(child.id == ancestor for child in children):
        raise ValidationFailed("a batch cannot contain its own container", field="children")
    for child in children:
        child.parent_id = parent.id
        _new_event(
            work,
            child,
            None,
            event_type=EventType.aggregated,
            state=State.aggregated.value,
            digest=None,
            related_batch_id=parent.id,
            details={"into": parent.code, "event": str(sub.client_event_id)},
        )
    return _new_event(
        work,
        parent,
        sub,
        event_type=EventType.aggregated,
        state=parent.state,
        digest=digest,
        details={"children": [c.code for c in children]},
    )


# What a correction may change, by the type of the event it corrects (docs/metrics.md §2);
# position, photo, reason and note may be corrected on any event.
CORRECTABLE: dict[str, tuple[str, ...]] = {
    EventType.tagged: ("event_time", "quantity", "unit", "category"),
    EventType.received: ("outcome", "weight_kg"),
    EventType.treated: ("method", "weight_kg"),
}
_ANY_EVENT = ("weight_kg", "latitude", "longitude", "photo_sha256", "reason")
_CORRECTION_FIELDS = (*dict.fromkeys(f for fs in CORRECTABLE.values() for f in fs), *_ANY_EVENT)


async def _correction_target(work: _Work, sub: EventCreate, batch: Batch) -> Any:
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


async def _is_latest_step(work: _Work, batch: Batch, target: Any) -> bool:
    """Whether no step other than corrections follows the event (its state is the batch's)."""
    if any(
        e.batch_id == batch.id and e.seq > target.seq and e.event_type != EventType.corrected
        for e in work.new_events
    ):
        return False
    return not await (
        CustodyEvent.filter(batch_id=batch.id, seq__gt=target.seq)
        .exclude(event_type=EventType.corrected)
        .exists()
    )


async def _corrected(
    work: _Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    target = await _correction_target(work, sub, batch)
    principal = work.principal
    if target.organization_id != principal.organization_id and principal.role not in (
        Role.manager,
        Role.admin,
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
    state = batch.state
    deliverer = _deliverer(batch, target.organization_id)
    follow = None
    if target.event_type == EventType.received and changed.keys() & {"outcome", "weight_kg"}:
        follow = await _follow_remainder(work, sub, batch, target, changed, deliverer=deliverer)
    if target.event_type == EventType.tagged:
        await _correct_tagging(work, batch, changed)
        if "event_time" in changed:
            await _follow_tagging_time(work, sub, batch)
    elif "outcome" in changed or "method" in changed:
        state = await _corrected_state(work, sub, batch, target, changed)
    remainder = await follow() if follow is not None else None
    follows = {"remainder": remainder} if remainder else {}
    return _new_event(
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
            "corrected": {
                name: value.isoformat() if isinstance(value, datetime) else str(value)
                for name, value in sorted(changed.items())
            },
            **follows,
        },
    )


async def _correct_tagging(work: _Work, batch: Batch, changed: dict[str, Any]) -> None:
    """The batch carries its tagging after corrections: time, quantity, unit, category."""
    if "event_time" in changed:
        when: datetime = changed["event_time"]
        if when > work.now + CLOCK_SKEW:
            raise ValidationFailed("event_time lies in the future", field="event_time")
        batch.tagged_at = when
    if "category" in changed:
        category = await catalog.category_for_stream(
            stream=batch.stream_id, category=changed["category"]
        )
        await catalog.validate_waste_code(category=category.key, waste_code=batch.waste_code)
        batch.category_id = category.key
    unit = changed.get("unit", batch.unit)
    quantity = Decimal(changed.get("quantity", batch.quantity))
    if quantity > MAX_QUANTITY[Unit(unit)]:
        raise ValidationFailed(
            f"quantity above {MAX_QUANTITY[Unit(unit)]} {unit} is implausible for one batch",
            field="quantity",
        )
    batch.quantity = quantity
    batch.unit = Unit(unit)


async def _corrected_state(
    work: _Work, sub: EventCreate, batch: Batch, target: Any, changed: dict[str, Any]
) -> str:
    """A corrected receipt outcome or treatment method; when it changes the state the event
    set, the event must still be the batch's latest step."""
    if target.event_type == EventType.received:
        outcome = Outcome(changed["outcome"])
        if outcome == Outcome.partially_accepted and not (sub.reason or target.reason):
            raise ValidationFailed("reason is required for a partial acceptance", field="reason")
        if outcome != Outcome.rejected and sub.weight_kg is None and target.weight_kg is None:
            raise ValidationFailed(
                "weight_kg is required when waste is accepted", field="weight_kg"
            )
        new_state = State.rejected if outcome == Outcome.rejected else State.received
    else:
        method = work.catalog.methods.get(changed["method"])
        if method is None:
            raise ValidationFailed(
                f"unknown treatment method {changed['method']!r}", field="method"
            )
        stream_methods = (work.catalog.streams[batch.stream_id].rules or {}).get(
            "treatment_methods"
        )
        if stream_methods is not None and method.code not in stream_methods:
            raise RuleViolation(
                f"{batch.stream_id} waste may only be treated by {', '.join(stream_methods)}",
                field="method",
            )
        new_state = State.treated if method.mode in FINAL_MODES else State.stored
    if new_state.value == target.state_after:
        return batch.state
    if not await _is_latest_step(work, batch, target):
        raise RuleViolation(
            f"this correction would change the batch's state from {target.state_after} to"
            f" {new_state.value}, but later steps follow that event: correct those first",
            field="corrects",
        )
    if new_state == State.rejected:
        batch.destination_id = None
    elif target.event_type == EventType.received:
        batch.holder_id = target.organization_id
        batch.destination_id = target.organization_id
    return new_state.value


async def _cancelled(
    work: _Work, sub: EventCreate, batch: Batch, digest: str
) -> repository.NewEvent:
    if await Batch.filter(parent_id=batch.id).exists() or any(
        b.parent_id == batch.id for b in work.touched.values()
    ):
        raise RuleViolation(
            "a container that holds batches cannot be cancelled", field="event_type"
        )
    return _new_event(
        work,
        batch,
        sub,
        event_type=EventType.cancelled,
        state=State.cancelled.value,
        digest=digest,
        reason=sub.reason,
    )


_HANDLERS = {
    EventType.collected: _collected,
    EventType.handed_over: _handed_over,
    EventType.in_transit: _in_transit,
    EventType.stored: _stored,
    EventType.received: _received,
    EventType.treated: _treated,
    EventType.aggregated: _aggregated,
    EventType.corrected: _corrected,
    EventType.cancelled: _cancelled,
}


async def history(*, principal: Principal, code: str) -> tuple[Batch, list[CustodyEvent]]:
    """A visible batch and its events in order."""
    batch = await batches.get_visible_batch(principal, code)
    return batch, await CustodyEvent.filter(batch_id=batch.id).order_by("seq")


async def verify_chain(*, principal: Principal, code: str, secret: str) -> dict[str, Any]:
    """Recompute every hash of a visible batch's chain, check its anchored head, and report
    the first break."""
    batch, events = await history(principal=principal, code=code)
    return await check_chain(batch=batch, events=events, secret=secret)


async def check_chain(*, batch: Batch, events: list[CustodyEvent], secret: str) -> dict[str, Any]:
    """The verdict on one chain: hashes (keyed, or plain up to the seq the chain had when keys
    came), links, and the batch row's head, so a chain cut short is caught too."""
    ring = keys.ring(secret)
    legacy = await LegacyChain.get_or_none(batch_id=batch.id)
    legacy_through = legacy.through_seq if legacy else 0
    related_ids = {e.related_batch_id for e in events if e.related_batch_id}
    related = (
        dict(await Batch.filter(id__in=related_ids).values_list("id", "code"))
        if related_ids
        else {}
    )

    def broken(seq: int, detail: str) -> dict[str, Any]:
        return {
            "batch_code": batch.code,
            "events": len(events),
            "valid": False,
            "broken_at_seq": seq,
            "detail": detail,
        }

    previous, floor = "0" * 64, 1
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return broken(expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != previous:
            return broken(expected_seq, "prev_hash does not match the previous event")
        hashed = functools.partial(
            event_hash,
            event,
            batch_code=batch.code,
            related_code=related.get(event.related_batch_id),
        )
        if event.seq <= legacy_through:
            matches = hmac.compare_digest(event.hash, hashed(key=None))
        else:
            # Any key version may have written it, but a chain never goes back to an older one.
            version = next(
                (
                    v
                    for v in ring.versions
                    if v >= floor
                    and hmac.compare_digest(event.hash, hashed(key=ring.key(keys.CHAIN_MAC, v)))
                ),
                None,
            )
            matches, floor = version is not None, version or floor
        if not matches:
            return broken(expected_seq, "the event's content does not match its hash")
        previous = event.hash
    if batch.last_seq != len(events) or (batch.last_hash or "0" * 64) != previous:
        return broken(
            len(events) + 1,
            f"the chain ends at seq {len(events)} but the batch's head is seq {batch.last_seq}",
        )
    return {"batch_code": batch.code, "events": len(events), "valid": True}


async def record_one(*, principal: Principal, submission: EventCreate, secret: str) -> Recorded:
    """Apply one event; a refusal or a conflicting resend raises its error."""
    (outcome,) = await record_events(principal=principal, submissions=[submission], secret=secret)
    observability.posted_results("event", [outcome.result])
    if outcome.error is not None:
        raise outcome.error
    return outcome


@dataclass(frozen=True, slots=True)
class ScanResult:
    batch: Batch | None
    label: Label | None
    actions: list[str]


async def scan(*, principal: Principal, scanned: str, secret: str) -> ScanResult:
    """What a scanned or typed code names for this user, and the events they may record next."""
    code = batches.resolve_code(scanned, secret=secret, field="qr")
    batch = await batches.visible_batches(principal).get_or_none(code=code)
    if batch is not None:
        return ScanResult(batch=batch, label=None, actions=allowed_actions(principal, batch))
    label = await batches.get_label_for_binding(principal, code)
    if label is None:
        raise NotFound(batches.NOT_FOUND, field="qr")
    actions = [EventType.tagged.value] if principal.role in TAGGING_ROLES else []
    return ScanResult(batch=None, label=label, actions=actions)


async def fate(*, principal: Principal, code: str) -> dict[str, Any]:
    """What became of a batch the user may see, following it into the containers it was
    aggregated into (a clinic's bag in a carrier's round), without naming other parties."""
    batch = await batches.get_visible_batch(principal, code)
    final = batch
    containers = []
    while final.parent_id is not None:
        final = await Batch.get(id=final.parent_id)
        containers.append(final.code)
    treated = (
        await CustodyEvent.filter(batch_id=final.id, event_type=EventType.treated)
        .order_by("-seq")
        .first()
    )
    return {
        "code": batch.code,
        "state": batch.state,
        "containers": containers,
        "fate_state": final.state,
        "method": treated.method_id if treated else None,
        "mode": treated.mode if treated else None,
        "treated_at": treated.device_time if treated else None,
    }
