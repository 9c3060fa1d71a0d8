"""One way to print a moment on every document and page: the city's local time, to the minute
(``2026-11-30 14:05``), never UTC with microseconds. Callers pass ``settings.timezone``."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from wastetrack.core.cityday import in_city

MINUTE = "%Y-%m-%d %H:%M"


def local_time(value: datetime | date | None, timezone: str | ZoneInfo, *, empty: str = "—") -> str:
    """A moment in the given zone to the minute; a date as it is; ``empty`` for none.

    A naive datetime is taken as UTC, which is how the database hands them back.
    """
    if value is None:
        return empty
    if not isinstance(value, datetime):
        return value.isoformat()
    return in_city(value, timezone).strftime(MINUTE)
