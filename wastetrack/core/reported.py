"""Times a client reports (an event's device time, a handover, an arrival, a GPS fix, a return):
one rule bounds them by the server's clock; and days it reports (a sale's, a float replacement's,
an assessment's, a period's end), one rule by the city's today."""

from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from wastetrack.core import cityday
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.settings import get_settings

CLOCK_SKEW = timedelta(minutes=10)
"""How far a phone's clock may run ahead of the server's."""

# No phone records waste before this day; earlier times are clocks reset to their epoch.
DAY_FLOOR = date(2000, 1, 1)


def _floor() -> datetime:
    """The first moment of DAY_FLOOR on the city's clock (a day is the city's, §1 of
    docs/metrics.md: the UTC one would refuse its first eight hours in Rongcheng)."""
    return _floor_in(get_settings().timezone)


@cache
def _floor_in(timezone: str) -> datetime:
    return cityday.day_start(DAY_FLOOR, timezone)


def plausible(moment: datetime, *, now: datetime) -> bool:
    """Ahead of the server's clock by CLOCK_SKEW at most, and not before DAY_FLOOR began in
    the city."""
    return _floor() <= moment <= now + CLOCK_SKEW


def check_reported(moment: datetime, *, now: datetime, field: str) -> None:
    """Refuse a time that is not `plausible`, naming the field and which way it is wrong."""
    if plausible(moment, now=now):
        return
    if moment > now + CLOCK_SKEW:
        raise ValidationFailed(f"{field} lies in the future", field=field)
    if moment < _floor():
        raise ValidationFailed(
            f"{field} precedes {DAY_FLOOR:%Y-%m-%d} in the city: the phone's clock is wrong",
            field=field,
        )


def check_day_ended(day: date, *, timezone: str | ZoneInfo, field: str, why: str = "") -> None:
    """As `check_day_come`, and the day must be over in the city: the last day of a period
    whose figure is counted once it has ended (today has not)."""
    if day >= cityday.today(timezone):
        raise ValidationFailed(
            f"{field} has not ended yet in the city{': ' + why if why else ''}", field=field
        )
    check_day_come(day, timezone=timezone, field=field, why=why)


def check_day_come(day: date, *, timezone: str | ZoneInfo, field: str, why: str = "") -> None:
    """Refuse a day that has not come yet in the city (its today, whatever the phone's zone), or
    that precedes DAY_FLOOR, naming the field; `why` says what a later day would
    spoil."""
    if day > cityday.today(timezone):
        raise ValidationFailed(
            f"{field} lies in the future{': ' + why if why else ''}", field=field
        )
    if day < DAY_FLOOR:
        raise ValidationFailed(
            f"{field} precedes {DAY_FLOOR:%Y-%m-%d}, before any record", field=field
        )
