"""The city's day: one rule, in one module, whatever offset a client sends and whatever zone the
machine runs in."""

import ast
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from wastetrack.core import cityday
from wastetrack.core.settings import Settings
from wastetrack.household.models import Pickup

SHANGHAI = "Asia/Shanghai"
ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "wastetrack" / "core" / "cityday.py"


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        (datetime(2026, 3, 2, 16, 30, tzinfo=UTC), date(2026, 3, 3)),
        (datetime(2026, 3, 2, 15, 59, tzinfo=UTC), date(2026, 3, 2)),
        (datetime(2026, 3, 3, 0, 30, tzinfo=timezone(timedelta(hours=8))), date(2026, 3, 3)),
        (datetime(2026, 3, 2, 11, 30, tzinfo=timezone(timedelta(hours=-5))), date(2026, 3, 3)),
        (datetime(2026, 3, 3, 14, 30, tzinfo=timezone(timedelta(hours=14))), date(2026, 3, 3)),
        # Naive: as the database hands it back, UTC.
        (datetime(2026, 12, 31, 16, 30), date(2027, 1, 1)),
    ],
)
def test_a_day_is_the_citys_day_whatever_offset_was_sent(instant: datetime, day: date) -> None:
    assert cityday.local_date(instant, SHANGHAI) == day


def test_today_is_the_citys_day_not_the_machines() -> None:
    eight_in_the_morning = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert cityday.today(SHANGHAI, now=eight_in_the_morning) == date(2027, 1, 1)
    assert cityday.today("UTC", now=eight_in_the_morning - timedelta(seconds=1)) == date(
        2026, 12, 31
    )


def test_days_are_half_open_from_the_citys_midnight() -> None:
    assert cityday.day_start(date(2026, 3, 11), SHANGHAI) == datetime(
        2026, 3, 10, 16, 0, tzinfo=UTC
    )
    start, end = cityday.days_bounds(date(2026, 3, 11), date(2026, 3, 12), SHANGHAI)
    assert (start, end) == (
        datetime(2026, 3, 10, 16, 0, tzinfo=UTC),
        datetime(2026, 3, 12, 16, 0, tzinfo=UTC),
    )
    assert cityday.local_date(end - timedelta(microseconds=1), SHANGHAI) == date(2026, 3, 12)
    assert cityday.local_date(end, SHANGHAI) == date(2026, 3, 13)


@pytest.mark.parametrize(
    ("day", "first"),
    [
        (date(2027, 2, 28), date(2026, 3, 1)),
        (date(2028, 2, 29), date(2027, 3, 1)),
        (date(2026, 12, 1), date(2025, 12, 2)),
        # After a leap year, February's last day closes March to February: 29 February of the
        # year before is the thirteenth month's.
        (date(2025, 2, 28), date(2024, 3, 1)),
        # In a leap year, 28 February is not February's last day: the year before had no 29th.
        (date(2024, 2, 28), date(2023, 3, 1)),
        (date(2024, 3, 1), date(2023, 3, 2)),
    ],
)
def test_twelve_months_end_on_a_day(day: date, first: date) -> None:
    assert cityday.year_to(day) == first


def _day_taken_elsewhere(source: str, name: str) -> list[str]:
    """`x.date()` (the day of a moment in whatever zone it carries) and `date.today()` /
    `datetime.today()` (the machine's day): each is a date rule made outside the city."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        bare = not node.args and not node.keywords
        machine_day = node.func.attr == "today" and ast.unparse(node.func.value) in (
            "date",
            "datetime",
        )
        if (node.func.attr == "date" and bare) or machine_day:
            found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_city_day_module_turns_a_moment_into_a_day() -> None:
    sources = [
        path
        for package in ("wastetrack", "mobile_api", "schemas")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != OWNER
    ]
    assert len(sources) > 100
    offenders = [
        line
        for path in sources
        for line in _day_taken_elsewhere(
            path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
        )
    ]
    assert offenders == [], "use wastetrack.core.cityday:\n" + "\n".join(offenders)


def test_the_guard_sees_a_day_taken_elsewhere() -> None:
    sample = (
        "from datetime import UTC, date, datetime\n"
        "a = datetime.now(UTC).date()\n"
        "b = date.today()\n"
        "c = datetime(2026, 1, 1).date\n"
    )
    assert _day_taken_elsewhere(sample, "sample.py") == [
        "sample.py:2: datetime.now(UTC).date()",
        "sample.py:3: date.today()",
    ]


async def test_the_suite_refuses_a_day_where_a_moment_belongs(orm: list[str]) -> None:
    """tests/conftest.py: a `date` against a timestamp column would be midnight in the
    database session's zone."""
    with pytest.raises(TypeError, match="picked_up_at holds moments"):
        await Pickup.filter(picked_up_at__gte=date(2026, 3, 1)).count()
    start, end = cityday.days_bounds(date(2026, 3, 1), date(2026, 3, 1), SHANGHAI)
    assert await Pickup.filter(picked_up_at__gte=start, picked_up_at__lt=end).count() == 0


@pytest.mark.parametrize("name", ["Asia/Beijing", "", "UTC+8", "../../etc/passwd"])
def test_a_time_zone_the_database_of_zones_lacks_stops_the_start(name: str, tmp_path: Path) -> None:
    """Every date rule reads the city's zone: a wrong name is refused when the settings are
    read, naming the setting, not met by every dated request afterwards."""
    with pytest.raises(ValidationError) as refused:
        Settings(timezone=name, data_dir=tmp_path)
    assert refused.value.errors()[0]["loc"] == ("timezone",)
    assert Settings(timezone="Asia/Shanghai", data_dir=tmp_path).timezone == "Asia/Shanghai"
