"""Finding manifests: those a user is party to (managers and auditors: in their region), the
parties' names, and the ones whose receiver's decision is overdue."""

from datetime import datetime

from tortoise.expressions import Q

from wastetrack.auth.models import Role
from wastetrack.core.errors import NotFound
from wastetrack.core.principal import Principal
from wastetrack.manifests.models import Manifest
from wastetrack.registry.models import Organization


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
