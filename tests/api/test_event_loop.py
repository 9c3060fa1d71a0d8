"""Nothing small leaves the event loop: every endpoint and every dependency of every route is a
coroutine, so none of them costs a hop through the thread pool on each request (FastAPI runs a
plain function there). CPU-heavy steps go off the loop explicitly, with asyncio.to_thread."""

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _is_coroutine(call: Any) -> bool:
    if inspect.isclass(call):
        return False  # a class dependency is constructed in the thread pool
    return (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
    )


def _dependants(routes: list[Any]) -> Iterator[tuple[str, Dependant]]:
    """Each route's dependency tree as it is served, however its routers are nested."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                if context.dependant is not None:
                    yield context.path, context.dependant
        elif isinstance(route, APIRoute):
            yield route.path, route.dependant
        elif hasattr(route, "routes"):
            yield from _dependants(route.routes)


def test_every_endpoint_and_dependency_runs_on_the_event_loop(app: FastAPI) -> None:
    dependants = list(_dependants(list(app.routes)))
    assert len(dependants) > 50
    offenders = {
        f"{path}: {getattr(call, '__qualname__', call)}"
        for path, dependant in dependants
        for call in _calls(dependant)
        if not _is_coroutine(call)
    }
    assert not offenders, sorted(offenders)
