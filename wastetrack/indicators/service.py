"""The plan's indicators against their targets: actual values computed from the tracker's own
data where it holds them, entered with source and author where it does not, and a status by a
stated rule."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal, NotRequired, TypedDict, cast

from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.cells import service as cells
from wastetrack.core import cityday, metrics
from wastetrack.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from wastetrack.core.metrics import Definition, Rate
from wastetrack.core.principal import Principal
from wastetrack.core.reported import check_day_ended
from wastetrack.household import service as household
from wastetrack.indicators.loader import DIRECTIONS, Direction
from wastetrack.indicators.models import Indicator, IndicatorValue
from wastetrack.medical import service as medical
from wastetrack.pesticide import service as pesticide
from wastetrack.ports import metrics as port_metrics

PLAN_START, PLAN_END = date(2021, 1, 1), date(2025, 12, 31)
AT_RISK_MARGIN = Decimal("0.25")
NEAR_TARGET = Decimal("0.10")
STATUS_RULE = (
    "a target is met at or above it (direction at_least) or at or below it (at_most); a value "
    "that meets it is on track; otherwise, with a 2020 baseline short of the target: on track "
    "when progress from baseline to target is at least the elapsed share of 2021–2025 at the end "
    "of the value's period, at risk within 25 points of it, off track below; otherwise: at risk "
    "when short of the target by at most 10 % of it (at least 90 % of it for at_least, at most "
    "110 % for at_most), off track beyond"
)

Status = Literal["on_track", "at_risk", "off_track", "no_data", "no_target"]


class Actual(TypedDict):
    """An indicator's actual value: computed (with its counts, their unit, its period and the
    rate's definition) or entered (with its source and author); each kind carries only its own
    keys."""

    value: Decimal
    source: Literal["computed", "entered"]
    period_end: date
    numerator: NotRequired[Decimal | int]
    denominator: NotRequired[Decimal | int]
    unit: NotRequired[str]
    """What the numerator and denominator count (the value is in the indicator's unit)."""
    definition: NotRequired[Definition]
    period_start: NotRequired[date]
    source_note: NotRequired[str]
    entered_by: NotRequired[str]
    entered_at: NotRequired[datetime]


class IndicatorStatus(TypedDict):
    code: str
    name_zh: str
    name_en: str
    unit: str
    baseline_2020: Decimal | None
    target_2025: Decimal | None
    target_text: str | None
    direction: Direction
    section: str
    actual: Actual | None
    status: Status


async def _computed(
    code: str, *, principal: Principal, today: date, timezone: str
) -> Actual | None:
    """The tracker's own figure for a computed indicator over its natural period: the twelve
    months to today for a flow, today alone for a standing (what holds on the day)."""
    period_start = cityday.year_to(today)
    ratio: Rate
    if code == "sorting_coverage":
        # Communities and villages sorting by the day: a standing, whatever the months before.
        ratio = (
            await household.sorting_metrics(
                principal=principal, date_from=period_start, date_to=today, timezone=timezone
            )
        )["coverage"]
        period_start = today
    elif code == "port_garbage_rate":
        # 渔港污水和垃圾收集处置率: the headline itself — the weaker group's counts under the
        # headline's own definition (the lower of the two rates), not that group's definition,
        # which would present one group's rate as the whole indicator.
        ratio = (
            await port_metrics.port_metrics(
                principal=principal, date_from=period_start, date_to=today, timezone=timezone
            )
        )["listed_ports"]["headline"]
    elif code == "small_clinic_coverage":
        coverage = await medical.collection_coverage(
            principal=principal, today=today, timezone=timezone, days=30
        )
        ratio = coverage["small_institutions"]
        period_start = coverage["date_from"]
    elif code == "cell_achievement":
        # Cells achieving the standard on the day: a standing, like sorting coverage.
        ratio = (await cells.achievement(principal=principal, today=today))["share"]
        period_start = today
    elif code == "pesticide_recovery":
        ratio = (
            await pesticide.recovery_metrics(
                principal=principal, date_from=period_start, date_to=today, timezone=timezone
            )
        )["recovery_rate"]
    else:
        return None
    value = metrics.percent(ratio, 2)  # a share short of all never 100 (as the page shows)
    if value is None:
        return None
    return {
        "value": value,
        "numerator": ratio["numerator"],
        "denominator": ratio["denominator"],
        "unit": ratio["unit"],
        "definition": ratio["definition"],
        "period_start": period_start,
        "period_end": today,
        "source": "computed",
    }


def elapsed_share(as_of: date) -> Decimal:
    """The share of the plan's days (2021-01-01 to 2025-12-31, both included: 1826) that have
    passed at the end of `as_of`: the day itself counts, so the share is 1/1826 at the end of
    the first day and 1 at the end of the last; 0 before the plan, 1 after it."""
    days = (PLAN_END - PLAN_START).days + 1
    return Decimal(min(max((as_of - PLAN_START).days + 1, 0), days)) / days


def status(indicator: Indicator, value: Decimal | None, as_of: date) -> Status:
    """on_track, at_risk, off_track, no_data or no_target, by STATUS_RULE, for a value as of
    the end of its own period (an entered year's figure is judged at that year's end, not at
    the day it is read). Every comparison is made on the shortfall signed by the indicator's
    direction, so an at_most indicator's band lies above its target, never below."""
    if value is None:
        return "no_data"
    if indicator.target is None:
        return "no_target"
    sign = DIRECTIONS[indicator.direction]
    target = Decimal(indicator.target)
    shortfall = (target - value) * sign
    if shortfall <= 0:
        return "on_track"
    baseline = None if indicator.baseline is None else Decimal(indicator.baseline)
    # Progress is a share of the way from baseline to target whichever way the target lies;
    # it means something only while the baseline itself fell short of the target.
    if baseline is not None and (target - baseline) * sign > 0:
        progress = (value - baseline) / (target - baseline)
        elapsed = elapsed_share(as_of)
        if progress >= elapsed:
            return "on_track"
        return "at_risk" if progress >= elapsed - AT_RISK_MARGIN else "off_track"
    return "at_risk" if shortfall <= abs(target) * NEAR_TARGET else "off_track"


async def overview(*, principal: Principal, today: date, timezone: str) -> list[IndicatorStatus]:
    """Every indicator with baseline, target, actual value (and its counts) and status."""
    result: list[IndicatorStatus] = []
    for indicator in await Indicator.all().order_by("code"):
        actual: Actual | None = None
        if indicator.computed_by:
            actual = await _computed(
                indicator.computed_by, principal=principal, today=today, timezone=timezone
            )
        else:
            entered = (
                await IndicatorValue.filter(indicator_id=indicator.code)
                .order_by("-period_end", "-id")
                .first()
                .prefetch_related("entered_by")
            )
            if entered is not None:
                actual = {
                    "value": entered.value,
                    "period_end": entered.period_end,
                    "source": "entered",
                    "source_note": entered.source_note,
                    "entered_by": entered.entered_by.username,
                    "entered_at": entered.entered_at,
                }
        result.append(
            {
                "code": indicator.code,
                "name_zh": indicator.name_zh,
                "name_en": indicator.name_en,
                "unit": indicator.unit,
                "baseline_2020": indicator.baseline,
                "target_2025": indicator.target,
                "target_text": indicator.target_text,
                "direction": cast(Direction, indicator.direction),
                "section": indicator.section,
                "actual": actual,
                "status": status(
                    indicator,
                    actual["value"] if actual else None,
                    actual["period_end"] if actual else today,
                ),
            }
        )
    return result


def _check_speaks_for_the_city(principal: Principal) -> None:
    """Entered values are the city's, shown to every manager whatever region they ask for: a
    manager whose region is the city itself (the root of the region tree, a path of one id)
    enters them, or an admin; a town's manager may not."""
    if principal.role == Role.admin:
        return
    if principal.role == Role.manager and principal.region_path.count("/") == 2:
        return
    raise Forbidden(
        "indicator values are the city's: they are entered by a manager of the city or an admin",
        field="role",
    )


async def enter_value(
    *,
    principal: Principal,
    code: str,
    value: Decimal,
    period_end: date,
    source_note: str,
    timezone: str,
) -> IndicatorValue:
    """Enter a value for an indicator the tracker cannot compute, with its source: by a
    manager of the city or an admin, for a period that has ended (the latest period shown
    wins, so a mistyped future one would hide every later value), and a share at most 100 %."""
    _check_speaks_for_the_city(principal)
    indicator = await Indicator.get_or_none(code=code)
    if indicator is None:
        raise NotFound(f"no indicator {code!r}", field="code")
    if indicator.computed_by:
        raise Conflict("this indicator is computed from the tracker's own data", field="code")
    check_day_ended(
        period_end,
        timezone=timezone,
        field="period_end",
        why="a value is entered once its period has ended",
    )
    if indicator.unit == "%" and value > 100:
        raise ValidationFailed("a share is at most 100 %", field="value")
    made = await IndicatorValue.create(
        indicator=indicator,
        value=value,
        period_end=period_end,
        source_note=source_note,
        entered_by_id=principal.user_id,
    )
    await audit.record(
        action="indicator_value.entered",
        subject=made,
        region_path=principal.region_path,
        after=audit.snapshot(made),
    )
    return made
