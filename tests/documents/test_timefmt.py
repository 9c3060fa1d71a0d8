"""Times on documents and pages: the city's zone, to the minute."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from wastetrack.core.timefmt import local_time


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
