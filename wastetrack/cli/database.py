"""The database as a whole: migrations, and backups of it with the photos."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from wastetrack.cli.running import or_exit, print_on_server, writable
from wastetrack.core import db
from wastetrack.core.settings import get_settings


def migrate() -> None:
    """Apply pending migrations."""

    settings = get_settings()
    with db.server_database_url(settings) as url:
        # On the embedded server, also (re)create the service's own role and its grants.
        or_exit(lambda: asyncio.run(db.migrate_for_service(url, settings)))
    typer.echo("migrations applied")


def backup(out: Annotated[Path, typer.Option(help="tar file to write")]) -> None:
    """Write the database (pg_dump's custom format) and the photos into one tar file."""
    from wastetrack.core import backup as backups

    settings = get_settings()
    writable(out)
    print_on_server(
        lambda url: backups.backup(
            database_url=url,
            data_dir=settings.data_dir,
            out=out,
            external=bool(settings.database_url),
        )
    )


def restore(archive: Annotated[Path, typer.Argument(help="a file written by backup")]) -> None:
    """Restore a backup into an empty database and the photo directory, then verify every
    custody chain (exit 1 when one is broken)."""
    from wastetrack.core import backup as backups

    settings = get_settings()
    if not settings.database_url:
        or_exit(lambda: backups.move_embedded_server_on(settings, archive))
    summary = print_on_server(
        lambda url: backups.restore(
            database_url=url,
            data_dir=settings.data_dir,
            archive=archive,
            external=bool(settings.database_url),
        )
    )
    if summary["chains"]["broken"]:
        raise typer.Exit(1)
