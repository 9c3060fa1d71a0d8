"""The custody log's integrity: signing keys, the audit of every chain, and the signed daily
checkpoints kept outside the system."""

import json
from pathlib import Path
from typing import Annotated

import typer

from wastetrack.cli.running import echo, or_exit, run, run_and_print, writable, write_file
from wastetrack.core.settings import get_settings

keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
checkpoints_app = typer.Typer(
    help="Signed daily checkpoints of the custody log.", no_args_is_help=True
)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new master key version for new labels, receipts and tokens; old ones keep verifying.
    Restart the service afterwards."""
    from wastetrack.core import codes, keys

    settings = get_settings()
    version = or_exit(lambda: keys.rotate(master=settings.secret_key, data_dir=settings.data_dir))
    echo({"version": version, "kid": codes.ALPHABET[version]})


def verify() -> None:
    """Audit every custody chain and every checkpoint; exit 1 on any break."""
    from wastetrack.custody import checkpoints

    settings = get_settings()
    report = run_and_print(
        lambda: checkpoints.audit(
            secret=settings.secret_key, timezone=settings.timezone, data_dir=settings.data_dir
        )
    )
    if not report["valid"]:
        raise typer.Exit(1)


@checkpoints_app.command("seal")
def checkpoints_seal() -> None:
    """Checkpoint every finished day that has none yet (the service also does it on its own)."""
    from wastetrack.custody import checkpoints

    settings = get_settings()
    run_and_print(
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

    if out is not None:
        writable(out)
    exported = run(checkpoints.list_checkpoints)
    text = json.dumps({"checkpoints": exported}, ensure_ascii=False, indent=1)
    if out is None:
        typer.echo(text)
    else:
        write_file(out, text.encode())
        echo({"checkpoints": len(exported), "file": str(out)})
