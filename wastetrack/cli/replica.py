"""A streaming read replica of the embedded server, on this machine."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from wastetrack.cli.running import print_on_server
from wastetrack.core import db
from wastetrack.core.db import credentials_from_url
from wastetrack.core.settings import Settings, get_settings

T = TypeVar("T")

replica_app = typer.Typer(
    help="A streaming read replica of the embedded server on this machine.", no_args_is_help=True
)


def _on_embedded_server(
    work: Callable[[str, Settings], Awaitable[T]], *, prepare: bool = True
) -> T:
    """Run work on the embedded server's URL and print its result; with prepare, the database
    is migrated and the service's role put in place first (a read-only look passes False); a
    configured WASTETRACK_DATABASE_URL is refused (its replicas are the operator's)."""
    from wastetrack.core.errors import Conflict

    settings = get_settings()

    async def main(url: str) -> T:
        if settings.database_url:
            raise Conflict(
                "replicas are made of the embedded server; unset WASTETRACK_DATABASE_URL",
                field="database_url",
            )
        if prepare:
            await db.migrate_for_service(url, settings)
        return await work(url, settings)

    return print_on_server(lambda url: asyncio.run(main(url)))


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
        ),
        prepare=False,  # only looks: no migration, no grants
    )


@replica_app.command("drop")
def replica_drop() -> None:
    """Stop the standby, delete it and release the WAL the primary keeps for it."""
    from wastetrack.core import replica

    async def work(url: str, settings: Settings) -> dict[str, bool]:
        await replica.drop(primary_url=url, pgdata=replica.replica_dir(settings.data_dir))
        return {"dropped": True}

    _on_embedded_server(work)
