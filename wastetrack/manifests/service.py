"""Transfer manifest rules (危险废物转移管理办法, 部令第23号, 2022): numbering, sections locked
by signatures, the receiver's decision within 5 working days, discrepancies, revisions."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from tortoise.expressions import Q

from schemas.events import EventCreate
from schemas.manifests import Decision, LegSign, ManifestCreate, RevisionCreate
from wastetrack.auth.models import Role
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.calendar import service as calendar
from wastetrack.catalog import service as catalog
from wastetrack.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
from wastetrack.custody import recorder
from wastetrack.custody.rules import EventType
from wastetrack.fleet import service as fleet
from wastetrack.manifests.models import (
    Manifest,
    ManifestDiscrepancy,
    ManifestLeg,
    ManifestRevision,
    ManifestSerial,
)
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind

HAZARDOUS = "hazardous"
DECISION_WORKING_DAYS = 5
LOCKED = "this section is signed and locked; propose a revision instead"
FINAL = {"accepted", "partially_accepted", "rejected", "cancelled"}


async def decision_due(*, arrived_at: datetime, timezone: str) -> datetime:
    """The end of the 5th working day after the day of arrival, both days in the city's time
    zone whatever offset the client sent, working days from the official calendar."""
    arrival_day = calendar.local_date(arrived_at, timezone=timezone)
    due = await calendar.add_working_days(start=arrival_day, n=DECISION_WORKING_DAYS)
    return calendar.day_start(due.day + timedelta(days=1), timezone=timezone)


async def _next_number(*, area_code: str, year: int) -> str:
    """year(4) + province(2) + prefecture(2) + serial(6), serials never reused."""
    key = f"{year}{area_code}"
    serial, _ = await ManifestSerial.get_or_create(key=key)
    serial = await ManifestSerial.select_for_update().get(key=key)
    serial.last_serial += 1
    await serial.save(update_fields=["last_serial"])
    return f"{key}{serial.last_serial:06d}"


async def create_manifest(
    *, principal: Principal, submission: ManifestCreate, area_code: str, secret: str
) -> Manifest:
    """The producer drafts a manifest for one trip of one waste type and its batches."""
    if principal.role != Role.generator:
        raise Forbidden("the producer (移出人) drafts the manifest", field="role")
    snap = await catalog.snapshot()
    category = snap.categories.get(submission.category)
    if category is not None and category.stream_id == "household":
        raise RuleViolation(
            "household hazardous waste (家庭源) is exempt from transfer manifests", field="category"
        )
    category = await catalog.category_for_stream(stream=HAZARDOUS, category=submission.category)
    await catalog.validate_waste_code(category=category.key, waste_code=submission.waste_code)
    codes = []
    for index, scanned in enumerate(submission.batches):
        code = batches.resolve_code(scanned, secret=secret, field=f"batches[{index}]")
        batch = await batches.get_visible_batch(principal, code)
        if (
            batch.producer_id != principal.organization_id
            or batch.waste_code != submission.waste_code
        ):
            raise ValidationFailed(
                "every batch must be yours and of the manifest's waste code",
                field=f"batches[{index}]",
            )
        if batch.state not in ("tagged", "stored"):
            raise RuleViolation(
                f"batch {code} has left the producer already", field=f"batches[{index}]"
            )
        codes.append(code)
    receiver = await registry.get_organization(
        submission.receiver_organization_id, field="receiver_organization_id"
    )
    licence = await registry.licence_covering(
        organization_id=receiver.id, category_key=category.key, on=datetime.now(UTC).date()
    )
    if receiver.kind != OrganizationKind.treatment_facility or licence is None:
        raise Forbidden(
            f"the receiver holds no valid licence for {category.key}",
            field="receiver_organization_id",
        )
    plates = []
    for index, leg in enumerate(submission.legs):
        carrier = await registry.get_organization(
            leg.carrier_organization_id, field=f"legs[{index}].carrier_organization_id"
        )
        if carrier.kind != OrganizationKind.carrier:
            raise ValidationFailed(
                "a leg's carrier must be a carrier", field=f"legs[{index}].carrier_organization_id"
            )
        plates.append(
            await fleet.plate_for_carriage(
                organization_id=carrier.id,
                plate=leg.vehicle_plate,
                rule=fleet.REGISTERED,
                on=datetime.now(UTC).date(),
                field=f"legs[{index}].vehicle_plate",
            )
        )
    producer = await registry.get_organization(principal.organization_id)
    manifest = await Manifest.create(
        number=await _next_number(area_code=area_code, year=datetime.now(UTC).year),
        state="draft",
        producer_id=producer.id,
        region_path=producer.region.path,
        category_id=category.key,
        waste_code=submission.waste_code,
        waste_name=submission.waste_name,
        hazard=list(submission.hazard),
        physical_form=submission.physical_form,
        packaging=submission.packaging,
        quantity_kg=submission.quantity_kg,
        emergency_measures=submission.emergency_measures,
        batch_codes=codes,
        receiver_id=receiver.id,
        created_by_id=principal.user_id,
    )
    await ManifestLeg.bulk_create(
        [
            ManifestLeg(
                manifest=manifest,
                seq=seq,
                carrier_id=leg.carrier_organization_id,
                vehicle_plate=plate,
                permit_number=leg.permit_number,
            )
            for seq, (leg, plate) in enumerate(zip(submission.legs, plates, strict=True), start=1)
        ]
    )
    return manifest


def _scope(principal: Principal) -> Q:
    if principal.role == Role.admin:
        return Q()
    org = principal.organization_id
    scope = Q(producer_id=org) | Q(receiver_id=org) | Q(legs__carrier_id=org)
    if principal.sees_region:
        scope |= Q(region_path__startswith=principal.region_path)
    return scope


async def get_manifest(*, principal: Principal, manifest_id: int, lock: bool = False) -> Manifest:
    """A manifest the user is party to (managers and auditors: in their region)."""
    query = Manifest.filter(_scope(principal), id=manifest_id).distinct()
    found = await query.first()
    if found is None:
        raise NotFound(f"no manifest {manifest_id}", field="manifest_id")
    if lock:
        found = await Manifest.select_for_update().get(id=found.id)
    await found.fetch_related("legs", "discrepancies", "revisions")
    return found


async def list_manifests(*, principal: Principal, discrepant: bool) -> list[Manifest]:
    query = Manifest.filter(_scope(principal)).distinct().order_by("-id")
    if discrepant:
        query = query.filter(discrepancies__id__not_isnull=True)
    return await query.limit(200).prefetch_related("legs", "discrepancies", "revisions")


async def _record(principal: Principal, events: list[dict[str, Any]], secret: str) -> None:
    submissions = [EventCreate.model_validate(e) for e in events]
    for outcome in await recorder.record_events(
        principal=principal, submissions=submissions, secret=secret
    ):
        if outcome.error is not None:
            raise outcome.error


def _event_id(manifest: Manifest, step: str, code: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"manifest:{manifest.number}:{step}:{code}")


async def sign_producer(
    *, principal: Principal, manifest_id: int, secret: str, handed_over_at: datetime | None = None
) -> Manifest:
    """The producer signs its section (locking it): the batches go to the first carrier, at
    `handed_over_at` by the producer's clock (default: now)."""
    manifest = await get_manifest(principal=principal, manifest_id=manifest_id, lock=True)
    if principal.organization_id != manifest.producer_id or principal.role != Role.generator:
        raise Forbidden("only the producer signs the producer's section", field="role")
    if manifest.producer_signed_at is not None:
        raise Conflict(LOCKED, field="producer")
    first = min(manifest.legs, key=lambda leg: leg.seq)
    now = datetime.now(UTC)
    # Signed first: the hand-over below is allowed only on a signed manifest.
    manifest.producer_signed_by_id = principal.user_id
    manifest.producer_signed_at = now
    manifest.state = "submitted"
    await manifest.save(update_fields=["producer_signed_by_id", "producer_signed_at", "state"])
    await _record(
        principal,
        [
            {
                "client_event_id": _event_id(manifest, "handover", code),
                "event_type": EventType.handed_over,
                "batch": code,
                "device_time": handed_over_at or now,
                "to_organization_id": first.carrier_id,
                "vehicle_plate": first.vehicle_plate,
                "note": f"联单 {manifest.number}",
            }
            for code in manifest.batch_codes
        ],
        secret,
    )
    return manifest


async def sign_leg(
    *, principal: Principal, manifest_id: int, seq: int, signature: LegSign, secret: str
) -> Manifest:
    """A carrier signs its leg at handover (time and place), in order; the first leg puts the
    batches in transit to the receiver."""
    manifest = await get_manifest(principal=principal, manifest_id=manifest_id, lock=True)
    legs = sorted(manifest.legs, key=lambda leg: leg.seq)
    leg = next((leg for leg in legs if leg.seq == seq), None)
    if leg is None:
        raise NotFound(f"no leg {seq}", field="seq")
    if principal.organization_id != leg.carrier_id or principal.role != Role.carrier:
        raise Forbidden("only the leg's carrier signs it", field="role")
    if leg.signed_at is not None:
        raise Conflict(LOCKED, field=f"legs[{seq}]")
    if manifest.producer_signed_at is None or any(
        earlier.signed_at is None for earlier in legs if earlier.seq < seq
    ):
        raise RuleViolation("the producer and the earlier legs sign first", field="seq")
    # The leg's vehicle must be the carrier's, licensed for hazardous goods on the day.
    await fleet.plate_for_carriage(
        organization_id=leg.carrier_id,
        plate=leg.vehicle_plate,
        rule=fleet.HAZARDOUS_LICENCE,
        on=calendar.local_date(signature.handover_at, timezone=get_settings().timezone),
    )
    if seq == 1:
        await _record(
            principal,
            [
                {
                    "client_event_id": _event_id(manifest, "transit", code),
                    "event_type": EventType.in_transit,
                    "batch": code,
                    "device_time": signature.handover_at,
                    "destination_organization_id": manifest.receiver_id,
                    "vehicle_plate": leg.vehicle_plate,
                    "note": f"联单 {manifest.number}",
                }
                for code in manifest.batch_codes
            ],
            secret,
        )
    leg.handover_at = signature.handover_at
    leg.handover_place = signature.handover_place
    leg.signed_by_id = principal.user_id
    leg.signed_at = datetime.now(UTC)
    await leg.save(update_fields=["handover_at", "handover_place", "signed_by_id", "signed_at"])
    manifest.state = f"in_transit_leg_{seq}"
    await manifest.save(update_fields=["state"])
    return manifest


@dataclass(frozen=True, slots=True)
class Signature:
    """One item of a bulk signing: the manifest, for a carrier its leg (default: its first leg
    not signed yet) and the handover's time and place."""

    manifest_id: int
    seq: int | None = None
    handover_at: datetime | None = None
    handover_place: str | None = None


@dataclass(frozen=True, slots=True)
class Signed:
    manifest: Manifest
    seq: int | None
    already: bool


async def sign_many(
    *,
    principal: Principal,
    role: Literal["producer", "carrier"],
    signatures: list[Signature],
    secret: str,
) -> list[Signed]:
    """Sign many manifests of one round at once (e-Manifest's "quicker sign"), each by the
    single-signature rule: all or nothing, every refusal named `manifests[i]`; an item signed
    already with the same content is reported as such, so a retry is harmless."""
    done: list[Signed] = []
    refused: list[tuple[int, DomainError]] = []
    for index, signature in enumerate(signatures):
        try:
            if role == "producer":
                done.append(await _sign_as_producer(principal, signature, secret))
            else:
                done.append(await _sign_as_carrier(principal, signature, secret))
        except DomainError as error:
            refused.append((index, error))
    if refused:
        # The request's transaction rolls back what the items before the refusal signed.
        index, first = refused[0]
        first.extra["errors"] = [
            {
                "field": f"manifests[{i}]",
                "code": error.code,
                "detail": error.detail,
                "item_field": error.field,
            }
            for i, error in refused
        ]
        first.extra["item_field"] = first.field
        first.field = f"manifests[{index}]"
        first.detail = f"manifests[{index}]: {first.detail} (nothing was signed)"
        raise first
    return done


async def _sign_as_producer(principal: Principal, signature: Signature, secret: str) -> Signed:
    manifest = await get_manifest(principal=principal, manifest_id=signature.manifest_id)
    if principal.organization_id != manifest.producer_id or principal.role != Role.generator:
        raise Forbidden("only the producer signs the producer's section", field="role")
    if manifest.producer_signed_at is not None:
        return Signed(manifest, None, already=True)
    signed = await sign_producer(
        principal=principal,
        manifest_id=manifest.id,
        secret=secret,
        handed_over_at=signature.handover_at,
    )
    return Signed(signed, None, already=False)


async def _sign_as_carrier(principal: Principal, signature: Signature, secret: str) -> Signed:
    if signature.handover_at is None or not signature.handover_place:
        raise ValidationFailed("a carrier signs with the handover's time and place", field="role")
    manifest = await get_manifest(principal=principal, manifest_id=signature.manifest_id)
    own = sorted(
        (leg for leg in manifest.legs if leg.carrier_id == principal.organization_id),
        key=lambda leg: leg.seq,
    )
    if signature.seq is not None:
        own = [leg for leg in own if leg.seq == signature.seq]
    if not own or principal.role != Role.carrier:
        raise Forbidden("only the leg's carrier signs it", field="role")
    leg = next((leg for leg in own if leg.signed_at is None), own[-1])
    if leg.signed_at is not None:
        if (leg.handover_at, leg.handover_place) == (
            signature.handover_at,
            signature.handover_place,
        ):
            return Signed(manifest, leg.seq, already=True)
        raise Conflict(LOCKED, field=f"legs[{leg.seq}]")
    signed = await sign_leg(
        principal=principal,
        manifest_id=manifest.id,
        seq=leg.seq,
        signature=LegSign(
            handover_at=signature.handover_at, handover_place=signature.handover_place
        ),
        secret=secret,
    )
    return Signed(signed, leg.seq, already=False)


def _receiver(principal: Principal, manifest: Manifest) -> None:
    if (
        principal.organization_id != manifest.receiver_id
        or principal.role != Role.facility_operator
    ):
        raise Forbidden("only the receiver (接受人) signs the receiver's section", field="role")


async def arrive(
    *, principal: Principal, manifest_id: int, arrived_at: datetime, timezone: str | None = None
) -> Manifest:
    """The receiver records arrival; the decision is due by the end of the 5th working day
    after the day of arrival (city time zone, official calendar)."""
    manifest = await get_manifest(principal=principal, manifest_id=manifest_id, lock=True)
    _receiver(principal, manifest)
    if any(leg.signed_at is None for leg in manifest.legs):
        raise RuleViolation("every leg must be signed before arrival", field="arrived_at")
    if manifest.arrived_at is not None:
        raise Conflict("the arrival is recorded already", field="arrived_at")
    last_handover = max(leg.handover_at for leg in manifest.legs if leg.handover_at)
    if arrived_at < last_handover:
        raise ValidationFailed("arrived_at precedes the last handover", field="arrived_at")
    manifest.arrived_at = arrived_at
    manifest.decision_due_at = await decision_due(
        arrived_at=arrived_at, timezone=timezone or get_settings().timezone
    )
    manifest.state = "arrived"
    await manifest.save(update_fields=["arrived_at", "decision_due_at", "state"])
    return manifest


async def decide(
    *,
    principal: Principal,
    manifest_id: int,
    decision: Decision,
    tolerance: Decimal,
    secret: str,
) -> Manifest:
    """The receiver accepts, partially accepts or rejects, with the quantity received and the
    method; mismatches become discrepancies; the batches are received in the custody chain."""
    manifest = await get_manifest(principal=principal, manifest_id=manifest_id, lock=True)
    _receiver(principal, manifest)
    if manifest.receiver_signed_at is not None:
        raise Conflict(LOCKED, field="decision")
    if manifest.arrived_at is None:
        raise RuleViolation("record the arrival first", field="decision")
    if decision.method is not None:
        licence = await registry.licence_covering(
            organization_id=manifest.receiver_id,
            category_key=manifest.category_id,
            on=datetime.now(UTC).date(),
        )
        if licence is None or decision.method not in licence.method_codes:
            raise Forbidden(
                f"your licence does not cover {decision.method} for {manifest.category_id}",
                field="method",
            )
    now = datetime.now(UTC)
    declared = manifest.quantity_kg
    found: list[tuple[str, str, str]] = []
    if declared and abs(decision.received_quantity_kg - declared) / declared > tolerance:
        found.append(("quantity_kg", str(declared), str(decision.received_quantity_kg)))
    for name in ("waste_name", "physical_form", "packaging"):
        value = getattr(decision.found, name)
        if value is not None and value != getattr(manifest, name):
            found.append((name, getattr(manifest, name), value))
    if decision.found.hazard is not None and set(decision.found.hazard) != set(manifest.hazard):
        found.append(("hazard", ",".join(manifest.hazard), ",".join(decision.found.hazard)))
    await ManifestDiscrepancy.bulk_create(
        [
            ManifestDiscrepancy(manifest=manifest, field=f, declared=d, found=v, recorded_at=now)
            for f, d, v in found
        ]
    )
    share = decision.received_quantity_kg / declared if declared else Decimal(1)
    held = {b.code: b for b in await Batch.filter(code__in=manifest.batch_codes)}
    await _record(
        principal,
        [
            {
                "client_event_id": _event_id(manifest, "received", code),
                "event_type": EventType.received,
                "batch": code,
                "device_time": manifest.arrived_at,
                "outcome": decision.decision,
                "reason": decision.reason,
                **(
                    {}
                    if decision.decision == "rejected"
                    else {"weight_kg": (held[code].quantity * share).quantize(Decimal("0.001"))}
                ),
                "note": f"联单 {manifest.number}",
            }
            for code in manifest.batch_codes
        ],
        secret,
    )
    manifest.decision = decision.decision
    manifest.received_quantity_kg = decision.received_quantity_kg
    manifest.method_id = decision.method
    manifest.decision_reason = decision.reason
    manifest.receiver_signed_by_id = principal.user_id
    manifest.receiver_signed_at = now
    manifest.state = decision.decision
    await manifest.save()
    return await get_manifest(principal=principal, manifest_id=manifest_id)


def _parties(manifest: Manifest) -> set[int]:
    return {manifest.producer_id, manifest.receiver_id} | {leg.carrier_id for leg in manifest.legs}


async def propose_revision(
    *, principal: Principal, manifest_id: int, revision: RevisionCreate
) -> ManifestRevision:
    """A party proposes a correction to a signed manifest; the others must approve it."""
    manifest = await get_manifest(principal=principal, manifest_id=manifest_id)
    if principal.organization_id not in _parties(manifest):
        raise Forbidden("only the manifest's parties propose revisions", field="role")
    if manifest.producer_signed_at is None:
        raise RuleViolation("a draft is edited by its producer, not revised", field="changes")
    if "quantity_kg" in revision.changes:
        try:
            if Decimal(revision.changes["quantity_kg"]) <= 0:
                raise ValueError
        except (ArithmeticError, ValueError):
            raise ValidationFailed(
                "quantity_kg must be a positive number", field="changes.quantity_kg"
            ) from None
    return await ManifestRevision.create(
        manifest=manifest,
        proposed_by_id=principal.user_id,
        proposer_organization_id=principal.organization_id,
        changes=revision.changes,
        reason=revision.reason,
        approvals=[principal.organization_id],
        created_at=datetime.now(UTC),
    )


async def answer_revision(
    *, principal: Principal, manifest_id: int, revision_id: int, approve: bool
) -> ManifestRevision:
    """Another party approves or rejects; approved by all, the change applies and the old
    values stay in the revision."""
    manifest = await get_manifest(principal=principal, manifest_id=manifest_id, lock=True)
    revision = await ManifestRevision.get_or_none(id=revision_id, manifest_id=manifest.id)
    if revision is None:
        raise NotFound(f"no revision {revision_id}", field="revision_id")
    parties = _parties(manifest)
    if principal.organization_id not in parties:
        raise Forbidden("only the manifest's parties answer revisions", field="role")
    if revision.state != "pending":
        raise Conflict(f"the revision is {revision.state} already", field="revision_id")
    if principal.organization_id in revision.approvals:
        raise Conflict("your organization has answered already", field="revision_id")
    now = datetime.now(UTC)
    if not approve:
        revision.state, revision.decided_at = "rejected", now
    else:
        revision.approvals = [*revision.approvals, principal.organization_id]
        if parties <= set(revision.approvals):
            revision.previous = {k: str(getattr(manifest, k)) for k in revision.changes}
            for key, value in revision.changes.items():
                setattr(manifest, key, Decimal(value) if key == "quantity_kg" else value)
            await manifest.save(update_fields=list(revision.changes))
            revision.state, revision.decided_at = "approved", now
    await revision.save()
    return revision


async def party_names(manifest: Manifest) -> dict[int, str]:
    ids = _parties(manifest)
    return dict(await Organization.filter(id__in=ids).values_list("id", "name"))


async def overdue_for_decision(*, now: datetime) -> list[Manifest]:
    """Manifests arrived whose decision is past due."""
    return await Manifest.filter(state="arrived", decision_due_at__lt=now)
