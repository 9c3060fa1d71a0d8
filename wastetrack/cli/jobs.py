"""The service's background rounds, run once by hand: alerts, roll-ups, custody partitions.
The service runs each on its own; these are for catching up or checking."""

from wastetrack.cli.running import run_and_print
from wastetrack.core.settings import get_settings


def alerts_refresh() -> None:
    """Raise every alert a rule calls for now (the service also does it on its own)."""
    from wastetrack.alerts import service as alerts

    settings = get_settings()
    run_and_print(lambda: alerts.refresh(settings=settings), lambda raised: {"raised": raised})


def rollups_rebuild() -> None:
    """Recompute the daily roll-ups from the custody log (they are kept up to date anyway)."""
    from wastetrack.rollups import service as rollups

    run_and_print(
        lambda: rollups.rebuild(timezone=get_settings().timezone),
        lambda rows: {"rollup_rows": rows},
    )


def custody_partitions() -> None:
    """Make the custody log's partitions ahead of the batch ids (the service does so every few
    minutes), and list them."""
    from wastetrack.custody import partitions

    async def work() -> dict[str, object]:
        made = await partitions.ensure_ahead(ahead=get_settings().custody_partitions_ahead)
        listed = await partitions.partitions()
        return {"made": made, "partitions": [[p.name, p.low, p.high] for p in listed]}

    run_and_print(work)
