"""The managers' overview: one typed answer composed from the metrics every other view also
serves — the plan's indicators, the twelve months ending today by stream, sorting coverage,
zero-waste cells and open alerts — so the page only lays it out."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypedDict

from dateutil.relativedelta import relativedelta

from wastetrack.alerts import service as alerts
from wastetrack.cells import service as cells
from wastetrack.core import cityday
from wastetrack.core.metrics import Rate, ratio
from wastetrack.core.principal import Principal
from wastetrack.household import service as household
from wastetrack.indicators import service as indicators
from wastetrack.registry.models import Region
from wastetrack.rollups import service as rollups


class StreamRow(TypedDict):
    """Per stream: the cohort's generated, harmlessly treated and recovered kg with their
    rates, how many of its batches are in none of them for want of a mass, and weighed vs
    declared kg."""

    stream: str
    generated: Decimal
    batches_without_mass: int
    final: Decimal | int
    recovered: Decimal | int
    declared: Decimal
    received: Decimal
    harmless: Rate
    utilization: Rate
    balance: Rate


@dataclass(frozen=True, slots=True)
class Overview:
    today: date
    area: str
    """The name of the region the figures cover: the reader's."""
    months: list[date]
    """The first days of the 12 calendar months of the monthly chart, the current one
    included (a month is a chart's bucket, not the period of the figures)."""
    period: tuple[date, date]
    """The twelve months ending today (cityday.year_to), in the city's days: the period of the
    stream table and of sorting accuracy, and the same twelve months the plan's flow
    indicators cover (docs/metrics.md §6), so the page states one period for both. Each
    indicator still carries its own (a standing is its day)."""
    monthly: dict[str, dict[str, rollups.MonthFigures]]
    streams: list[StreamRow]
    sorting: household.SortingMetrics
    cells: cells.Achievement
    indicators: list[indicators.IndicatorStatus]
    alert_counts: dict[str, dict[str, int]]


async def overview(*, principal: Principal, timezone: str) -> Overview:
    """What the manager's region holds today, by the city's calendar."""
    today = cityday.today(timezone)
    months = last_twelve_months(today)
    period_from, period_to = cityday.year_to(today), today
    region = principal.region_path
    area = await Region.get_or_none(path=region).values_list("name", flat=True)
    return Overview(
        today=today,
        area=str(area or region),
        months=months,
        period=(period_from, period_to),
        monthly=await rollups.monthly_series(region_path=region, months=months),
        streams=by_stream(
            await rollups.utilization(region_path=region, date_from=period_from, date_to=period_to),
            await rollups.mass_balance(
                region_path=region, date_from=period_from, date_to=period_to
            ),
        ),
        sorting=await household.sorting_metrics(
            principal=principal, date_from=period_from, date_to=period_to, timezone=timezone
        ),
        cells=await cells.achievement(principal=principal, today=today),
        indicators=await indicators.overview(principal=principal, today=today, timezone=timezone),
        alert_counts=await alerts.count_by_kind(principal=principal),
    )


def last_twelve_months(today: date) -> list[date]:
    """The first days of the 12 months up to and including today's."""
    this_month = today.replace(day=1)
    return [this_month - relativedelta(months=back) for back in range(11, -1, -1)]


def by_stream(utilization: rollups.Utilization, balance: rollups.MassBalance) -> list[StreamRow]:
    """Per stream, from the roll-ups' own per-stream figures and the mass balance."""
    weighed: dict[str, dict[str, Decimal]] = {}
    for c in balance["categories"]:
        cell = weighed.setdefault(c["stream"], {"declared": Decimal(0), "weighed": Decimal(0)})
        cell["declared"] += Decimal(c["declared_kg"])
        cell["weighed"] += Decimal(c["weighed_kg"])
    rows: list[StreamRow] = []
    for s in utilization["streams"]:
        cell = weighed.get(s["stream"], {"declared": Decimal(0), "weighed": Decimal(0)})
        rows.append(
            {
                "stream": s["stream"],
                "generated": s["generated_kg"],
                "batches_without_mass": s["batches_without_mass"],
                "final": s["harmless_treatment_rate"]["numerator"],
                "recovered": s["utilization_rate"]["numerator"],
                "declared": cell["declared"],
                "received": cell["weighed"],
                "harmless": s["harmless_treatment_rate"],
                "utilization": s["utilization_rate"],
                "balance": ratio(
                    cell["weighed"], cell["declared"], "kg", rollups.definition("mass_balance")
                ),
            }
        )
    return rows
