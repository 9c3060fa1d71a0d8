"""Deliveries: received by a real HTTP listener, signed with the secret shown at creation, only
what the owner may see, in order per batch, retried with back-off, disabled with an alert after
repeated failures, re-enabled, replayed; nothing sent for a deactivated owner, nothing enqueued
for a disabled subscription."""

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from schemas.events import EventCreate
from tests.custody.helpers import advance, tag_bag
from tests.factories import World, event
from tests.webhooks.conftest import Listener, Received
from tests.webhooks.helpers import drain, receiver_at, subscribe
from wastetrack.alerts.models import Alert
from wastetrack.auth.models import User
from wastetrack.core.settings import Settings
from wastetrack.custody import recorder
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.dispatcher import dispatch_once
from wastetrack.webhooks.enqueuing import enqueue
from wastetrack.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from wastetrack.webhooks.pace import Pace
from wastetrack.webhooks.service import masked_url


def verified(received: Received, secret: str) -> dict:
    """The body, after checking its signature as an integrator would (Standard Webhooks): an
    HMAC-SHA256 under the secret of `id.timestamp.body`, the timestamp fresh, the id the body's.
    Computed here, not with the service's `sign`, so that a change to either is caught."""
    message_id = received.headers["webhook-id"]
    timestamp = received.headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= webhooks.FRESHNESS_SECONDS
    signed = f"{message_id}.{timestamp}.".encode() + received.body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    assert hmac.compare_digest(received.headers["webhook-signature"], expected)
    body = json.loads(received.body)
    assert body["id"] == message_id
    return body


async def deliveries(client: httpx.AsyncClient, world: World, who: str, hook: dict) -> list:
    response = await client.get(
        f"/m/v1/webhooks/{hook['id']}/deliveries", headers=world.headers(who)
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()))  # oldest first


async def test_events_arrive_in_order_signed_with_the_secret_shown_once(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="in_transit")

    done = await drain(settings, sender)

    assert (done.enqueued, done.delivered, done.failed) == (3, 3, 0)
    bodies = [verified(r, hook["secret"]) for r in listener.received]
    assert [(b["type"], b["data"]["batch"], b["data"]["event_type"]) for b in bodies] == [
        ("batch.event_recorded", bag["code"], "tagged"),
        ("batch.event_recorded", bag["code"], "collected"),
        ("batch.event_recorded", bag["code"], "in_transit"),
    ]
    # Each body says what the change feed says of its change, written the same way.
    feed = await client.get("/m/v1/changes", headers=world.headers("manager"))
    assert [(b["type"], b["occurred_at"], b["data"]) for b in bodies] == [
        (c["type"], c["occurred_at"], c["data"]) for c in feed.json()["changes"]
    ]
    assert {r.path for r in listener.received} == {"/hooks"}
    log = await deliveries(client, world, "manager", hook)
    assert [(d["status"], d["attempts"], d["next_attempt_at"]) for d in log] == [
        ("delivered", 1, None)
    ] * 3
    assert [d["event_id"] for d in log] == [b["id"] for b in bodies]
    assert [str(d["id"]) for d in log] == [
        r.headers["x-wastetrack-delivery"] for r in listener.received
    ]
    # Nothing new: another round sends nothing.
    assert not (await dispatch_once(settings=settings, client=sender)).busy
    assert len(listener.received) == 3


async def test_a_subscription_hears_only_what_its_owner_may_see(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    # 石岛's manager oversees other_clinic's town, not clinic's (崖头).
    town = await subscribe(
        client, world, "town_manager", listener.url + "?town", ["batch.event_recorded"]
    )
    await tag_bag(client, world, "clinic")
    theirs = await tag_bag(client, world, "other_clinic")

    await drain(settings, sender)

    assert [verified(r, town["secret"])["data"]["batch"] for r in listener.received] == [
        theirs["code"]
    ]


async def test_a_delivery_waiting_when_its_owner_loses_sight_of_it_is_withheld(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """What the owner may see is checked again when a delivery is due: a retry queued while the
    city's manager could see the 崖头 clinic's bag is not sent once they have moved to 石岛's
    office (which may not see it), nor replayed; it is withheld, which is no failure of the
    receiver's. Moved back, a replay sends it."""
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world, "clinic")
    listener.plan = [500]
    first = await drain(settings, sender)
    assert (first.delivered, first.failed) == (0, 1)
    manager = world.users["manager"]
    await User.filter(id=manager.id).update(organization_id=world.orgs["town_office"].id)

    later = datetime.now(UTC) + timedelta(hours=2)
    assert (await drain(settings, sender, now=later)).withheld == 1
    (delivery,) = await deliveries(client, world, "manager", hook)
    assert delivery["status"] == "withheld" and delivery["next_attempt_at"] is None
    assert "no longer see" in delivery["last_error"]
    url = f"/m/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay"
    assert (await client.post(url, headers=world.headers("manager"))).status_code == 202
    assert (await drain(settings, sender, now=later)).withheld == 1
    assert len(listener.received) == 1  # the first try only
    subscription = await WebhookSubscription.get(id=hook["id"])
    assert subscription.consecutive_failures == 1 and subscription.active

    await User.filter(id=manager.id).update(organization_id=manager.organization_id)
    assert (await client.post(url, headers=world.headers("manager"))).status_code == 202
    assert (await drain(settings, sender, now=later)).delivered == 1
    first_try, replayed = (verified(r, hook["secret"]) for r in listener.received)
    assert first_try == replayed


async def test_a_batch_s_deliveries_go_out_in_its_order_whatever_their_ids(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """Deliveries are written in the order their changes are read; a batch's go out in the
    order of its events (seq) even when written in another."""
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="in_transit")
    await enqueue(subscriptions=[await WebhookSubscription.get(id=hook["id"])])
    written = await WebhookDelivery.filter(subscription_id=hook["id"]).order_by("id")
    assert [d.seq for d in written] == [1, 2, 3]
    await WebhookDelivery.filter(subscription_id=hook["id"]).delete()
    copied = ("subscription_id", "change_id", "event_id", "event_type", "order_key", "seq")
    for delivery in reversed(written):  # the last event's delivery gets the lowest id
        await WebhookDelivery.create(
            **{name: getattr(delivery, name) for name in copied},
            body=delivery.body,
            next_attempt_at=delivery.next_attempt_at,
        )

    done = await drain(settings, sender)

    assert (done.delivered, done.failed) == (3, 0)
    bodies = [verified(r, hook["secret"]) for r in listener.received]
    assert [(b["data"]["seq"], b["data"]["event_type"]) for b in bodies] == [
        (1, "tagged"),
        (2, "collected"),
        (3, "in_transit"),
    ]


async def test_a_failed_delivery_is_retried_after_its_back_off_and_later_ones_wait(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="collected")
    listener.plan = [500]

    first = await drain(settings, sender)

    # The tagging failed; the collection of the same batch may not overtake it.
    assert (first.delivered, first.failed) == (0, 1)
    assert len(listener.received) == 1
    log = await deliveries(client, world, "manager", hook)
    assert [(d["status"], d["attempts"], d["last_error"]) for d in log] == [
        ("pending", 1, "HTTP 500"),
        ("pending", 0, None),
    ]
    retry_at = datetime.fromisoformat(log[0]["next_attempt_at"])
    assert retry_at > datetime.now(UTC) + timedelta(seconds=settings.webhooks_retry_seconds - 2)

    later = await drain(settings, sender, now=retry_at + timedelta(seconds=1))

    assert (later.delivered, later.failed) == (2, 0)
    bodies = [verified(r, hook["secret"]) for r in listener.received]
    assert [b["data"]["event_type"] for b in bodies] == ["tagged", "tagged", "collected"]
    assert bodies[0] == bodies[1]  # the same event id and body on the retry
    assert listener.received[0].body == listener.received[1].body
    # A captured delivery does not verify with a timestamp other than the one it was signed at.
    replayed = listener.received[0]
    stale = str(int(replayed.headers["webhook-timestamp"]) - webhooks.FRESHNESS_SECONDS - 60)
    with pytest.raises(AssertionError):
        verified(
            Received(
                replayed.path, {**replayed.headers, "webhook-timestamp": stale}, replayed.body
            ),
            hook["secret"],
        )


async def test_repeated_failures_disable_the_subscription_with_an_alert_until_enabled(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    # Credentials and a token in the URL: the alert, which the organization reads, leaves
    # them out.
    url = listener.url.replace("http://", "http://bi:pa55w0rd@") + "?token=t0ken#frag"
    hook = await subscribe(client, world, "manager", url, ["batch.event_recorded"])
    await tag_bag(client, world)
    listener.plan = [503] * settings.webhooks_max_failures

    # One failed round counts once: the delivery fails in that many rounds, each after its
    # back-off (a day apart, longer than any back-off).
    start = datetime.now(UTC)
    rounds = [
        await dispatch_once(settings=settings, client=sender, now=start + timedelta(days=day))
        for day in range(settings.webhooks_max_failures)
    ]

    assert [r.failed for r in rounds] == [1] * settings.webhooks_max_failures
    assert [r.disabled for r in rounds[:-1]] == [[]] * (settings.webhooks_max_failures - 1)
    assert rounds[-1].disabled == [hook["id"]]
    headers = world.headers("manager")
    read = (await client.get(f"/m/v1/webhooks/{hook['id']}", headers=headers)).json()
    assert (read["active"], read["consecutive_failures"]) == (False, 3)
    alerts = (await client.get("/m/v1/alerts", headers=headers)).json()
    (alert,) = [a for a in alerts if a["kind"] == "webhook_disabled"]
    assert alert["details"]["webhook_id"] == hook["id"]
    assert alert["details"]["url"] == masked_url(url)
    # The audit log keeps the change, as it keeps the owner's: no person made it.
    log = await client.get("/m/v1/audit", params={"subject_type": "webhook"}, headers=headers)
    (disabled,) = [e for e in log.json()["entries"] if e["action"] == "webhook.disabled"]
    assert disabled["actor_user_id"] is None and disabled["subject_id"] == str(hook["id"])
    assert (disabled["before"]["active"], disabled["after"]["active"]) == (True, False)
    assert disabled["after"]["url"] == masked_url(url)
    # Disabled: nothing is sent, however late it gets.
    await tag_bag(client, world)
    await drain(settings, sender, now=start + timedelta(days=30))
    assert len(listener.received) == settings.webhooks_max_failures
    # A replay would wait for the enabling unsaid: refused, naming the webhook, nothing changed.
    waiting = await deliveries(client, world, "manager", hook)
    replay = f"/m/v1/webhooks/{hook['id']}/deliveries/{waiting[-1]['id']}/replay"
    refused = await client.post(replay, headers=headers)
    assert (refused.status_code, refused.json()["field"]) == (409, "webhook_id"), refused.text
    assert "/enable" in refused.json()["detail"]
    assert await deliveries(client, world, "manager", hook) == waiting

    enabled = await client.post(f"/m/v1/webhooks/{hook['id']}/enable", headers=headers)
    assert enabled.status_code == 200 and enabled.json()["active"] is True
    # What the alert reported has ended: it clears (it stayed open, enabled or not).
    still = (await client.get("/m/v1/alerts", headers=headers)).json()
    assert [a for a in still if a["kind"] == "webhook_disabled"] == []
    everything = await client.get("/m/v1/alerts", params={"open_only": False}, headers=headers)
    (cleared,) = [a for a in everything.json() if a["kind"] == "webhook_disabled"]
    assert cleared["details"]["cleared_at"] and cleared["acknowledged_by_id"] is None
    await drain(settings, sender)

    log = await deliveries(client, world, "manager", hook)
    assert [d["status"] for d in log] == ["delivered"] * 2
    assert len(listener.received) == settings.webhooks_max_failures + 2


async def test_a_subscription_disabled_after_its_owner_moved_alerts_the_owners_organization(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """石岛's manager moves to the city's bureau (which still sees 石岛's bags): the alert that
    its receiver went dark goes to the bureau, not to the office it left."""
    await subscribe(client, world, "town_manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world, "other_clinic")
    bureau = world.orgs["bureau"].id
    await User.filter(id=world.users["town_manager"].id).update(organization_id=bureau)
    listener.plan = [503] * settings.webhooks_max_failures
    start = datetime.now(UTC)
    for day in range(settings.webhooks_max_failures):
        await dispatch_once(settings=settings, client=sender, now=start + timedelta(days=day))
    (alert,) = await Alert.filter(kind="webhook_disabled")
    assert alert.organization_id == bureau


async def test_a_delivery_is_replayed_by_id_with_the_same_event(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world)
    await drain(settings, sender)
    (delivery,) = await deliveries(client, world, "manager", hook)

    replayed = await client.post(
        f"/m/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay",
        headers=world.headers("manager"),
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["status"] == "pending"
    await drain(settings, sender)

    first, again = (verified(r, hook["secret"]) for r in listener.received)
    assert first == again and first["id"] == delivery["event_id"]
    missing = await client.post(
        f"/m/v1/webhooks/{hook['id']}/deliveries/999999/replay", headers=world.headers("manager")
    )
    assert missing.status_code == 404


async def test_a_webhooks_deliveries_are_read_newest_first_a_page_at_a_time(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """The log grows with every event: older deliveries, to be replayed, are reached by the
    `Link` to the next page, as on every list that grows."""
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    for _ in range(5):
        await tag_bag(client, world)
    await drain(settings, sender)
    ids: list[int] = []
    url: str | None = f"/m/v1/webhooks/{hook['id']}/deliveries?limit=2"
    while url is not None:
        page = await client.get(url, headers=world.headers("manager"))
        assert page.status_code == 200, page.text
        ids += [d["id"] for d in page.json()]
        found = re.fullmatch(r'<([^>]+)>; rel="next"', page.headers.get("Link", ""))
        url = found[1] if found else None
    stored = await WebhookDelivery.filter(subscription_id=hook["id"]).values_list("id", flat=True)
    assert ids == sorted(stored, reverse=True) and len(ids) == 5


async def test_a_private_target_is_refused_again_at_send_time(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world)
    strict = settings.model_copy(update={"webhooks_allow_private": False})

    done = await drain(strict, sender)

    assert (done.delivered, done.failed) == (0, 1)
    assert listener.received == []
    (delivery,) = await deliveries(client, world, "manager", hook)
    assert delivery["last_error"] == f"refused: {webhooks.NOT_ALLOWED}"


async def test_events_not_asked_for_are_not_delivered(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    await subscribe(client, world, "manager", listener.url, ["alert.raised"])
    await tag_bag(client, world)
    done = await drain(settings, sender)
    assert done.enqueued == 0 and listener.received == []


async def test_subscriptions_of_one_owner_share_a_read_yet_each_hears_from_its_own_start(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    early = await subscribe(
        client, world, "manager", listener.url + "?early", ["batch.event_recorded"]
    )
    before = await tag_bag(client, world)
    await drain(settings, sender)
    late = await subscribe(
        client, world, "manager", listener.url + "?late", ["batch.event_recorded"]
    )
    after = await tag_bag(client, world)

    done = await drain(settings, sender)

    assert (done.enqueued, done.delivered) == (2, 2)
    heard = {
        path: [
            verified(r, hook["secret"])["data"]["batch"]
            for r in listener.received
            if r.path == path
        ]
        for path, hook in (("/hooks?early", early), ("/hooks?late", late))
    }
    assert heard == {
        "/hooks?early": [before["code"], after["code"]],
        "/hooks?late": [after["code"]],
    }
    bodies = [json.loads(r.body) for r in listener.received[1:]]
    assert bodies[0]["id"] != bodies[1]["id"]  # one event id per delivery
    assert {k: v for k, v in bodies[0].items() if k != "id"} == {
        k: v for k, v in bodies[1].items() if k != "id"
    }


async def test_a_sync_open_across_the_subscription_is_heard_for_what_it_records_after(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """A carrier's sync wrote its first event before the manager subscribed and records the
    next after the subscription committed: the subscription starts at the feed's horizon, so
    the later event (of a transaction begun earlier) does not fall behind its cursor."""
    carrier = world.principals["carrier"]
    first = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    began, subscribed = asyncio.Event(), asyncio.Event()

    async def record(code: str) -> None:
        body = EventCreate.model_validate(event("collected", code, minutes=10))
        (result,) = await recorder.record_events(
            principal=carrier, submissions=[body], secret=world.settings.secret_key
        )
        assert result.result.status == "applied", result.result

    async def long_sync() -> None:
        async with in_transaction():
            await record(first["code"])
            began.set()
            await asyncio.wait_for(subscribed.wait(), timeout=10)
            await record(bag["code"])

    sync = asyncio.create_task(long_sync())
    await asyncio.wait_for(began.wait(), timeout=10)
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    subscribed.set()
    await sync
    await drain(settings, sender)
    heard = [verified(r, hook["secret"])["data"]["batch"] for r in listener.received]
    assert bag["code"] in heard, heard


async def test_an_unreachable_receiver_fails_the_delivery_with_the_reason(
    client: httpx.AsyncClient, world: World, settings: Settings, sender: aiohttp.ClientSession
) -> None:
    with socket.socket() as closed:  # a port that nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    hook = await subscribe(
        client, world, "manager", f"http://127.0.0.1:{port}/hooks", ["batch.event_recorded"]
    )
    await tag_bag(client, world)

    done = await drain(settings, sender)

    assert (done.delivered, done.failed) == (0, 1)
    (delivery,) = await deliveries(client, world, "manager", hook)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert delivery["last_error"].startswith("ClientConnectorError: ")
    assert delivery["last_status_code"] is None


async def test_a_receiver_slower_than_the_timeout_fails_the_delivery(
    client: httpx.AsyncClient, world: World, settings: Settings, sender: aiohttp.ClientSession
) -> None:
    async def answer_late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1)
        writer.close()

    server, hook = await receiver_at(client, world, answer_late)
    await tag_bag(client, world)
    impatient = settings.model_copy(update={"webhooks_timeout_seconds": 0.2})

    async with server:
        done = await drain(impatient, sender)

    assert (done.delivered, done.failed) == (0, 1)
    (delivery,) = await deliveries(client, world, "manager", hook)
    assert delivery["last_error"].startswith("TimeoutError")


async def test_a_page_enqueued_again_after_a_lost_cursor_adds_no_second_delivery(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="collected")
    # As a deliverer that read the subscriptions before another one moved their cursors.
    stale = await WebhookSubscription.filter(id=hook["id"])

    assert await enqueue(subscriptions=await WebhookSubscription.filter(id=hook["id"])) == 2
    await enqueue(subscriptions=stale)
    await drain(settings, sender)

    assert await WebhookDelivery.filter(subscription_id=hook["id"]).count() == 2
    bodies = [verified(r, hook["secret"]) for r in listener.received]
    assert [b["data"]["event_type"] for b in bodies] == ["tagged", "collected"]


def test_deliveries_yield_to_a_burst_of_recording_for_a_bounded_time() -> None:
    pace = Pace(limit=50, longest=5)
    # A quiet feed (10 changes a second) never holds a round back.
    assert not any(pace.hold(head=10 * t, now=float(t)) for t in range(5))
    # A burst (1,000 a second): held from the first measured second, for 5 s at most; then the
    # deliverer drains whatever the rate, until a round finds nothing to send.
    held = [pace.hold(head=50 + 1000 * t, now=5.0 + t) for t in range(1, 9)]
    assert held == [True, True, True, True, True, False, False, False]
    pace.drained()
    assert pace.hold(head=10_050, now=15.0)
    # The burst ends: the next measured second releases the deliveries at once.
    assert not pace.hold(head=10_060, now=16.0)
    # Half-second rounds: the rate is measured over a whole second, not each round.
    pace = Pace(limit=50, longest=5)
    assert [pace.hold(head=h, now=t) for h, t in [(0, 0.0), (40, 0.5), (45, 1.0)]] == [
        False,
        False,
        False,
    ]
    # limit 0 never holds, whatever the rate.
    never = Pace(limit=0, longest=5)
    assert not any(never.hold(head=10_000 * t, now=float(t)) for t in range(5))


async def test_a_deactivated_owners_waiting_deliveries_are_not_sent(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """A subscription hears what its owner may see: once the owner is deactivated (left the
    bureau), nothing more goes out in their name, not even what was enqueued before."""
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await tag_bag(client, world)
    await enqueue(subscriptions=[await WebhookSubscription.get(id=hook["id"])])
    await User.filter(id=world.users["manager"].id).update(is_active=False)

    done = await drain(settings, sender)

    assert (done.delivered, done.failed) == (0, 0)
    assert listener.received == []
    (waiting,) = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert (waiting.status.value, waiting.attempts) == ("pending", 0)


async def test_a_disabled_subscription_gets_nothing_enqueued_until_it_is_enabled(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """A disabled receiver may stay off for months: deliveries must not pile up for it round
    after round. Its cursor waits, and enabling it catches up from there."""
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    await WebhookSubscription.filter(id=hook["id"]).update(active=False)
    bag = await tag_bag(client, world)

    done = await drain(settings, sender)

    assert done.enqueued == 0
    assert await WebhookDelivery.filter(subscription_id=hook["id"]).count() == 0
    enabled = await client.post(
        f"/m/v1/webhooks/{hook['id']}/enable", headers=world.headers("manager")
    )
    assert enabled.status_code == 200, enabled.text
    await drain(settings, sender)
    assert [verified(r, hook["secret"])["data"]["batch"] for r in listener.received] == [
        bag["code"]
    ]


async def test_a_webhooks_deliveries_page_on_past_32_bit_ids(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: aiohttp.ClientSession,
) -> None:
    """Deliveries are keyed by a bigint (one row per change and subscription): the next page's
    link, which carries the last id given, is followed past 2³¹ − 1 as before it."""
    await connections.get("default").execute_query(
        "SELECT setval(pg_get_serial_sequence('webhook_delivery', 'id'), 2147483645)"
    )
    hook = await subscribe(client, world, "manager", listener.url, ["batch.event_recorded"])
    for _ in range(5):
        await tag_bag(client, world)
    await drain(settings, sender)
    stored = await WebhookDelivery.filter(subscription_id=hook["id"]).values_list("id", flat=True)
    assert max(stored) > 2**31 - 1
    ids: list[int] = []
    url: str | None = f"/m/v1/webhooks/{hook['id']}/deliveries?limit=2"
    while url is not None:
        page = await client.get(url, headers=world.headers("manager"))
        assert page.status_code == 200, (url, page.text)
        ids += [d["id"] for d in page.json()]
        found = re.fullmatch(r'<([^>]+)>; rel="next"', page.headers.get("Link", ""))
        url = found[1] if found else None
    assert ids == sorted(stored, reverse=True)


async def test_enabling_an_active_subscription_mid_round_keeps_the_rounds_outcome(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    sender: aiohttp.ClientSession,
) -> None:
    """The receiver answers 200 while its owner presses enable on the active subscription:
    enable reset every pending delivery's next attempt, the round's lease with it, so the 200
    was not saved and the event was sent again (webhooks review). Enabling an active
    subscription changes nothing."""
    seen = asyncio.Event()
    release = asyncio.Event()
    ids: list[str] = []

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        for line in head.split("\r\n"):
            if line.lower().startswith("webhook-id:"):
                ids.append(line.split(":", 1)[1].strip())
        seen.set()
        if len(ids) == 1:
            await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server, hook = await receiver_at(client, world, receiver)
    await tag_bag(client, world)
    patient = settings.model_copy(update={"webhooks_timeout_seconds": 60})
    async with server:
        round_ = asyncio.create_task(dispatch_once(settings=patient, client=sender))
        try:
            await asyncio.wait_for(seen.wait(), 20)
            enabled = await client.post(
                f"/m/v1/webhooks/{hook['id']}/enable", headers=world.headers("manager")
            )
            assert enabled.status_code == 200, enabled.text
        finally:
            release.set()
            await round_
        (after_round,) = await WebhookDelivery.filter(subscription_id=hook["id"])
        await drain(patient, sender)

    (delivery,) = await WebhookDelivery.filter(subscription_id=hook["id"])
    assert delivery.status == DeliveryStatus.delivered and delivery.attempts == 1
    assert (after_round.status, len(ids)) == (DeliveryStatus.delivered, 1), (
        f"answered 200, then {after_round.status.value} after the round;"
        f" one event sent {len(ids)} times: {ids}"
    )
    assert len(ids) == 1, f"one event sent {len(ids)} times: {ids}"
