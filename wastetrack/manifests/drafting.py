"""Drafting a transfer manifest (危险废物转移管理办法, 部令第23号, 2022): the producer's batches of
one waste type, each once, a licensed receiver, carriers' vehicles fit for the stream, and its
number."""

from datetime import UTC, date, datetime
from decimal import Decimal

from wastetrack.auth.models import Role
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.catalog import service as catalog
from wastetrack.core import cityday
from wastetrack.core.errors import (
    Conflict,
    Forbidden,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.custody import repository, transitions
from wastetrack.custody.rules import EventType
from wastetrack.fleet.plates import plate_for_carriage
from wastetrack.manifests import queries
from wastetrack.manifests.commands import ManifestCommand
from wastetrack.manifests.models import Manifest, ManifestLeg, ManifestSerial, state_label
from wastetrack.manifests.quantity import check_declared_quantity
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind


async def _next_number(*, area_code: str, year: int) -> str:
    """year(4) + province(2) + prefecture(2) + serial(6), serials never reused."""
    key = f"{year}{area_code}"
    serial, _ = await ManifestSerial.get_or_create(key=key)
    serial = await ManifestSerial.select_for_update().get(key=key)
    serial.last_serial += 1
    await serial.save(update_fields=["last_serial"])
    return f"{key}{serial.last_serial:06d}"


def _check_handed_over_by(principal: Principal, batch: Batch, *, field: str) -> None:
    """The producer's signature hands every batch over to the first carrier (`sign_producer`),
    which custody allows only the batch's holder, from the states the handover's spec lists
    (`rules.check_allowed`): a batch it would refuse (stored at a carrier's depot, say) is
    refused at the draft, before a serial that is never reused is spent on it, and one back in
    the producer's hands (a refused part returned to it, still `handed_over`) is taken."""
    refused = transitions.refusal(principal, batch, EventType.handed_over)
    if refused is not None:
        raise RuleViolation(
            f"batch {batch.code} could not be handed over to the first carrier when you sign:"
            f" {refused}",
            field=field,
        )


async def _check_on_no_other_manifest(code: str, *, field: str) -> None:
    """A batch travels on one manifest at a time: one listed on a draft or an open manifest
    (`queries.open_manifest_of`) is refused, naming that manifest, before a serial that is
    never reused is spent on a draft whose signature would fail. Its caller has locked the
    batch, so two drafts of one batch at once take turns."""
    other = await queries.open_manifest_of(code, drafts=True)
    if other is not None:
        raise Conflict(
            f"batch {code} is on manifest {other.number} ({state_label(other.state)}):"
            " its producer cancels that manifest, or it is decided, before another lists"
            " the batch",
            field=field,
        )


async def create_manifest(
    *,
    principal: Principal,
    submission: ManifestCommand,
    area_code: str,
    secret: str,
    timezone: str,
    tolerance: Decimal,
) -> Manifest:
    """The producer drafts a manifest for one trip of one waste type and its batches, its
    quantity within `tolerance` of what they declare."""
    now = datetime.now(UTC)
    today = cityday.local_date(now, timezone)
    if principal.role != Role.generator:
        raise Forbidden("the producer (移出人) drafts the manifest", field="role")
    category = await catalog.category_for_stream(stream=None, category=submission.category)
    stream = (await catalog.snapshot()).streams[category.stream_id]
    if not (stream.rules or {}).get("manifest"):
        # The stream's rule, as data: household hazardous waste (家庭源) and medical waste,
        # for instance, travel without a transfer manifest.
        raise RuleViolation(
            f"{stream.name_zh} ({stream.code}) is exempt from transfer manifests (its stream's"
            " rule `manifest`)",
            field="category",
        )
    await catalog.validate_waste_code(category=category.key, waste_code=submission.waste_code)
    codes: list[str] = []
    listed: list[Batch] = []
    reader = await batches.scan_reader(submission.batches, secret=secret)
    for index, scanned in enumerate(submission.batches):
        code = reader.resolve(scanned, field=f"batches[{index}]")
        if code in codes:
            raise ValidationFailed(
                f"batch {code} is listed twice (batches[{codes.index(code)}])",
                field=f"batches[{index}]",
            )
        codes.append(code)
    # Locked before they are judged (in id order, as custody locks them): a sync that moves a
    # batch meanwhile, or another draft of it, waits, and what is checked below stands.
    await repository.lock_batches(set(codes))
    for index, code in enumerate(codes):
        batch = await batches.get_visible_batch(principal, code, field=f"batches[{index}]")
        if (
            batch.producer_id != principal.organization_id
            or batch.waste_code != submission.waste_code
        ):
            raise ValidationFailed(
                "every batch must be yours and of the manifest's waste code",
                field=f"batches[{index}]",
            )
        # Its manifest first: on a signed one, the batch is the carrier's, and the handover's
        # refusal would not say why.
        await _check_on_no_other_manifest(code, field=f"batches[{index}]")
        _check_handed_over_by(principal, batch, field=f"batches[{index}]")
        listed.append(batch)
    check_declared_quantity(
        await catalog.snapshot(),
        batches=listed,
        quantity=submission.quantity_kg,
        tolerance=tolerance,
        field="quantity_kg",
    )
    receiver = await registry.get_organization(
        submission.receiver_organization_id, field="receiver_organization_id"
    )
    if receiver.id == principal.organization_id:
        # A manifest transfers waste (转移) from its producer to another organization: waste a
        # facility treats where it was made moves by custody steps alone. Drafted, it took the
        # drums nowhere and held them from any other manifest.
        raise ValidationFailed(
            "a manifest takes waste to another organization: its receiver is not its producer",
            field="receiver_organization_id",
        )
    await check_receiver(principal, listed, receiver_id=receiver.id, on=today, secret=secret)
    # The vehicles as the stream's rule wants them on the day, as the hand-overs will check
    # them: a leg the producer's signature would refuse is refused while the draft can change.
    vehicle_rule = (stream.rules or {}).get("vehicle_required")
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
            await plate_for_carriage(
                organization_id=carrier.id,
                plate=leg.vehicle_plate,
                rule=vehicle_rule,
                at=now,
                timezone=timezone,
                field=f"legs[{index}].vehicle_plate",
            )
        )
    producer = await registry.get_organization(principal.organization_id)
    manifest = await Manifest.create(
        number=await _next_number(area_code=area_code, year=today.year),
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


async def check_receiver(
    principal: Principal, listed: list[Batch], *, receiver_id: int, on: date, secret: str
) -> None:
    """The receiver as the batches' receipts will judge it: a treatment facility licensed on
    the day for each batch's category and for everything aggregated into it (a load holding a
    drum of another category is received with it), one method covering them all. Judged when
    the manifest is drafted (today) and again when its producer signs, on the handover's city
    day, as the waste leaves for it then (危险废物转移管理办法: the 移出人 makes sure of the
    receiver's licence before the transfer): a draft kept while the licence lapsed sent drums
    where they could only be rejected. A 403 naming `receiver_organization_id`."""
    try:
        await transitions.receivable_methods(
            principal, listed, facility_id=receiver_id, on=on, secret=secret
        )
    except Forbidden as error:
        error.field = "receiver_organization_id"
        raise
