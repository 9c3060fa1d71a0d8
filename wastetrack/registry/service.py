"""Registry rules: the region tree, organizations, their sites and treatment licences.
Vessels (wastetrack.registry.vessels) and service agreements (wastetrack.registry.agreements)
are registered apart."""

from datetime import date
from typing import Any

from wastetrack.audit import service as audit
from wastetrack.catalog import service as catalog
from wastetrack.core import codes
from wastetrack.core.errors import Conflict, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.registry import access, identities
from wastetrack.registry.models import (
    MEDICAL_KINDS,
    FacilityLicence,
    Organization,
    OrganizationKind,
    Region,
    RegionLevel,
    Site,
)

_CHILD_LEVEL = {RegionLevel.city: RegionLevel.town, RegionLevel.town: RegionLevel.village}


async def get_region(region_id: int) -> Region:
    region = await Region.get_or_none(id=region_id)
    if region is None:
        raise NotFound(f"no region {region_id}", field="region_id")
    return region


async def create_region(
    *, code: str, name: str, level: RegionLevel, parent_id: int | None = None
) -> Region:
    """Add a region under its parent: city → town/street → village/community, keyed by its
    administrative-division code, which extends its parent's."""
    parent = await get_region(parent_id) if parent_id is not None else None
    if parent is None and level != RegionLevel.city:
        raise ValidationFailed("only a city may have no parent", field="parent_id")
    if parent is not None and _CHILD_LEVEL.get(parent.level) != level:
        raise ValidationFailed(
            f"a {level.value} cannot sit under a {parent.level.value}", field="level"
        )
    code = identities.check_region_code(
        code, level=level, parent_code=parent.code if parent else None
    )
    if await Region.exists(code=code):
        raise Conflict(f"region code {code!r} is taken", field="code")
    region = await Region.create(code=code, name=name, level=level, parent=parent, path="/")
    region.path = f"{parent.path if parent else '/'}{region.id}/"
    await region.save(update_fields=["path"])
    await audit.created("region.created", region, within=region)
    return region


async def list_regions(*, principal: Principal) -> list[Region]:
    """Regions the user may read: its subtree (a manager), all (an admin), or its own
    organization's region."""
    query = access.readable(
        Region.all(), principal, organization=("organizations__id",), region="path"
    )
    return await query.distinct().order_by("path")


async def get_organization(organization_id: int, *, field: str = "organization_id") -> Organization:
    org = await Organization.get_or_none(id=organization_id).prefetch_related("region")
    if org is None:
        raise NotFound(f"no organization {organization_id}", field=field)
    return org


def _check_beds(kind: OrganizationKind, bed_count: int | None, *, required: bool = True) -> None:
    if bed_count is not None and kind not in MEDICAL_KINDS:
        raise ValidationFailed("bed_count applies to medical institutions", field="bed_count")
    if bed_count is None and required and kind in MEDICAL_KINDS:
        raise ValidationFailed(
            "bed_count is required for a medical institution (0 when it has no beds)",
            field="bed_count",
        )
    if bed_count is not None and bed_count < 0:
        raise ValidationFailed("bed_count must be zero or more", field="bed_count")


async def create_organization(
    *,
    name: str,
    kind: OrganizationKind,
    region_id: int,
    credit_code: str | None = None,
    bed_count: int | None = None,
    contact_phone: str | None = None,
) -> Organization:
    """Register an organization of any kind in a region, by its unified social credit code
    when it has one."""
    _check_beds(kind, bed_count)
    region = await get_region(region_id)
    credit_code = await _free_credit_code(credit_code)
    org = await Organization.create(
        name=name,
        kind=kind,
        region=region,
        credit_code=credit_code,
        bed_count=bed_count,
        contact_phone=contact_phone,
    )
    org.region = region
    await audit.created("organization.created", org, within=org)
    return org


async def _free_credit_code(
    credit_code: str | None, *, organization_id: int | None = None
) -> str | None:
    """The normalized credit code when it is valid and no other organization holds it."""
    if not credit_code:
        return None
    code = identities.normalize_credit_code(credit_code)
    holders = Organization.filter(credit_code=code)
    if organization_id is not None:
        holders = holders.exclude(id=organization_id)
    if await holders.exists():
        raise Conflict(f"credit code {code!r} is registered already", field="credit_code")
    return code


async def update_organization(*, organization_id: int, changes: dict[str, Any]) -> Organization:
    """Change an organization's name, region, credit code, beds or contact."""
    org = await get_organization(organization_id)
    before = audit.snapshot(org)
    if "credit_code" in changes:
        changes["credit_code"] = await _free_credit_code(
            changes["credit_code"], organization_id=org.id
        )
    if "region_id" in changes:
        org.region = await get_region(changes.pop("region_id"))
    _check_beds(org.kind, changes.get("bed_count", org.bed_count), required="bed_count" in changes)
    for key, value in changes.items():
        setattr(org, key, value)
    await org.save()
    await audit.record(
        action="organization.updated",
        subject=org,
        organization_id=org.id,
        region_path=org.region.path,
        before=before,
        after=audit.snapshot(org),
    )
    return org


async def list_organizations(
    *,
    principal: Principal,
    kind: OrganizationKind | None = None,
    credit_code: str | None = None,
) -> list[Organization]:
    """Organizations the user may read, optionally of one kind or by credit code."""
    query = access.readable(
        Organization.all(), principal, organization=("id",), region="region__path"
    )
    if kind:
        query = query.filter(kind=kind)
    if credit_code is not None:
        query = query.filter(credit_code=identities.normalize_credit_code(credit_code))
    return await query.prefetch_related("region").order_by("id")


async def create_site(
    *, organization_id: int, name: str, region_id: int | None, latitude: float, longitude: float
) -> Site:
    """Add a site with coordinates to an organization."""
    org = await get_organization(organization_id)
    region = await get_region(region_id) if region_id else org.region
    if not (-90 <= latitude <= 90):
        raise ValidationFailed("latitude must lie between -90 and 90", field="latitude")
    if not (-180 <= longitude <= 180):
        raise ValidationFailed("longitude must lie between -180 and 180", field="longitude")
    # Every site gets a fixed QR plate: collection points are scanned at each pickup.
    site = await Site.create(
        organization=org,
        name=name,
        region=region,
        latitude=latitude,
        longitude=longitude,
        code=codes.new_code(),
    )
    await audit.created("site.created", site, within=org)
    return site


async def list_sites(*, principal: Principal, organization_id: int | None = None) -> list[Site]:
    """Sites the user may read, optionally of one organization."""
    query = access.readable(Site.all(), principal)
    if organization_id:
        query = query.filter(organization_id=organization_id)
    return await query.order_by("id")


async def add_licence(
    *,
    organization_id: int,
    category_key: str,
    method_codes: list[str],
    permit_number: str | None = None,
    valid_until: date | None = None,
) -> FacilityLicence:
    """License a treatment facility for a category (and its sub-categories) and methods."""
    org = await get_organization(organization_id)
    if org.kind != OrganizationKind.treatment_facility:
        raise ValidationFailed(
            "only treatment facilities hold treatment licences", field="organization_id"
        )
    snap = await catalog.snapshot()
    if category_key not in snap.categories:
        raise ValidationFailed(f"unknown category {category_key!r}", field="category_key")
    unknown = [m for m in method_codes if m not in snap.methods]
    if unknown:
        raise ValidationFailed(f"unknown treatment methods {unknown}", field="method_codes")
    existing = await FacilityLicence.get_or_none(organization=org, category_key=category_key)
    licence, created = await FacilityLicence.update_or_create(
        organization=org,
        category_key=category_key,
        defaults={
            "method_codes": method_codes,
            "permit_number": permit_number,
            "valid_until": valid_until,
        },
    )
    await audit.record(
        action="licence.created" if created else "licence.updated",
        subject=licence,
        organization_id=org.id,
        region_path=org.region.path,
        before=audit.snapshot(existing) if existing is not None else None,
        after=audit.snapshot(licence),
    )
    return licence


async def list_licences(*, principal: Principal, organization_id: int) -> list[FacilityLicence]:
    """A facility's licences, when the user may read the facility."""
    await access.readable_organization(principal, organization_id)
    return await FacilityLicence.filter(organization_id=organization_id).order_by("id")


async def licence_covering(
    *, organization_id: int, category_key: str, on: date
) -> FacilityLicence | None:
    """The facility's valid licence for this category or one of its parents, if any."""
    ancestors = (await catalog.snapshot()).ancestors(category_key)
    for licence in await FacilityLicence.filter(
        organization_id=organization_id, category_key__in=ancestors
    ):
        if licence.valid_until is None or licence.valid_until >= on:
            return licence
    return None


async def subtree_path(*, within: str, region_id: int, admin: bool) -> str:
    """The path of a region inside the subtree `within` (anywhere for admins)."""
    region = await get_region(region_id)
    if not admin and not region.path.startswith(within):
        raise NotFound(f"no region {region_id} in your area", field="region_id")
    return region.path
