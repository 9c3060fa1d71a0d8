"""Reference data: the registry (regions, organizations, agreements, sites, licences,
vessels), the working-day calendar, and the Rongcheng demo that loads a world of both."""

from datetime import date
from typing import Annotated

import typer

from schemas.base import Day
from schemas.calendar import CalendarDayUpdate
from schemas.registry import (
    LicenceCreate,
    OrganizationCreate,
    RegionCreate,
    ServiceAgreementCreate,
    SiteCreate,
    VesselCreate,
)
from wastetrack.cli.running import contract, identifier, run_and_print
from wastetrack.core.settings import get_settings
from wastetrack.registry.models import OrganizationKind, RegionLevel

registry_app = typer.Typer(
    help="Regions, organizations, sites, licences, vessels.", no_args_is_help=True
)
calendar_app = typer.Typer(
    help="The official working-day calendar (holidays, make-up working days).",
    no_args_is_help=True,
)


@registry_app.command("region")
def region_create(
    code: Annotated[
        str,
        typer.Option(help="division code: city 6 digits (GB/T 2260), town 9, village 12"),
    ],
    name: Annotated[str, typer.Option()],
    level: Annotated[RegionLevel, typer.Option()],
    parent_id: Annotated[int | None, typer.Option("--parent")] = None,
) -> None:
    """Add a region."""
    from wastetrack.registry import service as registry

    body = contract(RegionCreate, code=code, name=name, level=level, parent_id=parent_id)

    async def work() -> dict[str, object]:
        region = await registry.create_region(**body.model_dump())
        return {"id": region.id, "code": region.code, "path": region.path}

    run_and_print(work)


@registry_app.command("org")
def organization_create(
    name: Annotated[str, typer.Option()],
    kind: Annotated[OrganizationKind, typer.Option()],
    region_id: Annotated[int, typer.Option("--region")],
    bed_count: Annotated[int | None, typer.Option("--beds")] = None,
    credit_code: Annotated[
        str | None, typer.Option(help="unified social credit code (统一社会信用代码), 18 chars")
    ] = None,
) -> None:
    """Register an organization."""
    from wastetrack.registry import service as registry

    body = contract(
        OrganizationCreate,
        name=name,
        kind=kind,
        region_id=region_id,
        bed_count=bed_count,
        credit_code=credit_code,
    )

    async def work() -> dict[str, object]:
        org = await registry.create_organization(**body.model_dump())
        return {
            "id": org.id,
            "name": org.name,
            "kind": org.kind.value,
            "credit_code": org.credit_code,
        }

    run_and_print(work)


@registry_app.command("agreement")
def agreement_create(
    provider_id: Annotated[int, typer.Option("--provider", help="the carrier or collector")],
    client_id: Annotated[int, typer.Option("--client", help="the organization it serves")],
    streams: Annotated[list[str], typer.Option("--stream", help="repeat for several")],
    valid_from: Annotated[date, typer.Option("--from", parser=date.fromisoformat)],
    valid_to: Annotated[date | None, typer.Option("--to", parser=date.fromisoformat)] = None,
) -> None:
    """Register a service agreement: the provider may tag the client's waste of these streams."""
    from wastetrack.registry import agreements

    body = contract(
        ServiceAgreementCreate,
        provider_organization_id=provider_id,
        client_organization_id=client_id,
        streams=streams,
        valid_from=valid_from,
        valid_to=valid_to,
    )

    async def work() -> dict[str, object]:
        agreement = await agreements.create_service_agreement(
            provider_organization_id=body.provider_organization_id,
            client_organization_id=body.client_organization_id,
            streams=body.streams,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
        )
        return {"id": agreement.id, "streams": agreement.streams}

    run_and_print(work)


@registry_app.command("site")
def site_create(
    organization_id: Annotated[int, typer.Option("--org")],
    name: Annotated[str, typer.Option()],
    latitude: Annotated[float, typer.Option("--lat")],
    longitude: Annotated[float, typer.Option("--lon")],
) -> None:
    """Add a site with coordinates."""
    from wastetrack.registry import service as registry

    body = contract(
        SiteCreate,
        organization_id=organization_id,
        name=name,
        latitude=latitude,
        longitude=longitude,
    )

    async def work() -> dict[str, object]:
        site = await registry.create_site(**body.model_dump())
        return {"id": site.id, "name": site.name}

    run_and_print(work)


@registry_app.command("licence")
def licence_add(
    organization_id: Annotated[int, typer.Option("--org")],
    category: Annotated[str, typer.Option()],
    methods: Annotated[str, typer.Option(help="comma-separated R/D codes, e.g. D9,D10")],
    permit_number: Annotated[str | None, typer.Option("--permit")] = None,
    valid_from: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default today in the city")
    ] = None,
    valid_until: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    reason: Annotated[
        str | None, typer.Option(help="why it starts on a day already past (audited)")
    ] = None,
) -> None:
    """License a treatment facility for a category and methods, from a day; granting the
    category again keeps the version before, ended the day before the new one starts."""
    from wastetrack.core import cityday
    from wastetrack.registry import service as registry

    timezone = get_settings().timezone
    organization_id = identifier("organization_id", organization_id)
    body = contract(
        LicenceCreate,
        category_key=category,
        method_codes=[m.strip() for m in methods.split(",") if m.strip()],
        permit_number=permit_number,
        valid_from=valid_from,
        valid_until=valid_until,
        reason=reason,
    )

    async def work() -> dict[str, object]:
        licence = await registry.add_licence(
            organization_id=organization_id,
            **body.model_dump(exclude={"valid_from"}),
            valid_from=body.valid_from or cityday.today(timezone),
            timezone=timezone,
        )
        return {"id": licence.id, "category": licence.category_key, "methods": licence.method_codes}

    run_and_print(work)


@registry_app.command("vessel")
def vessel_create(
    name: Annotated[str, typer.Option()],
    registration_number: Annotated[str, typer.Option("--registration")],
    gross_tonnage: Annotated[str, typer.Option("--gt")],
    home_port_id: Annotated[int, typer.Option("--home-port")],
    imo_number: Annotated[str | None, typer.Option("--imo")] = None,
    mmsi: Annotated[str | None, typer.Option()] = None,
    owner_id: Annotated[
        int | None, typer.Option("--owner", help="the owner's organization (船东), if any")
    ] = None,
    vessel_type: Annotated[str, typer.Option("--type")] = "fishing",
) -> None:
    """Register a vessel with its home port, and its owner: the producer of what it delivers
    (without one, the port is)."""
    from wastetrack.registry import vessels

    body = contract(
        VesselCreate,
        name=name,
        registration_number=registration_number,
        gross_tonnage=gross_tonnage,
        home_port_id=home_port_id,
        imo_number=imo_number,
        mmsi=mmsi,
        owner_id=owner_id,
        vessel_type=vessel_type,
    )

    async def work() -> dict[str, object]:
        vessel = await vessels.create_vessel(**body.model_dump())
        return {
            "id": vessel.id,
            "registration_number": vessel.registration_number,
            "owner_id": vessel.owner_id,
        }

    run_and_print(work)


@calendar_app.command("load")
def calendar_load(
    year: Annotated[int | None, typer.Option(help="default: every year the library knows")] = None,
    reason: Annotated[
        str | None, typer.Option(help="why, when the load changes a day already past")
    ] = None,
) -> None:
    """Load working days and holidays from the installed chinesecalendar library."""
    from wastetrack.calendar import service as calendar

    run_and_print(lambda: calendar.load_from_library(year=year, reason=reason))


class _CalendarDaySet(CalendarDayUpdate):
    """`PUT /admin/v1/calendar/{day}`'s contract: the day its path takes, and its body."""

    day: Day


@calendar_app.command("set")
def calendar_set(
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    working: Annotated[bool, typer.Option("--working/--holiday", help="a working or rest day")],
    name: Annotated[str | None, typer.Option(help="the holiday, e.g. 春节")] = None,
    reason: Annotated[
        str | None, typer.Option(help="why; required for a day already past (audited)")
    ] = None,
) -> None:
    """Declare one day a working day or a holiday (e.g. a year the library does not know)."""
    from wastetrack.calendar import service as calendar

    body = contract(_CalendarDaySet, day=day, is_working_day=working, name=name, reason=reason)

    async def work() -> dict[str, object]:
        info = await calendar.set_day(
            day=body.day,
            is_working_day=body.is_working_day,
            name=body.name,
            source="admin (command line)",
            reason=body.reason,
        )
        return {
            "day": info.day,
            "is_working_day": info.is_working_day,
            "name": info.name,
            "source": info.source,
        }

    run_and_print(work)


def demo(
    allow_demo_logins: Annotated[
        bool,
        typer.Option(
            help="load it though other machines reach the service (its logins are published)"
        ),
    ] = False,
) -> None:
    """Load (idempotently) a small Rongcheng data set; the last line maps demo roles to logins.
    Refused where other machines reach the service (as `serve` refuses to serve them while the
    demo's published logins work), unless told `--allow-demo-logins`; never in production."""
    from wastetrack.demo import load_demo

    settings = get_settings()
    if allow_demo_logins:
        settings = settings.model_copy(update={"allow_demo_logins": True})
    reached = settings.demo_logins_refused()
    run_and_print(
        lambda: load_demo(
            secret=settings.secret_key,
            echo=typer.echo,
            environment=settings.environment,
            reached=reached,
        )
    )
