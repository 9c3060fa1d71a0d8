"""Times a client reports (an event's device time, a handover, an arrival, a GPS fix, a return):
one rule bounds them by the server's clock."""

from datetime import UTC, datetime, timedelta

from wastetrack.core.errors import ValidationFailed

CLOCK_SKEW = timedelta(minutes=10)
"""How far a phone's clock may run ahead of the server's."""

# No phone records waste before this; earlier times are clocks reset to their epoch.
DEVICE_TIME_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def plausible(moment: datetime, *, now: datetime) -> bool:
    """Ahead of the server's clock by CLOCK_SKEW at most, and not before DEVICE_TIME_FLOOR."""
    return DEVICE_TIME_FLOOR <= moment <= now + CLOCK_SKEW


def check_reported(moment: datetime, *, now: datetime, field: str) -> None:
    """Refuse a time that is not `plausible`, naming the field and which way it is wrong."""
    if plausible(moment, now=now):
        return
    if moment > now + CLOCK_SKEW:
        raise ValidationFailed(f"{field} lies in the future", field=field)
    if moment < DEVICE_TIME_FLOOR:
        raise ValidationFailed(
            f"{field} precedes {DEVICE_TIME_FLOOR:%Y-%m-%d}: the phone's clock is wrong",
            field=field,
        )
