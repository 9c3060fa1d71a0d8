"""The `wastetrack` command: serve, migrate, manage the registry, issue labels, load the demo."""

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from tortoise.transactions import in_transaction

from wastetrack.auth.models import Role
from wastetrack.core import db
from wastetrack.core.db import credentials_from_url
from wastetrack.core.errors import DomainError
from wastetrack.core.settings import Settings, get_settings
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
calendar_app = typer.Typer(
    help="The official working-day calendar (holidays, make-up working days).",
    no_args_is_help=True,
)
app.add_typer(calendar_app, name="calendar")
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
checkpoints_app = typer.Typer(
    help="Signed daily checkpoints of the custody log.", no_args_is_help=True
)
app.add_typer(checkpoints_app, name="checkpoints")
replica_app = typer.Typer(
    help="A streaming read replica of the embedded server on this machine.", no_args_is_help=True
)
app.add_typer(replica_app, name="replica")
T = TypeVar("T")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Migrate, open the database and run work in one transaction; domain errors exit 2."""

    async def main(url: str) -> T:
        await db.migrate(url)
        async with db.database(url, pool_size=2), in_transaction():
            return await work()

    def start() -> T:
        with db.server_database_url(get_settings()) as url:
            return asyncio.run(main(url))

    return _or_exit(start)


def _run_and_print(
    work: Callable[[], Awaitable[T]], shape: Callable[[T], object] | None = None
) -> T:
    """_run work and print its result, or shape(result), as one line of JSON; return the
    result."""
    result = _run(work)
    _echo(result if shape is None else shape(result))
    return result


def _print_on_server(work: Callable[[str], T]) -> T:
    """Run work on the database server's URL (the embedded server runs meanwhile) and print
    its result as one line of JSON; domain errors exit 2."""
    with db.server_database_url(get_settings()) as url:
        result = _or_exit(lambda: work(url))
    _echo(result)
    return result


def _or_exit(work: Callable[[], T]) -> T:
    """Run work; a domain error is printed and exits 2."""
    try:
        return work()
    except DomainError as error:
        field = f" ({error.field})" if error.field else ""
        typer.echo(f"error{field}: {error.detail}", err=True)
        raise typer.Exit(2) from None


def _echo(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: WASTETRACK_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: WASTETRACK_PORT")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="worker processes; default: the CPU count")
    ] = None,
) -> None:
    """Start the HTTP service (migrating first; embedded PostgreSQL unless a URL is set) and
    the webhook deliverer process beside it."""
    import uvicorn

    from wastetrack.core import observability
    from wastetrack.webhooks import deliverer

    settings = get_settings()
    settings = settings.model_copy(
        update={"host": host or settings.host, "port": port or settings.port}
    )
    workers = workers or os.cpu_count() or 1
    observability.configure_logging(settings.log_format, level=settings.log_level)

    async def prepare(url: str) -> str:
        await db.migrate(url)
        return await db.service_url(url, settings)

    with db.server_database_url(settings) as url:
        # Migrated once here; the workers and the deliverer read this URL from the environment.
        service_url = os.environ["WASTETRACK_DATABASE_URL"] = asyncio.run(prepare(url))
        settings = settings.model_copy(update={"database_url": service_url})
        with deliverer.supervised(os.environ):
            if workers > 1:
                _serve_workers(settings, workers)
                return
            from mobile_api.app import create_app

            # log_config=None: uvicorn keeps the app's structured logging (one line per request
            # is the app's own, so uvicorn's access log is off).
            uvicorn.run(
                create_app(settings, migrate=False),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
            )


def _serve_workers(settings: Settings, workers: int) -> None:
    """Run the workers on the database serve has migrated: they only serve (one of them also
    runs the background rounds, see mobile_api.app)."""
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="wastetrack-metrics-") as metrics_dir:
        # The workers are spawned: they read their settings from this environment.
        os.environ["WASTETRACK_HOST"] = settings.host
        os.environ["WASTETRACK_PORT"] = str(settings.port)
        # Every worker writes its metric samples there and /metrics sums them.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        uvicorn.run(
            "mobile_api.app:create_worker_app",
            factory=True,
            workers=workers,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )


@app.command()
def deliver(
    parent: Annotated[
        int | None, typer.Option(hidden=True, help="exit when this process is gone (serve's)")
    ] = None,
) -> None:
    """Send webhook deliveries (serve starts this itself; run it alone, e.g. on another
    machine, with WASTETRACK_DATABASE_URL set). One deliverer sends at a time cluster-wide."""
    from wastetrack.core import observability
    from wastetrack.webhooks import deliverer

    settings = get_settings()
    observability.configure_logging(settings.log_format, level=settings.log_level)
    with db.server_database_url(settings) as url:
        deliverer.main(settings=settings, url=url, parent=parent)


@app.command()
def migrate() -> None:
    """Apply pending migrations."""

    settings = get_settings()
    with db.server_database_url(settings) as url:
        asyncio.run(db.migrate(url))
        # On the embedded server, also (re)create the service's own role and its grants.
        asyncio.run(db.service_url(url, settings))
    typer.echo("migrations applied")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new master key version for new labels, receipts and tokens; old ones keep verifying.
    Restart the service afterwards."""
    from wastetrack.core import codes, keys

    settings = get_settings()
    version = keys.rotate(master=settings.secret_key, data_dir=settings.data_dir)
    _echo({"version": version, "kid": codes.ALPHABET[version]})


@app.command()
def verify() -> None:
    """Audit every custody chain and every checkpoint; exit 1 on any break."""
    from wastetrack.custody import checkpoints

    settings = get_settings()
    report = _run_and_print(
        lambda: checkpoints.audit(
            secret=settings.secret_key, timezone=settings.timezone, data_dir=settings.data_dir
        )
    )
    if not report["valid"]:
        raise typer.Exit(1)


@app.command("alerts-refresh")
def alerts_refresh() -> None:
    """Raise every alert a rule calls for now (the service also does it on its own)."""
    from wastetrack.alerts import service as alerts

    settings = get_settings()
    _run_and_print(
        lambda: alerts.refresh(
            weight_tolerance=settings.weight_discrepancy_tolerance,
            idle_hours=settings.idle_batch_hours,
        ),
        lambda raised: {"raised": raised},
    )


@checkpoints_app.command("seal")
def checkpoints_seal() -> None:
    """Checkpoint every finished day that has none yet (the service also does it on its own)."""
    from wastetrack.custody import checkpoints

    settings = get_settings()
    _run_and_print(
        lambda: checkpoints.seal_completed_days(
            timezone=settings.timezone, data_dir=settings.data_dir
        ),
        lambda sealed: {"sealed": [c.day.isoformat() for c in sealed]},
    )


@checkpoints_app.command("export")
def checkpoints_export(
    out: Annotated[Path | None, typer.Option(help="JSON file to write (default: stdout)")] = None,
) -> None:
    """Every checkpoint with its signature and public key, to keep outside the system."""
    from wastetrack.custody import checkpoints

    exported = _run(checkpoints.list_checkpoints)
    text = json.dumps({"checkpoints": exported}, ensure_ascii=False, indent=1)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text)
        _echo({"checkpoints": len(exported), "file": str(out)})


def _on_embedded_server(work: Callable[[str, Settings], Awaitable[T]]) -> T:
    """Run work on the embedded server's URL (migrated, the service's role in place) and print
    its result; a configured WASTETRACK_DATABASE_URL is refused (its replicas are the
    operator's)."""
    from wastetrack.core.errors import Conflict

    settings = get_settings()

    async def main(url: str) -> T:
        if settings.database_url:
            raise Conflict(
                "replicas are made of the embedded server; unset WASTETRACK_DATABASE_URL",
                field="database_url",
            )
        await db.migrate(url)
        await db.service_url(url, settings)
        return await work(url, settings)

    return _print_on_server(lambda url: asyncio.run(main(url)))


@replica_app.command("start")
def replica_start() -> None:
    """Create (the first time) and start a streaming standby of the embedded server in
    <data_dir>/replica; prints the URL to put in WASTETRACK_REPLICA_URL."""
    from wastetrack.core import replica

    _on_embedded_server(
        lambda url, settings: replica.start(
            primary_url=url,
            pgdata=replica.replica_dir(settings.data_dir),
            database=credentials_from_url(url)["database"],
            user=db.APP_ROLE,
        )
    )


@replica_app.command("status")
def replica_status() -> None:
    """Whether the standby runs, its URL, and how far its replay lags the primary."""
    from wastetrack.core import replica

    _on_embedded_server(
        lambda url, settings: replica.status(
            primary_url=url,
            pgdata=replica.replica_dir(settings.data_dir),
            database=credentials_from_url(url)["database"],
            user=db.APP_ROLE,
        )
    )


@replica_app.command("drop")
def replica_drop() -> None:
    """Stop the standby, delete it and release the WAL the primary keeps for it."""
    from wastetrack.core import replica

    async def work(url: str, settings: Settings) -> dict[str, bool]:
        await replica.drop(primary_url=url, pgdata=replica.replica_dir(settings.data_dir))
        return {"dropped": True}

    _on_embedded_server(work)


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

    _run_and_print(work)


@user_app.command("deactivate")
def user_deactivate(username: Annotated[str, typer.Option()]) -> None:
    """Stop a user from logging in; their refresh tokens are revoked at once."""
    from wastetrack.auth import service as auth
    from wastetrack.auth.models import User

    async def work() -> dict[str, Any]:
        user = await User.get_or_none(username=username)
        if user is None:
            raise DomainError("no such user", field="username")
        user = await auth.deactivate_user(user_id=user.id)
        return {"id": user.id, "username": user.username, "is_active": user.is_active}

    _run_and_print(work)


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

    async def work() -> dict[str, Any]:
        region = await registry.create_region(
            code=code, name=name, level=level, parent_id=parent_id
        )
        return {"id": region.id, "code": region.code, "path": region.path}

    _run_and_print(work)


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

    async def work() -> dict[str, Any]:
        org = await registry.create_organization(
            name=name, kind=kind, region_id=region_id, bed_count=bed_count, credit_code=credit_code
        )
        return {
            "id": org.id,
            "name": org.name,
            "kind": org.kind.value,
            "credit_code": org.credit_code,
        }

    _run_and_print(work)


@registry_app.command("agreement")
def agreement_create(
    provider_id: Annotated[int, typer.Option("--provider", help="the carrier or collector")],
    client_id: Annotated[int, typer.Option("--client", help="the organization it serves")],
    streams: Annotated[list[str], typer.Option("--stream", help="repeat for several")],
    valid_from: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"])],
    valid_to: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"])] = None,
) -> None:
    """Register a service agreement: the provider may tag the client's waste of these streams."""
    from wastetrack.registry import service as registry

    async def work() -> dict[str, Any]:
        agreement = await registry.create_service_agreement(
            provider_organization_id=provider_id,
            client_organization_id=client_id,
            streams=streams,
            valid_from=valid_from.date(),
            valid_to=valid_to.date() if valid_to else None,
        )
        return {"id": agreement.id, "streams": agreement.streams}

    _run_and_print(work)


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

    _run_and_print(work)


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

    _run_and_print(work)


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

    _run_and_print(work)


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

    _run_and_print(work)


@calendar_app.command("load")
def calendar_load(
    year: Annotated[int | None, typer.Option(help="default: every year the library knows")] = None,
) -> None:
    """Load working days and holidays from the installed chinesecalendar library."""
    from wastetrack.calendar import service as calendar

    _run_and_print(lambda: calendar.load_from_library(year=year))


@calendar_app.command("set")
def calendar_set(
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    working: Annotated[bool, typer.Option("--working/--holiday", help="a working or rest day")],
    name: Annotated[str | None, typer.Option(help="the holiday, e.g. 春节")] = None,
) -> None:
    """Declare one day a working day or a holiday (e.g. a year the library does not know)."""
    from wastetrack.calendar import service as calendar

    try:
        when = date.fromisoformat(day)
    except ValueError:
        typer.echo("error (day): give the day as YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None

    async def work() -> dict[str, Any]:
        info = await calendar.set_day(
            day=when, is_working_day=working, name=name, source="admin (command line)"
        )
        return {
            "day": info.day,
            "is_working_day": info.is_working_day,
            "name": info.name,
            "source": info.source,
        }

    _run_and_print(work)


@app.command("rollups-rebuild")
def rollups_rebuild() -> None:
    """Recompute the daily roll-ups from the custody log (they are kept up to date anyway)."""
    from wastetrack.rollups import service as rollups

    _run_and_print(
        lambda: rollups.rebuild(timezone=get_settings().timezone),
        lambda rows: {"rollup_rows": rows},
    )


@app.command("custody-partitions")
def custody_partitions() -> None:
    """Make the custody log's partitions ahead of the batch ids (the service does so every few
    minutes), and list them."""
    from wastetrack.custody import partitions

    async def work() -> dict[str, Any]:
        made = await partitions.ensure_ahead(ahead=get_settings().custody_partitions_ahead)
        listed = await partitions.partitions()
        return {"made": made, "partitions": [[p.name, p.low, p.high] for p in listed]}

    _run_and_print(work)


@app.command()
def backup(out: Annotated[Path, typer.Option(help="tar file to write")]) -> None:
    """Write the database (pg_dump's custom format) and the photos into one tar file."""
    from wastetrack.core import backup as backups

    settings = get_settings()
    _print_on_server(
        lambda url: backups.backup(
            database_url=url,
            data_dir=settings.data_dir,
            out=out,
            external=bool(settings.database_url),
        )
    )


@app.command()
def restore(archive: Annotated[Path, typer.Argument(help="a file written by backup")]) -> None:
    """Restore a backup into an empty database and the photo directory, then verify every
    custody chain (exit 1 when one is broken)."""
    from wastetrack.core import backup as backups

    settings = get_settings()
    summary = _print_on_server(
        lambda url: backups.restore(
            database_url=url,
            data_dir=settings.data_dir,
            archive=archive,
            external=bool(settings.database_url),
        )
    )
    if summary["chains"]["broken"]:
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Load (idempotently) a small Rongcheng data set; the last line maps demo roles to logins."""
    from wastetrack.demo import load_demo

    settings = get_settings()
    _run_and_print(lambda: load_demo(secret=settings.secret_key, echo=typer.echo))


if __name__ == "__main__":
    app()
