"""The plan's indicators against their 2025 targets."""

from typing import Any

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, ManagerOnly, RegionScoped, ReplicaRead, Transaction
from mobile_api.tables import Format, export
from schemas.base import Key
from schemas.indicators import (
    IndicatorRead,
    IndicatorsRead,
    IndicatorValueCreate,
    IndicatorValueRead,
)
from wastetrack.core import cityday
from wastetrack.indicators import service as indicators

router = Router(prefix="/m/v1/indicators", tags=["indicators"])


@router.get("", response_model=IndicatorsRead)
async def overview(
    user: RegionScoped, settings: AppSettings, _: ReplicaRead, format: Format = "json"
) -> Any:
    """Every indicator with baseline, target, actual value with its counts, and status."""
    today = cityday.today(settings.timezone)
    found = await indicators.overview(principal=user, today=today, timezone=settings.timezone)
    if format != "json":
        # Each row carries the rule its status follows, as a rate's row carries its definition.
        return await export(
            [{**row, "status_rule": indicators.STATUS_RULE} for row in found],
            name="indicators",
            format=format,
            timezone=settings.timezone,
            model=IndicatorRead,  # its columns whatever the values hold: files stack
        )
    return {"status_rule": indicators.STATUS_RULE, "indicators": found}


@router.post("/{code}/values", response_model=IndicatorValueRead, status_code=201)
async def enter_value(
    code: Key,
    body: IndicatorValueCreate,
    user: ManagerOnly,
    settings: AppSettings,
    _: Transaction,
) -> object:
    """Enter a value the tracker cannot compute, with its source; the author is kept."""
    return await indicators.enter_value(
        principal=user, code=code, timezone=settings.timezone, **body.model_dump()
    )
