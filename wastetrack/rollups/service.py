"""The utilization, harmless-treatment and mass-balance figures, read from the sums of batch
facts (see `facts.py` for how they are kept). Every share is a ratio of masses over one cohort —
the batches tagged in the period — so no numerator holds a batch its denominator lacks."""

from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, NotRequired, TypedDict

from tortoise import connections

from wastetrack.core.data import read_data_file
from wastetrack.core.metrics import Definition, Rate, ratio
from wastetrack.rollups.facts import (
    FATES,
    HARMLESS_FATES,
    OUTSIDE_COHORT,
    SUMS,
    Fate,
    apply,
    ensure_current,
    fold,
    rebuild,
)
from wastetrack.rollups.models import CityMonthlyRollup, CohortSums, DailyRollup, MonthlyRollup

__all__ = [
    "apply",
    "definition",
    "ensure_current",
    "fold",
    "layer",
    "mass_balance",
    "monthly_series",
    "rebuild",
    "snapshot",
    "sums_query",
    "utilization",
]


class CohortFigures(TypedDict):
    """One cohort's figures: its batches and mass, the mass by fate and by treatment mode, and
    the rates that follow. `batches_without_mass` of its batches have no known mass (items or
    m³ of a category without a unit mass or density, never weighed): they are in no mass,
    numerator or denominator, so a rate over the rest says so."""

    batches: int
    batches_without_mass: int
    generated_kg: Decimal
    estimated_share: Rate
    fates: dict[str, Rate]
    treated_kg: dict[str, Decimal]
    harmless_treatment_rate: Rate
    utilization_rate: Rate


class StreamFigures(CohortFigures):
    stream: str


class CategoryFigures(StreamFigures):
    category: str


class Utilization(TypedDict):
    date_from: date
    date_to: date
    categories: list[CategoryFigures]
    streams: list[StreamFigures]


class MonthFigures(TypedDict):
    """A stream's cohort of one month: recovered and generated kg, their rate, and how many of
    its batches are in neither for want of a mass (as in `CohortFigures`)."""

    recovered: Decimal
    generated: Decimal
    batches_without_mass: int
    rate: NotRequired[Rate]


class CategoryBalance(TypedDict):
    stream: str
    category: str
    declared_kg: Decimal
    weighed_kg: Decimal
    difference_kg: Decimal
    weighed_over_declared: Rate


class MassBalance(TypedDict):
    date_from: date
    date_to: date
    categories: list[CategoryBalance]


class _Bucket(TypedDict):
    """The sums of one cohort while the rows are added up."""

    fates: dict[str, Decimal]
    modes: dict[str, Decimal]
    estimated_kg: Decimal
    batches: int
    batches_without_mass: int


@cache
def _definitions() -> dict[str, Definition]:
    items: dict[str, Definition] = read_data_file("wastetrack.rollups", "definitions.json")["items"]
    return items


def definition(name: str) -> Definition:
    """The formula in words and its source, returned with every figure of that name."""
    return _definitions()[name].copy()


async def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every roll-up row of every layer as plain values, in a stable order (to compare two
    states), after folding the changes recorded so far; rows that add up to nothing are left
    out."""
    await fold()
    layers: dict[str, list[tuple[Any, ...]]] = {}
    for name, model in (
        ("daily", DailyRollup),
        ("monthly", MonthlyRollup),
        ("city_monthly", CityMonthlyRollup),
    ):
        key = (model.period, model.area, "stream_id", "category_id", "fate", "mode")
        rows = await model.all().order_by(*key).values_list(*key, *SUMS)
        layers[name] = [tuple(r) for r in rows if any(r[6:])]
    return layers


def whole_months(date_from: date, date_to: date) -> bool:
    return date_from.day == 1 and (date_to + timedelta(days=1)).day == 1


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def layer(region_path: str, date_from: date, date_to: date) -> type[CohortSums]:
    """The coarsest layer that answers a question exactly: whole months of the city or of a
    town read the monthly sums (a few hundred rows a month), anything else the daily ones."""
    if whole_months(date_from, date_to):
        if region_path.count("/") <= 2:
            return CityMonthlyRollup
        if region_path.count("/") == 3:
            return MonthlyRollup
    return DailyRollup


def sums_query(region_path: str, date_from: date, date_to: date, *, by_month: bool = False) -> str:
    """The SQL of a question's sums per stream, category, fate and mode (and month): the layer
    that answers it plus the changes not folded into it yet, read in one statement so that a
    fold running meanwhile is seen either before or after. Parameters: $1 from, $2 to, $3 the
    region path."""
    model = layer(region_path, date_from, date_to)
    columns = ", ".join(SUMS)
    month = ", date_trunc('month', period)::date AS month" if by_month else ""
    return f"""
SELECT stream_id, category_id, fate, mode{month}, {", ".join(f"SUM({c}) AS {c}" for c in SUMS)}
FROM (
    SELECT {model.period} AS period, stream_id, category_id, fate, mode, {columns}
    FROM {model._meta.db_table}
    WHERE {model.period} BETWEEN $1 AND $2 AND {model.area} LIKE $3 || '%'
    UNION ALL
    SELECT day, stream_id, category_id, fate, mode, {columns}
    FROM cohort_delta WHERE day BETWEEN $1 AND $2 AND region_path LIKE $3 || '%'
) sums
GROUP BY {"1, 2, 3, 4, 5" if by_month else "1, 2, 3, 4"}
"""


async def _rows(
    region_path: str, date_from: date, date_to: date, *, by_month: bool = False
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
        sums_query(region_path, date_from, date_to, by_month=by_month),
        [date_from, date_to, region_path],
    )
    return rows


def _cohort_figures(bucket: _Bucket) -> CohortFigures:
    """The figures of one cohort from its sums per fate and mode."""
    generated: Decimal = sum(bucket["fates"].values(), Decimal(0))
    harmless = sum((bucket["fates"].get(f, Decimal(0)) for f in HARMLESS_FATES), Decimal(0))
    recovered = bucket["fates"].get(Fate.recovered, Decimal(0))
    return {
        "batches": bucket["batches"],
        "batches_without_mass": bucket["batches_without_mass"],
        "generated_kg": generated,
        "estimated_share": ratio(
            bucket["estimated_kg"], generated, "kg", definition("estimated_share")
        ),
        "fates": {
            fate: ratio(
                bucket["fates"].get(fate, Decimal(0)), generated, "kg", definition("fate_share")
            )
            for fate in FATES
        },
        "treated_kg": dict(sorted(bucket["modes"].items())),
        "harmless_treatment_rate": ratio(
            harmless, generated, "kg", definition("harmless_treatment_rate")
        ),
        "utilization_rate": ratio(recovered, generated, "kg", definition("utilization_rate")),
    }


def _empty() -> _Bucket:
    return {
        "fates": {},
        "modes": {},
        "estimated_kg": Decimal(0),
        "batches": 0,
        "batches_without_mass": 0,
    }


def _add(bucket: _Bucket, row: dict[str, Any]) -> None:
    mass = Decimal(row["mass_kg"])
    bucket["fates"][row["fate"]] = bucket["fates"].get(row["fate"], Decimal(0)) + mass
    if row["mode"]:
        bucket["modes"][row["mode"]] = bucket["modes"].get(row["mode"], Decimal(0)) + mass
    bucket["estimated_kg"] += Decimal(row["estimated_kg"])
    bucket["batches"] += int(row["batches"])
    bucket["batches_without_mass"] += int(row["batches_without_mass"])


async def utilization(*, region_path: str, date_from: date, date_to: date) -> Utilization:
    """Per stream and category, and per stream: of the batches tagged in the period, their mass
    by fate, the harmless-treatment and utilization rates, and the estimated share."""
    categories: dict[tuple[str, str], _Bucket] = {}
    streams: dict[str, _Bucket] = {}
    for row in await _rows(region_path, date_from, date_to):
        if row["fate"] in OUTSIDE_COHORT or not row["batches"]:
            continue
        _add(categories.setdefault((row["stream_id"], row["category_id"]), _empty()), row)
        _add(streams.setdefault(row["stream_id"], _empty()), row)
    return {
        "date_from": date_from,
        "date_to": date_to,
        "categories": [
            {"stream": stream, "category": category, **_cohort_figures(bucket)}
            for (stream, category), bucket in sorted(categories.items())
        ],
        "streams": [
            {"stream": stream, **_cohort_figures(bucket)}
            for stream, bucket in sorted(streams.items())
        ],
    }


async def monthly_series(
    *, region_path: str, months: list[date]
) -> dict[str, dict[str, MonthFigures]]:
    """Per stream and month (the cohort tagged in that month): recovered and generated kg and
    the utilization rate, from the coarsest layer of sums that answers it."""
    rows = await _rows(region_path, months[0], _month_end(months[-1]), by_month=True)
    series: dict[str, dict[str, MonthFigures]] = {}
    wanted = {m.isoformat() for m in months}
    for row in rows:
        month = row["month"].isoformat()
        if row["fate"] in OUTSIDE_COHORT or month not in wanted:
            continue
        stream = series.setdefault(
            row["stream_id"],
            {
                m.isoformat(): {
                    "recovered": Decimal(0),
                    "generated": Decimal(0),
                    "batches_without_mass": 0,
                }
                for m in months
            },
        )
        cell = stream[month]
        cell["generated"] += Decimal(row["mass_kg"])
        cell["batches_without_mass"] += int(row["batches_without_mass"])
        if row["fate"] == Fate.recovered:
            cell["recovered"] += Decimal(row["mass_kg"])
    for stream in series.values():
        for cell in stream.values():
            cell["rate"] = ratio(
                cell["recovered"], cell["generated"], "kg", definition("utilization_rate")
            )
    return series


async def mass_balance(*, region_path: str, date_from: date, date_to: date) -> MassBalance:
    """Per stream and category, for the batches tagged in the period that were weighed on an
    accepted receipt or at treatment: kilograms weighed against kilograms declared."""
    totals: dict[tuple[str, str], dict[str, Decimal]] = {}
    for row in await _rows(region_path, date_from, date_to):
        if row["fate"] == Fate.cancelled or not row["balance_declared_kg"]:
            continue
        cell = totals.setdefault(
            (row["stream_id"], row["category_id"]),
            {"declared": Decimal(0), "weighed": Decimal(0)},
        )
        cell["declared"] += Decimal(row["balance_declared_kg"])
        cell["weighed"] += Decimal(row["balance_weighed_kg"])
    return {
        "date_from": date_from,
        "date_to": date_to,
        "categories": [
            {
                "stream": stream,
                "category": category,
                "declared_kg": cell["declared"],
                "weighed_kg": cell["weighed"],
                "difference_kg": cell["weighed"] - cell["declared"],
                "weighed_over_declared": ratio(
                    cell["weighed"], cell["declared"], "kg", definition("mass_balance")
                ),
            }
            for (stream, category), cell in sorted(totals.items())
        ],
    }
