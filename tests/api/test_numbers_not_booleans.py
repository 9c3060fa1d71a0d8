"""JSON's true and false are no numbers: pydantic's lax reading takes them as 1 and 0, so a
return of `"count": true` credited a farmer for a drum no one returned, and
`"to_organization_id": true` named organization 1. Every number a request or a command takes
refuses them, naming the field (`core.commands.NoBoolean`)."""

import importlib
import pkgutil
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError

import wastetrack
from tests.api.test_input_times import _routes as every_route
from tests.factories import World
from tests.household.test_sorting import pickup, point_url
from tests.pesticide.test_take_back import PHONE, a_return, a_sale, points, post
from wastetrack.core.commands import Command, NoBoolean, OnlyBoolean, OnlyWrittenBoolean
from wastetrack.household.models import Pickup
from wastetrack.pesticide.models import PackageSale, PackagingReturn
from wastetrack.ports.commands import CleanUpCommand

__all__ = ["point_url", "points"]


def _types(annotation: Any) -> Iterator[Any]:
    """The types an annotation is made of, through Annotated, unions and containers."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        yield from _types(args[0])
    elif args:
        for arg in args:
            yield from _types(arg)
    else:
        yield annotation


def _models(annotation: Any, seen: set[type[Command]]) -> None:
    for kind in _types(annotation):
        # Our own contracts (a form's fields, which FastAPI models, are text: "true" is no number)
        if isinstance(kind, type) and issubclass(kind, Command) and kind not in seen:
            seen.add(kind)
            for field in kind.model_fields.values():
                _models(field.annotation, seen)


def _taken_models(app: FastAPI) -> set[type[Command]]:
    """Every model a request body or a domain command is read into."""
    seen: set[type[Command]] = set()

    def walk(routes: list) -> None:  # as tests/security/test_authorization_matrix.py walks them
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            found = list(contexts()) if contexts is not None else [route]
            for context in found:
                body = getattr(context, "body_field", None)
                if body is not None:
                    _models(body.field_info.annotation, seen)
            if contexts is None and not isinstance(route, APIRoute) and hasattr(route, "routes"):
                walk(route.routes)

    walk(list(app.routes))
    for module in pkgutil.walk_packages(wastetrack.__path__, "wastetrack."):
        if module.name.endswith(".commands"):
            loaded = importlib.import_module(module.name)
            for value in vars(loaded).values():
                if isinstance(value, type) and issubclass(value, Command):
                    _models(value, seen)
    return seen


def _unguarded(
    annotation: Any, guard: Any, kinds: set[Any], metadata: tuple[Any, ...] = ()
) -> Iterator[Any]:
    """The types of `kinds` an annotation holds at any depth (a map's values, a list's items,
    a union's members) that no `guard` guards."""
    if guard in metadata and set(_types(annotation)) <= kinds | {type(None)}:
        return
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        yield from _unguarded(args[0], guard, kinds, annotation.__metadata__)
    elif args:
        for arg in args:
            yield from _unguarded(arg, guard, kinds)
    elif annotation in kinds:
        yield annotation


def _bare_numbers(annotation: Any, metadata: tuple[Any, ...] = ()) -> Iterator[Any]:
    return _unguarded(annotation, NoBoolean, {int, float}, metadata)


def test_every_number_a_request_takes_is_guarded(app: FastAPI) -> None:
    """Structurally: each int or float, at any depth, carries `NoBoolean` (a clean-up's
    `item_counts`, a map of counts, took `true` as 1 past a check of the top level alone)."""
    bare = [
        f"{model.__module__}.{model.__name__}.{field.alias or name}"
        for model in _taken_models(app)
        for name, field in model.model_fields.items()
        if any(_bare_numbers(field.annotation, tuple(field.metadata)))
    ]
    assert sorted(bare) == []


def test_every_number_a_request_takes_refuses_true_and_false(app: FastAPI) -> None:
    """Behaviourally, for each field that is a number itself: `true` is refused naming it."""
    taken = []
    for model in sorted(_taken_models(app), key=lambda m: f"{m.__module__}.{m.__name__}"):
        for name, field in model.model_fields.items():
            kinds = set(_types(field.annotation))
            if not kinds & {int, float} or not kinds <= {int, float, type(None)}:
                continue
            key = field.alias or name
            try:
                model.model_validate({key: True})
            except ValidationError as refused:
                if any(e["loc"] == (key,) and e["type"] == "number_type" for e in refused.errors()):
                    continue
            taken.append(f"{model.__module__}.{model.__name__}.{key}")
    assert taken == [], "\n".join(taken)


def _bare_booleans(annotation: Any, metadata: tuple[Any, ...] = ()) -> Iterator[Any]:
    return _unguarded(annotation, OnlyBoolean, {bool}, metadata)


def test_every_boolean_a_request_takes_is_true_or_false_only(app: FastAPI) -> None:
    """The mirror of numbers: pydantic read `1`, `0`, `"yes"`, `"off"` as true and false, so
    `"passed": 1` counted a sorting check passed (household review). Structurally each bool
    carries `OnlyBoolean`; behaviourally `1` and `"yes"` are refused naming the field."""
    bare = [
        f"{model.__module__}.{model.__name__}.{field.alias or name}"
        for model in _taken_models(app)
        for name, field in model.model_fields.items()
        if any(_bare_booleans(field.annotation, tuple(field.metadata)))
    ]
    assert sorted(bare) == []
    taken = []
    for model in sorted(_taken_models(app), key=lambda m: f"{m.__module__}.{m.__name__}"):
        for name, field in model.model_fields.items():
            kinds = set(_types(field.annotation))
            if bool not in kinds or not kinds <= {bool, type(None)}:
                continue
            key = field.alias or name
            for sent in (1, 0, "yes", "off"):
                try:
                    model.model_validate({key: sent})
                except ValidationError as refused:
                    if any(
                        e["loc"] == (key,) and e["type"] == "bool_type" for e in refused.errors()
                    ):
                        continue
                taken.append(f"{model.__module__}.{model.__name__}.{key}={sent!r}")
    assert taken == [], "\n".join(taken)


def test_every_yes_or_no_a_query_takes_is_true_or_false_only(app: FastAPI) -> None:
    """Structurally: a query string's bool carries `OnlyWrittenBoolean` (FastAPI read `yes`,
    `off` and `1`, so `open_only=off` listed every alert: diff review)."""
    bare = []
    for route in every_route(app):
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            pending.extend(dependant.dependencies)
            for param in dependant.query_params:
                info = param.field_info
                if bool in set(_types(info.annotation)) and OnlyWrittenBoolean not in info.metadata:
                    bare.append(f"{route.path} {param.name}")
    assert sorted(bare) == []
    assert any(r.path == "/m/v1/alerts" for r in every_route(app))  # the walk reaches them


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/m/v1/manifests", "discrepant"),
        ("/m/v1/alerts", "open_only"),
        ("/m/v1/port-calls", "open_only"),
        ("/m/v1/vehicles", "include_retired"),
    ],
)
async def test_a_query_yes_or_no_is_true_or_false_only(
    client: httpx.AsyncClient, world: World, path: str, name: str
) -> None:
    who = "carrier" if path == "/m/v1/vehicles" else "manager"
    for sent in ("yes", "off", "1", "True"):
        answer = await client.get(path, params={name: sent}, headers=world.headers(who))
        assert (answer.status_code, answer.json()["field"]) == (422, name), sent
        assert answer.json()["errors"][0]["rule"] == "bool_type"
    for sent in ("true", "false"):
        answer = await client.get(path, params={name: sent}, headers=world.headers(who))
        assert answer.status_code == 200, (sent, answer.text)


async def test_a_sorting_check_passed_as_1_or_yes_is_refused_naming_it(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """Stored as passed, it was the numerator of sorting accuracy; nothing is written."""
    for sent in (1, "yes", 0, "no"):
        body = pickup(point_url, quality={"passed": sent, "contamination_share": "0.1"})
        refused = await client.post("/m/v1/pickups", json=body, headers=world.headers("collector"))
        assert (refused.status_code, refused.json()["field"]) == (422, "quality.passed"), sent
    assert await Pickup.all().count() == 0


def test_a_clean_up_item_count_of_true_is_refused_naming_it() -> None:
    """A map of counts: `{"bottles": true}` was stored as 1 bottle."""
    with pytest.raises(ValidationError) as refused:
        CleanUpCommand.model_validate({"item_counts": {"bottles": True}})
    assert any(
        e["loc"] == ("item_counts", "bottles") and e["type"] == "number_type"
        for e in refused.value.errors()
    )


async def test_a_count_of_true_is_refused_naming_it_and_earns_no_points(
    client: httpx.AsyncClient, points: World
) -> None:
    """Read as 1, it recorded a drum no one returned and credited the farmer 5 points; a sale
    of `true` packages counted one sold."""
    body = a_return(lines=[{"material": "agri.drum", "count": True}])
    refused = await post(client, points, body)
    assert (refused.status_code, refused.json()["field"]) == (422, "lines[0].count")
    assert refused.headers["content-type"] == "application/problem+json"
    sale = await post(client, points, {**a_sale(), "count": True}, path="/m/v1/pesticide/sales")
    assert (sale.status_code, sale.json()["field"]) == (422, "count")
    assert await PackagingReturn.all().count() == 0
    assert await PackageSale.all().count() == 0
    credits = await client.post("/p/v1/credits", json={"farmer_phone": PHONE})
    assert credits.json()["points"] == "0.0"
