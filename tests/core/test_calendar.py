"""Working days from the official calendar table (pinned chinesecalendar edition), in the city's
time zone; Monday–Friday only for years without data, and said so."""

import asyncio
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from tests.factories import World
from wastetrack.calendar import service as calendar
from wastetrack.calendar.models import CalendarDay
from wastetrack.core.data import read_data_file
from wastetrack.core.errors import ValidationFailed

SHANGHAI = "Asia/Shanghai"
NO_DATA_YEAR = 2031


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # Spring Festival 2026: 15–23 February off, Saturday 14 and Saturday 28 worked (调休).
        (date(2026, 2, 13), 1, date(2026, 2, 14)),
        (date(2026, 2, 12), 5, date(2026, 2, 26)),
        (date(2026, 2, 27), 1, date(2026, 2, 28)),
        # National Day 2026: 1–7 October off, Sunday 20 September and Saturday 10 October worked.
        (date(2026, 9, 19), 1, date(2026, 9, 20)),
        (date(2026, 9, 30), 5, date(2026, 10, 13)),
        (date(2026, 10, 9), 1, date(2026, 10, 10)),
        # An ordinary week: the start day itself is not counted.
        (date(2026, 3, 2), 5, date(2026, 3, 9)),
        (date(2026, 3, 2), 0, date(2026, 3, 2)),
    ],
)
async def test_working_days_follow_holidays_and_make_up_days(
    orm: list[str], start: date, n: int, due: date
) -> None:
    counted = await calendar.add_working_days(start=start, n=n)
    assert (counted.day, counted.assumed_years) == (due, ())


async def test_the_pinned_edition_is_loaded_for_every_day_of_its_years(orm: list[str]) -> None:
    assert (
        await CalendarDay.filter(day__gte=date(2026, 1, 1), day__lt=date(2027, 1, 1)).count() == 365
    )
    spring = await calendar.get_day(day=date(2026, 2, 17))
    assert (spring.is_working_day, spring.name) == (False, "Spring Festival")
    assert spring.source == "chinesecalendar 1.11.0 (pinned)"
    make_up = await calendar.get_day(day=date(2026, 10, 10))
    assert (make_up.is_working_day, make_up.name) == (True, "National Day")


async def test_a_year_without_data_falls_back_to_weekdays_and_says_so(orm: list[str]) -> None:
    # Friday 31 January 2031 + 1 working day = Monday 3 February, assumed.
    counted = await calendar.add_working_days(start=date(2031, 1, 31), n=1)
    assert (counted.day, counted.assumed_years) == (date(2031, 2, 3), (NO_DATA_YEAR,))
    assert (await calendar.get_day(day=date(2031, 2, 1))).source == calendar.WEEKDAY_RULE
    crossing = await calendar.add_working_days(start=date(2026, 12, 30), n=5)
    assert crossing.assumed_years == (2027,)
    # Several starts, one read of the calendar, the same answers.
    starts = [date(2026, 9, 30), date(2026, 12, 30), date(2031, 1, 31), date(2026, 3, 2)]
    each = await calendar.add_working_days_each(starts=starts, n=5)
    for start in starts:
        assert each[start] == await calendar.add_working_days(start=start, n=5)


async def test_the_first_day_entered_for_a_year_begins_it(
    orm: list[str], restore_calendar: None
) -> None:
    """An operator enters a new year's official days: the first one fills the year with
    Monday to Friday, so its other days are no longer assumed and a deadline stops saying so."""
    await calendar.set_day(
        day=date(NO_DATA_YEAR, 1, 1), is_working_day=False, name="元旦", source="国务院办公厅通知"
    )
    counted = await calendar.add_working_days(start=date(NO_DATA_YEAR, 1, 31), n=1)
    assert (counted.day, counted.assumed_years) == (date(NO_DATA_YEAR, 2, 3), ())
    assert (await calendar.get_day(day=date(NO_DATA_YEAR, 2, 1))).source.startswith(
        calendar.YEAR_BEGUN
    )
    assert await CalendarDay.filter(day__year=NO_DATA_YEAR).count() == 365
    # A later day keeps the days entered before it.
    await calendar.set_day(
        day=date(NO_DATA_YEAR, 2, 3), is_working_day=False, name="春节", source="x"
    )
    assert (await calendar.get_day(day=date(NO_DATA_YEAR, 1, 1))).name == "元旦"


async def test_two_admins_beginning_a_year_at_once_both_keep_their_day(
    client: httpx.AsyncClient, world: World, restore_calendar: None
) -> None:
    """Each of two days entered at once for a year the table lacks would begin the year; the
    later fill wrote over the day the other had just set (both answered 200). They take
    turns: the second finds the year begun."""
    holiday = {"is_working_day": False, "name": "春节"}
    for year in range(NO_DATA_YEAR, NO_DATA_YEAR + 4):
        days = [f"{year}-02-11", f"{year}-02-12"]
        answers = await asyncio.gather(
            *(
                client.put(
                    f"/admin/v1/calendar/{day}", json=holiday, headers=world.headers("admin")
                )
                for day in days
            )
        )
        assert [a.status_code for a in answers] == [200, 200]
        for day in days:
            kept = await calendar.get_day(day=date.fromisoformat(day))
            assert (kept.is_working_day, kept.name) == (False, "春节"), day
        days_in_year = (date(year + 1, 1, 1) - date(year, 1, 1)).days
        assert await CalendarDay.filter(day__year=year).count() == days_in_year


async def test_an_admin_declares_a_new_years_holiday(
    client: httpx.AsyncClient, world: World, restore_calendar: None
) -> None:
    url = f"/admin/v1/calendar/{NO_DATA_YEAR}-02-03"
    body = {"is_working_day": False, "name": "春节"}
    refused = await client.put(url, json=body, headers=world.headers("manager"))
    assert refused.status_code == 403
    made = await client.put(url, json=body, headers=world.headers("admin"))
    assert made.status_code == 200, made.text
    assert made.json() == {
        "day": f"{NO_DATA_YEAR}-02-03",
        "is_working_day": False,
        "name": "春节",
        "source": "admin admin",
    }
    counted = await calendar.add_working_days(start=date(2031, 1, 31), n=1)
    assert counted.day == date(2031, 2, 4)
    read = await client.get(url, headers=world.headers("manager"))
    assert read.json()["name"] == "春节"
    listed = await client.get(
        "/admin/v1/calendar",
        params={"date_from": "2026-09-30", "date_to": "2026-10-10"},
        headers=world.headers("manager"),
    )
    days = {d["day"]: d["is_working_day"] for d in listed.json()}
    assert (days["2026-10-01"], days["2026-10-10"], len(days)) == (False, True, 11)
    # A year is 366 days at most, as the answer says; a control character is refused, named.
    too_long = await client.get(
        "/admin/v1/calendar",
        params={"date_from": "2024-01-01", "date_to": "2025-01-01"},
        headers=world.headers("manager"),
    )
    assert (too_long.status_code, too_long.json()["field"]) == (422, "date_to")
    # With date_to left to its default (today), the field sent is the one to change.
    from_only = await client.get(
        "/admin/v1/calendar", params={"date_from": "2024-01-01"}, headers=world.headers("manager")
    )
    assert (from_only.status_code, from_only.json()["field"]) == (422, "date_from")
    nul = await client.put(url, json={**body, "name": "春\u0000节"}, headers=world.headers("admin"))
    assert (nul.status_code, nul.json()["errors"][0]["field"]) == (422, "name"), nul.text
    absurd = await client.post(
        "/admin/v1/calendar/load", params={"year": 10**12}, headers=world.headers("admin")
    )
    assert absurd.status_code == 422
    assert absurd.json()["errors"][0]["field"] == "year"


async def test_load_from_the_library_and_refuse_years_it_does_not_know(
    orm: list[str], restore_calendar: None
) -> None:
    await calendar.set_day(
        day=date(2026, 2, 17), is_working_day=True, name=None, source="a mistake", reason="x"
    )
    # The load would change a day already past (the one set by hand): not without a reason.
    with pytest.raises(ValidationFailed) as unexplained:
        await calendar.load_from_library(year=2026, timezone="Asia/Shanghai")
    assert unexplained.value.field == "reason"
    assert (await calendar.get_day(day=date(2026, 2, 17))).is_working_day is True
    loaded = await calendar.load_from_library(
        year=2026, reason="back to the State Council's", timezone="Asia/Shanghai"
    )
    assert (loaded["years"], loaded["days"]) == ([2026], 365)
    assert (await calendar.get_day(day=date(2026, 2, 17))).is_working_day is False
    with pytest.raises(ValidationFailed) as refused:
        await calendar.load_from_library(year=NO_DATA_YEAR)
    assert refused.value.field == "year"


def test_the_pinned_edition_agrees_with_the_installed_library() -> None:
    """A newer chinesecalendar that changes a pinned year needs a new data migration."""
    from chinese_calendar import constants

    pinned = read_data_file("wastetrack.calendar", calendar.PINNED_FILE)
    years = set(pinned["years"])
    library = {
        day.isoformat(): (working, str(getattr(name, "value", name)))
        for days, working in ((constants.holidays, False), (constants.workdays, True))
        for day, name in days.items()
        if day.year in years
    }
    assert {i["day"]: (i["working"], i["name"]) for i in pinned["items"]} == library
    assert pinned["licence"].startswith("MIT")


async def test_a_calendar_change_is_audited_and_a_past_day_needs_a_reason(
    client: httpx.AsyncClient, world: World, restore_calendar: None
) -> None:
    """A day moves every deadline counted over it (and clears overdue alerts): each change is
    in the audit log, before and after, for the administrator's region to read; a day already
    past needs a reason; a load from the library says which days it changed."""
    past = (datetime.now(UTC) - timedelta(days=40)).date()
    url = f"/admin/v1/calendar/{past.isoformat()}"
    body = {"is_working_day": False, "name": "停工"}
    refused = await client.put(url, json=body, headers=world.headers("admin"))
    assert (refused.status_code, refused.json()["field"]) == (422, "reason")
    made = await client.put(
        url, json={**body, "reason": "市政府通知 补记"}, headers=world.headers("admin")
    )
    assert made.status_code == 200, made.text
    entries = await client.get(
        "/m/v1/audit", params={"subject_type": "calendar"}, headers=world.headers("manager")
    )
    assert entries.status_code == 200, entries.text
    (entry,) = [e for e in entries.json()["entries"] if e["action"] == "calendar.day_set"]
    assert entry["after"]["reason"] == "市政府通知 补记"
    assert (entry["before"]["name"], entry["after"]["name"]) != (None, None)
    assert entry["after"]["is_working_day"] is False
    year = {"year": past.year}
    for reason in ({}, {"reason": "x\x01y"}, {"reason": "\x00"}):  # none, or one with a control
        refused = await client.post(
            "/admin/v1/calendar/load", params={**year, **reason}, headers=world.headers("admin")
        )
        assert (refused.status_code, refused.json()["field"]) == (422, "reason"), refused.text
    assert (await calendar.get_day(day=past)).name == "停工"  # nothing loaded
    loaded = await client.post(
        "/admin/v1/calendar/load",
        params={**year, "reason": "恢复国务院办公厅通知"},
        headers=world.headers("admin"),
    )
    assert loaded.status_code == 200, loaded.text
    entries = await client.get(
        "/m/v1/audit", params={"subject_type": "calendar"}, headers=world.headers("admin")
    )
    (load,) = [e for e in entries.json()["entries"] if e["action"] == "calendar.loaded"]
    assert past.isoformat() in [c["day"] for c in load["after"]["changed"]]
    assert load["after"]["reason"] == "恢复国务院办公厅通知"


async def test_a_load_turning_past_days_the_table_lacked_needs_a_reason_and_lists_them(
    client: httpx.AsyncClient,
    world: World,
    restore_calendar: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/metrics.md §1: a load changing a day already past needs a reason and lists the
    days it changed. A past day the table lacked (a year not entered: counted Monday to
    Friday) turned into a holiday by a load was no change to either check, though it moved
    every deadline counted over it (dates review). 2003 stands in for such a year, as 2027
    will be once the installed library knows it before the table does."""
    from chinese_calendar import constants

    national_day = date(2003, 10, 1)  # a Wednesday, before the pinned edition's years
    monkeypatch.setitem(constants.holidays, national_day, "National Day")
    assert not await CalendarDay.filter(day=national_day).exists()
    due = await calendar.add_working_days(start=date(2003, 9, 30), n=1)
    assert due.day == national_day  # counted a working day
    load = "/admin/v1/calendar/load"
    refused = await client.post(load, params={"year": 2003}, headers=world.headers("admin"))
    assert (refused.status_code, refused.json()["field"]) == (422, "reason"), refused.text
    assert not await CalendarDay.filter(day=national_day).exists()  # nothing loaded
    loaded = await client.post(
        load, params={"year": 2003, "reason": "补录 2003 年"}, headers=world.headers("admin")
    )
    assert loaded.status_code == 200, loaded.text
    assert (await calendar.get_day(day=national_day)).is_working_day is False
    entries = await client.get(
        "/m/v1/audit", params={"subject_type": "calendar"}, headers=world.headers("admin")
    )
    (entry,) = [e for e in entries.json()["entries"] if e["action"] == "calendar.loaded"]
    changed = {c["day"]: c for c in entry["after"]["changed"]}
    assert changed[national_day.isoformat()]["was"] == [True, None, calendar.WEEKDAY_RULE]
    assert changed[national_day.isoformat()]["now"] == [False, "National Day"]
