"""Service agreements: a carrier or collector serves a client for some streams, and may then
tag the client's waste of those streams."""

from datetime import date

from wastetrack.audit import service as audit
from wastetrack.catalog import service as catalog
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.registry import access
from wastetrack.registry.models import ServiceAgreement
from wastetrack.registry.service import get_organization


async def create_service_agreement(
    *,
    provider_organization_id: int,
    client_organization_id: int,
    streams: list[str],
    valid_from: date,
    valid_to: date | None = None,
) -> ServiceAgreement:
    """Register that a carrier or collector serves a client for some streams: it may then tag
    the client's waste of those streams."""
    provider = await get_organization(provider_organization_id, field="provider_organization_id")
    client = await get_organization(client_organization_id, field="client_organization_id")
    if provider.id == client.id:
        raise ValidationFailed(
            "an organization needs no agreement with itself", field="client_organization_id"
        )
    if valid_to is not None and valid_to < valid_from:
        raise ValidationFailed("valid_to precedes valid_from", field="valid_to")
    snap = await catalog.snapshot()
    unknown = [s for s in streams if s not in snap.streams]
    if unknown:
        raise ValidationFailed(f"unknown streams {unknown}", field="streams")
    agreement = await ServiceAgreement.create(
        provider=provider,
        client=client,
        streams=sorted(set(streams)),
        valid_from=valid_from,
        valid_to=valid_to,
    )
    await audit.created("service_agreement.created", agreement, within=client)
    return agreement


async def list_service_agreements(*, principal: Principal) -> list[ServiceAgreement]:
    """Agreements the user may read: its organization's, as provider or client, or those of
    clients in its region."""
    query = access.readable(
        ServiceAgreement.all(),
        principal,
        organization=("provider_id", "client_id"),
        region="client__region__path",
    )
    return await query.order_by("id")
