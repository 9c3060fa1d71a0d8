"""Methods as HTTP has them (RFC 9110): HEAD wherever GET is, and a 405 whose `Allow` names
every method its path takes - each method is a route of its own, and Starlette names the first
route's alone."""

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import World
from wastetrack.core import observability


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("DELETE", "/m/v1/batches", "/m/v1/batches"),
        ("PUT", "/m/v1/webhooks/1", "/m/v1/webhooks/{webhook_id}"),
        ("POST", "/admin/v1/calendar/2026-10-01", "/admin/v1/calendar/{day}"),
        ("PUT", "/m/v1/vehicles/LU-K12345", "/m/v1/vehicles/{plate}"),
    ],
)
async def test_a_405_names_every_method_the_path_takes(
    app: FastAPI, client: httpx.AsyncClient, world: World, method: str, path: str, template: str
) -> None:
    declared = {m.upper() for m in app.openapi()["paths"][template]}
    if "GET" in declared:
        declared.add("HEAD")
    response = await client.request(method, path, headers=world.headers("admin"))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers["allow"].split(", ")) == declared, response.headers["allow"]


async def test_head_is_answered_as_get_without_its_body(
    client: httpx.AsyncClient, world: World
) -> None:
    for path, who in (("/m/v1/batches", "clinic"), ("/dashboard", None), ("/healthz", None)):
        headers = world.headers(who) if who else {}
        cookies = {"wt_session": world.tokens["manager"]} if path == "/dashboard" else {}
        got = await client.get(path, headers=headers, cookies=cookies)
        head = await client.head(path, headers=headers, cookies=cookies)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"], path
    refused = await client.head("/m/v1/batches")  # unauthenticated: as GET is
    assert refused.status_code == 401 and refused.content == b""


async def test_a_405_under_a_mount_names_its_methods(client: httpx.AsyncClient) -> None:
    """The static files are a mount: its prefix is moved into root_path before the 405."""
    assert (await client.get("/static/dashboard-trace.js")).status_code == 200
    refused = await client.post("/static/dashboard-trace.js")
    assert refused.status_code == 405
    assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}, refused.headers["allow"]


async def test_a_head_request_is_timed_under_its_route(
    client: httpx.AsyncClient, world: World
) -> None:
    """/metrics times requests by route template (docs/operations.md): a HEAD under its GET
    route's, not as unmatched."""

    def count(route: str) -> float:
        """HEADs timed under the route, whatever their other labels (the authorization matrix,
        run before, asks HEAD of every path as several roles)."""
        return sum(
            sample.value
            for metric in observability.REQUEST_DURATION.collect()
            for sample in metric.samples
            if sample.name.endswith("_count")
            and (sample.labels["method"], sample.labels["route"]) == ("HEAD", route)
        )

    before = count("/m/v1/batches")
    assert (await client.head("/m/v1/batches", headers=world.headers("clinic"))).status_code == 200
    assert count("/m/v1/batches") == before + 1
