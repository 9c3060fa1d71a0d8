"""Zero-waste cell assessments: criteria computed from the tracker's data over the last 12
months or entered with evidence, weighted scores, mandatory criteria, tiers, levels, expiry,
and the achievement rate against the plan's target (the indicator zero_waste_cells: 70 % of city
cells by the end of 2025)."""

from datetime import date
from decimal import Decimal
from typing import Any, TypedDict

from dateutil.relativedelta import relativedelta
from tortoise import connections
from tortoise.functions import Count

from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.cells.models import Cell, CellAssessment
from wastetrack.core import cityday, metrics, paging
from wastetrack.core.data import read_data_file
from wastetrack.core.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed
from wastetrack.core.metrics import Definition, Rate, ratio
from wastetrack.core.principal import Principal
from wastetrack.core.reported import check_day_come
from wastetrack.household import service as household
from wastetrack.indicators.models import Indicator
from wastetrack.registry import access
from wastetrack.registry import service as registry
from wastetrack.rollups import service as rollups

CONFIG = read_data_file("wastetrack.cells", "cell_types.json")
TYPES = {t["code"]: t for t in CONFIG["items"]}
LEVELS: list[str] = CONFIG["levels"]
# The plan's target for the share is the indicator's (its edition, loaded by a migration).
TARGET_INDICATOR = "zero_waste_cells"
ACHIEVED_TIERS = ("achieved", "excellent")
ACHIEVEMENT_DEFINITION: Definition = {
    "formula": (
        "registered cells whose latest assessment on or before the day (by assessment date; on"
        " the same date the higher level — province, city, county — then the later record)"
        " passed, the day being strictly before the same calendar date three years on"
        " (29 February → 28 February) ÷ registered cells; an assessment above county counts"
        " only while the level below, by its latest assessment on or before that assessment's"
        " day, is achieved and unexpired on it, read from the whole history; target_share is the"
        " target of the indicator zero_waste_cells"
    ),
    "source": (
        "荣成市“十四五”生态环境保护规划 第九章第四节"
        " (2025年底前，70%以上的城市细胞达到创建标准要求); metrics.md §6"
    ),
}


class TypeAchievement(TypedDict):
    cell_type: str
    name_zh: str
    share: Rate


class Achievement(TypedDict):
    """Cells achieving the standard on a day, in all and per type, against the target."""

    today: date
    target_share: Decimal
    share: Rate
    types: list[TypeAchievement]
    definition: Definition


def expiry(assessed_on: date) -> date:
    """The first day an assessment no longer counts: the same calendar date three years on
    (29 February → 28 February)."""
    until: date = assessed_on + relativedelta(years=CONFIG["valid_years"])
    return until


def governs(
    assessments: list[CellAssessment], day: date, *, level: str | None = None
) -> CellAssessment | None:
    """The assessment that decides a cell's standing on a day (at one level, or at any): the
    latest by assessment date that stands; on the same date the higher level, then the later
    record. `assessments` are all the cell's."""
    made = [
        a
        for a in assessments
        if a.assessed_on <= day and level in (None, a.level) and stands(assessments, a)
    ]
    if not made:
        return None
    return max(made, key=lambda a: (a.assessed_on, LEVELS.index(a.level), a.id))


def stands(assessments: list[CellAssessment], assessment: CellAssessment) -> bool:
    """Whether an assessment counts: one above the first level needs the level below to be
    achieved on its day, as the cell's whole history reads it — a failed re-assessment below,
    dated on or before it, takes it down whenever it was recorded, so the same assessments
    give the same standing in any order of recording (`assess` refuses one that would not
    stand when it is made)."""
    index = LEVELS.index(assessment.level)
    if index == 0:
        return True
    day = assessment.assessed_on
    return is_achieved(governs(assessments, day, level=LEVELS[index - 1]), day)


def is_achieved(assessment: CellAssessment | None, day: date) -> bool:
    """Passed (any tier) and the day strictly before its expiry."""
    return (
        assessment is not None and assessment.tier in ACHIEVED_TIERS and day < assessment.expires_on
    )


CELL_LOCK_KEY = 0x63656C6C
"""First half of the advisory lock key registrations of one cell take ("cell" in ASCII); a hash
of its region, type and name is the second."""


def _manager(principal: Principal) -> None:
    if principal.role not in (Role.manager, Role.admin):
        raise Forbidden("zero-waste cells are managed by managers", field="role")


async def create_cell(
    *,
    principal: Principal,
    cell_type: str,
    name: str,
    region_id: int,
    organization_id: int | None,
) -> Cell:
    """Register a place of the manager's region as a cell of a type, once: a region holds one
    cell of a type by a name (a resend is a conflict naming the cell registered first). A
    region or organization the manager may not see is 'not found', whether or not it exists."""
    _manager(principal)
    if cell_type not in TYPES:
        raise ValidationFailed(f"unknown cell type {cell_type!r}", field="cell_type")
    region_path = (await registry.named_region(principal, region_id)).path
    if organization_id is not None:
        await access.readable_organization(principal, organization_id)
    name = name.strip()
    # Every registered cell is in the achievement's denominator: a second registration of the
    # same place (a resent request) would lower the rate with a cell never assessed. Two sent
    # at once take turns, so the second finds the first and names it.
    await connections.get("default").execute_query(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        [CELL_LOCK_KEY, f"{region_id} {cell_type} {name}"],
    )
    existing = await Cell.get_or_none(region_id=region_id, cell_type=cell_type, name=name)
    if existing is not None:
        raise Conflict(
            f"the region has a {cell_type} cell named {name!r} already (cell {existing.id})",
            field="name",
            cell_id=existing.id,
        )
    made = await Cell.create(
        cell_type=cell_type,
        name=name,
        region_id=region_id,
        region_path=region_path,
        organization_id=organization_id,
    )
    await _audited("cell.registered", made, made)
    return made


async def _audited(action: str, row: Cell | CellAssessment, cell: Cell) -> None:
    """A cell's registration or assessment in the audit log, read by the managers of its
    region: each counts in the achievement rate the city is judged on."""
    await audit.record(
        action=action,
        subject=row,
        region_path=cell.region_path,
        organization_id=cell.organization_id,
        after=audit.snapshot(row),
    )


async def _cell(principal: Principal, cell_id: int, *, lock: bool = True) -> Cell:
    """A cell the user may assess, locked in the request's transaction (unless only read):
    assessments of one cell take turns, so a resend racing the first finds it."""
    query = Cell.filter(id=cell_id)
    cell = await (query.select_for_update() if lock else query).first()
    if cell is None or not (
        principal.role == Role.admin or cell.region_path.startswith(principal.region_path)
    ):
        raise NotFound(f"no cell {cell_id}", field="cell_id")
    return cell


async def list_cells(
    *, principal: Principal, limit: int = paging.DEFAULT_LIMIT, cursor: str | None = None
) -> paging.Page[Cell]:
    """Cells in the user's region subtree, oldest first, a page at a time."""
    query = Cell.filter(region_path__startswith=principal.region_path)
    return await paging.page(query, paging.OLDEST_ID, limit=limit, cursor=cursor)


class Measured(TypedDict):
    """A computed criterion as the tracker gave it: the rate (numerator, denominator, unit,
    definition with its source) over the twelve months ending on the assessment day, and for a
    rate over masses what the cohort figures give beside it (§3 of docs/metrics.md): the
    batches of no known mass, outside both sums, and the estimated part of the denominator."""

    rate: Rate
    date_from: date
    date_to: date
    mass: dict[str, Any]


async def _measure(metric: str, cell: Cell, day: date, timezone: str) -> Measured:
    """A computed criterion over the twelve months ending on ``day`` (the assessment's, in the
    city) in the cell's region."""
    first = cityday.year_to(day)
    if metric == "sorting_accuracy":
        checks = (
            await household.quality_checks(
                region_path=cell.region_path, date_from=first, date_to=day
            )
            .annotate(n=Count("id"))
            .group_by("quality_passed")
            .values("quality_passed", "n")
        )
        total = sum(c["n"] for c in checks)
        passed = sum(c["n"] for c in checks if c["quality_passed"])
        rate = ratio(passed, total, "quality checks", rollups.definition("sorting_accuracy"))
        mass: dict[str, Any] = {}
    elif metric == "recovery_share":
        answer = await rollups.utilization(
            region_path=cell.region_path, date_from=first, date_to=day
        )
        recovered = sum(
            (Decimal(c["utilization_rate"]["numerator"]) for c in answer["categories"]), Decimal(0)
        )
        final = sum(
            (Decimal(c["utilization_rate"]["denominator"]) for c in answer["categories"]),
            Decimal(0),
        )
        rate = ratio(recovered, final, "kg", rollups.definition("utilization_rate"))
        estimated = sum(
            (Decimal(c["estimated_share"]["numerator"]) for c in answer["categories"]), Decimal(0)
        )
        mass = {
            "batches_without_mass": sum(c["batches_without_mass"] for c in answer["categories"]),
            "estimated_kg": str(estimated),
        }
    else:
        raise ValueError(f"unknown cell metric {metric}")
    return {"rate": rate, "date_from": first, "date_to": day, "mass": mass}


async def assess(
    *,
    principal: Principal,
    cell_id: int,
    level: str,
    assessed_on: date,
    entered: dict[str, dict[str, Any]],
    timezone: str,
) -> tuple[CellAssessment, bool]:
    """Score a cell at a level on a day up to the city's today: computed criteria from the
    tracker, the others as entered with evidence; a failed mandatory criterion fails the cell
    whatever its score. Sent again by the same assessor while it is still the latest of its
    level and day, scoring the same, it is answered with the stored one and recorded once: the
    assessment, and whether this call created it."""
    _manager(principal)
    cell = await _cell(principal, cell_id)
    # The computed criteria cover the twelve months ending on the assessment day: months that
    # have not happened yet would score as empty.
    check_day_come(
        assessed_on,
        timezone=timezone,
        field="assessed_on",
        why="a cell is assessed on a day that has come",
    )
    if level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}", field="level")
    criteria = {c["code"]: c for c in TYPES[cell.cell_type]["criteria"]}
    for code in entered:  # an assessor must not believe a value was kept that was not
        if code not in criteria:
            raise ValidationFailed(
                f"a {cell.cell_type} cell has no criterion {code!r}", field=f"entered.{code}"
            )
        if criteria[code]["kind"] == "computed":
            raise ValidationFailed(
                f"{code} is computed from the tracker, not entered", field=f"entered.{code}"
            )
    scores: dict[str, Any] = {}
    total = Decimal(0)
    mandatory_failed = False
    for criterion in criteria.values():
        code = criterion["code"]
        counted: dict[str, Any] = {}
        if criterion["kind"] == "computed":
            measured = await _measure(criterion["metric"], cell, assessed_on, timezone)
            rate = measured["rate"]
            # To the hundredth, as shown and judged (`metrics.percent`: from its counts).
            value = metrics.percent(rate, 2)
            unweighed = measured["mass"].get("batches_without_mass", 0)
            if value is not None:
                note = (
                    "computed from the tracker over the twelve months ending on the assessment day"
                )
            elif unweighed:
                note = "no batch of those months has a known mass (batches_without_mass)"
            else:
                note = "no data in the tracker"
            # What it counted, over which days, by which definition: an auditor can check it.
            counted = {
                "numerator": str(rate["numerator"]),
                "denominator": str(rate["denominator"]),
                "unit": rate["unit"],
                "date_from": measured["date_from"].isoformat(),
                "date_to": measured["date_to"].isoformat(),
                "definition": rate["definition"],
                **measured["mass"],
            }
        else:
            given = entered.get(code)
            if given is None or not str(given.get("evidence", "")).strip():
                raise ValidationFailed(
                    f"{code} needs a value and its evidence", field=f"entered.{code}"
                )
            value, note = Decimal(str(given["value"])), str(given["evidence"])
            if not 0 <= value <= 100:
                raise ValidationFailed(
                    "values are percentages from 0 to 100", field=f"entered.{code}.value"
                )
        if value is not None:  # judged as it is shown, to the hundredth (-0 shows as 0)
            value = value.quantize(Decimal("0.01")) + 0
        passed = value is not None and value >= Decimal(str(criterion["threshold"]))
        if passed:
            total += Decimal(str(criterion["weight"]))
        elif criterion["mandatory"]:
            mandatory_failed = True
        scores[code] = {
            "value": None if value is None else str(value),
            "threshold": criterion["threshold"],
            "weight": criterion["weight"],
            "mandatory": criterion["mandatory"],
            "passed": passed,
            "note": note,
            **counted,
        }
    if mandatory_failed or total < CONFIG["achieved_score"]:
        tier = "not_achieved"
    else:
        tier = "excellent" if total >= CONFIG["excellent_score"] else "achieved"
    # A phone's retry, or a second tap: the same finding again is the one already recorded. An
    # assessment that differs — or the same one after another of its level and day, which it
    # must then govern again — is a record of its own.
    latest = (
        await CellAssessment.filter(cell_id=cell.id, level=level, assessed_on=assessed_on)
        .order_by("-id")
        .first()
    )
    if latest is not None and (latest.assessor_id, latest.scores, latest.total, latest.tier) == (
        principal.user_id,
        scores,
        total,
        tier,
    ):
        return latest, False
    await _refuse_unless_below_stands(cell, level, assessed_on)
    made = await CellAssessment.create(
        cell=cell,
        level=level,
        assessed_on=assessed_on,
        expires_on=expiry(assessed_on),
        scores=scores,
        total=total,
        tier=tier,
        assessor_id=principal.user_id,
    )
    await _audited("cell_assessment.created", made, cell)
    return made, True


async def _refuse_unless_below_stands(cell: Cell, level: str, assessed_on: date) -> None:
    """A new assessment above the first level needs the level below to stand as it stands in
    the achievement: by its latest assessment on or before the day (an older pass does not
    carry a re-assessment that failed). What decides a new record only: a resend of one
    recorded is answered with it whatever was recorded below since."""
    index = LEVELS.index(level)
    if index == 0:
        return
    below = LEVELS[index - 1]
    standing = governs(
        await CellAssessment.filter(cell_id=cell.id, assessed_on__lte=assessed_on),
        assessed_on,
        level=below,
    )
    if not is_achieved(standing, assessed_on):
        raise RuleViolation(
            f"a {level} assessment needs the latest {below} assessment on or before"
            f" {assessed_on.isoformat()} to be achieved and unexpired",
            field="level",
        )


# An assessment as its read gives it (beside `stands`).
_ASSESSMENT_FIELDS = (
    "id",
    "cell_id",
    "level",
    "assessed_on",
    "expires_on",
    "scores",
    "total",
    "tier",
    "assessor_id",
    "created_at",
)


class Standing(TypedDict):
    """A cell's assessments as its standing on a day reads them (`list_assessments`)."""

    cell_id: int
    today: date
    achieved: bool
    governing_id: int | None
    assessments: list[dict[str, Any]]


async def list_assessments(*, principal: Principal, cell_id: int, today: date) -> Standing:
    """Every assessment of a cell the manager may see, in the order recorded, each with
    whether it stands (`stands`), and the one that governs its standing today, whether it
    achieves: what `achievement` counted for the cell, to be recounted."""
    _manager(principal)
    cell = await _cell(principal, cell_id, lock=False)
    assessments = await CellAssessment.filter(cell_id=cell.id).order_by("id")
    ruling = governs(assessments, today)
    return {
        "cell_id": cell.id,
        "today": today,
        "achieved": is_achieved(ruling, today),
        "governing_id": None if ruling is None else ruling.id,
        "assessments": [
            {
                **{name: getattr(a, name) for name in _ASSESSMENT_FIELDS},
                "stands": stands(assessments, a),
            }
            for a in assessments
        ],
    }


async def achievement(*, principal: Principal, today: date) -> Achievement:
    """Registered cells achieving the standard on a day (their latest assessment governs) ÷ all
    registered cells, per type and in all, against the plan's target (the indicator's)."""
    target = (await Indicator.get(code=TARGET_INDICATOR)).target
    if target is None:
        raise RuntimeError(f"the indicator edition gives {TARGET_INDICATOR} no target")
    cells = await Cell.filter(region_path__startswith=principal.region_path)
    by_cell: dict[int, list[CellAssessment]] = {c.id: [] for c in cells}
    for assessment in await CellAssessment.filter(
        cell_id__in=list(by_cell), assessed_on__lte=today
    ):
        by_cell[assessment.cell_id].append(assessment)
    achieved = {
        cell_id
        for cell_id, assessments in by_cell.items()
        if is_achieved(governs(assessments, today), today)
    }
    per_type: list[TypeAchievement] = []
    for code, kind in TYPES.items():
        of_type = [c for c in cells if c.cell_type == code]
        if of_type:
            per_type.append(
                {
                    "cell_type": code,
                    "name_zh": kind["name_zh"],
                    "share": ratio(
                        sum(c.id in achieved for c in of_type),
                        len(of_type),
                        "cells",
                        ACHIEVEMENT_DEFINITION,
                    ),
                }
            )
    return {
        "today": today,
        "target_share": target / 100,
        "share": ratio(len(achieved), len(cells), "cells", ACHIEVEMENT_DEFINITION),
        "types": per_type,
        "definition": ACHIEVEMENT_DEFINITION,
    }
