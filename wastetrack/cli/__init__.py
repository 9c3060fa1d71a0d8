"""The `wastetrack` command: serve, migrate, manage the registry, issue labels, load the demo.

The commands live in modules by what they do; this module is their table of contents, and the
order here is the order `wastetrack --help` lists them in.
"""

import typer

from wastetrack.cli import accounts, database, integrity, jobs, reference, replica, serving

app = typer.Typer(
    help="wastetrack: solid-waste custody from QR tag to treatment.", no_args_is_help=True
)


@app.callback()
def _settings_first() -> None:
    """Read the settings before any command: a variable the service cannot use is a message
    naming it (exit 2), not a traceback from wherever the command first reads it."""
    from pydantic import ValidationError

    from wastetrack.core.settings import get_settings

    try:
        get_settings()
    except ValidationError as error:
        for problem in error.errors():
            name = f"WASTETRACK_{str(problem['loc'][0]).upper()}" if problem["loc"] else "settings"
            typer.echo(f"error ({name}): {problem['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(2) from None


for command in (
    serving.serve,
    serving.deliver,
    database.migrate,
    integrity.verify,
    jobs.alerts_refresh,
    jobs.rollups_rebuild,
    jobs.custody_partitions,
    database.backup,
    database.restore,
    reference.demo,
):
    app.command()(command)  # named after the function: alerts_refresh is alerts-refresh

for name, group in (
    ("user", accounts.user_app),
    ("labels", accounts.labels_app),
    ("registry", reference.registry_app),
    ("calendar", reference.calendar_app),
    ("keys", integrity.keys_app),
    ("checkpoints", integrity.checkpoints_app),
    ("replica", replica.replica_app),
):
    app.add_typer(group, name=name)

__all__ = ["app"]
