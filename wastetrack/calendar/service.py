"""Working days from the official calendar table, in the city's time zone.

The table holds every day of each year it knows (weekends, public holidays, make-up working days
调休). A day the table does not hold falls back to Monday–Friday, and the answer says so."""

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from wastetrack.audit import service as audit
from wastetrack.calendar.models import CalendarDay
from wastetrack.core import cityday
from wastetrack.core.data import read_data_file
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings

log = logging.getLogger(__name__)

PINNED_FILE = "working_calendar_cn_1.11.0.json"
WEEKDAY_RULE = "weekday rule (no calendar data for this year)"
YEAR_BEGUN = "weekday rule, the year begun by hand"
# How many calendar days one query reads ahead per working day wanted (Spring Festival and
# National Day close up to 9 days in a row).
_WINDOW_PER_DAY = 2
_WINDOW_SLACK = 20


@dataclass(frozen=True, slots=True)
class WorkingDayCount:
    """The day reached, and the years whose days were assumed Monday–Friday for want of data."""

    day: date
    assumed_years: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DayInfo:
    day: date
    is_working_day: bool
    name: str | None
    source: str


def _weekday_rule(day: date) -> bool:
    return day.weekday() < 5


def _walk(
    rows: dict[date, bool], start: date, n: int, until: date, assumed: set[int]
) -> tuple[date, int]:
    """Count working days after `start` up to `until` at the latest, from `rows` (a day they
    lack counts Monday–Friday, its year added to `assumed`): the day reached and how many
    working days are still wanted there."""
    current, remaining = start, n
    while remaining > 0 and current < until:
        current += timedelta(days=1)
        working = rows.get(current)
        if working is None:
            assumed.add(current.year)
            working = _weekday_rule(current)
        if working:
            remaining -= 1
    return current, remaining


async def _rows(after: date, until: date) -> dict[date, bool]:
    return dict(
        await CalendarDay.filter(day__gt=after, day__lte=until).values_list("day", "is_working_day")
    )


def _window(start: date, n: int) -> date:
    return start + timedelta(days=n * _WINDOW_PER_DAY + _WINDOW_SLACK)


def _counted(day: date, assumed: set[int]) -> WorkingDayCount:
    if assumed:
        log.warning(
            "no official calendar for %s: counted Monday to Friday",
            ", ".join(map(str, sorted(assumed))),
        )
    return WorkingDayCount(day=day, assumed_years=tuple(sorted(assumed)))


async def add_working_days(*, start: date, n: int) -> WorkingDayCount:
    """The n-th working day after `start` (start itself not counted), from the calendar table;
    days the table lacks count Monday–Friday and their years are reported."""
    if n < 0:
        raise ValueError("n must not be negative")
    current, remaining, assumed = start, n, set[int]()
    while remaining > 0:
        until = _window(current, remaining)
        current, remaining = _walk(await _rows(current, until), current, remaining, until, assumed)
    return _counted(current, assumed)


async def add_working_days_each(*, starts: Iterable[date], n: int) -> dict[date, WorkingDayCount]:
    """`add_working_days` from each of several days, reading the calendar once for them all
    (a start whose count runs past what was read goes on alone)."""
    wanted = sorted(set(starts))
    if not wanted:
        return {}
    until = _window(wanted[-1], n)
    rows = await _rows(wanted[0], until)
    found: dict[date, WorkingDayCount] = {}
    for start in wanted:
        assumed: set[int] = set()
        day, remaining = _walk(rows, start, n, until, assumed)
        found[start] = (
            _counted(day, assumed) if remaining == 0 else await add_working_days(start=start, n=n)
        )
    return found


async def get_day(*, day: date) -> DayInfo:
    """One day as the calendar has it, or as the weekday rule assumes it."""
    row = await CalendarDay.get_or_none(day=day)
    if row is None:
        return DayInfo(day, _weekday_rule(day), None, WEEKDAY_RULE)
    return DayInfo(row.day, row.is_working_day, row.name, row.source)


def _check_reason(days: list[date], reason: str | None, timezone: str | None) -> None:
    """A change of a day already past (in the city's `timezone`, by default the settings')
    moves deadlines that have run and clears the alerts they raised: it needs a reason."""
    today = cityday.today(timezone or get_settings().timezone)
    past = sorted(day for day in days if day < today)
    if past and not (reason or "").strip():
        raise ValidationFailed(
            f"a day already past ({past[0].isoformat()}"
            f"{f' and {len(past) - 1} more' if len(past) > 1 else ''}) moves deadlines that"
            " have run: give the reason",
            field="reason",
        )


async def set_day(
    *,
    day: date,
    is_working_day: bool,
    name: str | None,
    source: str,
    reason: str | None = None,
    principal: Principal | None = None,
    timezone: str | None = None,
) -> DayInfo:
    """An administrator declares one day a working day or a holiday (e.g. a year the library
    does not know yet, or a local change). Audited, before and after, under the administrator's
    region: a day moves every deadline counted over it. A day already past (in the city's
    `timezone`, by default the settings') needs a `reason`: it moves deadlines that have run,
    and clears alerts."""
    if name is not None and len(name) > 64:
        raise ValidationFailed("name is at most 64 characters", field="name")
    _check_reason([day], reason, timezone)
    async with _writing():
        before = await get_day(day=day)
        begun = not await CalendarDay.filter(
            day__gte=date(day.year, 1, 1), day__lte=date(day.year, 12, 31)
        ).exists()
        if begun:
            # The first day entered for a year begins it: its other days are Monday to Friday
            # until they are entered too, and the year is no longer assumed (deadlines counted
            # in it stop saying so). An operator enters a year's holidays and make-up days
            # together.
            await connections.get("default").execute_many(
                _UPSERT, _year_rows(day.year, {}, f"{YEAR_BEGUN} ({source})")
            )
        row, _ = await CalendarDay.update_or_create(
            day=day,
            defaults={"is_working_day": is_working_day, "name": name, "source": source[:128]},
        )
        after = await get_day(day=day)
        await audit.record(
            action="calendar.day_set",
            subject=row,
            region_path=principal.region_path if principal else "/",
            organization_id=principal.organization_id if principal else None,
            before=audit.plain(asdict(before)),
            after=audit.plain(
                {**asdict(after), "reason": reason, **({"year_begun": day.year} if begun else {})}
            ),
        )
    return after


# One calendar write at a time, to the end of its transaction: two administrators entering the
# first days of a new year at once would each begin the year, the later filling over the day
# the other had just set; a load reads the days it is about to change, for its audit entry.
CALENDAR_LOCK_KEY = 0x63616C65


@contextlib.asynccontextmanager
async def _writing() -> AsyncIterator[None]:
    """A transaction of its own (a savepoint in the request's) holding the calendar's lock."""
    async with in_transaction() as client:
        await client.execute_query("SELECT pg_advisory_xact_lock($1)", [CALENDAR_LOCK_KEY])
        yield


async def list_days(*, date_from: date, date_to: date) -> list[DayInfo]:
    """Every day of a period (the route bounds it to a year), as the calendar has it."""
    rows = {r.day: r for r in await CalendarDay.filter(day__gte=date_from, day__lte=date_to)}
    out = []
    day = date_from
    while day <= date_to:
        row = rows.get(day)
        out.append(
            DayInfo(day, _weekday_rule(day), None, WEEKDAY_RULE)
            if row is None
            else DayInfo(row.day, row.is_working_day, row.name, row.source)
        )
        day += timedelta(days=1)
    return out


def _year_rows(year: int, exceptions: dict[date, tuple[bool, str]], source: str) -> list[list[Any]]:
    rows: list[list[Any]] = []
    day = date(year, 1, 1)
    while day.year == year:
        working, name = exceptions.get(day, (_weekday_rule(day), None))
        rows.append([day, working, name, source])
        day += timedelta(days=1)
    return rows


_UPSERT = (
    "INSERT INTO working_calendar (day, is_working_day, name, source) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (day) DO UPDATE SET is_working_day = EXCLUDED.is_working_day,"
    " name = EXCLUDED.name, source = EXCLUDED.source"
)


def library_years() -> list[int]:
    """The years the installed chinesecalendar knows."""
    from chinese_calendar import constants

    return sorted({d.year for d in constants.holidays} | {d.year for d in constants.workdays})


def _library_exceptions(year: int) -> dict[date, tuple[bool, str]]:
    from chinese_calendar import constants

    found: dict[date, tuple[bool, str]] = {}
    for days, working in ((constants.holidays, False), (constants.workdays, True)):
        for day, name in days.items():
            if day.year == year:
                found[day] = (working, str(getattr(name, "value", name)))
    return found


async def load_from_library(
    *,
    year: int | None,
    reason: str | None = None,
    principal: Principal | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    """Load one year (or every year) the installed chinesecalendar knows into the table,
    replacing those days; audited with the days it changed (a day an administrator set by hand
    among them). A load that changes a day already past needs a `reason`, as setting it does,
    and changes nothing without one."""
    import chinese_calendar

    known = library_years()
    years = known if year is None else [year]
    if year is not None and year not in known:
        raise ValidationFailed(
            f"chinesecalendar {chinese_calendar.__version__} does not know {year}"
            f" (it covers {known[0]}–{known[-1]}); set its days by hand",
            field="year",
        )
    source = f"chinesecalendar {chinese_calendar.__version__}"
    rows = [r for y in years for r in _year_rows(y, _library_exceptions(y), source)]
    async with _writing():
        # Each day as deadlines counted it: a day the table lacks by the weekday rule, so a
        # load turning a past one into a holiday needs a reason as a stored day's change does.
        held = {
            d.day: d
            for d in await list_days(
                date_from=date(years[0], 1, 1), date_to=date(years[-1], 12, 31)
            )
        }
        changed = [
            {
                "day": day.isoformat(),
                "was": [old.is_working_day, old.name, old.source],
                "now": [w, n],
            }
            for day, w, n, _ in rows
            if (old := held.get(day)) is not None and (old.is_working_day, old.name) != (w, n)
        ]
        _check_reason([date.fromisoformat(c["day"]) for c in changed], reason, timezone)
        await connections.get("default").execute_many(_UPSERT, rows)
        loaded = {"years": years, "days": len(rows), "source": source}
        first = await CalendarDay.get(day=rows[0][0])
        await audit.record(
            action="calendar.loaded",
            subject=first,
            region_path=principal.region_path if principal else "/",
            organization_id=principal.organization_id if principal else None,
            after={**loaded, "changed": changed, "reason": (reason or "").strip() or None},
        )
    return loaded


async def load_pinned(client: BaseDBAsyncClient, name: str = PINNED_FILE) -> None:
    """Load a pinned edition of the calendar (a data migration's reference data)."""
    doc = read_data_file("wastetrack.calendar", name)
    exceptions = {
        date.fromisoformat(item["day"]): (bool(item["working"]), str(item["name"]))
        for item in doc["items"]
    }
    source = f"{doc['edition']} (pinned)"
    rows = [r for y in doc["years"] for r in _year_rows(int(y), exceptions, source)]
    await client.execute_many(_UPSERT, rows)
