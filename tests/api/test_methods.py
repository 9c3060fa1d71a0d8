"""Methods as HTTP has them (RFC 9110): HEAD wherever GET is, and a 405 whose `Allow` names
every method its path takes - each method is a route of its own, and Starlette names the first
route's alone."""

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import World


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
