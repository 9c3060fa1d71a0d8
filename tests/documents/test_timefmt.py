"""Times on documents and pages: the city's zone, to the minute; in refusals, to the second."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from wastetrack.core.timefmt import local_limit, local_time


@pytest.mark.parametrize(
    ("value", "zone", "shown"),
    [
        (datetime(2026, 11, 30, 6, 5, 59, 999999, tzinfo=UTC), "Asia/Shanghai", "2026-11-30 14:05"),
        (datetime(2026, 11, 30, 6, 5), "Asia/Shanghai", "2026-11-30 14:05"),  # naive is UTC
        (datetime(2026, 11, 30, 20, 0, tzinfo=UTC), ZoneInfo("Asia/Shanghai"), "2026-12-01 04:00"),
        (datetime(2026, 11, 30, 20, 0, tzinfo=UTC), "UTC", "2026-11-30 20:00"),
        (date(2026, 11, 30), "Asia/Shanghai", "2026-11-30"),
        (None, "Asia/Shanghai", "—"),
    ],
)
def test_local_time_prints_the_city_minute(
    value: datetime | date | None, zone: str | ZoneInfo, shown: str
) -> None:
    assert local_time(value, zone) == shown


def test_a_refusals_limit_is_rounded_on_the_time_line_and_names_its_offset() -> None:
    """Rounded on the wall clock, an earliest limit half a second before New York's clocks go
    back printed 02:00, an hour late, and one inside the repeated hour printed a wall time
    that is two moments (diff review): rounded in UTC, printed with the offset, the moment
    printed is the first accepted (the latest, rounded down)."""
    tz = "America/New_York"
    before = datetime(2026, 11, 1, 5, 59, 59, 500000, tzinfo=UTC)  # 01:59:59.5 EDT
    assert local_limit(before, tz, earliest=True) == "2026-11-01 01:00:00-05:00"
    assert local_limit(before, tz, earliest=False) == "2026-11-01 01:59:59-04:00"
    repeated = datetime(2026, 11, 1, 6, 30, 0, 500000, tzinfo=UTC)  # 01:30:00.5 EST
    assert local_limit(repeated, tz, earliest=True) == "2026-11-01 01:30:01-05:00"
    for printed in ("2026-11-01 01:00:00-05:00", "2026-11-01 01:30:01-05:00"):
        assert datetime.fromisoformat(printed) >= before
    whole = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    assert local_limit(whole, "Asia/Shanghai", earliest=True) == "2026-12-08 00:00:00+08:00"
