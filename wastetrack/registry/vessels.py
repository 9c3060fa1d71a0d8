"""Vessels: each registered once by its registration number, with its fishing home port and,
when known, its owner."""

from decimal import Decimal

from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.core import paging
from wastetrack.core.commands import ascii_digits
from wastetrack.core.errors import Conflict, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.registry import access
from wastetrack.registry.models import OrganizationKind, Vessel
from wastetrack.registry.service import get_organization

# Who owns a vessel: a vessel owner (船东: a fishing company, a fisher), or a port its own boats.
# A port tags its owner's ship waste (access.Relationship.port_reception): a clinic or a plant
# registered as an owner would be a producer whose waste every port could tag.
OWNER_KINDS = (OrganizationKind.vessel_owner, OrganizationKind.fishing_port)


async def create_vessel(
    *,
    name: str,
    registration_number: str,
    gross_tonnage: Decimal,
    home_port_id: int,
    imo_number: str | None = None,
    mmsi: str | None = None,
    vessel_type: str = "fishing",
    owner_id: int | None = None,
) -> Vessel:
    """Register a vessel with its home port."""
    port = await get_organization(home_port_id, field="home_port_id")
    if port.kind != OrganizationKind.fishing_port:
        raise ValidationFailed("home port must be a fishing port", field="home_port_id")
    if gross_tonnage <= 0:
        raise ValidationFailed("gross_tonnage must be positive", field="gross_tonnage")
    if imo_number is not None and not (ascii_digits(imo_number, most=7) and len(imo_number) == 7):
        raise ValidationFailed("imo_number must have 7 digits", field="imo_number")
    if mmsi is not None and not (ascii_digits(mmsi, most=9) and len(mmsi) == 9):
        raise ValidationFailed("mmsi must have 9 digits", field="mmsi")
    if await Vessel.exists(registration_number=registration_number):
        raise Conflict(
            f"vessel {registration_number!r} is registered already", field="registration_number"
        )
    owner = await get_organization(owner_id, field="owner_id") if owner_id else None
    if owner is not None and owner.kind not in OWNER_KINDS:
        raise ValidationFailed(
            f"a vessel's owner is a vessel owner or a fishing port, not a {owner.kind.value}",
            field="owner_id",
        )
    vessel = await Vessel.create(
        name=name,
        registration_number=registration_number,
        gross_tonnage=gross_tonnage,
        home_port=port,
        imo_number=imo_number,
        mmsi=mmsi,
        vessel_type=vessel_type,
        owner=owner,
    )
    await audit.created("vessel.created", vessel, within=port)
    return vessel


async def list_vessels(
    *,
    principal: Principal,
    home_port_id: int | None = None,
    registration_number: str | None = None,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Vessel]:
    """Vessels the user may read (home port or owner theirs, or in their region); a port
    operator also finds any vessel by its exact registration number, since a port receives
    every vessel's waste."""
    query = Vessel.all()
    if registration_number is not None:
        query = query.filter(registration_number=registration_number)
    if not (registration_number is not None and principal.role == Role.port_operator):
        query = access.readable(
            query,
            principal,
            organization=("home_port_id", "owner_id"),
            region="home_port__region__path",
        )
    if home_port_id:
        query = query.filter(home_port_id=home_port_id)
    return await paging.page(query, paging.OLDEST_ID, limit=limit, cursor=cursor)
