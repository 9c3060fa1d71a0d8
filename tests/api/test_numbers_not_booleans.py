"""JSON's true and false are no numbers: pydantic's lax reading takes them as 1 and 0, so a
return of `"count": true` credited a farmer for a drum no one returned, and
`"to_organization_id": true` named organization 1. Every number a request or a command takes
refuses them, naming the field (`core.commands.NoBoolean`)."""

import importlib
import pkgutil
import types
import typing
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError

import wastetrack
from tests.factories import World
from tests.pesticide.test_take_back import PHONE, a_return, a_sale, points, post
from wastetrack.core.commands import Command
from wastetrack.pesticide.models import PackageSale, PackagingReturn

__all__ = ["points"]


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


def test_every_number_a_request_takes_refuses_true_and_false(app: FastAPI) -> None:
    taken = []
    for model in sorted(_taken_models(app), key=lambda m: f"{m.__module__}.{m.__name__}"):
        for name, field in model.model_fields.items():
            kinds = set(_types(field.annotation))
            if bool in kinds or not kinds & {int, float}:
                continue
            if typing.get_origin(field.annotation) in (list, tuple, dict, types.UnionType) and (
                not kinds <= {int, float, type(None)}
            ):
                continue
            key = field.alias or name
            try:
                model.model_validate({key: True})
            except ValidationError as refused:
                if any(e["loc"] == (key,) and e["type"] == "number_type" for e in refused.errors()):
                    continue
            taken.append(f"{model.__module__}.{model.__name__}.{key}")
    assert taken == [], "\n".join(taken)


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
    assert credits.json()["points"] == "0"
