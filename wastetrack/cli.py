"""The `wastetrack` command: serve, migrate, manage the registry, issue labels, load the demo."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from tortoise.transactions import in_transaction

from wastetrack.auth.models import Role
from wastetrack.core import db
from wastetrack.core.errors import DomainError
from wastetrack.core.settings import get_settings
from wastetrack.registry.models import OrganizationKind, RegionLevel

app = typer.Typer(
    help="wastetrack: solid-waste custody from QR tag to treatment.", no_args_is_help=True
)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
labels_app = typer.Typer(help="Pre-printed QR label stock.", no_args_is_help=True)
registry_app = typer.Typer(
    help="Regions, organizations, sites, licences, vessels.", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(labels_app, name="labels")
app.add_typer(registry_app, name="registry")
T = TypeVar("T")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Migrate, open the database and run work in one transaction; domain errors exit 2."""

    async def main(url: str) -> T:
        await db.migrate(url)
        async with db.database(url, pool_size=2), in_transaction():
            return await work()

    try:
        with db.server_database_url(get_settings()) as url:
            return asyncio.run(main(url))
    except DomainError as error:
        field = f" ({error.field})" if error.field else ""
        typer.echo(f"error{field}: {error.detail}", err=True)
        raise typer.Exit(2) from None


def _echo(value: dict[str, Any]) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: WASTETRACK_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: WASTETRACK_PORT")] = None,
) -> None:
    """Start the HTTP service (migrating first; embedded PostgreSQL unless a URL is set)."""
    import uvicorn

    from mobile_api.app import create_app

    settings = get_settings()
    settings = settings.model_copy(
        update={"host": host or settings.host, "port": port or settings.port}
    )
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


@app.command()
def migrate() -> None:
    """Apply pending migrations."""

    with db.server_database_url(get_settings()) as url:
        asyncio.run(db.migrate(url))
    typer.echo("migrations applied")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option()],
    role: Annotated[Role, typer.Option()],
    organization_id: Annotated[int, typer.Option("--org")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    full_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a user bound to an organization."""
    from wastetrack.auth import service as auth

    async def work() -> dict[str, Any]:
        user = await auth.create_user(
            username=username,
            password=password,
            role=role,
            organization_id=organization_id,
            full_name=full_name,
        )
        return {"id": user.id, "username": user.username, "role": user.role.value}

    _echo(_run(work))


@registry_app.command("region")
def region_create(
    code: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    level: Annotated[RegionLevel, typer.Option()],
    parent_id: Annotated[int | None, typer.Option("--parent")] = None,
) -> None:
    """Add a region."""
    from wastetrack.registry import service as registry

    async def work() -> dict[str, Any]:
        region = await registry.create_region(
            code=code, name=name, level=level, parent_id=parent_id
        )
        return {"id": region.id, "path": region.path}

    _echo(_run(work))


@registry_app.command("org")
def organization_create(
    name: Annotated[str, typer.Option()],
    kind: Annotated[OrganizationKind, typer.Option()],
    region_id: Annotated[int, typer.Option("--region")],
    bed_count: Annotated[int | None, typer.Option("--beds")] = None,
    credit_code: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Register an organization."""
    from wastetrack.registry import service as registry

    async def work() -> dict[str, Any]:
        org = await registry.create_organization(
            name=name, kind=kind, region_id=region_id, bed_count=bed_count, credit_code=credit_code
        )
        return {"id": org.id, "name": org.name, "kind": org.kind.value}

    _echo(_run(work))


@registry_app.command("site")
def site_create(
    organization_id: Annotated[int, typer.Option("--org")],
    name: Annotated[str, typer.Option()],
    latitude: Annotated[float, typer.Option("--lat")],
    longitude: Annotated[float, typer.Option("--lon")],
) -> None:
    """Add a site with coordinates."""
    from wastetrack.registry import service as registry

    async def work() -> dict[str, Any]:
        site = await registry.create_site(
            organization_id=organization_id,
            name=name,
            region_id=None,
            latitude=latitude,
            longitude=longitude,
        )
        return {"id": site.id, "name": site.name}

    _echo(_run(work))


@registry_app.command("licence")
def licence_add(
    organization_id: Annotated[int, typer.Option("--org")],
    category: Annotated[str, typer.Option()],
    methods: Annotated[str, typer.Option(help="comma-separated R/D codes, e.g. D9,D10")],
    permit_number: Annotated[str | None, typer.Option("--permit")] = None,
    valid_until: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
) -> None:
    """License a treatment facility for a category and methods."""
    from wastetrack.registry import service as registry

    async def work() -> dict[str, Any]:
        licence = await registry.add_licence(
            organization_id=organization_id,
            category_key=category,
            method_codes=[m.strip() for m in methods.split(",") if m.strip()],
            permit_number=permit_number,
            valid_until=date.fromisoformat(valid_until) if valid_until else None,
        )
        return {"id": licence.id, "category": licence.category_key, "methods": licence.method_codes}

    _echo(_run(work))


@registry_app.command("vessel")
def vessel_create(
    name: Annotated[str, typer.Option()],
    registration_number: Annotated[str, typer.Option("--registration")],
    gross_tonnage: Annotated[str, typer.Option("--gt")],
    home_port_id: Annotated[int, typer.Option("--home-port")],
    imo_number: Annotated[str | None, typer.Option("--imo")] = None,
    mmsi: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Register a vessel with its home port."""
    from wastetrack.registry import service as registry

    async def work() -> dict[str, Any]:
        vessel = await registry.create_vessel(
            name=name,
            registration_number=registration_number,
            gross_tonnage=Decimal(gross_tonnage),
            home_port_id=home_port_id,
            imo_number=imo_number,
            mmsi=mmsi,
        )
        return {"id": vessel.id, "registration_number": vessel.registration_number}

    _echo(_run(work))


@labels_app.command("issue")
def labels_issue(
    organization_id: Annotated[int, typer.Option("--org")],
    stream: Annotated[str, typer.Option()],
    count: Annotated[int, typer.Option()],
    out: Annotated[Path, typer.Option(help="PDF file to write")],
    manager: Annotated[
        str | None, typer.Option(help="issue as this manager (default: first admin)")
    ] = None,
) -> None:
    """Issue N unbound label codes for an organization and write them as an A4 PDF sheet."""
    from wastetrack.auth import service as auth
    from wastetrack.auth.models import User
    from wastetrack.batches import service as batches

    settings = get_settings()

    async def work() -> dict[str, Any]:
        query = User.filter(username=manager) if manager else User.filter(role=Role.admin)
        user = await query.order_by("id").first()
        if user is None:
            raise DomainError("no such manager; create an admin or pass --manager", field="manager")
        principal = await auth.principal_for(user)
        issued, pdf = await batches.issue_label_sheet(
            principal=principal,
            organization_id=organization_id,
            stream=stream,
            count=count,
            base_url=settings.base_url,
            secret=settings.secret_key,
        )
        out.write_bytes(pdf)
        return {"issued": len(issued), "first": issued[0].code, "pdf": str(out)}

    _echo(_run(work))


@app.command("rollups-rebuild")
def rollups_rebuild() -> None:
    """Recompute the daily roll-ups from the custody log (they are kept up to date anyway)."""
    from wastetrack.rollups import service as rollups

    rows = _run(lambda: rollups.rebuild(timezone=get_settings().timezone))
    _echo({"rollup_rows": rows})


@app.command()
def demo() -> None:
    """Load (idempotently) a small Rongcheng data set; the last line maps demo roles to logins."""
    from wastetrack.demo import load_demo

    settings = get_settings()
    credentials = _run(lambda: load_demo(secret=settings.secret_key, echo=typer.echo))
    typer.echo(json.dumps(credentials, ensure_ascii=False))


if __name__ == "__main__":
    app()
