"""The registry, managed by administrators (managers may read)."""

from typing import Annotated

from fastapi import APIRouter, Query

from mobile_api.deps import AdminOnly, ManagerOnly, Transaction
from schemas.auth import UserCreate, UserRead
from schemas.registry import (
    LicenceCreate,
    LicenceRead,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    RegionCreate,
    RegionRead,
    SiteCreate,
    SiteRead,
    VesselCreate,
    VesselRead,
)
from wastetrack.auth import service as auth
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

router = APIRouter(prefix="/admin/v1", tags=["admin"])


@router.post("/regions", response_model=RegionRead, status_code=201)
async def create_region(body: RegionCreate, _: AdminOnly, __: Transaction) -> object:
    """Add a city, town/street or village/community."""
    return await registry.create_region(**body.model_dump())


@router.get("/regions", response_model=list[RegionRead])
async def list_regions(user: ManagerOnly) -> list:
    """Regions in the user's subtree."""
    return await registry.list_regions(within=user.region_path)


@router.post("/organizations", response_model=OrganizationRead, status_code=201)
async def create_organization(body: OrganizationCreate, _: AdminOnly, __: Transaction) -> object:
    """Register an organization."""
    return await registry.create_organization(**body.model_dump())


@router.patch("/organizations/{organization_id}", response_model=OrganizationRead)
async def update_organization(
    organization_id: int, body: OrganizationUpdate, _: AdminOnly, __: Transaction
) -> object:
    """Change an organization's name, region, beds or contact."""
    return await registry.update_organization(
        organization_id=organization_id, changes=body.model_dump(exclude_unset=True)
    )


@router.get("/organizations", response_model=list[OrganizationRead])
async def list_organizations(
    user: ManagerOnly, kind: Annotated[OrganizationKind | None, Query()] = None
) -> list:
    """Organizations in the user's region subtree."""
    return await registry.list_organizations(kind=kind, within=user.region_path)


@router.post("/sites", response_model=SiteRead, status_code=201)
async def create_site(body: SiteCreate, _: AdminOnly, __: Transaction) -> object:
    """Add a site with coordinates."""
    return await registry.create_site(**body.model_dump())


@router.get("/sites", response_model=list[SiteRead])
async def list_sites(_: ManagerOnly, organization_id: int | None = None) -> list:
    """Sites, optionally of one organization."""
    return await registry.list_sites(organization_id=organization_id)


@router.post(
    "/organizations/{organization_id}/licences", response_model=LicenceRead, status_code=201
)
async def add_licence(
    organization_id: int, body: LicenceCreate, _: AdminOnly, __: Transaction
) -> object:
    """License a treatment facility for a category and methods."""
    return await registry.add_licence(organization_id=organization_id, **body.model_dump())


@router.get("/organizations/{organization_id}/licences", response_model=list[LicenceRead])
async def list_licences(organization_id: int, _: ManagerOnly) -> list:
    """A facility's licences."""
    return await registry.list_licences(organization_id=organization_id)


@router.post("/vessels", response_model=VesselRead, status_code=201)
async def create_vessel(body: VesselCreate, _: AdminOnly, __: Transaction) -> object:
    """Register a vessel."""
    return await registry.create_vessel(**body.model_dump())


@router.get("/vessels", response_model=list[VesselRead])
async def list_vessels(_: ManagerOnly, home_port_id: int | None = None) -> list:
    """Vessels, optionally of one home port."""
    return await registry.list_vessels(home_port_id=home_port_id)


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(body: UserCreate, _: AdminOnly, __: Transaction) -> object:
    """Create a user bound to one organization."""
    return await auth.create_user(**body.model_dump())


@router.get("/users", response_model=list[UserRead])
async def list_users(_: AdminOnly) -> list:
    """All users."""
    return await auth.list_users()
