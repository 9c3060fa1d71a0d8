"""The `wastetrack` command: serve, migrate, manage the registry, issue labels, load the demo.

The commands live in modules by what they do; this module is their table of contents, and the
order here is the order `wastetrack --help` lists them in.
"""

import typer

from wastetrack.cli import accounts, database, integrity, jobs, reference, replica, serving

app = typer.Typer(
    help="wastetrack: solid-waste custody from QR tag to treatment.", no_args_is_help=True
)

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
