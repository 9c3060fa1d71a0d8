"""Revisions of a signed manifest (危险废物转移管理办法): a party proposes a correction, every
other party approves it, and only then does it apply, the old values kept."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from wastetrack.batches.models import Batch
from wastetrack.catalog import service as catalog
from wastetrack.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.manifests.commands import FoundCommand, RevisionCommand
from wastetrack.manifests.models import Manifest, ManifestRevision
from wastetrack.manifests.quantity import check_declared_quantity, judged_alone
from wastetrack.manifests.queries import open_for_action, parties

# The declaration's fields the receiver's decision compared with what arrived (the quantity,
# and what it may find different): once it has signed, they stay as it compared them, or its
# discrepancies would speak of another declaration.
DECIDED = ("quantity_kg", *FoundCommand.model_fields)


def _check_undecided(manifest: Manifest, changes: Iterable[str]) -> None:
    compared = [name for name in changes if name in DECIDED]
    if manifest.receiver_signed_at is not None and compared:
        raise RuleViolation(
            f"the receiver's decision compared {compared[0]} with what arrived and is signed:"
            " the declaration it compared is no longer revised",
            field=f"changes.{compared[0]}",
        )


async def _check_quantity(
    manifest: Manifest, changes: Mapping[str, Any], tolerance: Decimal
) -> None:
    """A revised quantity is judged against the batches' declared masses, as the draft's is,
    when it applies; refused, the revision stays pending, and its refusal says how to go on."""
    if "quantity_kg" in changes:
        await judged_alone(manifest.id)
        try:
            check_declared_quantity(
                await catalog.snapshot(),
                batches=await Batch.filter(code__in=manifest.batch_codes),
                quantity=Decimal(changes["quantity_kg"]),
                tolerance=tolerance,
                field="changes.quantity_kg",
            )
        except ValidationFailed as error:
            error.detail += (
                ": correct the listed batches' declarations first (a correction that this"
                " pending revision's quantity bears out is taken), then approve again"
            )
            raise


async def propose_revision(
    *, principal: Principal, manifest_id: int, revision: RevisionCommand, tolerance: Decimal
) -> ManifestRevision:
    """A party proposes a correction to a signed manifest; the others must approve it (a new
    quantity within `tolerance` of what the batches declare when the last approval applies
    it)."""
    manifest = await open_for_action(principal=principal, manifest_id=manifest_id)
    if principal.organization_id not in parties(manifest):
        raise Forbidden("only the manifest's parties propose revisions", field="role")
    if manifest.producer_signed_at is None:
        raise RuleViolation(
            "a draft is not revised: its producer cancels it and drafts it again",
            field="changes",
        )
    _check_undecided(manifest, revision.changes)
    # A quantity is judged against the batches' declarations when it applies (the last
    # approval), not when proposed: a drum's declaration corrected to a quantity the manifest
    # does not bear out waits for a pending revision that does (custody's correction rule).
    # Each change was checked as the draft checks its field (RevisionCommand); kept as text.
    changes = {
        name: format(value, "f") if isinstance(value, Decimal) else value
        for name, value in revision.changes.items()
    }
    return await ManifestRevision.create(
        manifest=manifest,
        proposed_by_id=principal.user_id,
        proposer_organization_id=principal.organization_id,
        changes=changes,
        reason=revision.reason,
        approvals=[principal.organization_id],
        created_at=datetime.now(UTC),
    )


async def _revision(
    principal: Principal, manifest_id: int, revision_id: int
) -> tuple[Manifest, ManifestRevision]:
    """The manifest, locked for the action, and its revision (a 404 naming `revision_id`)."""
    manifest = await open_for_action(principal=principal, manifest_id=manifest_id)
    revision = await ManifestRevision.get_or_none(id=revision_id, manifest_id=manifest.id)
    if revision is None:
        raise NotFound(f"no revision {revision_id}", field="revision_id")
    return manifest, revision


def _check_pending(revision: ManifestRevision) -> None:
    """A revision is answered or withdrawn while pending only (a 409 naming `revision_id`)."""
    if revision.state != "pending":
        raise Conflict(f"the revision is {revision.state} already", field="revision_id")


async def answer_revision(
    *,
    principal: Principal,
    manifest_id: int,
    revision_id: int,
    approve: bool,
    tolerance: Decimal,
) -> ManifestRevision:
    """Another party approves or rejects; approved by all, the change applies and the old
    values stay in the revision."""
    manifest, revision = await _revision(principal, manifest_id, revision_id)
    party_ids = parties(manifest)
    if principal.organization_id not in party_ids:
        raise Forbidden("only the manifest's parties answer revisions", field="role")
    _check_pending(revision)
    if principal.organization_id in revision.approvals:
        raise Conflict("your organization has answered already", field="revision_id")
    now = datetime.now(UTC)
    if not approve:
        revision.state, revision.decided_at = "rejected", now
    else:
        # Proposed before the decision, approved after it.
        _check_undecided(manifest, revision.changes)
        revision.approvals = [*revision.approvals, principal.organization_id]
        if party_ids <= set(revision.approvals):
            # The batches' declarations may have been corrected since it was proposed.
            await _check_quantity(manifest, revision.changes, tolerance)
            revision.previous = {k: str(getattr(manifest, k)) for k in revision.changes}
            for key, value in revision.changes.items():
                setattr(manifest, key, Decimal(value) if key == "quantity_kg" else value)
            await manifest.save(update_fields=list(revision.changes))
            revision.state, revision.decided_at = "approved", now
    await revision.save()
    return revision


async def withdraw_revision(
    *, principal: Principal, manifest_id: int, revision_id: int
) -> ManifestRevision:
    """The proposing organization takes back its pending revision (a mistaken proposal, or one
    the batches no longer bear out): it ends `withdrawn`, nothing applied, as a rejection ends
    it. Another party answers it instead (approve or reject)."""
    _, revision = await _revision(principal, manifest_id, revision_id)
    if principal.organization_id != revision.proposer_organization_id:
        raise Forbidden(
            "only the organization that proposed a revision withdraws it; the others approve"
            " or reject it",
            field="role",
        )
    _check_pending(revision)
    revision.state, revision.decided_at = "withdrawn", datetime.now(UTC)
    await revision.save(update_fields=["state", "decided_at"])
    return revision
