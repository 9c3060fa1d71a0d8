"""Daily roll-ups: maintained in the transaction that records the events, rebuilt from the
log on demand, read by the utilization metrics. One SQL definition serves both paths, so the
incremental table and a rebuild agree exactly."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from tortoise import connections

from wastetrack.catalog.service import FINAL_MODES
from wastetrack.core.metrics import ratio
from wastetrack.rollups.models import DailyRollup, MonthlyRollup

RECOVERY_MODES = ("reuse", "recycling", "energy_recovery", "other_recovery")
_COLUMNS = (
    "day, region_path, stream_id, category_id, measure, mode, weight_kg, volume_m3, items, batches"
)

# What each event contributes. Tagging adds the declared quantity as generated; a treatment
# adds the batch's weight (the treatment's own, else the last weight measured on receipt, else
# the declared kilograms) under its mode; a container's first aggregation withdraws the
# container's own declared quantity from "generated" on its tagging day, since its contents
# were counted when they were tagged.
_CONTRIBUTIONS = """
SELECT (CASE WHEN e.event_type = 'aggregated' THEN b.tagged_at ELSE e.device_time END
        AT TIME ZONE $1)::date AS day,
       b.region_path, b.stream_id, b.category_id,
       CASE WHEN part.name = 'declared' THEN 'declared'
            WHEN e.event_type IN ('treated', 'received') THEN e.event_type
            ELSE 'tagged' END AS measure,
       COALESCE(e.mode, '') AS mode,
       SUM(sign * CASE WHEN part.name = 'declared'
                            THEN CASE WHEN b.unit = 'kg' THEN b.quantity ELSE 0 END
                       WHEN e.event_type = 'received' THEN e.weight_kg
                       WHEN e.event_type = 'treated'
                       THEN COALESCE(e.weight_kg, received.weight_kg,
                                     CASE WHEN b.unit = 'kg' THEN b.quantity END, 0)
                       WHEN b.unit = 'kg' THEN b.quantity ELSE 0 END) AS weight_kg,
       SUM(sign * CASE WHEN b.unit = 'm3' THEN b.quantity ELSE 0 END) AS volume_m3,
       SUM(sign * CASE WHEN b.unit = 'count' THEN b.quantity ELSE 0 END)::bigint AS items,
       SUM(sign)::int AS batches
FROM custody_event e
JOIN batch b ON b.id = e.batch_id
CROSS JOIN LATERAL (SELECT CASE WHEN e.event_type = 'aggregated' THEN -1 ELSE 1 END AS sign) s
-- A weighed receipt counts twice: what arrived (received) and what was declared (declared),
-- for the mass balance of the chain.
CROSS JOIN LATERAL (
    SELECT name FROM (VALUES ('main'), ('declared')) AS parts(name)
    WHERE name = 'main' OR e.event_type = 'received'
) part
LEFT JOIN LATERAL (
    SELECT r.weight_kg FROM custody_event r
    WHERE e.event_type = 'treated' AND r.batch_id = e.batch_id AND r.event_type = 'received'
      AND r.weight_kg IS NOT NULL AND r.seq < e.seq
    ORDER BY r.seq DESC LIMIT 1
) received ON TRUE
WHERE {where}
  AND (e.event_type IN ('tagged', 'treated')
       OR (e.event_type = 'received' AND e.weight_kg IS NOT NULL AND b.unit = 'kg')
       OR (e.event_type = 'aggregated' AND e.related_batch_id IS NULL AND NOT EXISTS (
           SELECT 1 FROM custody_event earlier
           WHERE earlier.batch_id = e.batch_id AND earlier.event_type = 'aggregated'
             AND earlier.related_batch_id IS NULL AND earlier.seq < e.seq)))
GROUP BY 1, 2, 3, 4, 5, 6
"""
# Days add up into months, villages into their town: the monthly layer is the daily one summed.
_TOWN = "COALESCE(substring(c.region_path from '^/[0-9]+/[0-9]+/'), c.region_path)"
_MONTHLY = f"""
SELECT date_trunc('month', c.day)::date, {_TOWN}, c.stream_id, c.category_id, c.measure, c.mode,
       SUM(c.weight_kg), SUM(c.volume_m3), SUM(c.items)::bigint, SUM(c.batches)::int
FROM ({{source}}) c GROUP BY 1, 2, 3, 4, 5, 6
"""
_MONTHLY_COLUMNS = (
    "month, town_path, stream_id, category_id, measure, mode, weight_kg, volume_m3, items, batches"
)
_ADD = """
    weight_kg = {table}.weight_kg + EXCLUDED.weight_kg,
    volume_m3 = {table}.volume_m3 + EXCLUDED.volume_m3,
    items = {table}.items + EXCLUDED.items,
    batches = {table}.batches + EXCLUDED.batches"""
_INCREMENT = f"""
WITH c AS ({{contributions}}),
daily AS (
    INSERT INTO rollup_daily ({_COLUMNS}) SELECT * FROM c
    ON CONFLICT (day, region_path, stream_id, category_id, measure, mode) DO UPDATE SET
    {_ADD.format(table="rollup_daily")}
)
INSERT INTO rollup_monthly ({_MONTHLY_COLUMNS}) {_MONTHLY.format(source="SELECT * FROM c")}
ON CONFLICT (month, town_path, stream_id, category_id, measure, mode) DO UPDATE SET
{_ADD.format(table="rollup_monthly")}
"""


def contributes(event: Any) -> bool:
    """Whether an event can change a roll-up (the rest cost nothing to record)."""
    return event.event_type in ("tagged", "treated", "received") or (
        event.event_type == "aggregated" and event.related_batch_id is None
    )


async def apply(*, event_ids: list[Any], timezone: str) -> None:
    """Add what these just-written events contribute, to the daily and monthly roll-ups, in
    one statement (called in the events' transaction)."""
    if not event_ids:
        return
    contributions = _CONTRIBUTIONS.format(where="e.id = ANY($2::uuid[])")
    await connections.get("default").execute_query(
        _INCREMENT.format(contributions=contributions), [timezone, event_ids]
    )


async def rebuild(*, timezone: str) -> int:
    """Recompute every roll-up from the log; returns the number of daily rows."""
    client = connections.get("default")
    await client.execute_script(
        "LOCK TABLE rollup_daily, rollup_monthly IN EXCLUSIVE MODE;"
        " DELETE FROM rollup_daily; DELETE FROM rollup_monthly;"
    )
    await client.execute_query(
        f"INSERT INTO rollup_daily ({_COLUMNS}) {_CONTRIBUTIONS.format(where='TRUE')}",
        [timezone],
    )
    await client.execute_query(
        f"INSERT INTO rollup_monthly ({_MONTHLY_COLUMNS})"
        f" {_MONTHLY.format(source='SELECT * FROM rollup_daily')}"
    )
    return await DailyRollup.all().count()


_SUMS = ("measure", "mode", "weight_kg", "volume_m3", "items", "batches")


async def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every roll-up row of both layers as plain values, in a stable order (to compare two
    states); rows that add up to nothing are left out."""
    daily = (
        await DailyRollup.all()
        .order_by("day", "region_path", "stream_id", "category_id", "measure", "mode")
        .values_list("day", "region_path", "stream_id", "category_id", *_SUMS)
    )
    monthly = (
        await MonthlyRollup.all()
        .order_by("month", "town_path", "stream_id", "category_id", "measure", "mode")
        .values_list("month", "town_path", "stream_id", "category_id", *_SUMS)
    )
    return {
        "daily": [tuple(r) for r in daily if any(r[6:])],
        "monthly": [tuple(r) for r in monthly if any(r[6:])],
    }


def whole_months(date_from: date, date_to: date) -> bool:
    return date_from.day == 1 and (date_to + timedelta(days=1)).day == 1


async def _rows(region_path: str, date_from: date, date_to: date) -> list[dict[str, Any]]:
    """The monthly layer when the period is whole months over the city or a town (what a
    dashboard asks), else the daily one."""
    fields_ = ("stream_id", "category_id", "measure", "mode", "weight_kg")
    if whole_months(date_from, date_to) and region_path.count("/") <= 3:
        return await MonthlyRollup.filter(
            month__gte=date_from, month__lte=date_to, town_path__startswith=region_path
        ).values(*fields_)
    return await DailyRollup.filter(
        day__gte=date_from, day__lte=date_to, region_path__startswith=region_path
    ).values(*fields_)


async def utilization(*, region_path: str, date_from: date, date_to: date) -> dict[str, Any]:
    """Per stream and category: generated, treated by mode, the utilization rate (recovered ÷
    finally treated; storage pending treatment excluded) and the harmless treatment rate
    (finally treated ÷ generated), all in kilograms, read from the roll-ups."""
    rows = [
        r
        for r in await _rows(region_path, date_from, date_to)
        if r["measure"] in ("tagged", "treated")
    ]
    groups: dict[tuple[str, str], dict[str, Decimal]] = {}
    for row in rows:
        key = (row["stream_id"], row["category_id"])
        bucket = groups.setdefault(key, {})
        name = "generated" if row["measure"] == "tagged" else row["mode"]
        bucket[name] = bucket.get(name, Decimal(0)) + Decimal(row["weight_kg"])
    result = []
    for (stream, category), bucket in sorted(groups.items()):
        recovered = sum((bucket.get(m, Decimal(0)) for m in RECOVERY_MODES), Decimal(0))
        final = sum((bucket.get(m, Decimal(0)) for m in FINAL_MODES), Decimal(0))
        result.append(
            {
                "stream": stream,
                "category": category,
                "generated_kg": bucket.get("generated", Decimal(0)),
                "treated_kg": {
                    mode: bucket[mode] for mode in sorted(bucket) if mode != "generated"
                },
                "utilization_rate": ratio(recovered, final, "kg"),
                "harmless_treatment_rate": ratio(final, bucket.get("generated", Decimal(0)), "kg"),
            }
        )
    return {"date_from": date_from, "date_to": date_to, "categories": result}


async def monthly_series(*, region_path: str, months: list[date]) -> dict[str, dict[str, Any]]:
    """Per stream and month: generated and finally treated kilograms and the utilization rate
    (recovered ÷ finally treated), from the monthly layer (the city or a town)."""
    rows = await MonthlyRollup.filter(month__in=months, town_path__startswith=region_path).values(
        "month", "stream_id", "measure", "mode", "weight_kg"
    )
    series: dict[str, dict[str, Any]] = {}
    for row in rows:
        stream = series.setdefault(
            row["stream_id"],
            {m.isoformat(): {"recovered": Decimal(0), "final": Decimal(0)} for m in months},
        )
        cell = stream[row["month"].isoformat()]
        if row["measure"] == "treated" and row["mode"] in FINAL_MODES:
            cell["final"] += Decimal(row["weight_kg"])
            if row["mode"] in RECOVERY_MODES:
                cell["recovered"] += Decimal(row["weight_kg"])
    for stream in series.values():
        for cell in stream.values():
            cell["rate"] = ratio(cell["recovered"], cell["final"], "kg")
    return series


async def mass_balance(*, region_path: str, date_from: date, date_to: date) -> dict[str, Any]:
    """Per stream and category: kilograms declared at tagging and weighed on receipt, for the
    batches received in the period (measured in kg), and their ratio."""
    totals: dict[tuple[str, str], dict[str, Decimal]] = {}
    for row in await _rows(region_path, date_from, date_to):
        if row["measure"] in ("declared", "received"):
            cell = totals.setdefault(
                (row["stream_id"], row["category_id"]),
                {"declared": Decimal(0), "received": Decimal(0)},
            )
            cell[row["measure"]] += Decimal(row["weight_kg"])
    return {
        "date_from": date_from,
        "date_to": date_to,
        "categories": [
            {
                "stream": stream,
                "category": category,
                "declared_kg": cell["declared"],
                "received_kg": cell["received"],
                "difference_kg": cell["received"] - cell["declared"],
                "received_over_declared": ratio(cell["received"], cell["declared"], "kg"),
            }
            for (stream, category), cell in sorted(totals.items())
        ],
    }
