"""Cancelling a manifest (作废) before it arrives: its producer alone while no carrier has
signed a leg, the region's manager (the authority) at any time before arrival (recorded, or a
batch handed over to the receiver), as when a later carrier never signs. The custody chain
keeps every step the manifest recorded; the batches are no longer the manifest's, and may go
back to their producer from where they are."""

from datetime import UTC, datetime

from wastetrack.auth.models import Role
from wastetrack.core.errors import Forbidden, RuleViolation
from wastetrack.core.principal import Principal
from wastetrack.custody import repository
from wastetrack.manifests.models import CANCELLED, Manifest, ManifestRevision
from wastetrack.manifests.queries import open_for_action


async def cancel(*, principal: Principal, manifest_id: int, reason: str) -> Manifest:
    """Cancel the manifest with a reason; its pending revisions are withdrawn."""
    manifest = await open_for_action(principal=principal, manifest_id=manifest_id)
    authority = principal.role in (Role.manager, Role.admin)
    producer = (
        principal.role == Role.generator and principal.organization_id == manifest.producer_id
    )
    if not (authority or producer):
        raise Forbidden("the producer, or the region's manager, cancels a manifest", field="role")
    if manifest.arrived_at is not None:
        raise RuleViolation(
            "the manifest has arrived: its receiver decides (a rejection sends the batches back)",
            field="manifest_id",
        )
    # Waste the manifest took to its receiver has arrived, recorded or not: void, the manifest
    # would leave it at a facility with no decision to take it in or send it back. It takes
    # waste there once its producer and every leg have signed (`on_signed_manifest`); a draft's
    # batches are with their producer, which may be the receiver itself. Locked (the manifest
    # first, then its batches, as an arrival does): a hand-over scanned at the same moment
    # comes first and is seen here, or waits and finds the manifest cancelled.
    delivering = manifest.producer_signed_at is not None and all(
        leg.signed_at is not None for leg in manifest.legs
    )
    if delivering:
        locked = await repository.lock_batches(set(manifest.batch_codes))
        held = [batch.code for batch in locked if batch.holder_id == manifest.receiver_id]
        if held:
            raise RuleViolation(
                f"batch {min(held)} has been handed over to the receiver: the waste has arrived,"
                " and its receiver records the arrival and decides (a rejection sends the"
                " batches back)",
                field="manifest_id",
            )
    signed = [leg.seq for leg in manifest.legs if leg.signed_at is not None]
    if signed and not authority:
        raise RuleViolation(
            f"legs[{min(signed) - 1}]'s carrier has signed: the waste is on its way, and the"
            " region's manager cancels the manifest",
            field="manifest_id",
        )
    now = datetime.now(UTC)
    manifest.state = CANCELLED
    manifest.cancelled_at, manifest.cancelled_by_id, manifest.cancel_reason = (
        now,
        principal.user_id,
        reason,
    )
    await manifest.save(update_fields=["state", "cancelled_at", "cancelled_by_id", "cancel_reason"])
    await ManifestRevision.filter(manifest_id=manifest.id, state="pending").update(
        state="withdrawn", decided_at=now
    )
    return manifest
