"""Registry rules: the region tree, organizations, their sites and treatment licences.
Vessels (wastetrack.registry.vessels) and service agreements (wastetrack.registry.agreements)
are registered apart."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from wastetrack.audit import service as audit
from wastetrack.catalog import service as catalog
from wastetrack.core import cityday, codes, paging, regions
from wastetrack.core.errors import Conflict, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
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


async def get_region(region_id: int, *, field: str = "region_id", lock: bool = False) -> Region:
    """The region, or a 404 naming `field`; `lock`: its row locked for the rest of the
    transaction, read after the lock (two writers at once each see the other's change)."""
    query = Region.filter(id=region_id)
    region = await (query.select_for_update() if lock else query).first()
    if region is None:
        raise NotFound(f"no region {region_id}", field=field)
    return region


async def create_region(
    *, code: str, name: str, level: RegionLevel, parent_id: int | None = None
) -> Region:
    """Add a region under its parent: city → town/street → village/community, keyed by its
    administrative-division code, which extends its parent's."""
    parent = await get_region(parent_id, field="parent_id") if parent_id is not None else None
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
    async with in_transaction() as connection:
        _, rows = await connection.execute_query(regions.NEXT_ID)
        region_id = rows[0][0]
        path = regions.path_of(region_id, parent.path if parent else None)
        region = await Region.create(
            id=region_id, code=code, name=name, level=level, parent=parent, path=path
        )
        await audit.created("region.created", region, within=region)
    return region


async def list_regions(*, principal: Principal) -> list[Region]:
    """Regions the user may read: its subtree (a manager), all (an admin), or its own
    organization's region."""
    query = access.readable(
        Region.all(), principal, organization=("organizations__id",), region="path"
    )
    return await query.distinct().order_by("path")


def treats(org: Organization) -> bool:
    """Whether the organization receives and treats waste (custody's receipts and treatments,
    a treatment licence, a consignment sent on to treatment): a treatment facility."""
    return org.kind == OrganizationKind.treatment_facility


async def get_organization(
    organization_id: int, *, field: str = "organization_id", for_update: bool = False
) -> Organization:
    """An organization with its region; `for_update` locks its row until the transaction
    ends, read after the lock is granted."""
    query = Organization.filter(id=organization_id)
    if for_update:
        query = query.select_for_update()
    org = await query.prefetch_related("region").first()
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
    """Change an organization's name, region, credit code, beds or contact. Its row is locked
    (as `create_site` locks it): a site added while it moves is checked against the region it
    moves to, or the move against the site."""
    org = await get_organization(organization_id, for_update=True)
    before = audit.snapshot(org)
    if "credit_code" in changes:
        changes["credit_code"] = await _free_credit_code(
            changes["credit_code"], organization_id=org.id
        )
    if "region_id" in changes:
        org.region = await get_region(changes.pop("region_id"))
        await _check_sites_within(org)
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


async def _check_sites_within(org: Organization) -> None:
    """Refuse to move an organization to a region its sites would lie outside."""
    outside = (
        await Site.filter(organization_id=org.id)
        .exclude(region__path__startswith=org.region.path)
        .order_by("id")
        .first()
    )
    if outside is not None:
        raise ValidationFailed(
            f"site {outside.id} ({outside.name}) would lie outside region {org.region.id}"
            f" ({org.region.name}): a site lies in its organization's region or below it",
            field="region_id",
        )


async def list_organizations(
    *,
    principal: Principal,
    kind: OrganizationKind | None = None,
    credit_code: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Organization]:
    """Organizations the user may read, oldest first, a page at a time; optionally of one
    kind or by credit code."""
    query = access.readable(
        Organization.all(), principal, organization=("id",), region="region__path"
    )
    if kind:
        query = query.filter(kind=kind)
    if credit_code is not None:
        query = query.filter(credit_code=identities.normalize_credit_code(credit_code))
    query = query.prefetch_related("region")
    return await paging.page(query, paging.OLDEST_ID, limit=limit, cursor=cursor)


async def create_site(
    *, organization_id: int, name: str, region_id: int | None, latitude: float, longitude: float
) -> Site:
    """Add a site with coordinates to an organization, in the organization's region or a
    region below it (default: the organization's own). What is collected at the site counts
    under the site's region, so a site elsewhere — another town, another city — is refused:
    it would count one region's waste under another's. The organization's row is locked, as
    `update_organization` locks it, so a move at the same time waits or is waited for."""
    org = await get_organization(organization_id, for_update=True)
    region = await get_region(region_id) if region_id else org.region
    if not region.path.startswith(org.region.path):
        raise ValidationFailed(
            f"region {region.id} ({region.name}) lies outside the organization's region"
            f" {org.region.id} ({org.region.name}): a site lies in its organization's region"
            " or below it",
            field="region_id",
        )
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
    # Filed under the site's own region, as its pickups are: that region's managers read it.
    await audit.record(
        action="site.created",
        subject=site,
        organization_id=org.id,
        region_path=region.path,
        after=audit.snapshot(site),
    )
    return site


async def list_sites(
    *,
    principal: Principal,
    organization_id: int | None = None,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Site]:
    """Sites the user may read, oldest first, a page at a time, optionally of one
    organization: a manager reads those in its region subtree by the site's own region, the
    one its pickups count under."""
    query = access.readable(Site.all(), principal, region="region__path")
    if organization_id:
        query = query.filter(organization_id=organization_id)
    return await paging.page(query, paging.OLDEST_ID, limit=limit, cursor=cursor)


async def add_licence(
    *,
    organization_id: int,
    category_key: str,
    method_codes: list[str],
    permit_number: str | None = None,
    valid_from: date | None = None,
    valid_until: date | None = None,
    reason: str | None = None,
    timezone: str | None = None,
) -> FacilityLicence:
    """License a treatment facility for a category (and its sub-categories) and methods, from
    `valid_from` to `valid_until` (None: until further notice). The admin API and the command
    line grant from the day they are asked to (in the city) unless told otherwise; None here
    means "since always", as on the rows kept before licences had versions — for loading a
    registry with its history (the demo, tests), never an administrator's default.

    A licence is kept in versions: granting the category again adds a row and ends the
    version it replaces the day before the new one starts (a version replaced on its own
    first day ends the day before it began: it never covered a day). A version never starts
    before a later one's start; and one that starts on a day already past — a permit
    registered late, it judges the receipts and treatments of those days again — needs a
    `reason`, kept in the audit entry."""
    today = cityday.today(timezone or get_settings().timezone)
    if valid_from is not None and valid_from < today and not (reason or "").strip():
        raise ValidationFailed(
            f"a licence from a day already past ({valid_from.isoformat()}) judges those days'"
            " receipts and treatments again: give the reason",
            field="reason",
        )
    if valid_until is not None and valid_from is not None and valid_until < valid_from:
        raise ValidationFailed(
            f"valid_until precedes valid_from ({valid_from.isoformat()})", field="valid_until"
        )
    org = await get_organization(organization_id)
    if not treats(org):
        raise ValidationFailed(
            "only treatment facilities hold treatment licences", field="organization_id"
        )
    snap = await catalog.snapshot()
    if category_key not in snap.categories:
        raise ValidationFailed(f"unknown category {category_key!r}", field="category_key")
    unknown = [m for m in method_codes if m not in snap.methods]
    if unknown:
        raise ValidationFailed(f"unknown treatment methods {unknown}", field="method_codes")
    async with in_transaction():
        # The facility's row is locked while its versions change: two grants at once queue.
        await Organization.filter(id=org.id).select_for_update().first()
        versions = await FacilityLicence.filter(
            organization_id=org.id, category_key=category_key
        ).order_by("id")
        start = valid_from or date.min
        later = [v for v in versions if (v.valid_from or date.min) > start]
        if later:
            raise Conflict(
                f"licence {later[0].id} for {category_key} starts on {later[0].valid_from},"
                f" after {valid_from or 'always'}: a new version starts on or after the latest"
                " one's start",
                field="valid_from",
            )
        # Versions start in the order they are added and each ends before the next starts:
        # only the latest can still be valid on `start`.
        latest = versions[-1] if versions else None
        replaced = (
            latest
            if latest is not None and (latest.valid_until is None or latest.valid_until >= start)
            else None
        )
        before = audit.snapshot(replaced) if replaced is not None else None
        if replaced is not None:
            # Ending the day before a version "since always" is ending it before it began.
            replaced.valid_until = start - timedelta(days=1) if valid_from else date.min
            await replaced.save(update_fields=["valid_until"])
        licence = await FacilityLicence.create(
            organization=org,
            category_key=category_key,
            method_codes=method_codes,
            permit_number=permit_number,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        # One entry for the grant: the version replaced as it was, and the day it now ends.
        after = {**audit.snapshot(licence), "reason": (reason or "").strip() or None}
        if replaced is not None:
            after["replaced"] = audit.plain(
                {"id": replaced.id, "valid_until": replaced.valid_until}
            )
        await audit.record(
            action="licence.updated" if replaced is not None else "licence.created",
            subject=licence,
            organization_id=org.id,
            region_path=org.region.path,
            before=before,
            after=after,
        )
    return licence


async def list_licences(*, principal: Principal, organization_id: int) -> list[FacilityLicence]:
    """A facility's licences, every version, when the user may read the facility."""
    await access.readable_organization(principal, organization_id)
    return await FacilityLicence.filter(organization_id=organization_id).order_by("id")


@dataclass(frozen=True)
class Covering:
    """What a facility is licensed for, for one category on one day: every version valid on
    the day of a licence for the category or one of its parents."""

    licences: tuple[FacilityLicence, ...]

    @property
    def method_codes(self) -> list[str]:
        """The methods any of the covering licences allows."""
        return sorted({m for licence in self.licences for m in licence.method_codes})


async def licence_covering(*, organization_id: int, category_key: str, on: date) -> Covering | None:
    """The facility's licences for this category or its parents valid on the day, their
    methods joined (a parent's and a child's licence each add theirs); None without one."""
    ancestors = (await catalog.snapshot()).ancestors(category_key)
    licences = await FacilityLicence.filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=on),
        Q(valid_until__isnull=True) | Q(valid_until__gte=on),
        organization_id=organization_id,
        category_key__in=ancestors,
    ).order_by("id")
    return Covering(tuple(licences)) if licences else None


async def named_region(principal: Principal, region_id: int) -> Region:
    """A region a user's record names (a cell, a clean-up, a float replacement): for a region
    reader (a manager) one of its area, a region outside it a 404 as one that does not exist
    (ids reveal nothing, and one town writes nothing into another's lists); for admins, and for
    an organization's users (a team cleans the beach where it works), any."""
    region = await get_region(region_id)
    scope = access.read_scope(principal)
    if scope.region_path is not None and not region.path.startswith(scope.region_path):
        raise NotFound(f"no region {region_id}", field="region_id")
    return region
