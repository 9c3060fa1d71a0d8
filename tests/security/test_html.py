"""The dashboard's HTML: everything escaped, chart data as JSON, security headers on every page,
Secure cookies behind HTTPS."""

import re

import httpx
import pytest

from mobile_api.app import create_app
from tests.factories import PASSWORD, World
from wastetrack.core.settings import Settings
from wastetrack.registry import service as registry
from wastetrack.registry.models import RegionLevel

PAYLOAD = "</script><script>alert(1)</script>"


async def _dashboard_login(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await client.post(
        "/dashboard/login",
        data={"username": "manager", "password": PASSWORD},
        headers=headers,
        follow_redirects=False,
    )


async def test_a_region_name_cannot_inject_script_into_the_dashboard(
    client: httpx.AsyncClient, world: World
) -> None:
    await registry.create_region(
        code="371082199", name=PAYLOAD, level=RegionLevel.town, parent_id=world.regions["city"].id
    )
    assert (await _dashboard_login(client)).status_code == 303
    page = await client.get("/dashboard")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "alert(1)" in page.text  # it is shown, as data


async def test_every_html_page_carries_the_security_headers(
    client: httpx.AsyncClient, world: World
) -> None:
    await _dashboard_login(client)
    for path in ("/dashboard/login", "/dashboard", "/q/NOSUCHCODE"):
        page = await client.get(path, headers={"Accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html"), path
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, path
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["x-frame-options"] == "DENY"
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce is not None
        for script in re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", page.text):
            assert f'nonce="{nonce.group(1)}"' in script, (path, script)


async def test_inline_scripts_get_a_fresh_nonce_per_response(
    client: httpx.AsyncClient, world: World
) -> None:
    first = (await client.get("/dashboard/login")).headers["content-security-policy"]
    second = (await client.get("/dashboard/login")).headers["content-security-policy"]
    assert first != second


async def test_the_session_cookie_is_secure_behind_an_https_proxy(
    settings: Settings, world: World
) -> None:
    app = create_app(settings.model_copy(update={"trust_proxy": True}), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        plain = await _dashboard_login(client)
        proxied = await _dashboard_login(client, **{"X-Forwarded-Proto": "https"})
    assert "secure" not in plain.headers["set-cookie"].lower()
    assert "secure" in proxied.headers["set-cookie"].lower()


@pytest.mark.parametrize("trusted", [False])
async def test_an_untrusted_forwarded_proto_changes_nothing(
    client: httpx.AsyncClient, world: World, trusted: bool
) -> None:
    response = await _dashboard_login(client, **{"X-Forwarded-Proto": "https"})
    assert "secure" not in response.headers["set-cookie"].lower()


async def test_the_session_cookie_is_secure_when_served_over_https(app, world: World) -> None:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await _dashboard_login(client)
    assert "secure" in response.headers["set-cookie"].lower()
