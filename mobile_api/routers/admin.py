"""The registry, managed by administrators. Managers read their region subtree (admins: all);
vessels, berths and service agreements are also read by the organizations they concern."""

from collections.abc import Sequence
from typing import Annotated

from fastapi import Query

from mobile_api.bodies import Router
from mobile_api.deps import (
    AdminOnly,
    AppSettings,
    CurrentUser,
    ManagerOnly,
    Paging,
    Transaction,
    YearPeriod,
)
from mobile_api.presenters import NEXT_PAGE
from schemas.auth import SessionsRevokedRead, UserCreate, UserRead
from schemas.base import NO_CONTROL, Id, Text
from schemas.calendar import CalendarDayRead, CalendarDayUpdate, CalendarLoadRead
from schemas.registry import (
    LicenceCreate,
    LicenceRead,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    RegionCreate,
    RegionRead,
    ServiceAgreementCreate,
    ServiceAgreementEnd,
    ServiceAgreementRead,
    SiteCreate,
    SiteRead,
    VesselCreate,
    VesselRead,
)
from wastetrack.auth import service as auth
from wastetrack.calendar import service as calendar
from wastetrack.core import cityday
from wastetrack.core.commands import Day
from wastetrack.registry import agreements, vessels
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

router = Router(prefix="/admin/v1", tags=["admin"])


@router.post("/regions", response_model=RegionRead, status_code=201)
async def create_region(body: RegionCreate, _: AdminOnly, __: Transaction) -> object:
    """Add a city, town/street or village/community."""
    return await registry.create_region(**body.model_dump())


@router.get("/regions", response_model=list[RegionRead])
async def list_regions(user: ManagerOnly) -> Sequence[object]:
    """Regions the user may read."""
    return await registry.list_regions(principal=user)


@router.post("/organizations", response_model=OrganizationRead, status_code=201)
async def create_organization(body: OrganizationCreate, _: AdminOnly, __: Transaction) -> object:
    """Register an organization."""
    return await registry.create_organization(**body.model_dump())


@router.patch("/organizations/{organization_id}", response_model=OrganizationRead)
async def update_organization(
    organization_id: Id, body: OrganizationUpdate, _: AdminOnly, __: Transaction
) -> object:
    """Change an organization's name, region, beds, contact or unified social credit code."""
    return await registry.update_organization(
        organization_id=organization_id, changes=body.model_dump(exclude_unset=True)
    )


@router.get("/organizations", response_model=list[OrganizationRead], responses={200: NEXT_PAGE})
async def list_organizations(
    user: ManagerOnly,
    paged: Paging,
    kind: Annotated[OrganizationKind | None, Query()] = None,
    credit_code: Annotated[Text | None, Query(max_length=32)] = None,
) -> Sequence[object]:
    """Organizations the user may read, oldest first, optionally of one kind or by unified
    social credit code (统一社会信用代码; spaces, hyphens and case ignored)."""
    return await paged.read(
        registry.list_organizations, principal=user, kind=kind, credit_code=credit_code
    )


@router.post("/sites", response_model=SiteRead, status_code=201)
async def create_site(body: SiteCreate, _: AdminOnly, __: Transaction) -> object:
    """Add a site with coordinates."""
    return await registry.create_site(**body.model_dump())


@router.get("/sites", response_model=list[SiteRead], responses={200: NEXT_PAGE})
async def list_sites(
    user: ManagerOnly, paged: Paging, organization_id: Id | None = None
) -> Sequence[object]:
    """Sites the user may read, oldest first, optionally of one organization."""
    return await paged.read(registry.list_sites, principal=user, organization_id=organization_id)


@router.post(
    "/organizations/{organization_id}/licences", response_model=LicenceRead, status_code=201
)
async def add_licence(
    organization_id: Id,
    body: LicenceCreate,
    settings: AppSettings,
    _: AdminOnly,
    __: Transaction,
) -> object:
    """License a treatment facility for a category and methods, from a day (default: today in
    the city; a day already past needs a reason); granting the category again adds a version
    and ends the one before. Audited."""
    values = body.model_dump()
    values["valid_from"] = values["valid_from"] or cityday.today(settings.timezone)
    return await registry.add_licence(
        organization_id=organization_id, timezone=settings.timezone, **values
    )


@router.get("/organizations/{organization_id}/licences", response_model=list[LicenceRead])
async def list_licences(organization_id: Id, user: ManagerOnly) -> Sequence[object]:
    """A facility's licences (when the user may read the facility)."""
    return await registry.list_licences(principal=user, organization_id=organization_id)


@router.post("/vessels", response_model=VesselRead, status_code=201)
async def create_vessel(body: VesselCreate, _: AdminOnly, __: Transaction) -> object:
    """Register a vessel."""
    return await vessels.create_vessel(**body.model_dump())


@router.get("/vessels", response_model=list[VesselRead], responses={200: NEXT_PAGE})
async def list_vessels(
    user: CurrentUser,
    paged: Paging,
    home_port_id: Id | None = None,
    registration_number: Annotated[Text | None, Query(min_length=1, max_length=64)] = None,
) -> Sequence[object]:
    """Vessels the user may read, oldest first; a port operator finds any vessel by
    registration number."""
    return await paged.read(
        vessels.list_vessels,
        principal=user,
        home_port_id=home_port_id,
        registration_number=registration_number,
    )


@router.post("/service-agreements", response_model=ServiceAgreementRead, status_code=201)
async def create_service_agreement(
    body: ServiceAgreementCreate, _: AdminOnly, __: Transaction
) -> object:
    """Register that a carrier or collector serves a client: it may then tag the client's waste
    of the named streams while the agreement is valid."""
    return await agreements.create_service_agreement(**body.model_dump())


@router.post("/service-agreements/{agreement_id}/end", response_model=ServiceAgreementRead)
async def end_service_agreement(
    agreement_id: Id,
    body: ServiceAgreementEnd,
    settings: AppSettings,
    _: AdminOnly,
    __: Transaction,
) -> object:
    """End an agreement on its last valid day (today in the city or later): its provider no
    longer tags the client's waste after it. One ended already is a 409. Audited."""
    return await agreements.end_service_agreement(
        agreement_id=agreement_id, valid_to=body.valid_to, timezone=settings.timezone
    )


@router.get(
    "/service-agreements", response_model=list[ServiceAgreementRead], responses={200: NEXT_PAGE}
)
async def list_service_agreements(user: CurrentUser, paged: Paging) -> Sequence[object]:
    """Service agreements the user may read, oldest first."""
    return await paged.read(agreements.list_service_agreements, principal=user)


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(body: UserCreate, _: AdminOnly, __: Transaction) -> object:
    """Create a user bound to one organization."""
    return await auth.create_user(**body.model_dump())


@router.post("/users/{user_id}/deactivate", response_model=UserRead)
async def deactivate_user(user_id: Id, user: AdminOnly, __: Transaction) -> object:
    """Stop a user from logging in (someone who left): every login of theirs ends at once, and
    their access tokens within minutes. Audited. Never yourself, nor the last active
    administrator (409)."""
    return await auth.deactivate_user(user_id=user_id, acting_user_id=user.user_id)


@router.post("/users/{user_id}/sessions/revoke", response_model=SessionsRevokedRead)
async def revoke_sessions(user_id: Id, _: AdminOnly, __: Transaction) -> object:
    """End every login of a user who keeps the account (a lost or stolen phone): each device
    logs in again once its access token ends (within minutes). Audited."""
    return {"revoked": await auth.revoke_sessions(user_id=user_id)}


@router.get("/users", response_model=list[UserRead], responses={200: NEXT_PAGE})
async def list_users(user: ManagerOnly, paged: Paging) -> Sequence[object]:
    """Users the caller may read, oldest first: all (admins), or of the manager's region
    subtree."""
    return await paged.read(auth.list_users, principal=user)


@router.get("/calendar", response_model=list[CalendarDayRead])
async def list_calendar(_: ManagerOnly, period: YearPeriod) -> Sequence[object]:
    """Working days and holidays of a period (at most a year; default: this year to date),
    with where each comes from."""
    return await calendar.list_days(date_from=period.date_from, date_to=period.date_to)


@router.get("/calendar/{day}", response_model=CalendarDayRead)
async def get_calendar_day(day: Day, _: ManagerOnly) -> object:
    """One day of the official calendar (or the Monday–Friday rule where it has no data)."""
    return await calendar.get_day(day=day)


@router.put("/calendar/{day}", response_model=CalendarDayRead)
async def set_calendar_day(
    day: Day, body: CalendarDayUpdate, user: AdminOnly, settings: AppSettings, __: Transaction
) -> object:
    """Declare a day a working day or a holiday (a new year's notice, a local change); audited,
    and a day already past needs a reason (it moves deadlines that have run)."""
    return await calendar.set_day(
        day=day,
        is_working_day=body.is_working_day,
        name=body.name,
        source=f"admin {user.username}",
        reason=body.reason,
        principal=user,
        timezone=settings.timezone,
    )


@router.post("/calendar/load", response_model=CalendarLoadRead)
async def load_calendar(
    user: AdminOnly,
    settings: AppSettings,
    __: Transaction,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    reason: Annotated[
        str | None,
        Query(
            max_length=255,
            pattern=NO_CONTROL,
            description="why, when the load changes a day already past (it moves deadlines"
            " that have run)",
        ),
    ] = None,
) -> object:
    """Load a year (or every year) from the installed chinesecalendar library; audited with
    the days it changed, and a change of a day already past needs a reason."""
    return await calendar.load_from_library(
        year=year, reason=reason, principal=user, timezone=settings.timezone
    )
