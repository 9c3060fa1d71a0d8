"""Every date and time a client may send is bounded, so that converting it to the city's day or
storing it cannot overflow: an extreme value is a 422 naming the field, never a 500. A day is
sent as its date alone: a time and an offset would name another zone's day."""

import typing
from datetime import date, datetime, timedelta, timezone

import annotated_types
import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, NaiveDatetime
from pydantic.fields import FieldInfo

from tests.factories import NOW, World, medical_bag
from wastetrack.batches.models import Batch
from wastetrack.core.commands import Day, Moment, MomentRange

_TIMES = (datetime, date, AwareDatetime, NaiveDatetime)
_LOWER = (annotated_types.Ge, annotated_types.Gt)
_UPPER = (annotated_types.Le, annotated_types.Lt)


def _bounded(metadata: list[object]) -> bool:
    """Bounded both ways (a bound on one side alone still overflows on the other)."""
    lower = upper = False
    for item in metadata:
        if isinstance(item, annotated_types.Interval):
            lower = lower or item.ge is not None or item.gt is not None
            upper = upper or item.le is not None or item.lt is not None
        lower = lower or isinstance(item, _LOWER)
        upper = upper or isinstance(item, _UPPER)
    return (lower and upper) or DAY_RANGE in metadata or MomentRange in metadata


# How `Day` reads a day: its date alone, from 1900 to 2199.
(DATE_ALONE,) = [m for m in typing.get_args(Day)[1:] if isinstance(m, BeforeValidator)]
(DAY_RANGE,) = [m for m in typing.get_args(Day)[1:] if isinstance(m, AfterValidator)]
# How `Moment` reads a time: written, not a number.
(WRITTEN,) = [m for m in typing.get_args(Moment)[1:] if isinstance(m, BeforeValidator)]


def _unbounded(
    annotation: object,
    bounded: bool,
    where: str,
    seen: set[type],
    alone: bool = False,
    written: bool = False,
) -> list[str]:
    """Where a time is accepted without bounds or without `Moment`'s reading of it, or a day
    without `Day`'s."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        bounded = bounded or _bounded(metadata)
        alone = alone or DATE_ALONE in metadata
        return _unbounded(base, bounded, where, seen, alone, written or WRITTEN in metadata)
    if origin is not None:  # a union, a list, a dict …: each of its types
        return [
            found
            for argument in typing.get_args(annotation)
            for found in _unbounded(argument, bounded, where, seen)
        ]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        return [
            found
            for name, field in annotation.model_fields.items()
            for found in _field(field, f"{where}.{name}", seen)
        ]
    if annotation in _TIMES and not bounded:
        return [where]
    if annotation in (datetime, AwareDatetime, NaiveDatetime) and not written:
        return [f"{where} (a time not read as Moment reads it)"]
    if annotation is date and not alone:
        return [f"{where} (a day not read as Day reads it)"]
    return []


def _field(field: FieldInfo, where: str, seen: set[type]) -> list[str]:
    bounded = _bounded(field.metadata)
    alone, written = DATE_ALONE in field.metadata, WRITTEN in field.metadata
    return _unbounded(field.annotation, bounded, where, seen, alone, written)


def _routes(app: FastAPI) -> list[APIRoute]:
    found: list[APIRoute] = []

    def walk(routes: list) -> None:  # type: ignore[type-arg]
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            router = getattr(route, "original_router", None)
            if router is not None:
                walk(router.routes)

    walk(list(app.router.routes))
    return found


def test_every_date_and_time_a_route_accepts_is_bounded_and_every_day_a_day(
    app: FastAPI,
) -> None:
    unbounded: list[str] = []
    for route in _routes(app):
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            pending.extend(dependant.dependencies)
            for param in (
                *dependant.path_params,
                *dependant.query_params,
                *dependant.header_params,
                *dependant.cookie_params,
                *dependant.body_params,
            ):
                where = f"{sorted(route.methods)} {route.path} {param.name}"
                unbounded += _field(param.field_info, where, set())
    assert sorted(set(unbounded)) == [], "\n".join(sorted(set(unbounded)))


async def test_an_extreme_device_time_is_a_named_422_alone_or_rejected_alone_in_a_sync(
    client: httpx.AsyncClient, world: World
) -> None:
    # 9999-12-31T23:00-10:00 is in year 10000 in the city; 0001-01-01T00:00+14:00 before year 1.
    for extreme in ("9999-12-31T23:00:00-10:00", "0001-01-01T00:00:00+14:00"):
        bag = medical_bag(device_time=extreme)
        alone = await client.post("/m/v1/events", headers=world.headers("clinic"), json=bag)
        assert alone.status_code == 422, alone.text
        assert alone.headers["content-type"] == "application/problem+json"
        assert alone.json()["field"] == "device_time"
        synced = await client.post(
            "/m/v1/sync",
            headers=world.headers("clinic"),
            json={"events": [medical_bag(device_time=extreme), medical_bag()]},
        )
        assert synced.status_code == 200, synced.text
        results = synced.json()["results"]
        assert [r["status"] for r in results] == ["rejected", "applied"]
        assert results[0]["error"]["field"] == "device_time"


async def test_a_time_as_a_number_or_in_an_offset_no_clock_keeps_is_a_named_422(
    client: httpx.AsyncClient, world: World
) -> None:
    """A number was read as Unix seconds (or, past 2e10, milliseconds: a phone's count in the
    other unit another instant), and `+23:59`, which ISO 8601 allows and no clock keeps, put
    the instant a day from what the phone showed. Alone or in a sync, nothing written; the
    widest offsets clocks keep are taken."""
    for sent, rule in (
        (1790812800, "moment_format"),
        ("1790812800", "moment_format"),
        # A number in any spelling pydantic reads (diff review: only digits were refused).
        ("1790812800.0e0", "moment_format"),
        ("1.7908128e12", "moment_format"),
        (".5", "moment_format"),
        (1790812800000.0, "moment_format"),
        ("2026-10-01T08:00:00+23:59", "moment_offset"),
        ("2026-10-01T08:00:00-14:01", "moment_offset"),
    ):
        alone = await client.post(
            "/m/v1/events", headers=world.headers("clinic"), json=medical_bag(device_time=sent)
        )
        assert (alone.status_code, alone.json()["field"]) == (422, "device_time"), sent
        assert alone.json()["errors"][0]["rule"] == rule
        synced = await client.post(
            "/m/v1/sync",
            headers=world.headers("clinic"),
            json={"events": [medical_bag(device_time=sent)]},
        )
        assert synced.json()["results"][0]["error"]["field"] == "device_time", sent
    assert await Batch.all().count() == 0
    for widest in ("+14:00", "-12:00"):
        at = (NOW - timedelta(hours=1)).astimezone(timezone(_offset(widest))).isoformat()
        taken = await client.post(
            "/m/v1/events", headers=world.headers("clinic"), json=medical_bag(device_time=at)
        )
        assert taken.status_code == 201, taken.text


def _offset(written: str) -> timedelta:
    hours, minutes = written[1:].split(":")
    sign = -1 if written[0] == "-" else 1
    return sign * timedelta(hours=int(hours), minutes=int(minutes))


async def test_a_time_out_of_its_years_is_refused_in_its_own_words(
    client: httpx.AsyncClient, world: World
) -> None:
    """`Moment`'s bound read pydantic's `datetime.datetime(1900, 1, 1, 0, 0, tzinfo=…)` and
    refused a time written in 1900 east of Greenwich (dates review): the years are the ones
    written, the rule said in them."""
    for sent in ("1899-12-31T23:00:00+08:00", "2200-01-01T00:00:00-10:00"):
        response = await client.post(
            "/m/v1/events", headers=world.headers("clinic"), json=medical_bag(device_time=sent)
        )
        assert (response.status_code, response.json()["field"]) == (422, "device_time"), sent
        refusal = response.json()["errors"][0]
        assert (refusal["rule"], refusal["detail"]) == (
            "moment_range",
            "a time written in the years 1900 to 2199",
        )
    # Within its years, refused only by the device clock's own rule (2000 and after).
    written = await client.post(
        "/m/v1/events",
        headers=world.headers("clinic"),
        json=medical_bag(device_time="1900-01-01T00:00:00+08:00"),
    )
    assert (written.status_code, written.json()["field"]) == (422, "device_time")
    assert "precedes 2000-01-01" in written.json()["detail"], written.text


async def test_a_period_from_year_one_is_a_named_422(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        "/m/v1/registers/incoming",
        params={"date_from": "0001-01-01", "date_to": "0001-01-31"},
        headers=world.headers("clinic"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "date_from"
    # The rule in the days' own form, not pydantic's `datetime.date(1900, 1, 1)`.
    refusal = response.json()["errors"][0]
    assert (refusal["field"], refusal["rule"], refusal["detail"]) == (
        "date_from",
        "day_range",
        "a day from 1900-01-01 to 2199-12-31",
    )


async def test_a_day_with_a_time_or_as_a_number_is_a_named_422(
    client: httpx.AsyncClient, world: World
) -> None:
    """2026-10-01T00:00:00+14:00 is 30 September in the city: a day with a time and offset was
    once read as the offset's date (National Day). In a path, a query and a body alike."""
    manager = world.headers("manager")
    for moment in ("2026-10-01T00:00:00+14:00", "2026-10-01T00:00:00", "1790812800"):
        in_path = await client.get(f"/admin/v1/calendar/{moment}", headers=manager)
        in_query = await client.get(
            "/admin/v1/calendar",
            params={"date_from": "2026-09-01", "date_to": moment},
            headers=manager,
        )
        in_body = await client.post(
            "/m/v1/indicators/rural_sewage_treatment/values",
            json={"value": "50", "period_end": moment, "source_note": "年报"},
            headers=manager,
        )
        for answer, field in ((in_path, "day"), (in_query, "date_to"), (in_body, "period_end")):
            assert answer.status_code == 422, (moment, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["field"] == field
            assert "YYYY-MM-DD" in answer.json()["detail"]
    plain = await client.get("/admin/v1/calendar/2026-10-01", headers=manager)
    assert (plain.status_code, plain.json()["day"]) == (200, "2026-10-01")
