"""One way to print a moment on every document and page: the city's local time, to the minute
(``2026-11-30 14:05``), never UTC with microseconds. Callers pass ``settings.timezone``."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from wastetrack.core.cityday import in_city, local_date

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


def through_day(end: datetime | None, timezone: str | ZoneInfo, *, empty: str = "—") -> str:
    """A deadline kept as an exclusive end (the first moment after its last day, as
    `cityday.day_start` of the next day) as people read one: its last day, whole
    (``2026-03-13 当日止 end of day``), not the next day at 00:00."""
    if end is None:
        return empty
    return f"{local_date(end - timedelta(microseconds=1), timezone).isoformat()} 当日止 end of day"


def local_limit(value: datetime, timezone: str | ZoneInfo, *, earliest: bool) -> str:
    """A limit a refused moment was judged against, as its refusal prints it: the city's time
    to the second with its offset (the minute would print a limit the refused moment did not
    cross; a wall time without its offset is two moments in a zone's repeated hour), rounded
    on the time line, not the wall clock, so that the moment printed is itself accepted — up
    for the `earliest` moment allowed, down for the latest."""
    moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    whole = moment.replace(microsecond=0)
    if earliest and whole < moment:
        whole += timedelta(seconds=1)
    return in_city(whole, timezone).isoformat(sep=" ")
