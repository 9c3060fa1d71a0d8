"""Signing a manifest's sections in order (危险废物转移管理办法): the producer's, which locks
the declaration and hands the batches to the first carrier, then each carrier's leg at
handover; one at a time or many of a round at once."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from wastetrack.auth.models import Role, User
from wastetrack.batches.models import Batch
from wastetrack.core import cityday
from wastetrack.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.core.reported import CLOCK_SKEW, check_reported
from wastetrack.core.timefmt import local_limit
from wastetrack.custody.rules import EventType, State
from wastetrack.fleet.plates import HAZARDOUS_LICENCE, plate_for_carriage
from wastetrack.manifests.chain import record
from wastetrack.manifests.commands import (
    HANDOVER_STEP,
    LegSignCommand,
    handover_step,
    step_id,
    transit_step,
)
from wastetrack.manifests.drafting import check_receiver
from wastetrack.manifests.models import Manifest, ManifestLeg
from wastetrack.manifests.queries import (
    get_manifest,
    open_for_action,
    producer_handover,
    refuse_if_cancelled,
)
from wastetrack.registry.models import Organization

LOCKED = "this section is signed and locked; propose a revision instead"


async def sign_producer(
    *,
    principal: Principal,
    manifest_id: int,
    secret: str,
    timezone: str,
    handed_over_at: datetime | None = None,
) -> Manifest:
    """The producer signs its section (locking it): the batches go to the first carrier, at
    `handed_over_at` by the producer's clock (default: now)."""
    manifest = await open_for_action(principal=principal, manifest_id=manifest_id)
    return await _producer_signs(principal, manifest, secret, timezone, handed_over_at)


def _producer_only(principal: Principal, manifest: Manifest) -> None:
    if principal.organization_id != manifest.producer_id or principal.role != Role.generator:
        raise Forbidden("only the producer signs the producer's section", field="role")


async def _producer_signs(
    principal: Principal,
    manifest: Manifest,
    secret: str,
    timezone: str,
    handed_over_at: datetime | None,
) -> Manifest:
    """`sign_producer` on the manifest, open and locked: the receiver judged again on the
    handover's city day (`drafting.check_receiver`), the batches having left then."""
    _producer_only(principal, manifest)
    if manifest.producer_signed_at is not None:
        raise Conflict(LOCKED, field="producer")
    first = min(manifest.legs, key=lambda leg: leg.seq)
    now = datetime.now(UTC)
    # Signed first: the hand-over below is allowed only on a signed manifest.
    manifest.producer_signed_by_id = principal.user_id
    manifest.producer_signed_at = now
    manifest.state = "submitted"
    await manifest.save(update_fields=["producer_signed_by_id", "producer_signed_at", "state"])
    await record(
        principal,
        [
            {
                "client_event_id": step_id(
                    number=manifest.number, step=HANDOVER_STEP, code=code, secret=secret
                ),
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
        fields={
            "vehicle_plate": f"legs[{first.seq - 1}].vehicle_plate",
            "device_time": "handover_at",
        },
    )
    # After the handover's own checks (its time first), in the same transaction.
    await check_receiver(
        principal,
        await Batch.filter(code__in=manifest.batch_codes),
        receiver_id=manifest.receiver_id,
        on=cityday.local_date(handed_over_at or now, timezone),
        secret=secret,
    )
    return manifest


def _numbered(manifest: Manifest, seq: int) -> ManifestLeg:
    """The manifest's leg numbered `seq`; a number it has no leg of is a 404 naming `seq`, for
    a single signature and a bulk item alike (before whose leg it is)."""
    leg = next((leg for leg in manifest.legs if leg.seq == seq), None)
    if leg is None:
        raise NotFound(f"no leg {seq}", field="seq")
    return leg


async def sign_leg(
    *,
    principal: Principal,
    manifest_id: int,
    seq: int,
    signature: LegSignCommand,
    secret: str,
    timezone: str,
) -> Manifest:
    """A carrier signs its leg at handover (time and place), in order, and the batches go in
    transit to the receiver in its hands: the first leg's from the producer's handover, a
    later one's from the previous leg's carrier, the handover recorded by this signature
    unless a scan recorded it first (so the custody chain follows the manifest, and the
    receiver takes the batches in transit, as always)."""
    manifest = await open_for_action(principal=principal, manifest_id=manifest_id)
    return await _leg_signed(principal, manifest, seq, signature, secret, timezone)


async def _leg_signed(
    principal: Principal,
    manifest: Manifest,
    seq: int,
    signature: LegSignCommand,
    secret: str,
    timezone: str,
) -> Manifest:
    """`sign_leg` on the manifest, open and locked."""
    legs = sorted(manifest.legs, key=lambda leg: leg.seq)
    leg = _numbered(manifest, seq)
    if principal.organization_id != leg.carrier_id or principal.role != Role.carrier:
        raise Forbidden("only the leg's carrier signs it", field="role")
    if leg.signed_at is not None:
        raise Conflict(LOCKED, field=f"legs[{seq - 1}]")
    if manifest.producer_signed_at is None or any(
        earlier.signed_at is None for earlier in legs if earlier.seq < seq
    ):
        raise RuleViolation("the producer and the earlier legs sign first", field="seq")
    check_reported(signature.handover_at, now=datetime.now(UTC), field="handover_at")
    # The first carrier takes the batches over from the producer, a later one from the carrier
    # before it.
    previous: datetime | None
    if seq == 1:
        previous, whose = await producer_handover(manifest=manifest, secret=secret), "producer's"
    else:
        previous = max(
            (e.handover_at for e in legs if e.seq < seq and e.handover_at is not None),
            default=None,
        )
        whose = "previous leg's"
    # The producer's moment is the server's when it stated none: a phone's clock may be off
    # by the skew every reported time is allowed.
    allowed = CLOCK_SKEW if seq == 1 else timedelta(0)
    if previous is not None and signature.handover_at < previous - allowed:
        allowance = (
            f"; a phone's clock is allowed {allowed.seconds // 60} minutes" if allowed else ""
        )
        raise ValidationFailed(
            f"handover_at precedes the {whose} handover"
            f" ({local_limit(previous, timezone, earliest=True)}, city time{allowance})",
            field="handover_at",
        )
    # The leg's vehicle must be the carrier's, licensed for hazardous goods on the day; named
    # as the draft lists it.
    plate_field = f"legs[{seq - 1}].vehicle_plate"
    await plate_for_carriage(
        organization_id=leg.carrier_id,
        plate=leg.vehicle_plate,
        rule=HAZARDOUS_LICENCE,
        at=signature.handover_at,
        timezone=timezone,
        field=plate_field,
    )
    moving = list(manifest.batch_codes)
    if seq > 1:
        moving = await _take_over(
            manifest=manifest,
            previous=legs[seq - 2],
            leg=leg,
            at=signature.handover_at,
            place=signature.handover_place,
            secret=secret,
            plate_field=plate_field,
        )
    if moving:
        await record(
            principal,
            [
                {
                    "client_event_id": step_id(
                        number=manifest.number, step=transit_step(seq), code=code, secret=secret
                    ),
                    "event_type": EventType.in_transit,
                    "batch": code,
                    "device_time": signature.handover_at,
                    "destination_organization_id": manifest.receiver_id,
                    "vehicle_plate": leg.vehicle_plate,
                    "note": f"联单 {manifest.number}",
                }
                for code in moving
            ],
            secret,
            fields={"device_time": "handover_at", "vehicle_plate": plate_field},
        )
    leg.handover_at = signature.handover_at
    leg.handover_place = signature.handover_place
    leg.signed_by_id = principal.user_id
    leg.signed_at = datetime.now(UTC)
    await leg.save(update_fields=["handover_at", "handover_place", "signed_by_id", "signed_at"])
    manifest.state = f"in_transit_leg_{seq}"
    await manifest.save(update_fields=["state"])
    return manifest


async def _take_over(
    *,
    manifest: Manifest,
    previous: ManifestLeg,
    leg: ManifestLeg,
    at: datetime,
    place: str,
    secret: str,
    plate_field: str,
) -> list[str]:
    """A later leg's signature is the handover from the previous leg's carrier to this leg's
    (联单: the carrier signs as it takes the waste over): recorded in the custody chain, as
    the previous carrier's handover under the user who signed its leg, for every batch that
    carrier still holds; one its carrier scanned over already is left as it is. Returns the
    batches this leg puts in transit: all but those its carrier's phone sent on already. When
    the previous leg was its own, they are in transit in its hands and go on in this leg's
    vehicle (a transfer at its depot), which their departure records."""
    rows = await Batch.filter(code__in=manifest.batch_codes).values_list(
        "code", "holder_id", "state"
    )
    held = {str(code): (holder_id, state) for code, holder_id, state in rows}
    handed: list[str] = []
    moving: list[str] = []
    for code in manifest.batch_codes:
        holder_id, state = held[code]
        if holder_id == leg.carrier_id:
            if state != State.in_transit or previous.carrier_id == leg.carrier_id:
                moving.append(code)
            continue
        if holder_id != previous.carrier_id:
            raise RuleViolation(
                f"batch {code} is {state} with organization {holder_id}, not with the previous"
                f" leg's carrier ({previous.carrier_id}) to hand over to yours: the region's"
                " manager cancels the manifest",
                field="seq",
            )
        handed.append(code)
        moving.append(code)
    if handed:
        await record(
            await _leg_signatory(previous),
            [
                {
                    "client_event_id": step_id(
                        number=manifest.number,
                        step=handover_step(leg.seq),
                        code=code,
                        secret=secret,
                    ),
                    "event_type": EventType.handed_over,
                    "batch": code,
                    "device_time": at,
                    "to_organization_id": leg.carrier_id,
                    "vehicle_plate": leg.vehicle_plate,
                    "note": f"联单 {manifest.number} 第{leg.seq}程签收 ({place})",
                }
                for code in handed
            ],
            secret,
            fields={"device_time": "handover_at", "vehicle_plate": plate_field},
        )
    return moving


async def _leg_signatory(leg: ManifestLeg) -> Principal:
    """The carrier of a signed leg as the user who signed it, to record what the manifest says
    that carrier did."""
    assert leg.signed_by_id is not None
    user = await User.get(id=leg.signed_by_id)
    carrier = await Organization.get(id=leg.carrier_id).select_related("region")
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role.carrier,
        organization_id=carrier.id,
        region_path=carrier.region.path,
    )


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
    timezone: str,
) -> list[Signed]:
    """Sign many manifests of one round at once (e-Manifest's "quicker sign"), each by the
    single-signature rule: all or nothing, every refusal named `manifests[i]`; an item signed
    already with the same content is reported as such, so a retry is harmless."""
    done: list[Signed] = []
    refused: list[tuple[int, DomainError]] = []
    for index, signature in enumerate(signatures):
        try:
            if role == "producer":
                done.append(await _sign_as_producer(principal, signature, secret, timezone))
            else:
                done.append(await _sign_as_carrier(principal, signature, secret, timezone))
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


async def _sign_as_producer(
    principal: Principal, signature: Signature, secret: str, timezone: str
) -> Signed:
    # Read as it stands, cancelled or not: a retry of a section signed before a cancellation
    # is that signature; a new one is refused.
    manifest = await get_manifest(principal=principal, manifest_id=signature.manifest_id, lock=True)
    _producer_only(principal, manifest)
    if manifest.producer_signed_at is not None:
        # A retry is the same signature: one naming another handover time is not (as for a
        # carrier's leg, below), when the signature recorded the handover it can be read from.
        recorded = await producer_handover(manifest=manifest, secret=secret)
        if signature.handover_at not in (None, recorded) and recorded is not None:
            raise Conflict(LOCKED, field="producer")
        return Signed(manifest, None, already=True)
    refuse_if_cancelled(manifest)
    signed = await _producer_signs(principal, manifest, secret, timezone, signature.handover_at)
    return Signed(signed, None, already=False)


async def _sign_as_carrier(
    principal: Principal, signature: Signature, secret: str, timezone: str
) -> Signed:
    if signature.handover_at is None or not signature.handover_place:
        raise ValidationFailed("a carrier signs with the handover's time and place", field="role")
    # As the producer's (above): a retry is its signature, a new one refused once cancelled.
    manifest = await get_manifest(principal=principal, manifest_id=signature.manifest_id, lock=True)
    own = sorted(
        (leg for leg in manifest.legs if leg.carrier_id == principal.organization_id),
        key=lambda leg: leg.seq,
    )
    if signature.seq is not None:
        _numbered(manifest, signature.seq)
        own = [leg for leg in own if leg.seq == signature.seq]
    if not own or principal.role != Role.carrier:
        raise Forbidden("only the leg's carrier signs it", field="role")
    # A retry of an item without `seq` finds its leg signed with the same handover: the next
    # leg of the same carrier is not the one it meant.
    same = next(
        (
            leg
            for leg in own
            if leg.signed_at is not None
            and (leg.handover_at, leg.handover_place)
            == (signature.handover_at, signature.handover_place)
        ),
        None,
    )
    if same is not None:
        return Signed(manifest, same.seq, already=True)
    refuse_if_cancelled(manifest)
    leg = next((leg for leg in own if leg.signed_at is None), own[-1])
    if leg.signed_at is not None:
        raise Conflict(LOCKED, field=f"legs[{leg.seq - 1}]")
    signed = await _leg_signed(
        principal,
        manifest,
        leg.seq,
        LegSignCommand(handover_at=signature.handover_at, handover_place=signature.handover_place),
        secret,
        timezone,
    )
    return Signed(signed, leg.seq, already=False)
