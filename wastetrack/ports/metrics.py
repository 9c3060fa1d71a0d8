"""Port metrics: the port garbage and sewage collection-and-treatment rate (污水和垃圾收集处置率)
per port and over the listed ports, and per zero-waste sea area (无废航区) the share of its
vessels whose deliveries were recorded."""

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, TypedDict

from tortoise import connections

from wastetrack.catalog import service as catalog
from wastetrack.core.geometry import point_in_polygon
from wastetrack.core.metrics import Rate, exact, period_bounds, ratio
from wastetrack.core.principal import Principal
from wastetrack.ports.models import FishingPort, PortCall, SeaArea
from wastetrack.ports.rules import PORT_RULES, small_vessel
from wastetrack.registry.models import Organization, OrganizationKind, Vessel
from wastetrack.rollups import service as rollups
from wastetrack.rollups.facts import HARMLESS_FATES, OUTSIDE_COHORT, Fate


class GroupTotals(TypedDict):
    """Garbage or sewage: expected from the port calls, delivered, harmlessly treated, and the
    kg of its parts whose mass is estimated (docs/metrics.md §3)."""

    expected: Decimal
    delivered: Decimal
    treated: Decimal
    estimated_kg: Decimal


class GroupFigures(GroupTotals):
    group: str
    name_zh: str
    collection_treatment_rate: Rate


class PortFigures(TypedDict):
    port_id: int
    port_name: str
    listed: bool
    port_calls: int
    deliveries: int
    flagged_deliveries: int
    groups: list[GroupFigures]


class Headline(Rate):
    """污水和垃圾收集处置率 over the listed ports in the period: the weaker group's treated ÷
    expected (`group` names it), a figure only when both groups have an expectation — else
    the counts of the first group without one (its denominator 0, no rate). The definition is
    the headline's own: the lower of the two rates, not either group's."""

    group: str
    date_from: date
    date_to: date


class ListedPorts(TypedDict):
    groups: list[GroupFigures]
    headline: Headline


class PortMetrics(TypedDict):
    date_from: date
    date_to: date
    timezone: str
    ports: list[PortFigures]
    listed_ports: ListedPorts
    reception_facility_share: Rate


class SeaAreaFigures(TypedDict):
    code: str
    name_zh: str
    vessels: int
    vessels_with_deliveries: int
    share: Rate


class SeaAreaMetrics(TypedDict):
    date_from: date
    date_to: date
    timezone: str
    areas: list[SeaAreaFigures]


def _no_totals() -> GroupTotals:
    return {
        "expected": Decimal(0),
        "delivered": Decimal(0),
        "treated": Decimal(0),
        "estimated_kg": Decimal(0),
    }


# Each delivery line whose batch was tagged in the period and is in a cohort, with the facts
# of its parts: its batch and, when a receipt refused part of it, the remainders split from it
# (same cohort), each with its own fate and mass. What the cohorts leave out ($4, the roll-up's
# `OUTSIDE_COHORT`) the lines leave out too: a cancelled batch or remainder, and a container —
# a line the port scanned other loads into (a vessel without an owner leaves the port its
# producer). A container is counted through its children, each with its own mass and the
# container's fate (those that are lines count at their own line); counting the container's
# weighing as well would count them twice and its fate never as treated. Its own declared
# mass is counted nowhere, as in the cohorts. A line is its batch after corrections: the
# batch's category, and its volume when it was tagged in m³ (else the volume measured on the
# line). Each part counts in the group of its own category after corrections: a remainder
# corrected into another category is that category's waste, as the cohorts count it.
_LINE_PARTS = """
WITH RECURSIVE line AS (
    SELECT d.port_id,
           CASE WHEN b.unit = 'm3' THEN b.quantity ELSE l.volume_m3 END AS volume_m3, l.batch_id
    FROM delivery_line l JOIN delivery d ON d.id = l.delivery_id
    JOIN batch b ON b.id = l.batch_id
    JOIN batch_fact f ON f.batch_id = l.batch_id
    WHERE d.port_id = ANY($1::int[]) AND f.day BETWEEN $2 AND $3
      AND f.fate <> ALL($4::text[])
),
parts (line_batch, batch_id) AS (
    SELECT batch_id, batch_id FROM line
    UNION ALL
    SELECT parts.line_batch, b.id FROM parts JOIN batch b ON b.split_from_id = parts.batch_id
)
SELECT line.port_id, line.volume_m3, line.batch_id, f.category_id, f.fate, f.mass_kg,
       f.estimated
FROM line JOIN parts ON parts.line_batch = line.batch_id
JOIN batch_fact f ON f.batch_id = parts.batch_id
WHERE f.fate <> ALL($4::text[])
ORDER BY line.batch_id, parts.batch_id
"""
M3 = Decimal("0.001")

# Each delivery whose lines were tagged in the period: a delivery belongs to the day of its
# earliest line not cancelled (its batch's tagging day after corrections, the day `_LINE_PARTS`
# counts that line on), so a corrected tagging time moves the delivery with its lines. A line
# that became a container still dates its delivery: the vessel did deliver it, though its mass
# is counted through what the port loaded into it.
_DELIVERIES = f"""
SELECT d.id, d.port_id, d.vessel_id, jsonb_array_length(d.flags) > 0 AS flagged
FROM delivery d JOIN delivery_line l ON l.delivery_id = d.id
JOIN batch_fact f ON f.batch_id = l.batch_id
WHERE d.port_id = ANY($1::int[]) AND f.fate <> '{Fate.cancelled}'
GROUP BY d.id
HAVING MIN(f.day) BETWEEN $2 AND $3
ORDER BY d.id
"""


async def _deliveries(port_ids: list[int], date_from: date, date_to: date) -> list[dict[str, Any]]:
    """The deliveries the period counts (`_DELIVERIES`): id, port, vessel and whether flagged."""
    if not port_ids:
        return []
    rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
        _DELIVERIES, [port_ids, date_from, date_to]
    )
    return rows


async def _lines(port_ids: list[int], date_from: date, date_to: date) -> list[dict[str, Any]]:
    """Each line as the figures count it: its port, volume and its parts, the line's own batch
    first."""
    if not port_ids:
        return []
    rows: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
        _LINE_PARTS, [port_ids, date_from, date_to, list(OUTSIDE_COHORT)]
    )
    lines: dict[int, dict[str, Any]] = {}
    for row in rows:
        line = lines.setdefault(
            row["batch_id"],
            {
                "port_id": row["port_id"],
                "volume_m3": row["volume_m3"],
                "parts": [],
            },
        )
        line["parts"].append(
            Part(row["category_id"], row["fate"], Decimal(row["mass_kg"] or 0), row["estimated"])
        )
    return list(lines.values())


class Part(NamedTuple):
    """A part of a delivery line as the figures count it: its batch's fact after
    corrections."""

    category: str
    fate: str
    mass_kg: Decimal
    estimated: bool


def line_amounts(
    unit: str, volume_m3: Decimal | None, parts: list[Part], in_group: Callable[[str], bool]
) -> tuple[Decimal, Decimal, Decimal]:
    """What a line delivered of a group, what of that was treated harmlessly, and the kg of
    its parts in the group whose mass is estimated; each part counts in the group of its own
    category. In kg: the masses of its parts in the group, and of those treated harmlessly.
    In m³: the line's volume in proportion to the mass of its parts in the group, and to that
    of those treated harmlessly (to 0.001 m³); a line whose parts have no mass counts whole by
    its own batch (the first part)."""
    mine = [part for part in parts if in_group(part.category)]
    share = sum((part.mass_kg for part in mine), Decimal(0))
    harmless = sum((p.mass_kg for p in mine if p.fate in HARMLESS_FATES), Decimal(0))
    estimated = sum((part.mass_kg for part in mine if part.estimated), Decimal(0))
    if unit == "kg":
        return share, harmless, estimated
    volume = Decimal(volume_m3 or 0)
    total = sum((part.mass_kg for part in parts), Decimal(0))
    if total == 0:
        own = parts[0]
        if not in_group(own.category):
            return Decimal(0), Decimal(0), Decimal(0)
        return volume, volume if own.fate in HARMLESS_FATES else Decimal(0), Decimal(0)
    if share == 0:  # no part of it in the group
        return Decimal(0), Decimal(0), Decimal(0)
    given = volume if share == total else (volume * share / total).quantize(M3, ROUND_HALF_UP)
    return given, (volume * harmless / total).quantize(M3, ROUND_HALF_UP), estimated


def _member_of(snap: catalog.CatalogSnapshot, roots: list[str]) -> Callable[[str], bool]:
    """Whether a category is in a group: one of its roots or under one."""
    wanted = set(roots)
    return lambda category: bool(set(snap.ancestors(category)) & wanted)


def _group_rate(treated: Decimal, expected: Decimal, unit: str) -> Rate:
    return ratio(treated, expected, unit, rollups.definition("port_collection_treatment_rate"))


async def _ports_of(principal: Principal) -> list[Organization]:
    """The fishing ports whose calls and deliveries the user's figures count: every one in the
    region subtree, with a grade and position recorded (`FishingPort`) or not."""
    return await Organization.filter(
        kind=OrganizationKind.fishing_port, region__path__startswith=principal.region_path
    ).order_by("id")


async def port_metrics(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> PortMetrics:
    """Per port and pooled over the listed ports: expected garbage and sewage (crew × days at
    sea × rate, sewage from vessels under 400 GT only), delivered, harmlessly treated, their
    ratio, and the headline 污水和垃圾收集处置率 (the lower of the two)."""
    start, end = period_bounds(date_from, date_to, timezone)
    snap = await catalog.snapshot()
    ports = await _ports_of(principal)
    profiles = {
        p.organization_id: p
        for p in await FishingPort.filter(organization_id__in=[p.id for p in ports])
    }
    calls = await PortCall.filter(
        port_id__in=[p.id for p in ports], arrived_at__gte=start, arrived_at__lt=end
    ).prefetch_related("vessel")
    deliveries = await _deliveries([p.id for p in ports], date_from, date_to)
    lines = await _lines([p.id for p in ports], date_from, date_to)
    pooled: dict[str, GroupTotals] = {}
    result: list[PortFigures] = []
    for port in ports:
        port_calls = [c for c in calls if c.port_id == port.id]
        port_deliveries = [d for d in deliveries if d["port_id"] == port.id]
        listed = port.id in profiles and profiles[port.id].listed
        groups: list[GroupFigures] = []
        for name, group in PORT_RULES["groups"].items():
            rate = Decimal(str(group["per_person_day"]))
            expected = sum(
                (
                    Decimal(c.crew * c.days_at_sea) * rate
                    for c in port_calls
                    if group["vessels"] == "all" or small_vessel(c.vessel.gross_tonnage)
                ),
                Decimal(0),
            )
            delivered = treated = estimated = Decimal(0)
            in_group = _member_of(snap, group["categories"])
            for line in lines:
                if line["port_id"] != port.id:
                    continue
                given, good, guessed = line_amounts(
                    group["unit"], line["volume_m3"], line["parts"], in_group
                )
                delivered += given
                treated += good
                estimated += guessed
            if listed:
                total = pooled.setdefault(name, _no_totals())
                total["expected"] += expected
                total["delivered"] += delivered
                total["treated"] += treated
                total["estimated_kg"] += estimated
            groups.append(
                {
                    "group": name,
                    "name_zh": group["name_zh"],
                    "expected": expected,
                    "delivered": delivered,
                    "treated": treated,
                    "estimated_kg": estimated,
                    "collection_treatment_rate": _group_rate(treated, expected, group["unit"]),
                }
            )
        result.append(
            {
                "port_id": port.id,
                "port_name": port.name,
                "listed": listed,
                "port_calls": len(port_calls),
                "deliveries": len(port_deliveries),
                "flagged_deliveries": sum(d["flagged"] for d in port_deliveries),
                "groups": groups,
            }
        )
    listed_groups: list[GroupFigures] = []
    for name, group in PORT_RULES["groups"].items():
        total = pooled.get(name, _no_totals())
        listed_groups.append(
            {
                "group": name,
                "name_zh": group["name_zh"],
                **total,
                "collection_treatment_rate": _group_rate(
                    total["treated"], total["expected"], group["unit"]
                ),
            }
        )
    # The headline is only as good as its weaker half; it is a figure only when both are, so
    # while a group has no expectation the headline shows that group's counts and no rate.
    rates = {g["group"]: g["collection_treatment_rate"] for g in listed_groups}
    # Compared exactly: two rates that round alike to four places still have a lower one.
    known = {name: q for name, rate in rates.items() if (q := exact(rate)) is not None}
    missing = [name for name in rates if name not in known]
    group = missing[0] if missing else min(known, key=known.__getitem__)
    listed_profiles = [p for p in profiles.values() if p.listed]
    equipped = sum(p.reception_facility for p in listed_profiles)
    return {
        "date_from": date_from,
        "date_to": date_to,
        "timezone": timezone,
        "ports": result,
        "listed_ports": {
            "groups": listed_groups,
            "headline": {
                **rates[group],
                "definition": rollups.definition("port_headline"),
                "group": group,
                "date_from": date_from,
                "date_to": date_to,
            },
        },
        "reception_facility_share": ratio(
            Decimal(equipped),
            Decimal(len(listed_profiles)),
            "ports",
            rollups.definition("reception_facility_share"),
        ),
    }


async def list_sea_areas() -> list[SeaArea]:
    """The named sea areas (无废航区), by code."""
    return await SeaArea.all().order_by("code")


async def sea_area_metrics(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> SeaAreaMetrics:
    """Per sea area: vessels counted in it (home port inside it, or a port call declaring it),
    and the share of them whose deliveries were recorded in the period."""
    start, end = period_bounds(date_from, date_to, timezone)
    port_ids = [p.id for p in await _ports_of(principal)]
    # A home port lies in an area by its recorded position: one without it places no vessel,
    # but its calls and deliveries count, as the port figures count them.
    ports = {p.organization_id: p for p in await FishingPort.filter(organization_id__in=port_ids)}
    vessels = await Vessel.filter(home_port_id__in=list(ports)).only("id", "home_port_id")
    calls = await PortCall.filter(
        port_id__in=port_ids,
        arrived_at__gte=start,
        arrived_at__lt=end,
        fishing_area__not_isnull=True,
    ).values("vessel_id", "fishing_area")
    delivered = {d["vessel_id"] for d in await _deliveries(port_ids, date_from, date_to)}
    areas: list[SeaAreaFigures] = []
    for area in await list_sea_areas():
        members = {
            v.id
            for v in vessels
            if point_in_polygon(
                ports[v.home_port_id].longitude, ports[v.home_port_id].latitude, area.polygon
            )
        } | {c["vessel_id"] for c in calls if c["fishing_area"] == area.code}
        with_deliveries = len(members & delivered)
        areas.append(
            {
                "code": area.code,
                "name_zh": area.name_zh,
                "vessels": len(members),
                "vessels_with_deliveries": with_deliveries,
                "share": ratio(
                    Decimal(with_deliveries),
                    Decimal(len(members)),
                    "vessels",
                    rollups.definition("sea_area_delivery_share"),
                ),
            }
        )
    return {"date_from": date_from, "date_to": date_to, "timezone": timezone, "areas": areas}
