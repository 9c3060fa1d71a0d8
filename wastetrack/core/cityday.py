"""The city's calendar day: the one rule for which day an instant falls on.

Every date rule — a licence or an agreement valid "on" a day, a cohort's tagging day, a
manifest's year, a seal of a finished day, a report's period — asks this module, in the city's
time zone (``settings.timezone``), whatever offset the client sent and whatever zone the
machine runs in. ``tests/core/test_cityday.py`` keeps ``.date()`` and ``date.today()`` out of
the rest of the code."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def zone(timezone: str | ZoneInfo) -> ZoneInfo:
    """The zone for a name (``Asia/Shanghai``); a zone as it is."""
    return timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)


def in_city(instant: datetime, timezone: str | ZoneInfo) -> datetime:
    """The instant on the city's clock.

    A naive datetime is taken as UTC, which is how the database hands them back.
    """
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(zone(timezone))


def local_date(instant: datetime, timezone: str | ZoneInfo) -> date:
    """The calendar day an instant falls on in the city."""
    return in_city(instant, timezone).date()


def today(timezone: str | ZoneInfo, *, now: datetime | None = None) -> date:
    """The city's day now (or at ``now``)."""
    return local_date(now or datetime.now(UTC), timezone)


def day_start(day: date, timezone: str | ZoneInfo) -> datetime:
    """The instant (UTC) the city's day begins."""
    return datetime.combine(day, time(0), tzinfo=zone(timezone)).astimezone(UTC)


def year_to(day: date) -> date:
    """The first day of the twelve months that end on ``day``, both days included: the day
    after it, a year before — 2026-03-01 for 2027-02-28, 2027-03-01 for 2028-02-29,
    2024-03-01 for 2025-02-28 — or 1 March for a 29 February that year lacks (2023-03-01
    for 2024-02-28)."""
    after = day + timedelta(days=1)
    if (after.month, after.day) == (2, 29):
        return date(after.year - 1, 3, 1)
    return after.replace(year=after.year - 1)


def days_bounds(first: date, last: date, timezone: str | ZoneInfo) -> tuple[datetime, datetime]:
    """The city's days ``first``…``last``, both included, as a half-open ``[start, end)`` in
    UTC."""
    return day_start(first, timezone), day_start(last + timedelta(days=1), timezone)
