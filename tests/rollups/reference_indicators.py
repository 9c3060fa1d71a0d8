"""A small, independent reading of docs/metrics.md §6 in plain Python — small medical
institutions covered, zero-waste cells achieved, fishing-port garbage and sewage, the vessels
of zero-waste sea areas with deliveries — over the histories the tests recorded, against which
the service's figures are checked. No SQL and nothing from wastetrack: batch fates and masses
come from tests/rollups/reference.py."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.rollups.reference import Fact

RATE_PLACES = Decimal("0.0001")


def rate(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """A ratio as every figure shows it: four places, none without a denominator."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES)


def city_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


# ---- small medical institutions ---------------------------------------------------------------

MEDICAL_KINDS = frozenset({"clinic", "village_clinic", "township_hospital", "hospital"})
SMALL_MAX_BEDS = 19  # 19 beds or fewer (含19张床位)


@dataclass(frozen=True)
class Institution:
    id: int
    kind: str
    beds: int | None
    region: str
    registered: date  # the city day it was registered


@dataclass(frozen=True)
class Step:
    """One custody event as the history recorded it."""

    batch: str
    producer: int
    stream: str
    event_type: str
    actor_kind: str
    to_kind: str | None
    time: datetime


def medical_coverage(
    institutions: Iterable[Institution],
    steps: Iterable[Step],
    *,
    region: str,
    date_from: date,
    date_to: date,
    timezone: str,
) -> dict[str, Any]:
    """Covered = a medical batch of theirs, not cancelled, collected by a carrier, put into a
    carrier's load, or handed to a carrier on a city day of the period. Small = a medical kind
    with a known bed count ≤ 19. Counted: those registered by the period's last day, and any
    covered in it."""
    steps = list(steps)
    cancelled = {s.batch for s in steps if s.event_type == "cancelled"}
    covered = {
        s.producer
        for s in steps
        if s.stream == "medical"
        and s.batch not in cancelled
        and (
            (s.event_type in ("collected", "aggregated") and s.actor_kind == "carrier")
            or (s.event_type == "handed_over" and s.to_kind == "carrier")
        )
        and date_from <= city_day(s.time, timezone) <= date_to
    }
    medical = [
        i
        for i in institutions
        if i.kind in MEDICAL_KINDS
        and i.region.startswith(region)
        and (i.registered <= date_to or i.id in covered)
    ]
    small = [i for i in medical if i.beds is not None and i.beds <= SMALL_MAX_BEDS]
    return {
        "all": (sum(i.id in covered for i in medical), len(medical)),
        "small": (sum(i.id in covered for i in small), len(small)),
        "unknown_bed_count": sorted(i.id for i in medical if i.beds is None),
        "not_collected": sorted(i.id for i in medical if i.id not in covered),
    }


# ---- zero-waste cells -------------------------------------------------------------------------

LEVELS = ("county", "city", "province")
VALID_YEARS = 3
PASSED = ("achieved", "excellent")


@dataclass(frozen=True)
class Assessment:
    cell: int
    level: str
    on: date
    tier: str
    order: int  # the order in which it was recorded
    # What the assessor entered (criterion code and value); the computed criteria of one cell
    # on one day are the same for every assessment of it.
    entered: tuple[tuple[str, int], ...] = ()


def expiry(on: date) -> date:
    """The same calendar date three years on; 29 February → 28 February."""
    year = on.year + VALID_YEARS
    try:
        return on.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def twelve_months_to(on: date) -> date:
    """The first day of the twelve months ending on `on` (docs/metrics.md §6): the day after
    it, a year before — 1 March where that year has no 29 February (twelve months ending
    28 February 2025 begin on 1 March 2024)."""
    after = on + timedelta(days=1)
    try:
        return after.replace(year=after.year - 1)
    except ValueError:
        return date(after.year - 1, 3, 1)


def sorting_accuracy(
    checks: list[tuple[datetime, bool]], *, on: date, timezone: str
) -> Decimal | None:
    """A cell's computed sorting accuracy when assessed on `on` (docs/metrics.md §6): of the
    quality-checked pickups whose city day lies in the twelve months ending on `on`, the share
    that passed, in percent to the hundredth."""
    first = twelve_months_to(on)
    inside = [passed for moment, passed in checks if first <= city_day(moment, timezone) <= on]
    if not inside:
        return None
    return (Decimal(sum(inside) * 100) / len(inside)).quantize(Decimal("0.01"))


def tier(criteria: list[dict[str, Any]], values: dict[str, Decimal | None], scores: dict) -> str:
    """Weighted score of the criteria met (value ≥ threshold); a missed mandatory criterion
    fails whatever the score. `values` holds None for a criterion without data."""
    total = Decimal(0)
    for criterion in criteria:
        value = values.get(criterion["code"])
        if value is not None and value >= Decimal(str(criterion["threshold"])):
            total += Decimal(str(criterion["weight"]))
        elif criterion["mandatory"]:
            return "not_achieved"
    if total >= scores["excellent_score"]:
        return "excellent"
    return "achieved" if total >= scores["achieved_score"] else "not_achieved"


def _replayed(assessments: Iterable[Assessment], cell: int) -> list[Assessment]:
    """The cell's assessments that stand: replayed in the order of their dates (on one date the
    lower level first, then the order recorded), each kept only if `may_assess` allows it
    among those kept before — the history as if every assessment had been recorded on its
    day, so a failed re-assessment below recorded late refuses what it predates."""
    kept: list[Assessment] = []
    ordered = sorted(
        (a for a in assessments if a.cell == cell),
        key=lambda a: (a.on, LEVELS.index(a.level), a.order),
    )
    for assessment in ordered:
        if may_assess(kept, cell=cell, level=assessment.level, on=assessment.on):
            kept.append(assessment)
    return kept


def may_assess(assessments: Iterable[Assessment], *, cell: int, level: str, on: date) -> bool:
    """A level above county needs the latest assessment of the level below on or before the
    day (by date, then the later record) to have passed and not expired: an earlier pass does
    not outlast a failed re-assessment (docs/metrics.md §6). `assessments` are those that
    stand."""
    index = LEVELS.index(level)
    if index == 0:
        return True
    below = [
        a for a in assessments if a.cell == cell and a.level == LEVELS[index - 1] and a.on <= on
    ]
    if not below:
        return False
    latest = max(below, key=lambda a: (a.on, a.order))
    return latest.tier in PASSED and on < expiry(latest.on)


def may_record(assessments: Iterable[Assessment], *, cell: int, level: str, on: date) -> bool:
    """Whether the service takes an assessment now: `may_assess` among those that stand."""
    return may_assess(_replayed(assessments, cell), cell=cell, level=level, on=on)


def resent(
    assessments: Iterable[Assessment],
    *,
    cell: int,
    level: str,
    on: date,
    entered: tuple[tuple[str, int], ...],
) -> Assessment | None:
    """The assessment the service answers with instead of recording another (docs/metrics.md
    §6): the latest recorded of the cell's level and day, when it was entered the same (one
    assessor, so the same findings score the same)."""
    same_day = [a for a in assessments if (a.cell, a.level, a.on) == (cell, level, on)]
    if not same_day:
        return None
    latest = max(same_day, key=lambda a: a.order)
    return latest if latest.entered == entered else None


def achieved_on(assessments: Iterable[Assessment], *, cell: int, day: date) -> bool:
    """The cell's latest standing assessment up to the day (by date; on one date the higher
    level, then the later record) passed, and the day is before its expiry."""
    made = [a for a in _replayed(assessments, cell) if a.on <= day]
    if not made:
        return False
    latest = max(made, key=lambda a: (a.on, LEVELS.index(a.level), a.order))
    return latest.tier in PASSED and day < expiry(latest.on)


def cell_achievement(
    cells: dict[int, str], assessments: list[Assessment], day: date
) -> dict[str, tuple[int, int]]:
    """(achieved, registered) over all cells (key "") and per cell type."""
    achieved = {c for c in cells if achieved_on(assessments, cell=c, day=day)}
    out = {"": (len(achieved), len(cells))}
    for kind in set(cells.values()):
        of_kind = [c for c, k in cells.items() if k == kind]
        out[kind] = (sum(c in achieved for c in of_kind), len(of_kind))
    return out


# ---- fishing ports ----------------------------------------------------------------------------


# port_rules.json, as docs/metrics.md §6 describes it (the test checks these against the file).
@dataclass(frozen=True)
class Group:
    unit: str
    root: str  # the category whose subtree the group counts
    per_person_day: Decimal


GROUPS = {
    "garbage": Group("kg", "marine.marpol", Decimal("1.5")),
    "sewage": Group("m3", "marine.sewage", Decimal("0.06")),
}
SMALL_VESSEL_GT = Decimal(400)  # sewage is expected only from vessels under 400 GT
HARMLESS = ("recovered", "disposed_harmless")
# A line's batch or part outside the cohorts counts nowhere: cancelled, or a container (a line
# other loads were scanned into counts through them, docs/metrics.md §4 and §6).
NOT_COUNTED = ("cancelled", "container")


@dataclass(frozen=True)
class PortCall:
    port: int
    arrived_at: datetime
    crew: int
    days_at_sea: int
    gross_tonnage: Decimal


@dataclass(frozen=True)
class Line:
    port: int
    batch_id: int
    volume_m3: Decimal | None


def _in_group(category: str, root: str, parent: dict[str, str | None]) -> bool:
    key: str | None = category
    while key is not None:
        if key == root:
            return True
        key = parent.get(key)
    return False


def port_figures(
    *,
    ports: dict[int, bool],
    calls: list[PortCall],
    lines: list[Line],
    facts: dict[int, Fact],
    split_from: dict[int, int],
    parent: dict[str, str | None],
    date_from: date,
    date_to: date,
    timezone: str,
) -> dict[str, Any]:
    """Per port (`ports`: id → listed) and group: expected (crew × days at sea × rate, of the
    calls arriving in the period), delivered and harmlessly treated (of the lines whose batch
    was tagged in the period, not cancelled and not a container, with the remainders split
    from it — a part a receipt refused, `split_from`: remainder → original — that are not
    cancelled: kg = the parts' masses, treated those of the harmlessly treated parts; m³ = the
    line's volume, treated in proportion of the harmlessly treated parts' mass, to 0.001 m³);
    pooled over the listed ports; the headline is the lower pooled rate, when both groups have
    an expectation."""

    def parts(batch: int) -> list[Fact]:
        found = [facts[batch]]
        for remainder, original in split_from.items():
            if original == batch:
                found += parts(remainder)
        return [f for f in found if f.fate not in NOT_COUNTED]

    per_port: dict[int, dict[str, dict[str, Decimal]]] = {}
    arrived = [c for c in calls if date_from <= city_day(c.arrived_at, timezone) <= date_to]
    for port in ports:
        groups = {}
        for name, group in GROUPS.items():
            expected = sum(
                (
                    Decimal(c.crew * c.days_at_sea) * group.per_person_day
                    for c in arrived
                    if c.port == port and (name == "garbage" or c.gross_tonnage < SMALL_VESSEL_GT)
                ),
                Decimal(0),
            )
            delivered = treated = estimated = Decimal(0)
            for line in lines:
                fact = facts[line.batch_id]
                if line.port != port or fact.fate in NOT_COUNTED:
                    continue
                if not date_from <= fact.day <= date_to:
                    continue
                # Each part in the group of its own category after corrections.
                every = parts(line.batch_id)
                mine = [p for p in every if _in_group(p.category, group.root, parent)]
                share = sum((p.mass for p in mine), Decimal(0))
                good = sum((p.mass for p in mine if p.fate in HARMLESS), Decimal(0))
                estimated += sum((p.mass for p in mine if p.estimated), Decimal(0))
                if group.unit == "kg":
                    delivered += share
                    treated += good
                    continue
                volume = line.volume_m3 or Decimal(0)
                whole = sum((p.mass for p in every), Decimal(0))
                if not whole:  # no part has a mass: the line's own batch, whole
                    if _in_group(fact.category, group.root, parent):
                        delivered += volume
                        treated += volume if fact.fate in HARMLESS else Decimal(0)
                    continue
                m3 = Decimal("0.001")
                given = volume * share / whole
                delivered += volume if share == whole else given.quantize(m3, ROUND_HALF_UP)
                treated += (volume * good / whole).quantize(m3, ROUND_HALF_UP)
            groups[name] = {
                "expected": expected,
                "delivered": delivered,
                "treated": treated,
                "estimated_kg": estimated,
            }
        per_port[port] = groups
    pooled = {
        name: {
            key: sum((per_port[p][name][key] for p in ports if ports[p]), Decimal(0))
            for key in ("expected", "delivered", "treated", "estimated_kg")
        }
        for name in GROUPS
    }
    rates = {name: rate(g["treated"], g["expected"]) for name, g in pooled.items()}
    known = [r for r in rates.values() if r is not None]
    headline = min(known) if len(known) == len(rates) else None
    return {
        "ports": per_port,
        "calls": {port: sum(c.port == port for c in arrived) for port in ports},
        "pooled": pooled,
        "headline": headline,
    }


# ---- zero-waste sea areas ---------------------------------------------------------------------


def inside(point: tuple[float, float], polygon: list[list[float]]) -> bool:
    """Whether (lon, lat) lies inside the ring, by its winding number (the service counts
    crossings: a second method, so a mistake in either shows)."""
    x, y = point
    winding = 0
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        cross = (x2 - x1) * (y - y1) - (x - x1) * (y2 - y1)
        if y1 <= y < y2 and cross > 0:
            winding += 1
        elif y2 <= y < y1 and cross < 0:
            winding -= 1
    return winding != 0


@dataclass(frozen=True)
class AreaCall:
    port: int
    vessel: int
    arrived_at: datetime
    area: str | None


def sea_area_figures(
    *,
    areas: dict[str, list[list[float]]],
    ports: dict[int, tuple[float, float]],
    homes: dict[int, int],
    calls: list[AreaCall],
    deliveries: list[tuple[int, int, list[int]]],
    facts: dict[int, Fact],
    date_from: date,
    date_to: date,
    timezone: str,
) -> dict[str, tuple[int, int]]:
    """Per sea area: (vessels counted in it, those with a delivery in the period), over the
    `ports` asked for (id → (lon, lat)). `homes`: each vessel's home port; `calls` and
    `deliveries` (port, vessel, its lines' batches) at any port. A vessel counts in an area
    when its home port is among the ports and lies inside the polygon, or when a call of the
    period at one of the ports declared the area; a delivery counts at one of the ports, on the
    day of its earliest line not cancelled."""
    in_period = [
        c
        for c in calls
        if c.port in ports and date_from <= city_day(c.arrived_at, timezone) <= date_to
    ]
    delivered = set()
    for port, vessel, batches in deliveries:
        days = [facts[b].day for b in batches if facts[b].fate != "cancelled"]
        if port in ports and days and date_from <= min(days) <= date_to:
            delivered.add(vessel)
    figures = {}
    for code, polygon in areas.items():
        members = {v for v, home in homes.items() if home in ports and inside(ports[home], polygon)}
        members |= {c.vessel for c in in_period if c.area == code}
        figures[code] = (len(members), len(members & delivered))
    return figures


def sorting_coverage(
    villages: Iterable[tuple[str, date | None, date | None]], *, on: date
) -> dict[str, tuple[int, int] | int]:
    """§6 sorting coverage as of `on`, over (village-level code, sorted since, first day
    without) triples: communities (last three digits 001–199) and villages (200–399) together
    and apart; one that is neither is in no coverage, only counted."""
    counted = {"coverage": [0, 0], "urban_coverage": [0, 0], "rural_coverage": [0, 0]}
    unclassified = 0
    for code, since, until in villages:
        own = int(code[-3:])
        if 1 <= own <= 199:
            part = "urban_coverage"
        elif 200 <= own <= 399:
            part = "rural_coverage"
        else:
            unclassified += 1
            continue
        covered = since is not None and since <= on and (until is None or on < until)
        for name in ("coverage", part):
            counted[name][0] += covered
            counted[name][1] += 1
    return {**{name: (n, d) for name, (n, d) in counted.items()}, "unclassified": unclassified}
