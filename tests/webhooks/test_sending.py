"""Sending rounds against a real HTTP listener: a failing round counts once towards disabling,
one delivery that cannot be sent does not void the others' outcomes, and the address a
receiver's name resolves to when the connection is made is the one checked (DNS rebinding)."""

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest

from tests.custody.helpers import tag_bag
from tests.factories import World
from tests.webhooks.conftest import Listener
from tests.webhooks.helpers import drain, subscribe
from wastetrack.alerts.models import Alert
from wastetrack.core.settings import Settings
from wastetrack.webhooks import sending
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.dispatcher import dispatch_once
from wastetrack.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from wastetrack.webhooks.sending import DispatchRound


async def test_one_failing_round_counts_once_and_its_deliveries_are_retried(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    # More batches waiting (one delivery each, all due in the same round) than the failures
    # that disable a subscription; the receiver answers 503 for that round only.
    heads = settings.webhooks_max_failures + 2
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    for _ in range(heads):
        await tag_bag(client, world)
    listener.plan = [503] * heads

    first = await dispatch_once(settings=settings, client=sender)

    assert (first.failed, first.disabled) == (heads, [])
    subscription = await WebhookSubscription.get(id=hook["id"])
    assert (subscription.active, subscription.consecutive_failures) == (True, 1)
    pending = await WebhookDelivery.filter(subscription_id=hook["id"]).order_by("id")
    assert [(d.status, d.attempts) for d in pending] == [(DeliveryStatus.pending, 1)] * heads
    retry_at = max(d.next_attempt_at for d in pending if d.next_attempt_at is not None)

    later = await drain(settings, sender, now=retry_at + timedelta(seconds=1))

    assert (later.delivered, later.failed, later.disabled) == (heads, 0, [])
    subscription = await WebhookSubscription.get(id=hook["id"])
    assert (subscription.active, subscription.consecutive_failures) == (True, 0)
    done = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert {d.status for d in done} == {DeliveryStatus.delivered}
    assert len(listener.received) == 2 * heads


async def test_a_short_outage_under_steady_traffic_does_not_disable_the_subscription(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """Rounds seconds apart, each with a new delivery the receiver refuses, reach the count of
    failed rounds within a minute; the subscription is disabled only once it has also been
    failing for the hours the setting asks."""
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    rounds = settings.webhooks_max_failures + 2
    listener.plan = [503] * (rounds * 3)
    started: list[datetime] = []
    for _ in range(rounds):
        await tag_bag(client, world)
        started.append(datetime.now(UTC))  # the new delivery is due now, the older ones later
        done = await dispatch_once(settings=settings, client=sender, now=started[-1])
        assert (done.failed >= 1, done.disabled) == (True, [])
    assert started[-1] - started[0] < timedelta(minutes=1)
    subscription = await WebhookSubscription.get(id=hook["id"])
    assert subscription.active and subscription.consecutive_failures == rounds
    assert subscription.failing_since == started[0]
    start = started[0]
    later = start + timedelta(hours=settings.webhooks_disable_after_hours, minutes=1)
    done = await dispatch_once(settings=settings, client=sender, now=later)
    assert done.disabled == [hook["id"]]
    assert not (await WebhookSubscription.get(id=hook["id"])).active


async def test_a_secret_that_cannot_be_unsealed_fails_only_its_own_delivery(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    broken = await subscribe(
        client, world, "manager", listener.url + "?broken", ["batch.event_recorded"]
    )
    healthy = await subscribe(
        client, world, "manager", listener.url + "?healthy", ["batch.event_recorded"]
    )
    # The sealed secret no longer opens (damaged, or sealed under a key this ring lacks).
    row = await WebhookSubscription.get(id=broken["id"])
    sealed = bytearray(row.secret_ciphertext)
    sealed[-1] ^= 0xFF
    await WebhookSubscription.filter(id=broken["id"]).update(secret_ciphertext=bytes(sealed))
    await tag_bag(client, world)

    # Two rounds, the second after every back-off, as the deliverer runs them: a round that
    # raises is logged and the next one runs.
    raised: list[BaseException] = []
    rounds: list[DispatchRound] = []
    for now in (datetime.now(UTC), datetime.now(UTC) + timedelta(days=1)):
        try:
            rounds.append(await dispatch_once(settings=settings, client=sender, now=now))
        except Exception as error:
            raised.append(error)

    (good,) = await WebhookDelivery.filter(subscription_id=healthy["id"])
    assert (good.status, good.attempts) == (DeliveryStatus.delivered, 1)
    assert [r.path for r in listener.received] == ["/hooks?healthy"]
    assert raised == []
    assert [(r.delivered, r.failed) for r in rounds] == [(1, 1), (0, 1)]
    (bad,) = await WebhookDelivery.filter(subscription_id=broken["id"])
    assert (bad.status, bad.attempts) == (DeliveryStatus.pending, 2)
    assert bad.last_error is not None
    assert bad.last_error.startswith("not sent: the signing secret cannot be unsealed")


class Rebinding:
    """The system resolver (the event loop's getaddrinfo) as a name with TTL 0 behind an
    attacker's DNS server: its first answer is public, every later one is loopback."""

    def __init__(self, loop_getaddrinfo: Any, name: str) -> None:
        self.system = loop_getaddrinfo
        self.name = name
        self.answers = 0

    async def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return await self.system(host, port, *args, **kwargs)
        self.answers += 1
        address = "1.1.1.1" if self.answers == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]


async def test_a_name_that_rebinds_to_a_private_address_after_the_check_is_not_connected(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = listener.url.split(":")[2].split("/")[0]
    hook = await subscribe(
        client, world, "manager", f"http://rebind.test:{port}/hooks", ["batch.event_recorded"]
    )
    await tag_bag(client, world)
    strict = settings.model_copy(update={"webhooks_allow_private": False})
    loop = asyncio.get_running_loop()
    rebinding = Rebinding(loop.getaddrinfo, "rebind.test")
    monkeypatch.setattr(loop, "getaddrinfo", rebinding)

    async with sending.sender(allow_private=False) as strict_sender:
        done = await dispatch_once(settings=strict, client=strict_sender)

    # The send-time check saw the public answer; the connection asked again and got loopback.
    assert rebinding.answers == 2
    assert listener.received == []
    assert (done.delivered, done.failed) == (0, 1)
    (delivery,) = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert delivery.status == DeliveryStatus.pending
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("ClientConnectorDNSError: ")
    assert (
        "refused: rebind.test resolves to a private, loopback, link-local or reserved address"
        " (127.0.0.1)" in delivery.last_error
    )


async def test_the_senders_resolver_keeps_public_addresses_only_unless_private_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    system = loop.getaddrinfo

    async def mixed(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "mixed.test":
            return await system(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))
            for address in ("10.0.0.5", "1.1.1.1", "169.254.169.254")
        ]

    monkeypatch.setattr(loop, "getaddrinfo", mixed)
    strict = sending.CheckedResolver(allow_private=False)

    assert [r["host"] for r in await strict.resolve("mixed.test", 80)] == ["1.1.1.1"]
    with pytest.raises(OSError, match=r"refused: localhost resolves to .* \(127\.0\.0\.1"):
        await strict.resolve("localhost", 80)
    allowed = sending.CheckedResolver(allow_private=True)
    assert "127.0.0.1" in [r["host"] for r in await allowed.resolve("localhost", 80)]


async def test_an_errors_url_is_masked_in_the_deliverys_log_and_the_alert(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp's connection timeout names the whole URL it failed on: its token (a chat bot's
    hook path, a query's key) must not reach the delivery's log, the organization's alert or
    the service's log."""
    url = "http://slow.test:9/hooks/TOKEN-IN-PATH?key=TOKEN-IN-QUERY"
    hook = await subscribe(client, world, "manager", url, ["batch.event_recorded"])
    await tag_bag(client, world)
    loop = asyncio.get_running_loop()
    system = loop.getaddrinfo

    async def timing_out(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow.test":  # aiohttp reports a timeout while connecting with the URL
            raise TimeoutError("the name server did not answer in time")
        return await system(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", timing_out)
    impatient = settings.model_copy(
        update={"webhooks_max_failures": 1, "webhooks_disable_after_hours": 0}
    )
    async with sending.sender(allow_private=True) as session:
        done = await dispatch_once(settings=impatient, client=session)

    assert done.disabled == [hook["id"]]
    (delivery,) = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("ConnectionTimeoutError: Connection timeout to host")
    assert "http://slow.test:9/hooks/…" in delivery.last_error
    (alert,) = await Alert.filter(kind="webhook_disabled")
    assert alert.details["last_error"] == delivery.last_error
    logged = caplog.text + str(alert.details)
    assert "TOKEN" not in delivery.last_error and "TOKEN" not in logged


def test_every_url_in_an_error_message_is_masked() -> None:
    text = "URL('https://u:pw@hooks.test/bot/SECRET?k=SECRET') and http://x.test/a/SECRET."
    masked = webhooks.masked_urls(text)
    assert "SECRET" not in masked and "pw" not in masked
    assert masked.startswith("URL('https://hooks.test/bot/… [")
    assert "http://x.test/a/… [" in masked
    assert webhooks.masked_urls("HTTP 503") == "HTTP 503"
