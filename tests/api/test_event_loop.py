"""Nothing small leaves the event loop: every endpoint and every dependency of every route is a
coroutine, so none of them costs a hop through the thread pool on each request (FastAPI runs a
plain function there). CPU-heavy steps go off the loop explicitly, with asyncio.to_thread."""

import inspect
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from mobile_api import tables
from tests.factories import World

ROOT = Path(__file__).resolve().parents[2]


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


def test_table_files_are_written_by_one_mechanism() -> None:
    """A CSV or XLSX file is written by `mobile_api.tables.download`, in a thread: the audit
    CSV (up to 100,000 entries) was encoded on the event loop, stalling every request of its
    worker meanwhile (exports review). No other module calls the writers."""
    writers = re.compile(r"\bto_(csv|xlsx)\b")
    callers = {
        str(path.relative_to(ROOT))
        for folder in ("mobile_api", "wastetrack")
        for path in (ROOT / folder).rglob("*.py")
        if writers.search(path.read_text(encoding="utf-8"))
    }
    assert callers == {"mobile_api/tables.py", "wastetrack/core/exports.py"}


async def test_the_audit_file_is_written_off_the_event_loop(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = threading.get_ident()
    seen: list[int] = []
    real = tables.to_csv

    def spy(*args: Any, **kwargs: Any) -> bytes:
        seen.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(tables, "to_csv", spy)
    got = await client.get("/m/v1/audit.csv", headers=world.headers("admin"))
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"] == 'attachment; filename="audit.csv"'
    assert seen and loop not in seen
