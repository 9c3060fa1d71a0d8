"""Sending rounds against a real HTTP listener: a failing round counts once towards disabling,
one delivery that cannot be sent does not void the others' outcomes, and the address a
receiver's name resolves to when the connection is made is the one checked (DNS rebinding). A
reply is read no further than a few KB and never decompressed, each outcome is saved when it is
known, two deliverers at once never send one delivery, and a round resolves each host once."""

import asyncio
import socket
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest
from tortoise import connections

from tests.custody.helpers import tag_bag
from tests.factories import World
from tests.webhooks.conftest import Listener
from tests.webhooks.helpers import drain, receiver_at, subscribe
from wastetrack.alerts.models import Alert
from wastetrack.audit.models import AuditEntry
from wastetrack.core.settings import Settings
from wastetrack.webhooks import sending
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.dispatcher import dispatch_once
from wastetrack.webhooks.enqueuing import enqueue
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


async def test_a_delivery_failing_for_weeks_is_still_retried_hourly(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    # A receiver whose handler crashes on one event (500) while it takes every other one: the
    # subscription is never disabled (each round gets something through), and that delivery
    # is retried at most hourly (docs/integrations.md: "10 s, doubling, at most an hour").
    # After some 43 days of hourly retries it has been attempted 1,024 times.
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world)
    listener.plan = [500]
    now = datetime.now(UTC)
    first = await dispatch_once(settings=settings, client=sender, now=now)
    assert first.failed == 1
    (delivery,) = await WebhookDelivery.filter(subscription_id=hook["id"])
    await WebhookDelivery.filter(id=delivery.id).update(attempts=1024)  # 43 days of history

    listener.plan = [500]
    later = now + timedelta(hours=2)
    raised: list[BaseException] = []
    try:
        await dispatch_once(settings=settings, client=sender, now=later)
    except Exception as error:  # the deliverer logs a failed round and runs the next
        raised.append(error)

    assert raised == [], repr(raised)
    delivery = await WebhookDelivery.get(id=delivery.id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.pending, 1025)
    assert delivery.next_attempt_at == later + timedelta(
        seconds=settings.webhooks_retry_max_seconds
    )
    subscription = await WebhookSubscription.get(id=hook["id"])
    assert subscription.consecutive_failures == 2  # the round counted, as every failing one


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
    assert f"refused: {webhooks.NOT_ALLOWED}" in delivery.last_error
    assert "127.0.0.1" not in delivery.last_error


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
    with pytest.raises(OSError, match=f"refused: {webhooks.NOT_ALLOWED}"):
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


async def _read_request(reader: asyncio.StreamReader) -> None:
    """Read one request, its head and the body its Content-Length announces."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)


class Endless:
    """A receiver that answers 200 and then a reply that never ends: gzip of ever more zeros
    (the form of a decompression bomb: a few KB on the wire, gigabytes decoded), or bytes that
    claim to be gzip and are not."""

    def __init__(self, *, valid_gzip: bool) -> None:
        self.valid_gzip = valid_gzip
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        packer = zlib.compressobj(wbits=31)  # gzip
        try:
            while not writer.is_closing():  # until the sender hangs up
                if self.valid_gzip:
                    data = packer.compress(bytes(1 << 20)) + packer.flush(zlib.Z_SYNC_FLUSH)
                else:
                    data = b"not gzip at all " * 64
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0)  # the sender shares this loop
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("valid_gzip", [True, False], ids=["gzip-bomb", "bogus-gzip"])
async def test_a_receivers_reply_is_read_no_further_than_a_few_kb_and_never_decompressed(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    sender: aiohttp.ClientSession,
    valid_gzip: bool,
) -> None:
    """Only the status of a reply counts: the sender reads its first REPLY_BYTES as they came.
    Read whole and decompressed, a manager's endpoint answering a gzip bomb would have the
    deliverer decode gigabytes per delivery (here: until the timeout fails it), and a reply that
    is not the gzip it claims would fail a delivery the receiver accepted."""
    receiver = Endless(valid_gzip=valid_gzip)
    server, hook = await receiver_at(client, world, receiver.handle)
    await tag_bag(client, world)
    patient = settings.model_copy(update={"webhooks_timeout_seconds": 3})

    async with server:
        done = await dispatch_once(settings=patient, client=sender)

    (delivery,) = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == (
        DeliveryStatus.delivered,
        200,
        None,
    )
    assert (done.delivered, done.failed) == (1, 0)


async def test_each_outcome_is_saved_as_soon_as_it_is_known_not_at_the_rounds_end(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """A deliverer killed mid-round (by whatever a receiver did) must not have every other
    receiver's delivery sent again after its restart: an outcome is written when it is known,
    while a slow receiver still holds the round."""
    answer = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await answer.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server, slow = await receiver_at(client, world, hold)
    fast = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world)
    patient = settings.model_copy(update={"webhooks_timeout_seconds": 60})

    async with server:
        round_ = asyncio.create_task(dispatch_once(settings=patient, client=sender))
        try:
            saved = None
            for _ in range(200):  # enqueued, then sent
                saved = await WebhookDelivery.filter(subscription_id=fast["id"]).first()
                if saved is not None and saved.status == DeliveryStatus.delivered:
                    break
                await asyncio.sleep(0.05)
            assert not round_.done()  # the slow receiver still holds the round
            assert saved is not None and saved.status == DeliveryStatus.delivered
        finally:
            answer.set()
            done = await round_

    assert (done.delivered, done.failed) == (2, 0)
    (held,) = await WebhookDelivery.filter(subscription_id=slow["id"])
    assert held.status == DeliveryStatus.delivered


async def test_two_deliverers_at_once_never_send_one_delivery_twice(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
) -> None:
    """A deliverer that lost the cluster lock mid-round (its connection dropped) still runs its
    round while another one starts: the deliveries are leased as they are picked, so the second
    round finds none of the first one's."""
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    for _ in range(4):  # four batches: four deliveries due at once
        await tag_bag(client, world)
    await enqueue(subscriptions=[await WebhookSubscription.get(id=hook["id"])])
    now = datetime.now(UTC)

    async with (
        sending.sender(allow_private=True) as first,
        sending.sender(allow_private=True) as second,
    ):
        rounds = await asyncio.gather(
            sending.send_due(settings=settings, client=first, now=now),
            sending.send_due(settings=settings, client=second, now=now),
        )

    ids = [r.headers["x-wastetrack-delivery"] for r in listener.received]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 4
    assert sum(r.delivered for r in rounds) == 4
    sent = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert [(d.status, d.attempts) for d in sent] == [(DeliveryStatus.delivered, 1)] * 4


async def test_a_lease_left_by_a_deliverer_that_died_runs_out_and_the_delivery_goes_out(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world)
    await enqueue(subscriptions=[await WebhookSubscription.get(id=hook["id"])])
    now = datetime.now(UTC)
    # A round that leased the delivery, then died before it knew the outcome.
    (leased,) = await connections.get("default").execute_query_dict(
        sending._LEASE_DUE, [now, sending.SEND_BATCH, now + timedelta(seconds=60)]
    )
    assert leased["subscription_id"] == hook["id"]

    meanwhile = await sending.send_due(settings=settings, client=sender, now=now)
    later = await sending.send_due(
        settings=settings, client=sender, now=now + timedelta(seconds=61)
    )

    assert (meanwhile.delivered, later.delivered) == (0, 1)
    assert len(listener.received) == 1


async def test_a_round_resolves_each_host_once_and_the_hosts_at_once(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A round checks its targets again before sending: one after another, each slow name
    server would add its delay to the round as many times as it has subscriptions; resolved
    once per host, several at a time, it adds it about once."""
    hooks = [
        await subscribe(client, world, "manager", url, ["batch.event_recorded"])
        for url in ("http://a.test:9/one", "http://a.test:9/two", "http://b.test:9/hooks")
    ]
    await tag_bag(client, world)
    loop = asyncio.get_running_loop()
    system = loop.getaddrinfo
    asked: list[str] = []
    resolving = peak = 0

    async def slow(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal resolving, peak
        if host not in ("a.test", "b.test"):
            return await system(host, port, *args, **kwargs)
        asked.append(host)
        resolving += 1
        peak = max(peak, resolving)
        await asyncio.sleep(0.2)
        resolving -= 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]

    monkeypatch.setattr(loop, "getaddrinfo", slow)
    strict = settings.model_copy(update={"webhooks_allow_private": False})
    async with sending.sender(allow_private=False) as strict_sender:
        done = await dispatch_once(settings=strict, client=strict_sender)

    assert sorted(asked) == ["a.test", "b.test"] and peak == 2
    assert (done.delivered, done.failed) == (0, 3)
    for hook in hooks:
        (delivery,) = await WebhookDelivery.filter(subscription_id=hook["id"])
        assert delivery.last_error == f"refused: {webhooks.NOT_ALLOWED}"


class BrokenOff:
    """A receiver that accepts the event (200) and then sends less body than it announced:
    closing the connection after two bytes, or stalling past the sender's timeout."""

    def __init__(self, *, stall: bool) -> None:
        self.stall = stall
        self.received = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        self.received += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok")
        await writer.drain()
        if self.stall:
            await asyncio.sleep(5)
        writer.close()


@pytest.mark.parametrize("stall", [False, True], ids=["cut-short", "stalled"])
async def test_a_2xx_whose_body_breaks_off_counts_as_received(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    sender: aiohttp.ClientSession,
    stall: bool,
) -> None:
    """Only the reply's status counts, and the receiver gave it: a body that then breaks off or
    stalls fails nothing. Counted as failed, the event went out again every round and the
    receiver that had taken it was in the end disabled."""
    receiver = BrokenOff(stall=stall)
    server, hook = await receiver_at(client, world, receiver.handle)
    await tag_bag(client, world)
    patient = settings.model_copy(update={"webhooks_timeout_seconds": 2})

    async with server:
        done = await dispatch_once(settings=patient, client=sender)
        await drain(patient, sender, now=datetime.now(UTC) + timedelta(days=1))

    (delivery,) = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == (
        DeliveryStatus.delivered,
        200,
        None,
    )
    assert (done.delivered, done.failed, receiver.received) == (1, 0, 1)


async def test_deleting_a_failing_subscription_mid_round_leaves_no_webhook_disabled_alert(
    client: httpx.AsyncClient, world: World, settings: Settings, sender: aiohttp.ClientSession
) -> None:
    """The receiver has been failing for a day; its owner deletes the subscription while the
    deliverer's round is still waiting on one of its deliveries. The round, counting from the
    copy it read before sending, disabled the deleted subscription: an open webhook_disabled
    alert nobody could clear, and `webhook.disabled` audited after `webhook.deleted`. The
    count is judged on the row, locked, as it is now. First written by an independent review."""
    first_seen = asyncio.Event()
    release = asyncio.Event()
    arrived: list[int] = []

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.append(1)
        if len(arrived) == 1:
            first_seen.set()
        else:
            await release.wait()  # the second one hangs, as a failing receiver does
        writer.write(b"HTTP/1.1 503 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server, hook = await receiver_at(client, world, receiver)
    # Two batches: two deliveries due in one round.
    await tag_bag(client, world)
    await tag_bag(client, world)
    # It has failed often enough, for long enough: this round's failure disables it.
    await WebhookSubscription.filter(id=hook["id"]).update(
        consecutive_failures=settings.webhooks_max_failures - 1,
        failing_since=datetime.now(UTC)
        - timedelta(hours=settings.webhooks_disable_after_hours + 1),
    )
    patient = settings.model_copy(update={"webhooks_timeout_seconds": 60})
    async with server:
        round_ = asyncio.create_task(dispatch_once(settings=patient, client=sender))
        try:
            for _ in range(400):  # the quick failure recorded, the other one still held
                failed = await WebhookDelivery.filter(subscription_id=hook["id"], attempts=1)
                if failed and len(arrived) == 2:
                    break
                await asyncio.sleep(0.05)
            assert len(arrived) == 2 and not round_.done()
            gone = await client.delete(
                f"/m/v1/webhooks/{hook['id']}", headers=world.headers("manager")
            )
            assert gone.status_code == 204, gone.text
        finally:
            release.set()
            await round_

    open_alerts = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    assert [a for a in open_alerts if a["kind"] == "webhook_disabled"] == []
    assert not await Alert.filter(kind="webhook_disabled", acknowledged_at=None).exists()
    actions = [e.action for e in await AuditEntry.filter(subject_type="webhook").order_by("id")]
    assert actions == ["webhook.created", "webhook.deleted"]
