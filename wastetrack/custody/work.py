"""The unit of work of one recording call: what it loaded up front, the rows it will write at
the end, and the steps every event type shares (the common checks, appending an event to a
batch's chain, issuing a label, a batch about to be tagged)."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from wastetrack.alerts import service as alerts
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch, Label
from wastetrack.batches.service import ScanReader
from wastetrack.catalog import service as catalog
from wastetrack.catalog.service import CatalogSnapshot
from wastetrack.core import codes, keys
from wastetrack.core.errors import (
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.core.reported import CLOCK_SKEW, check_reported
from wastetrack.core.settings import get_settings
from wastetrack.custody import repository
from wastetrack.custody.chain import event_hash
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.rules import (
    HANDLER_ROLES,
    EventType,
    State,
)
from wastetrack.evidence import service as evidence
from wastetrack.registry import roles
from wastetrack.registry.models import Organization


@dataclass
class Work:
    """Everything one call loaded up front, and the rows it will write at the end."""

    principal: Principal
    """Whose submission is being applied (several principals share a call of single posts)."""
    secret: str
    reader: ScanReader
    """Reads the call's scanned texts: codes, QR URLs and HJ 1276 identifiers."""
    now: datetime
    catalog: CatalogSnapshot
    timezone: str
    manifest_tolerance: Decimal
    """How far a transfer manifest's quantity may be off its batches' declared masses."""
    batches: dict[str, Batch] = field(default_factory=dict)
    codes_by_id: dict[int, str] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    organizations: dict[int, Organization] = field(default_factory=dict)
    # The photos the call's records cite that their organizations hold: (organization, photo).
    photos: set[tuple[int, str]] = field(default_factory=set)
    licences: dict[tuple[int, str, date], list[str] | None] = field(default_factory=dict)
    # Per carrier: whether it has registered its fleet (wastetrack.fleet).
    fleets: dict[int, bool] = field(default_factory=dict)
    sites: dict[int, repository.SiteRef] = field(default_factory=dict)
    batch_ids: list[int] = field(default_factory=list)
    new_labels: list[repository.NewLabel] = field(default_factory=list)
    bound_labels: list[str] = field(default_factory=list)
    new_batches: dict[int, Batch] = field(default_factory=dict)
    new_events: list[repository.NewEvent] = field(default_factory=list)
    touched: dict[int, Batch] = field(default_factory=dict)
    # Batches whose facts change though no event of the call is theirs: the container a child
    # was taken out of by an undone aggregation (its contents changed).
    refresh: set[int] = field(default_factory=set)
    # The children the database holds, per batch of the call (id -> category), read once for
    # every batch the call locked (`transitions.contents`): most are no containers.
    stored_children: dict[int, dict[int, str]] = field(default_factory=dict)
    clock_anomalies: list[alerts.ClockAnomaly] = field(default_factory=list)
    # Per HJ 1276 prefix the call tags under: the numbers given out before it and those its
    # taggings took (`identifiers.check_room`).
    identifier_numbers: dict[str, int] = field(default_factory=dict)


async def begin(principal: Principal, *, secret: str, texts: Iterable[str | None] = ()) -> Work:
    """A call's unit of work, acting as the principal, with a reader of the texts it scans."""
    return Work(
        principal=principal,
        secret=secret,
        reader=await batches.scan_reader(texts, secret=secret),
        now=datetime.now(UTC),
        catalog=await catalog.snapshot(),
        timezone=get_settings().timezone,
        manifest_tolerance=get_settings().manifest_quantity_tolerance,
    )


def code_by_id(work: Work, batch_id: int) -> str:
    return work.codes_by_id[batch_id]


def remember(work: Work, batch: Batch) -> None:
    work.batches[batch.code] = batch
    work.codes_by_id[batch.id] = batch.code


async def locked_container(work: Work, batch_id: int) -> Batch:
    """A container whose contents or manifests a step judges, locked for the rest of the
    transaction as the call's own batches are, so that a manifest drafted of it at the same
    moment waits for the step or is waited for; the call's own copy when it holds it."""
    code = work.codes_by_id.get(batch_id)
    if code is not None and code in work.batches:
        return work.batches[code]
    return await Batch.filter(id=batch_id).select_for_update().get()


def organization(work: Work, organization_id: int, field_name: str) -> Organization:
    org = work.organizations.get(organization_id)
    if org is None:
        raise ValidationFailed(f"no organization {organization_id}", field=field_name)
    return org


# The kinds of organization whose staff may record a step that moves a batch on: only they may
# be named to hold it (a handover's receiver, a destination). An authority's managers and
# auditors record none, so a bag handed to the bureau stayed there for good.
HOLDER_KINDS = roles.kinds_for(HANDLER_ROLES)


def holding_organization(work: Work, organization_id: int, field_name: str) -> Organization:
    """An organization named to hold the batch (a handover's receiver, a transit's or a
    tagging's destination): one that may hold waste (`HOLDER_KINDS`), or a 422 naming the
    field, nothing written."""
    org = organization(work, organization_id, field_name)
    if org.kind not in HOLDER_KINDS:
        staff = ", ".join(r.value for r in roles.ROLES_BY_KIND[org.kind])
        raise ValidationFailed(
            f"{org.name} ({org.kind.value}) holds no waste: its staff ({staff}) record no step"
            " that would move it on",
            field=field_name,
        )
    return org


def check_common(
    work: Work, sub: EventCommand, tagged_at: datetime | None, batch: Batch | None = None
) -> None:
    check_reported(sub.device_time, now=work.now, field="device_time")
    if tagged_at is not None and sub.device_time < tagged_at - CLOCK_SKEW:
        raise ValidationFailed("device_time precedes the batch's tagging", field="device_time")
    held = {sha for org, sha in work.photos if org == work.principal.organization_id}
    evidence.check_stored(sub.photo_sha256, stored=held, field="photo_sha256")
    if batch is not None:
        check_order(work, sub, batch)


def check_order(work: Work, sub: EventCommand, batch: Batch, *, field: str | None = None) -> None:
    """An event on `batch` at the submission's device time: refused before the batch's tagging
    when `field` names what to refuse (a child scanned into a container; the batch itself is
    checked by `check_common`), flagged when it precedes the batch's last event."""
    if field is not None and sub.device_time < batch.tagged_at - CLOCK_SKEW:
        raise ValidationFailed("device_time precedes the batch's tagging", field=field)
    flag_if_behind(work, sub, batch, batch.last_device_time)


def flag_if_behind(
    work: Work,
    sub: EventCommand,
    batch: Batch,
    known: datetime | None,
    *,
    at: datetime | None = None,
) -> None:
    """Flag (not refuse) the event about to be appended to `batch` when its device time (or
    `at`, the moment it dates: a tagging's corrected time) runs behind `known`, a moment the
    batch had certainly reached (its latest step, its label's printing), by more than the clock
    skew: a phone with a wrong clock, or one that synced late."""
    moment = sub.device_time if at is None else at
    if known is not None and moment < known - CLOCK_SKEW:
        work.clock_anomalies.append(
            alerts.ClockAnomaly(
                batch_id=batch.id,
                code=batch.code,
                seq=batch.last_seq + 1,
                organization_id=work.principal.organization_id,
                region_path=batch.region_path,
                device_time=moment,
                previous_device_time=known,
                client_event_id=sub.client_event_id,
            )
        )


def new_event(
    work: Work,
    batch: Batch,
    sub: EventCommand | None,
    *,
    event_type: EventType,
    state: str,
    digest: str | None,
    **values: Any,
) -> repository.NewEvent:
    """Append one event to the batch's chain (in memory until the call writes)."""
    details = values.pop("details", {})
    # An id the caller chose first (a receipt its remainder's tagging names), else a new one.
    event_id = values.pop("id", None) or uuid.uuid4()
    # Events the service writes itself (a remainder's) may carry the time of what caused them.
    when = values.pop("device_time", None) or (sub.device_time if sub else work.now)
    if sub is not None and sub.note:
        details = {**details, "note": sub.note}
    event = repository.NewEvent(
        id=event_id,
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
        details=details,
        **values,
    )
    _link(work, batch, event)
    batch.state = state
    batch.last_seq = event.seq
    # The latest device time of a step taken with the batch: a late-synced event does not turn
    # it back, and a correction (an act on the record, not on the waste) does not move it.
    if event_type != EventType.corrected:
        previous = batch.last_device_time
        batch.last_device_time = max(previous, when) if previous else when
    work.new_events.append(event)
    work.touched[batch.id] = batch
    return event


def _link(work: Work, batch: Batch, event: repository.NewEvent) -> None:
    """Chain `event` to its batch's head and hash it under the chain key: it is the head now."""
    event.prev_hash = batch.last_hash or "0" * 64
    related = event.related_batch_id
    event.hash = event_hash(
        event,
        batch_code=batch.code,
        related_code=code_by_id(work, related) if related else None,
        key=keys.ring(work.secret).key(keys.CHAIN_MAC),
    )
    batch.last_hash = event.hash


def pin_identifiers(work: Work, numbered: list[Batch]) -> None:
    """Write into the tagging of each batch the call numbered its HJ 1276 identifier, which
    tagging hashed as the bare prefix (the number is issued when the call writes), and hash
    the batch's chain again from there: the batch is new, so its whole chain is in the call and
    not written yet. `chain.check_chain` then finds a rewritten identifier as it finds a
    rewritten producer."""
    pinned = {batch.id: batch for batch in numbered if batch.identifier is not None}
    for batch in pinned.values():
        batch.last_hash = ""
    for event in work.new_events:
        numbered_batch = pinned.get(event.batch_id)
        if numbered_batch is None:
            continue
        if event.seq == 1:
            event.details = {**event.details, "identifier": numbered_batch.identifier}
        _link(work, numbered_batch, event)


def issue_label(work: Work, stream: str) -> str:
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


def new_batch(work: Work, **fields: Any) -> Batch:
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
    remember(work, batch)
    work.new_batches[batch.id] = batch
    return batch


async def _stored_children(work: Work, parents: list[int]) -> dict[int, str]:
    """The children the database holds of these batches (id -> category): read once for every
    batch the call has locked, then for deeper containers as a climb down meets them; the
    answer is of `parents` alone."""
    read = parents
    if not work.stored_children:
        read = [*{b.id for b in work.batches.values()} | set(parents)]
    missing = [p for p in read if p not in work.stored_children]
    if missing:
        work.stored_children.update({p: {} for p in missing})
        rows = await Batch.filter(parent_id__in=missing).values("id", "category_id", "parent_id")
        for row in rows:
            work.stored_children[row["parent_id"]][row["id"]] = row["category_id"]
    return {i: c for p in parents for i, c in work.stored_children[p].items()}


async def children(work: Work, parents: list[int]) -> dict[int, str]:
    """The batches packed directly into any of `parents` (id -> category) as this call leaves
    them: the stored ones but those the call took out (an undone packing) or recategorized,
    and those the call packed in, whose rows are not written yet. Every rule that asks what a
    container holds asks it here."""
    found = await _stored_children(work, parents)
    found |= {
        b.id: b.category_id
        for b in work.batches.values()
        if b.parent_id is not None and b.parent_id in parents
    }
    for child_id in list(found):
        code = work.codes_by_id.get(child_id)
        known = work.batches[code] if code is not None else None
        if known is not None:
            if known.parent_id not in parents:
                del found[child_id]
            else:
                found[child_id] = known.category_id
    return found
