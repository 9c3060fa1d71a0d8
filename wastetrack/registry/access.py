"""Who may read which registry rows, and on whose behalf a user may tag waste: each rule once,
as data, read by every list, lookup and the custody service."""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from wastetrack.auth.models import Role
from wastetrack.core.errors import Forbidden, NotFound
from wastetrack.core.principal import Principal
from wastetrack.ports import MARINE_STREAM
from wastetrack.registry.models import (
    Organization,
    OrganizationKind,
    ServiceAgreement,
    Vessel,
)

M = TypeVar("M", bound=Model)

# Roles that read the registry of their whole region subtree; admins read everything, every
# other role its own organization's rows.
REGION_READERS = frozenset({Role.manager, Role.auditor})


@dataclass(frozen=True)
class ReadScope:
    """What a user may read: everything, a region subtree, or one organization."""

    everything: bool = False
    region_path: str | None = None
    organization_id: int | None = None


def read_scope(principal: Principal) -> ReadScope:
    """The one answer to 'what may this user read', used by every registry list and lookup."""
    if principal.role == Role.admin:
        return ReadScope(everything=True)
    if principal.role in REGION_READERS:
        return ReadScope(region_path=principal.region_path)
    return ReadScope(organization_id=principal.organization_id)


def readable(
    query: QuerySet[M],
    principal: Principal,
    *,
    organization: tuple[str, ...] = ("organization_id",),
    region: str = "organization__region__path",
) -> QuerySet[M]:
    """`query` narrowed to the rows `principal` may read: rows whose organization (any of the
    `organization` id fields) is theirs, or whose `region` path lies in their subtree."""
    scope = read_scope(principal)
    if scope.everything:
        return query
    if scope.region_path is not None:
        return query.filter(**{f"{region}__startswith": scope.region_path})
    own = Q(*(Q(**{name: scope.organization_id}) for name in organization), join_type="OR")  # type: ignore[arg-type]
    return query.filter(own)


async def readable_organization(
    principal: Principal, organization_id: int, *, field: str = "organization_id"
) -> Organization:
    """An organization the user may read; any other is 'not found', so ids reveal nothing."""
    org = await readable(
        Organization.filter(id=organization_id),
        principal,
        organization=("id",),
        region="region__path",
    ).first()
    if org is None:
        raise NotFound(f"no organization {organization_id}", field=field)
    return org


# ---- tagging on behalf of another organization -------------------------------------------


class Relationship(StrEnum):
    """Why a user may tag a batch whose producer is another organization."""

    service_agreement = "service_agreement"  # it serves the producer under a registered agreement
    label_stock = "label_stock"  # the label bound was issued to the producer
    port_reception = "port_reception"  # a port receives any registered vessel's ship waste
    # a community's sorting collectors serve the collection points (投放点) of their area
    local_collection_point = "local_collection_point"


# Which relationships let which role tag another organization's waste; a role absent here
# tags only its own organization's.
TAGGING_FOR_OTHERS: dict[Role, frozenset[Relationship]] = {
    Role.collector: frozenset(
        {
            Relationship.service_agreement,
            Relationship.label_stock,
            Relationship.local_collection_point,
        }
    ),
    Role.carrier: frozenset({Relationship.service_agreement, Relationship.label_stock}),
    Role.port_operator: frozenset(
        {
            Relationship.service_agreement,
            Relationship.label_stock,
            Relationship.port_reception,
        }
    ),
}


# Organizations whose label stock is for their own tagging only.
_OWN_STOCK_ONLY = (
    OrganizationKind.carrier,
    OrganizationKind.treatment_facility,
    OrganizationKind.authority,
)


async def _holds(
    relationship: Relationship,
    *,
    principal: Principal,
    producer_id: int,
    stream: str,
    label_organization_id: int | None,
    on: date,
    site_region_path: str | None,
) -> bool:
    if relationship == Relationship.label_stock:
        # A producer's stock, for those who collect its waste: not another handler's own
        # (a carrier's load labels, a plant's), nor an authority's.
        return label_organization_id == producer_id and not await Organization.exists(
            id=producer_id, kind__in=_OWN_STOCK_ONLY
        )
    if relationship == Relationship.port_reception:
        # Ship waste delivered ashore (the marine stream), of an organization owning a vessel:
        # not the rest of that organization's waste, whatever kind it is.
        return stream == MARINE_STREAM and await Vessel.exists(owner_id=producer_id)
    if relationship == Relationship.local_collection_point:
        # A community's collectors, at a point in its area: the site the waste is tagged at
        # when one is named (a town's collection point may have its 投放点 in a village, and the
        # site's region is where its pickups count), else the point's own region. Not a
        # recovery point's collectors, nor another collection point's.
        if not await Organization.exists(
            id=principal.organization_id, kind=OrganizationKind.community
        ):
            return False
        if site_region_path is not None:
            return site_region_path.startswith(principal.region_path) and (
                await Organization.exists(id=producer_id, kind=OrganizationKind.collection_point)
            )
        return await Organization.exists(
            id=producer_id,
            kind=OrganizationKind.collection_point,
            region__path__startswith=principal.region_path,
        )
    agreements = await ServiceAgreement.filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=on),
        provider_id=principal.organization_id,
        client_id=producer_id,
        valid_from__lte=on,
    ).values_list("streams", flat=True)
    return any(stream in streams for streams in agreements)


async def may_tag_for(
    *,
    principal: Principal,
    producer_id: int,
    stream: str,
    label_organization_id: int | None,
    on: date,
    site_region_path: str | None = None,
) -> bool:
    """Whether the user may tag waste as `producer_id`'s: its own organization's, or through a
    registered relationship (TAGGING_FOR_OTHERS) that holds on day `on` (at the producer's site
    in region `site_region_path`, when the tagging names one)."""
    if producer_id == principal.organization_id:
        return True
    for relationship in sorted(TAGGING_FOR_OTHERS.get(principal.role, frozenset())):
        if await _holds(
            relationship,
            principal=principal,
            producer_id=producer_id,
            stream=stream,
            label_organization_id=label_organization_id,
            on=on,
            site_region_path=site_region_path,
        ):
            return True
    return False


async def check_may_tag_for(
    *,
    principal: Principal,
    producer_id: int,
    stream: str,
    label_organization_id: int | None,
    on: date,
    site_region_path: str | None = None,
) -> None:
    """Refuse to tag waste as `producer_id`'s unless `may_tag_for` allows it."""
    if not await may_tag_for(
        principal=principal,
        producer_id=producer_id,
        stream=stream,
        label_organization_id=label_organization_id,
        on=on,
        site_region_path=site_region_path,
    ):
        raise Forbidden(
            f"your organization may not tag {stream} waste for organization {producer_id}:"
            " register a service agreement with it, or use label stock issued to it",
            field="producer_organization_id",
        )
