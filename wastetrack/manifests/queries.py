"""Finding manifests: those a user is party to (managers and auditors: in their region), the
parties' names, the ones whose receiver's decision is overdue, a batch's open manifest, and the
custody events a manifest recorded."""

from datetime import datetime
from uuid import UUID

from tortoise.expressions import Q, Subquery

from wastetrack.auth.models import Role
from wastetrack.core import paging, regions
from wastetrack.core.errors import Conflict, NotFound
from wastetrack.core.principal import Principal
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import EventType
from wastetrack.manifests.commands import HANDOVER_STEP, RECEIVED_STEP, recorded_step_ids
from wastetrack.manifests.models import CANCELLED, Manifest, ManifestDiscrepancy, ManifestLeg
from wastetrack.registry.models import Organization


def reasons(principal: Principal) -> list[Q]:
    """The ways a user comes to read a manifest: their organization is its producer, its
    receiver or a leg's carrier (one reason each); managers and auditors, in their region
    subtree; administrators, any. A carrier's reason is a subquery of the legs, so a manifest
    with several legs comes once, and a list can read each reason on its own (`paging.page`)."""
    if principal.role == Role.admin:
        return [Q()]
    org = principal.organization_id
    carried = ManifestLeg.filter(carrier_id=org).values("manifest_id")
    found = [Q(producer_id=org), Q(receiver_id=org), Q(id__in=Subquery(carried))]
    if principal.sees_region:
        found.append(regions.subtree(principal.region_path))
    return found


async def get_manifest(*, principal: Principal, manifest_id: int, lock: bool = False) -> Manifest:
    """A manifest the user is party to (managers and auditors: in their region)."""
    found = await Manifest.filter(paging.any_of(reasons(principal)), id=manifest_id).first()
    if found is None:
        raise NotFound(f"no manifest {manifest_id}", field="manifest_id")
    if lock:
        found = await Manifest.select_for_update().get(id=found.id)
    await found.fetch_related("legs", "discrepancies", "revisions")
    return found


async def open_for_action(*, principal: Principal, manifest_id: int) -> Manifest:
    """A manifest the user is party to, locked for a signature, an arrival, a decision, a
    revision or a cancellation: refused once it is cancelled."""
    manifest = await get_manifest(principal=principal, manifest_id=manifest_id, lock=True)
    refuse_if_cancelled(manifest)
    return manifest


def refuse_if_cancelled(manifest: Manifest) -> None:
    """Nothing is done on a cancelled manifest: refused, naming it."""
    if manifest.state == CANCELLED:
        raise Conflict(
            f"manifest {manifest.number} is cancelled ({manifest.cancel_reason})",
            field="manifest_id",
        )


async def list_manifests(
    *,
    principal: Principal,
    discrepant: bool,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Manifest]:
    """Manifests the user is party to (managers and auditors: their region), newest first, a
    page at a time; only those with a discrepancy when asked."""
    query = Manifest.all()
    if discrepant:
        found = ManifestDiscrepancy.all().values("manifest_id")
        query = query.filter(id__in=Subquery(found))
    query = query.prefetch_related("legs", "discrepancies", "revisions")
    return await paging.page(
        query, paging.NEWEST_ID, limit=limit, cursor=cursor, reasons=reasons(principal)
    )


def parties(manifest: Manifest) -> set[int]:
    """The organizations on a manifest: producer, receiver and every leg's carrier (its legs
    fetched)."""
    return {manifest.producer_id, manifest.receiver_id} | {leg.carrier_id for leg in manifest.legs}


async def party_names(manifest: Manifest) -> dict[int, str]:
    ids = parties(manifest)
    return dict(await Organization.filter(id__in=ids).values_list("id", "name"))


async def overdue_for_decision(*, now: datetime) -> list[Manifest]:
    """Manifests arrived whose decision is past due."""
    return await Manifest.filter(state="arrived", decision_due_at__lt=now)


async def open_manifest_of(code: str, *, drafts: bool = False) -> Manifest | None:
    """The manifest listing this batch that is open: not decided by its receiver, not
    cancelled, and signed by its producer (with `drafts`, or still a draft). A batch is on
    one such manifest at a time, drafts included (`drafting.create_manifest`)."""
    query = Manifest.filter(batch_codes__contains=[code], receiver_signed_at__isnull=True)
    if not drafts:
        query = query.filter(producer_signed_at__not_isnull=True)
    return await query.exclude(state=CANCELLED).order_by("id").first()


async def deciding_manifest(
    *, code: str, client_event_id: UUID | None, secret: str
) -> Manifest | None:
    """The manifest whose receiver's decision recorded this receipt of the batch `code` (known
    by its client id), if one did."""
    if client_event_id is None:
        return None
    decided = Manifest.filter(batch_codes__contains=[code], receiver_signed_at__not_isnull=True)
    for manifest in await decided:
        ids = recorded_step_ids(
            number=manifest.number, step=RECEIVED_STEP, code=code, secret=secret
        )
        if client_event_id in ids:
            return manifest
    return None


async def producer_handover(*, manifest: Manifest, secret: str) -> datetime | None:
    """When the producer's signature handed the manifest's batches over to its first carrier
    (the latest device time of the handovers it recorded); None before it signed."""
    ids = [
        step_id
        for code in manifest.batch_codes
        for step_id in recorded_step_ids(
            number=manifest.number, step=HANDOVER_STEP, code=code, secret=secret
        )
    ]
    handovers = await CustodyEvent.filter(
        batch__code__in=manifest.batch_codes,
        event_type=EventType.handed_over,
        client_event_id__in=ids,
    ).only("id", "device_time")
    return max((event.device_time for event in handovers), default=None)
