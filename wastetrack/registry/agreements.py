"""Service agreements: a carrier or collector serves a client for some streams, and may then
tag the client's waste of those streams. An agreement is ended, never deleted: the tagging
done under it stays explained."""

from datetime import date

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from wastetrack.audit import service as audit
from wastetrack.catalog import service as catalog
from wastetrack.core import cityday, paging
from wastetrack.core.errors import Conflict, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
from wastetrack.registry import access, roles
from wastetrack.registry.models import Organization, ServiceAgreement
from wastetrack.registry.service import get_organization

# The kinds that may provide a service: those whose staff's role tags for others under an
# agreement (access.TAGGING_FOR_OTHERS) — carriers, the collectors of communities,
# collection and recovery points, and ports. An agreement another kind provides could never
# be used.
PROVIDER_KINDS = roles.kinds_for(
    frozenset(
        role
        for role, ways in access.TAGGING_FOR_OTHERS.items()
        if access.Relationship.service_agreement in ways
    )
)


async def create_service_agreement(
    *,
    provider_organization_id: int,
    client_organization_id: int,
    streams: list[str],
    valid_from: date,
    valid_to: date | None = None,
) -> ServiceAgreement:
    """Register that a carrier or collector serves a client for some streams: it may then tag
    the client's waste of those streams. The provider is of a kind that tags for others under
    an agreement (PROVIDER_KINDS); an agreement of the same provider, client and streams
    sharing a day with the new one, ended or not, is a conflict."""
    provider = await get_organization(provider_organization_id, field="provider_organization_id")
    client = await get_organization(client_organization_id, field="client_organization_id")
    if provider.id == client.id:
        raise ValidationFailed(
            "an organization needs no agreement with itself", field="client_organization_id"
        )
    if provider.kind not in PROVIDER_KINDS:
        raise ValidationFailed(
            f"a {provider.kind.value} provides no collection service: a provider is one of"
            f" {', '.join(sorted(k.value for k in PROVIDER_KINDS))}",
            field="provider_organization_id",
        )
    if valid_to is not None and valid_to < valid_from:
        raise ValidationFailed("valid_to precedes valid_from", field="valid_to")
    snap = await catalog.snapshot()
    unknown = [s for s in streams if s not in snap.streams]
    if unknown:
        raise ValidationFailed(f"unknown streams {unknown}", field="streams")
    named = sorted(set(streams))
    async with in_transaction():
        # The client's row is locked while its agreements are compared, so two identical
        # requests at once make one agreement.
        await Organization.filter(id=client.id).select_for_update().first()
        # Sharing a day with the new one: an ended one too (a new one backdated over its
        # days would register the same service twice for them).
        overlapping = ServiceAgreement.filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from),
            provider_id=provider.id,
            client_id=client.id,
        )
        if valid_to is not None:
            overlapping = overlapping.filter(valid_from__lte=valid_to)
        for same in await overlapping.order_by("id"):
            if sorted(same.streams) == named:
                raise Conflict(
                    f"agreement {same.id} has {provider.name} serve {client.name} for"
                    f" {', '.join(named)} from {same.valid_from.isoformat()}"
                    f"{' to ' + same.valid_to.isoformat() if same.valid_to else ''} already:"
                    " end it first, or start the new one after it",
                    field="valid_from",
                    agreement_id=same.id,
                )
        agreement = await ServiceAgreement.create(
            provider=provider,
            client=client,
            streams=named,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        await audit.created("service_agreement.created", agreement, within=client)
    return agreement


async def end_service_agreement(
    *, agreement_id: int, valid_to: date, timezone: str | None = None
) -> ServiceAgreement:
    """End an agreement on a day (its last valid one): today or later in the city, and never
    before it began. The tagging already recorded under it stays valid; one that has ended
    already is a conflict, and an end after the one it has is refused (register a new
    agreement instead). Audited as `service_agreement.ended`."""
    today = cityday.today(timezone or get_settings().timezone)
    async with in_transaction():
        agreement = (
            await ServiceAgreement.filter(id=agreement_id)
            .select_for_update()
            .prefetch_related("client__region")
            .first()
        )
        if agreement is None:
            raise NotFound(f"no service agreement {agreement_id}", field="agreement_id")
        if agreement.valid_to is not None and agreement.valid_to < today:
            raise Conflict(
                f"agreement {agreement_id} ended on {agreement.valid_to.isoformat()} already",
                field="agreement_id",
            )
        if valid_to < today:
            raise ValidationFailed(
                f"an agreement ends today ({today.isoformat()}) or later: the days before are"
                " history, and what was tagged under it stays valid",
                field="valid_to",
            )
        if valid_to < agreement.valid_from:
            raise ValidationFailed(
                f"valid_to precedes the day the agreement began"
                f" ({agreement.valid_from.isoformat()})",
                field="valid_to",
            )
        if agreement.valid_to is not None and valid_to > agreement.valid_to:
            raise ValidationFailed(
                f"the agreement ends on {agreement.valid_to.isoformat()} already; to serve"
                " longer, register a new agreement",
                field="valid_to",
            )
        await audit.updated(
            "service_agreement.ended", agreement, within=agreement.client, valid_to=valid_to
        )
    return agreement


async def list_service_agreements(
    *, principal: Principal, limit: int = paging.DEFAULT_LIMIT, cursor: str | None = None
) -> paging.Page[ServiceAgreement]:
    """Agreements the user may read: its organization's, as provider or client, or those of
    clients in its region."""
    query = access.readable(
        ServiceAgreement.all(),
        principal,
        organization=("provider_id", "client_id"),
        region="client__region__path",
    )
    return await paging.page(query, paging.OLDEST_ID, limit=limit, cursor=cursor)
