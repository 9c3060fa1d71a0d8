"""The service answers only requests naming its own host (docs/security.md, "Only its own
names"): a web page whose owner points its name at this machine (DNS rebinding) reads nothing,
the quick start's published logins included."""

from collections.abc import AsyncIterator

import httpx
import pytest

from mobile_api.app import create_app
from tests.factories import World
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core.settings import Settings, wire_name
from wastetrack.demo.registry import DEMO_USERS, password_of

# A web page the user opens, whose name its owner then points at 127.0.0.1: the browser
# sends the page's own name as Host and lets the page read every answer.
REBOUND = "rebind.attacker.example:8000"


@pytest.fixture
async def quick_start(
    settings: Settings, orm: list[str], world: World
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The README's quick start: `wastetrack demo && wastetrack serve` with no configuration
    (127.0.0.1:8000, no public base URL), its published administrator's login active."""
    plain = settings.model_copy(update={"public_base_url": None})
    assert plain.host == "127.0.0.1" and plain.reached_by_others() is None
    username = DEMO_USERS["admin"][0]
    await auth.create_user(
        username=username,
        password=password_of("admin"),
        role=Role.admin,
        organization_id=world.orgs["bureau"].id,
    )
    app = create_app(plain, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c, {"username": username, "password": password_of("admin")}


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["field"], response.json()["code"]) == ("Host", "host_unknown")
    assert "set-cookie" not in response.headers and "access_token" not in response.text


async def test_a_login_under_a_rebound_name_is_refused(
    quick_start: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """Security review: a page of a rebound name logged in as the demo's administrator and
    read the tokens (200); the service's own address still logs in."""
    client, form = quick_start
    own = await client.post("/m/v1/auth/token", data=form)
    assert own.status_code == 200, own.text
    _refused(await client.post("/m/v1/auth/token", data=form, headers={"Host": REBOUND}))


async def test_a_dashboard_login_under_a_rebound_name_is_refused(
    quick_start: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    """The dashboard's same-origin check compared Origin with the Host the page sent, which a
    rebound page makes equal: it set the session cookie (security review)."""
    client, form = quick_start
    response = await client.post(
        "/dashboard/login",
        data=form,
        headers={"Host": REBOUND, "Sec-Fetch-Site": "same-origin", "Origin": f"http://{REBOUND}"},
        follow_redirects=False,
    )
    _refused(response)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8000",
        "127.0.0.1",
        "localhost:8000",
        "LOCALHOST.",
        "[::1]:8000",
        "192.0.2.10:8000",  # the machine's own address, as another machine on the LAN names it
        "wastetrack.example.org",  # WASTETRACK_PUBLIC_BASE_URL's host
        "Intranet.Example.org:8443",  # WASTETRACK_ALLOWED_HOSTS lists it
        # Names in another script, in the ASCII form browsers send (ops review: refused).
        "荣成环卫.中国".encode("idna").decode("ascii"),
        "荣成环卫.中国".encode("idna").decode("ascii").upper() + ":443",
        "xn--fiq228c.example.org",  # 中文.example.org, listed as written
        # As browsers write them (UTS #46), not Python's IDNA 2003 (`fass.example`): diff review.
        "xn--fa-hia.example",  # faß.example
        "xn--kxa6ajbbmh.example",  # σίσυφος.example
        # Nor IDNA 2008's checks, which browsers skip (diff review): hyphens in the 3rd and 4th
        # places, a symbol's label.
        "rc--hw.example.org",
        "xn--26h.example.org",  # ♻.example.org
        # An nginx upstream's or a container's name, as docs/security.md says to list them.
        "wastetrack_app",
        "wastetrack_api_1:8000",
        "[fe80::1%25eth0]:8000",
    ],
)
async def test_the_service_answers_to_its_own_names_and_any_address(
    settings: Settings, orm: list[str], host: str
) -> None:
    own = settings.model_copy(
        update={
            "public_base_url": "https://wastetrack.example.org",
            "allowed_hosts": "intranet.example.org, 中文.example.org, 荣成环卫.中国,"
            " faß.example, σίσυφος.example, rc--hw.example.org, ♻.example.org,"
            " wastetrack_app, wastetrack_api_1",
        }
    )
    transport = httpx.ASGITransport(app=create_app(own, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        answer = await c.get("/healthz", headers={"Host": host})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "host",
    [
        REBOUND,
        "testserver.attacker.example",
        "localhost.attacker.example",
        "127.0.0.1.attacker.example",
        "0x7f.1",
        "",
        "a b",
        "::",
        # Anything but a host and a port, which no browser sends, is no name of the service's.
        "attacker.example@127.0.0.1",
        "127.0.0.1/attacker",
        "127.0.0.1:port",
    ],
)
async def test_any_other_name_is_refused_before_any_route(
    client: httpx.AsyncClient, host: str
) -> None:
    _refused(await client.get("/healthz", headers={"Host": host}))


async def test_behind_a_trusted_proxy_the_name_it_was_asked_counts_too(
    settings: Settings, orm: list[str]
) -> None:
    """The dashboard takes a trusted proxy's X-Forwarded-Host as its own origin: a rebound name
    the proxy passes on there is refused as in Host."""
    proxied = settings.model_copy(update={"trust_proxy": True})
    transport = httpx.ASGITransport(app=create_app(proxied, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        own = await c.get("/healthz", headers={"X-Forwarded-Host": "testserver"})
        assert own.status_code == 200, own.text
        _refused(await c.get("/healthz", headers={"X-Forwarded-Host": REBOUND}))


# A public address as written, and what Chromium sends in Host for it (`new URL(…).host`).
BROWSERS_SEND = {
    "荣成环卫.中国": "xn--rlrr45axjnnzo.xn--fiqs8s",
    "faß.example": "xn--fa-hia.example",
    "rc--hw.example.org": "rc--hw.example.org",
    "♻.example.org": "xn--26h.example.org",
}


@pytest.mark.parametrize(("written", "sent"), list(BROWSERS_SEND.items()))
async def test_a_public_base_url_in_another_script_is_answered_as_browsers_send_it(
    settings: Settings, orm: list[str], written: str, sent: str
) -> None:
    """A city's public address in its own script prints on every label; a phone opening one
    sends the name's ASCII form in Host, which was refused (ops review), and then a name
    browsers write otherwise than IDNA 2008 (diff reviews)."""
    own = settings.model_copy(update={"public_base_url": f"https://{written}"})
    transport = httpx.ASGITransport(app=create_app(own, manage_database=False))
    async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1") as c:
        answer = await c.get("/healthz", headers={"Host": sent})
    assert answer.status_code == 200, answer.text


def test_a_name_this_python_composes_otherwise_than_browsers_is_refused() -> None:
    """A name holding a character newer than this Python's Unicode (14.0 on 3.11) would be
    composed otherwise than a browser of a newer one writes it (U+113C2 twice is U+113C5 in
    Unicode 16): the service would answer to another name than the one it was given; it is
    refused at start instead (diff review)."""
    assert wire_name("a\U000113c2\U000113c2.example") is None
    with pytest.raises(ValueError, match="allowed_hosts"):
        Settings(allowed_hosts="a\U000113c2\U000113c2.example")
    # An upstream's name with an underscore may be listed (it was refused at start).
    assert Settings(allowed_hosts="wastetrack_app").answers_to("wastetrack_app:8000")


def test_a_listed_name_must_be_a_host() -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        Settings(allowed_hosts="intranet.example.org, not a name")
