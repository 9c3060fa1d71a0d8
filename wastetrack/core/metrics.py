"""What every rate needs: its numerator, denominator and unit, and calendar-day periods in
the city's time zone. A rate is never shown bare."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from wastetrack.core.errors import ValidationFailed


def ratio(
    numerator: Decimal | int,
    denominator: Decimal | int,
    unit: str,
    definition: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A rate with what it was computed from (and, for the published figures, its
    definition: the formula in words and its source)."""
    rate = (
        (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"))
        if denominator
        else None
    )
    answer: dict[str, Any] = {
        "numerator": numerator,
        "denominator": denominator,
        "rate": rate,
        "unit": unit,
    }
    if definition is not None:
        answer["definition"] = definition
    return answer


def period_bounds(date_from: date, date_to: date, timezone: str) -> tuple[datetime, datetime]:
    """Calendar days in the city's time zone, both ends included, as [start, end)."""
    if date_to < date_from:
        raise ValidationFailed("date_to precedes date_from", field="date_to")
    tz = ZoneInfo(timezone)
    return (
        datetime.combine(date_from, time.min, tz),
        datetime.combine(date_to + timedelta(days=1), time.min, tz),
    )
