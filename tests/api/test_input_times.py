"""Every date and time a client may send is bounded, so that converting it to the city's day or
storing it cannot overflow: an extreme value is a 422 naming the field, never a 500."""

import typing
from datetime import date, datetime

import annotated_types
import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, NaiveDatetime
from pydantic.fields import FieldInfo

from tests.factories import World, medical_bag

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
    return lower and upper


def _unbounded(annotation: object, bounded: bool, where: str, seen: set[type]) -> list[str]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        bounded = bounded or _bounded(metadata)
        return _unbounded(base, bounded, where, seen)
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
    return []


def _field(field: FieldInfo, where: str, seen: set[type]) -> list[str]:
    bounded = _bounded(field.metadata)
    return _unbounded(field.annotation, bounded, where, seen)


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


def test_every_date_and_time_a_route_accepts_is_bounded(app: FastAPI) -> None:
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
