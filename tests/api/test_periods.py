"""Every route with a period takes it from one dependency: reversed and over-long periods are
refused naming date_to (date_from when it was sent alone), an omitted one is the city's current
year to date, and the response says which period it used (the X-Period header)."""

from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI

from mobile_api.deps import DateFrom, OpenFrom
from tests.factories import CITY_ZONE, World
from wastetrack.core import cityday

ROUTES = [
    "/m/v1/metrics/sorting",
    "/m/v1/metrics/ports",
    "/m/v1/metrics/sea-areas",
    "/m/v1/metrics/pesticide",
    "/m/v1/metrics/utilization",
    "/m/v1/metrics/mass-balance",
    "/m/v1/pesticide/ledger.csv",
    "/m/v1/pesticide/ledger.xlsx",
    "/admin/v1/calendar",
]
COVERAGE = "/m/v1/metrics/medical-coverage"  # without a period: the last N days


def city_today() -> date:
    """The city's day when a test runs, not when the suite was collected: a run may cross the
    city's midnight (16:00 UTC) between the two."""
    return cityday.today(CITY_ZONE)


def test_every_period_comes_from_the_shared_dependency(app: FastAPI) -> None:
    shared = {
        DateFrom.__metadata__[0].description,
        OpenFrom.__metadata__[0].description,
    }
    with_period = {
        path: parameter["description"]
        for path, item in app.openapi()["paths"].items()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "date_from"
    }
    templates = {path.replace("ledger.csv", "ledger.{extension}") for path in ROUTES}
    assert set(with_period) >= templates - {"/m/v1/pesticide/ledger.xlsx"} | {COVERAGE}
    assert {path for path, text in with_period.items() if text not in shared} == set()


REVERSED = {"date_from": "2026-03-01", "date_to": "2026-02-28"}
OVER_FIVE_YEARS = {"date_from": "2020-01-01", "date_to": "2025-01-01"}
# Sent alone, date_from is the field to change: the end is today, its default. The years are
# counted from the city's year when the test runs.
FUTURE_START = {"date_from": "{next_year}-01-01"}
LONG_AGO = {"date_from": "{six_years_ago}-01-01"}


@pytest.mark.parametrize(
    ("path", "period", "field"),
    [
        (path, period, field)
        for path in ROUTES
        for period, field in (
            (REVERSED, "date_to"),
            (OVER_FIVE_YEARS, "date_to"),
            (FUTURE_START, "date_from"),
            (LONG_AGO, "date_from"),
        )
    ]
    + [(COVERAGE, REVERSED, "date_to"), (COVERAGE, OVER_FIVE_YEARS, "date_to")],
)
async def test_a_bad_period_is_refused_naming_the_field_sent(
    client: httpx.AsyncClient, world: World, path: str, period: dict, field: str
) -> None:
    year = city_today().year
    sent = {
        key: value.format(next_year=year + 1, six_years_ago=year - 6)
        for key, value in period.items()
    }
    response = await client.get(path, params=sent, headers=world.headers("manager"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


@pytest.mark.parametrize("path", ROUTES)
async def test_an_omitted_period_is_this_year_to_date_and_said(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    today = city_today()
    response = await client.get(path, headers=world.headers("manager"))
    assert response.status_code == 200, response.text
    assert response.headers["x-period"] == f"{today.year}-01-01/{today.isoformat()}"


async def test_medical_coverage_says_its_period_the_last_days_or_the_one_given(
    client: httpx.AsyncClient, world: World
) -> None:
    """Its omitted period is the last N days, not the year: the answer and its file of the
    institutions missed both say which days they counted."""
    headers = world.headers("manager")
    today = city_today()
    week = f"{(today - timedelta(days=6)).isoformat()}/{today.isoformat()}"
    for format in ("json", "csv"):
        last = await client.get(COVERAGE, params={"days": 7, "format": format}, headers=headers)
        assert last.status_code == 200, last.text
        assert last.headers["x-period"] == week
        if format == "json":
            assert (last.json()["date_from"], last.json()["days"]) == (week[:10], 7)
        given = await client.get(
            COVERAGE,
            params={"date_from": "2025-02-01", "date_to": "2025-02-28", "format": format},
            headers=headers,
        )
        assert given.headers["x-period"] == "2025-02-01/2025-02-28"
    # One end alone is no window of N days: the refusal names the end that is missing.
    for given_end, missing in (("date_from", "date_to"), ("date_to", "date_from")):
        half = await client.get(COVERAGE, params={given_end: "2025-02-01"}, headers=headers)
        assert (half.status_code, half.json()["field"]) == (422, missing), half.text


async def test_ledger_without_dates_names_the_year_to_date_in_its_file(
    client: httpx.AsyncClient, world: World
) -> None:
    today = city_today()
    response = await client.get("/m/v1/pesticide/ledger.csv", headers=world.headers("manager"))
    assert response.status_code == 200
    expected = f'filename="pesticide-ledger-{today.year}-01-01-{today.isoformat()}.csv"'
    assert expected in response.headers["content-disposition"]


async def test_one_end_given_fills_the_other_within_its_year(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.headers("manager")
    only_end = await client.get(
        "/m/v1/metrics/utilization", params={"date_to": "2025-06-30"}, headers=headers
    )
    assert only_end.headers["x-period"] == "2025-01-01/2025-06-30"
    only_start = await client.get(
        "/m/v1/metrics/utilization", params={"date_from": "2024-05-01"}, headers=headers
    )
    assert only_start.headers["x-period"] == f"2024-05-01/{city_today().isoformat()}"
    exported = await client.get(
        "/m/v1/metrics/utilization",
        params={"date_from": "2024-05-01", "date_to": "2024-05-31", "format": "csv"},
        headers=headers,
    )
    assert exported.headers["x-period"] == "2024-05-01/2024-05-31"


async def test_five_years_less_a_day_is_accepted(client: httpx.AsyncClient, world: World) -> None:
    last = date(2025, 12, 31)
    response = await client.get(
        "/m/v1/metrics/mass-balance",
        params={"date_from": "2021-01-01", "date_to": last.isoformat()},
        headers=world.headers("manager"),
    )
    assert response.status_code == 200, response.text
