"""Medical waste: which medical institutions the central collection reaches (metrics.md §6)."""

from datetime import date, timedelta
from typing import TypedDict

from tortoise import connections

from wastetrack.core.cityday import days_bounds
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.metrics import Definition, Rate, ratio
from wastetrack.core.principal import Principal
from wastetrack.registers.movements import HANDED_TO_CARRIER
from wastetrack.registry.models import MEDICAL_KINDS, Organization

SMALL_INSTITUTION_MAX_BEDS = 19  # the plan (第九章第三节): 19 beds or fewer (含19张床位)
MEDICAL_STREAM = "medical"
MAX_PERIOD_DAYS = 366

# Covered: a batch of the institution's first came into a carrier's hands (collected by a
# carrier, handed over to one, or put into a carrier's load; loose or in a container), from the
# institution or from the one that gathered it nearby, on a day of the period.
_REACHED = (
    " with at least one medical-stream batch that first came into a carrier's hands (collected"
    " by it, handed over to it, or put into a carrier's load; loose or in a container; from the"
    " institution or from the one that gathered it nearby, 就近集中收集) on a day of the period"
    " (city time); later steps between carriers do not count"
)
_PLAN = "荣成市“十四五”生态环境保护规划 第九章第三节"
SMALL_DEFINITION: Definition = {
    "formula": (
        "small medical institutions (any medical kind with a known bed count ≤ 19)"
        + _REACHED
        + " ÷ small medical institutions registered by the period's end (or reached in it);"
        " institutions without a known bed count are listed apart, never counted"
    ),
    "source": (
        f"{_PLAN} (19张床位（含19张床位）以下医疗卫生机构医疗废物就近集中收集); metrics.md §6"
    ),
}
ALL_DEFINITION: Definition = {
    "formula": "medical institutions of every kind"
    + _REACHED
    + " ÷ medical institutions registered by the period's end (or reached in it)",
    "source": f"{_PLAN} (医疗废物集中收集处置); metrics.md §6",
}


class Institution(TypedDict):
    id: int
    name: str
    kind: str
    bed_count: int | None


class Coverage(TypedDict):
    """The institutions reached in a period, in all and the small ones, and those missed."""

    date_from: date
    date_to: date
    days: int
    all_institutions: Rate
    small_institutions: Rate
    unknown_bed_count: list[Institution]
    not_collected: list[Institution]
    definition: Definition


def _period(
    *, date_from: date | None, date_to: date | None, days: int | None, today: date
) -> tuple[date, date]:
    if date_from is None and date_to is None:
        span = days or 30
        if not 1 <= span <= MAX_PERIOD_DAYS:
            raise ValidationFailed("days must lie between 1 and 366", field="days")
        return today - timedelta(days=span - 1), today
    if date_from is None or date_to is None:
        missing = "date_from" if date_from is None else "date_to"
        raise ValidationFailed(
            f"give both date_from and date_to: {missing} is missing", field=missing
        )
    if date_to < date_from:
        raise ValidationFailed("date_to precedes date_from", field="date_to")
    if (date_to - date_from).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed("a period is at most 366 days", field="date_to")
    return date_from, date_to


async def covered_institutions(
    *, institution_ids: list[int], date_from: date, date_to: date, timezone: str
) -> set[int]:
    """The institutions a medical-stream batch of which first came into a carrier's hands on a
    city day of [date_from, date_to]: collected by a carrier, handed over to one, or put into a
    carrier's load (a round scanning each clinic's bag into one container), from the
    institution or from the one that gathered it nearby. Only that first movement counts, as
    the registers read it (`registers.movements`): a later handover between carriers, or
    packing at the depot, does not reach the clinic again."""
    if not institution_ids:
        return set()
    start, end = days_bounds(date_from, date_to, timezone)
    rows = await connections.get("default").execute_query_dict(
        HANDED_TO_CARRIER, [institution_ids, MEDICAL_STREAM, start, end]
    )
    return {int(r["producer_id"]) for r in rows}


def _row(org: Organization) -> Institution:
    return {"id": org.id, "name": org.name, "kind": org.kind.value, "bed_count": org.bed_count}


async def collection_coverage(
    *,
    principal: Principal,
    today: date,
    timezone: str,
    date_from: date | None = None,
    date_to: date | None = None,
    days: int | None = None,
) -> Coverage:
    """Medical institutions in the user's region reached by the central collection in a period
    (default: the last `days` city days up to today): small institutions (known beds ≤ 19)
    apart, unknown bed counts listed apart, and the ones missed."""
    date_from, date_to = _period(date_from=date_from, date_to=date_to, days=days, today=today)
    medical = await Organization.filter(
        kind__in=sorted(MEDICAL_KINDS), region__path__startswith=principal.region_path
    ).order_by("id")
    covered = await covered_institutions(
        institution_ids=[o.id for o in medical],
        date_from=date_from,
        date_to=date_to,
        timezone=timezone,
    )
    # Those registered by the period's end (and any reached in it): a clinic registered later
    # does not lower a past period's coverage.
    _, end = days_bounds(date_from, date_to, timezone)
    institutions = [o for o in medical if o.created_at < end or o.id in covered]
    small = [
        o
        for o in institutions
        if o.bed_count is not None and o.bed_count <= SMALL_INSTITUTION_MAX_BEDS
    ]
    return {
        "date_from": date_from,
        "date_to": date_to,
        "days": (date_to - date_from).days + 1,
        "all_institutions": ratio(
            sum(o.id in covered for o in institutions),
            len(institutions),
            "institutions",
            ALL_DEFINITION,
        ),
        "small_institutions": ratio(
            sum(o.id in covered for o in small), len(small), "institutions", SMALL_DEFINITION
        ),
        "unknown_bed_count": [_row(o) for o in institutions if o.bed_count is None],
        "not_collected": [_row(o) for o in institutions if o.id not in covered],
        "definition": SMALL_DEFINITION,
    }
