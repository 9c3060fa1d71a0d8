"""Subscribing: who may, what is refused (unknown events, bad or private URLs), and that a
subscription is its owner's alone."""

import asyncio
import logging
import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient

from mobile_api.app import create_app
from tests.factories import World
from tests.webhooks.helpers import subscribe
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.audit.models import AuditEntry
from wastetrack.core.settings import Settings
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.models import WebhookSubscription

HOOK = "http://127.0.0.1:9/hooks"


async def test_the_secret_is_shown_once_and_not_kept_in_clear(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await subscribe(client, world, "manager", HOOK, ["batch.event_recorded"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert (created["url"], created["events"], created["active"]) == (
        HOOK,
        ["batch.event_recorded"],
        True,
    )
    stored = await WebhookSubscription.get(id=created["id"])
    assert created["secret"].encode() not in bytes(stored.secret_ciphertext)
    read = await client.get(f"/m/v1/webhooks/{created['id']}", headers=world.headers("manager"))
    assert read.status_code == 200 and "secret" not in read.json()
    listed = await client.get("/m/v1/webhooks", headers=world.headers("manager"))
    assert [w["id"] for w in listed.json()] == [created["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": HOOK, "events": ["batch.deleted"]}, "events[0]"),
        ({"url": HOOK, "events": []}, "events"),
        ({"url": "ftp://example.org/x", "events": ["alert.raised"]}, "url"),
        ({"url": "not a url", "events": ["alert.raised"]}, "url"),
        ({"url": "http://example.org:99999/", "events": ["alert.raised"]}, "url"),
        ({"url": "http://example.org:0/", "events": ["alert.raised"]}, "url"),  # none listens
        ({"url": "http://[::1/hooks", "events": ["alert.raised"]}, "url"),
        ({"url": "http://[bogus]/", "events": ["alert.raised"]}, "url"),
        ({"url": "http://user@[::1/hooks", "events": ["alert.raised"]}, "url"),
        # urlsplit reads the host as 1.1.1.1, the sender (aiohttp's yarl) refuses it, a browser
        # reads example.org: never deliverable.
        ({"url": "http://example.org\\@1.1.1.1/hooks", "events": ["alert.raised"]}, "url"),
    ],
)
async def test_unknown_events_and_bad_urls_are_refused_naming_the_field(
    client: httpx.AsyncClient, world: World, body: dict, field: str
) -> None:
    response = await client.post("/m/v1/webhooks", json=body, headers=world.headers("manager"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_private_and_loopback_targets_are_refused_unless_allowed(
    world: World, settings: Settings, url: str
) -> None:
    strict = create_app(
        settings.model_copy(update={"webhooks_allow_private": False}), manage_database=False
    )
    transport = httpx.ASGITransport(app=strict)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(
            "/m/v1/webhooks",
            json={"url": url, "events": ["alert.raised"]},
            headers=world.headers("manager"),
        )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "url"
    assert await WebhookSubscription.all().count() == 0


async def test_someone_elses_subscription_is_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await subscribe(client, world, "manager", HOOK, ["alert.raised"])
    other = world.headers("town_manager")
    path = f"/m/v1/webhooks/{created['id']}"
    assert (await client.get(path, headers=other)).status_code == 404
    assert (await client.get(f"{path}/deliveries", headers=other)).status_code == 404
    assert (await client.post(f"{path}/enable", headers=other)).status_code == 404
    assert (await client.delete(path, headers=other)).status_code == 404
    assert (await client.get("/m/v1/webhooks", headers=other)).json() == []
    assert (await client.delete(path, headers=world.headers("manager"))).status_code == 204
    assert (await client.get(path, headers=world.headers("manager"))).status_code == 404


async def test_only_managers_and_admins_subscribe(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/m/v1/webhooks",
        json={"url": HOOK, "events": ["alert.raised"]},
        headers=world.headers("clinic"),
    )
    assert response.status_code == 403, response.text
    assert response.json()["field"] == "role"


async def _disabled(subscription_id: int) -> None:
    """The subscription as failing rounds leave it: disabled (enabling an active one changes
    nothing, and writes no entry)."""
    await WebhookSubscription.filter(id=subscription_id).update(active=False)


async def test_subscribing_enabling_and_deleting_are_in_the_audit_log(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await subscribe(client, world, "manager", HOOK, ["alert.raised"])
    h = world.headers("manager")
    await _disabled(created["id"])
    assert (await client.post(f"/m/v1/webhooks/{created['id']}/enable", headers=h)).is_success
    assert (await client.delete(f"/m/v1/webhooks/{created['id']}", headers=h)).status_code == 204
    log = await client.get("/m/v1/audit", params={"subject_type": "webhook"}, headers=h)
    entries = log.json()
    actions = [(e["action"], e["actor_user_id"]) for e in entries["entries"]]
    manager = world.users["manager"].id
    assert sorted(actions) == sorted(
        [("webhook.created", manager), ("webhook.enabled", manager), ("webhook.deleted", manager)]
    ), entries
    for entry in entries["entries"]:
        text = str(entry)
        assert created["secret"] not in text and "secret_ciphertext" not in text
        assert (entry["before"] or entry["after"])["url"] == webhooks.masked_url(HOOK)


SECRET_HOOK = "https://bi:pa55w0rd@Hooks.Example.cn:8443/in/wastetrack?token=t0ken&x=1#frag"


async def test_the_audit_log_keeps_the_url_without_credentials_query_or_fragment(
    client: httpx.AsyncClient, world: World
) -> None:
    """Managers, auditors and admins of the region read the audit log, not only the owner: a
    token in the URL's userinfo or query would be theirs to use."""
    created = await subscribe(client, world, "manager", SECRET_HOOK, ["alert.raised"])
    assert created["url"] == SECRET_HOOK  # its owner reads it whole
    h = world.headers("manager")
    await _disabled(created["id"])
    assert (await client.post(f"/m/v1/webhooks/{created['id']}/enable", headers=h)).is_success
    assert (await client.delete(f"/m/v1/webhooks/{created['id']}", headers=h)).status_code == 204
    log = await client.get("/m/v1/audit", params={"subject_type": "webhook"}, headers=h)
    entries = log.json()["entries"]
    assert len(entries) == 3
    urls = [s["url"] for e in entries for s in (e["before"], e["after"]) if s is not None]
    assert urls == [webhooks.masked_url(SECRET_HOOK)] * 4
    assert urls[0].startswith("https://hooks.example.cn:8443/in/… [")
    assert not any(word in str(entries) for word in ("pa55w0rd", "t0ken", "frag", "bi:"))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://u:p@[2001:db8::1]:8080/a/b?q=1", "http://[2001:db8::1]:8080/a/… [142e44f6]"),
        ("https://example.cn", "https://example.cn"),
        ("https://example.cn/?token=1", "https://example.cn/ [8828ab36]"),
        # A chat bot's hook ends in its token.
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/abc",
            "https://open.feishu.cn/open-apis/… [6c515438]",
        ),
        ("https://x.cn/tok3n", "https://x.cn/… [9c610620]"),
        ("http://[::1/hooks", "(not a valid URL)"),
    ],
)
def test_a_masked_url_keeps_scheme_host_port_and_a_paths_first_segment(
    url: str, masked: str
) -> None:
    assert webhooks.masked_url(url) == masked


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("127.0.0.1", True),
        ("::1", True),
        # IPv4-mapped: judged as the IPv4 address.
        ("::ffff:8.8.8.8", False),
        ("::ffff:10.0.0.1", True),
        # NAT64's well-known prefix translates to the IPv4 address in its last 32 bits.
        ("64:ff9b::8.8.8.8", False),
        ("64:ff9b::127.0.0.1", True),
        ("64:ff9b::169.254.169.254", True),
        ("64:ff9b::10.0.0.1", True),
        # NAT64's local-use prefix: a network's own translator, not global.
        ("64:ff9b:1::a00:1", True),
        ("64:ff9b:1::808:808", True),
        # 6to4 tunnels to the IPv4 address in its second and third groups.
        ("2002:808:808::1", False),
        ("2002:7f00:1::1", True),
        ("2002:a9fe:a9fe::1", True),
        # Teredo: the server's and the client's (obfuscated) IPv4 addresses.
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", True),
        ("2001:0:808:808:0:0:f7f7:f7f7", True),
        # IPv4-compatible (deprecated), site-local (deprecated), reserved, multicast.
        ("::127.0.0.1", True),
        ("::8.8.8.8", True),
        ("fec0::1", True),
        ("5f00::1", True),
        ("ff02::1", True),
        ("224.0.0.1", True),
    ],
)
def test_ipv6_addresses_are_judged_by_the_ipv4_address_they_lead_to(
    address: str, refused: bool
) -> None:
    assert webhooks.refused_address(address) is refused


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[2002:7f00:1::1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
        "http://[::7f00:1]/hook",
        "http://[fec0::1]/hook",
    ],
)
async def test_ipv6_forms_of_private_ipv4_addresses_are_refused_as_targets(url: str) -> None:
    with pytest.raises(webhooks.TargetRefused):
        await webhooks.check_target(url, allow_private=False)


async def test_two_deletes_at_once_delete_once_and_are_audited_once(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await subscribe(client, world, "manager", HOOK, ["alert.raised"])
    h = world.headers("manager")
    answers = await asyncio.gather(
        *(client.delete(f"/m/v1/webhooks/{created['id']}", headers=h) for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) == [204, 404]
    assert await AuditEntry.filter(action="webhook.deleted").count() == 1


async def test_deleting_a_disabled_subscription_clears_its_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    """A webhook_disabled alert reports deliveries waiting on a disabled subscription; once
    the subscription is deleted nothing waits, and the alert clears (it stayed open)."""
    created = await subscribe(client, world, "manager", HOOK, ["alert.raised"])
    raised = await alerts.flag_webhook_disabled(
        subscription_id=created["id"],
        times_disabled=1,
        organization_id=world.orgs["bureau"].id,
        region_path=world.regions["city"].path,
        url=HOOK,
        failures=10,
        last_error="503",
        now=datetime.now(UTC),
    )
    h = world.headers("manager")
    assert (await client.delete(f"/m/v1/webhooks/{created['id']}", headers=h)).status_code == 204
    after = await Alert.get(id=raised.id)
    assert after.acknowledged_at is not None and "cleared_at" in after.details


def strict_client(settings: Settings) -> httpx.AsyncClient:
    """The API as deployed: private targets refused."""
    strict = create_app(
        settings.model_copy(update={"webhooks_allow_private": False}), manage_database=False
    )
    transport = httpx.ASGITransport(app=strict)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.parametrize("host", ["internal.test", "nowhere.test", "hanging.test"])
async def test_a_refused_name_is_told_apart_from_no_other_nor_its_addresses_named(
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    host: str,
) -> None:
    """Any manager may name any host: were the answer to say what it resolved to, or tell a
    name that does not resolve from one that resolves to a private address, the server's
    resolver would map the internal network for them. The reason is the server log's only."""
    loop = asyncio.get_running_loop()
    system = loop.getaddrinfo

    async def internal(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if name == "internal.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", int(port)))]
        if name == "nowhere.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if name == "hanging.test":
            await asyncio.sleep(60)
        return await system(name, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", internal)
    monkeypatch.setattr(webhooks, "RESOLVE_SECONDS", 0.1)
    caplog.set_level(logging.INFO, logger=webhooks.__name__)
    async with strict_client(settings) as client:
        response = await client.post(
            "/m/v1/webhooks",
            json={"url": f"http://{host}/hook", "events": ["alert.raised"]},
            headers=world.headers("manager"),
        )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["field"], problem["detail"]) == ("url", webhooks.NOT_ALLOWED)
    assert "10.20.30.40" not in response.text and host not in problem["detail"]
    assert host in caplog.text
    if host == "internal.test":
        assert "10.20.30.40" in caplog.text


async def test_the_target_is_resolved_before_the_requests_transaction_opens(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name server that takes its time (up to RESOLVE_SECONDS) must not hold one of the
    database's connections meanwhile: a handful of such requests would take the pool."""
    loop = asyncio.get_running_loop()
    system = loop.getaddrinfo
    in_transaction: list[bool] = []

    async def public(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if name != "hooks.test":
            return await system(name, port, *args, **kwargs)
        in_transaction.append(isinstance(connections.get("default"), TransactionalDBClient))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("1.1.1.1", int(port)))]

    monkeypatch.setattr(loop, "getaddrinfo", public)
    async with strict_client(settings) as client:
        created = await subscribe(
            client, world, "manager", "http://hooks.test/hook", ["alert.raised"]
        )

    assert in_transaction == [False]
    assert await WebhookSubscription.filter(id=created["id"]).exists()
