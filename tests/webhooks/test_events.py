"""Which change becomes which webhook event: manifests signed and decided, port deliveries."""

from datetime import timedelta
from typing import get_args

import httpx

from schemas.webhooks import EventType
from tests.custody.helpers import advance, post_event, tag_bag
from tests.factories import World, event, make_user
from tests.manifests.test_manifests import NOW, Parties, call, drive_to_arrival, parties  # noqa: F401
from tests.ports.test_ports import Harbour, arrive, deliver, delivery, harbour  # noqa: F401
from tests.webhooks.conftest import Listener
from tests.webhooks.helpers import drain, subscribe
from tests.webhooks.test_dispatcher import verified
from wastetrack.auth.models import Role
from wastetrack.core.settings import Settings
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind
from wastetrack.webhooks.service import EVENT_TYPES


async def test_manifest_signatures_and_the_decision_are_delivered(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: httpx.AsyncClient,
    parties: Parties,  # noqa: F811
) -> None:
    hook = await subscribe(
        client, world, "manager", listener.url, ["manifest.signed", "manifest.decided"]
    )
    arrived = await drive_to_arrival(client, world, parties, arrived=NOW - timedelta(hours=1))
    decided = await call(
        client,
        world,
        "plant",
        f"/{arrived['id']}/decision",
        {"decision": "accepted", "received_quantity_kg": "790", "method": "R9"},
    )
    assert decided.status_code == 200, decided.text

    await drain(settings, sender)

    bodies = [verified(r, hook["secret"]) for r in listener.received]
    # The draft and the arrival are changes of the feed, but neither a signature nor a decision.
    assert [(b["type"], b["data"]["state"]) for b in bodies] == [
        ("manifest.signed", "submitted"),
        ("manifest.signed", "in_transit_leg_1"),
        ("manifest.signed", "in_transit_leg_2"),
        ("manifest.decided", "accepted"),
    ]
    assert {b["data"]["number"] for b in bodies} == {arrived["number"]}


async def test_a_cancellation_is_delivered(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: httpx.AsyncClient,
    parties: Parties,  # noqa: F811
) -> None:
    """A carrier's system that heard the producer sign hears the cancellation too."""
    hook = await subscribe(
        client, world, "manager", listener.url, ["manifest.signed", "manifest.cancelled"]
    )
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    item = {"manifest_id": mid, "handover_at": (NOW - timedelta(hours=2)).isoformat()}
    signed = await client.post(
        "/m/v1/manifests/sign",
        json={"role": "producer", "manifests": [item]},
        headers=world.headers("maker"),
    )
    assert signed.status_code == 200, signed.text
    cancelled = await call(client, world, "maker", f"/{mid}/cancel", {"reason": "车辆未到"})
    assert cancelled.status_code == 200, cancelled.text

    await drain(settings, sender)

    bodies = [verified(r, hook["secret"]) for r in listener.received]
    assert [(b["type"], b["data"]["state"]) for b in bodies] == [
        ("manifest.signed", "submitted"),
        ("manifest.cancelled", "cancelled"),
    ]


async def test_a_port_delivery_is_delivered_to_the_ports_region_only(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: httpx.AsyncClient,
    harbour: Harbour,  # noqa: F811
) -> None:
    town = await subscribe(client, world, "town_manager", listener.url, ["delivery.recorded"])
    await arrive(client, world, harbour.small)
    recorded = await deliver(client, world, delivery(harbour, harbour.small))
    assert recorded.status_code == 201, recorded.text
    # The 崖头 town office oversees another town than the port's (石岛).
    office = world.regions["town"]
    yatou = await registry.create_organization(
        name="崖头街道环保所", kind=OrganizationKind.authority, region_id=office.id
    )
    await make_user(world, "yatou_manager", Role.manager, yatou)
    await subscribe(client, world, "yatou_manager", listener.url + "?yatou", ["delivery.recorded"])
    await deliver(client, world, delivery(harbour, harbour.small))

    await drain(settings, sender)

    heard = [(r.path, verified(r, town["secret"])) for r in listener.received if r.path == "/hooks"]
    assert [b["type"] for _, b in heard] == ["delivery.recorded"] * 2
    assert heard[0][1]["data"]["receipt"] == recorded.json()["receipt_number"]
    assert heard[0][1]["data"]["batches"] == [
        line["batch_code"] for line in recorded.json()["lines"]
    ]
    assert [r for r in listener.received if r.path != "/hooks"] == []


def test_the_contract_lists_every_event_the_service_sends() -> None:
    """The subscription's contract and the events the service makes are one list."""
    assert get_args(EventType) == EVENT_TYPES


async def test_an_alert_raised_again_is_delivered_as_raised(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    listener: Listener,
    sender: httpx.AsyncClient,
) -> None:
    """A weight discrepancy clears itself once a correction brings the weights together and is
    raised again when another takes them apart: the feed and the webhooks say `alert.raised`
    both times (the clearing is an `alert.changed`)."""
    hook = await subscribe(client, world, "manager", listener.url, ["alert.raised"])
    manager = world.headers("manager")
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="in_transit")
    receipt = await post_event(
        client,
        world,
        "facility",
        event("received", bag["code"], minutes=60, outcome="accepted", weight_kg="2.0"),
    )
    assert receipt.status_code == 201, receipt.text

    async def weighed(weight: str, minutes: int) -> int:
        if weight:
            body = event(
                "corrected",
                bag["code"],
                minutes=minutes,
                corrects=receipt.json()["event_id"],
                weight_kg=weight,
            )
            assert (await post_event(client, world, "facility", body)).status_code == 201
        refreshed = await client.post("/m/v1/alerts/refresh", headers=manager)
        raised: int = refreshed.json()["raised"]
        return raised

    assert await weighed("", 0) == 1  # 2.0 of the 3.5 kg declared
    assert await weighed("3.4", 70) == 0  # within 10 %: cleared
    assert await weighed("2.0", 80) == 1  # apart again: raised again
    fed = (await client.get("/m/v1/changes", headers=manager)).json()["changes"]
    kinds = [c["type"] for c in fed if c["type"].startswith("alert.")]
    assert kinds == ["alert.raised", "alert.changed", "alert.raised"]
    await drain(settings, sender)
    heard = [verified(r, hook["secret"])["type"] for r in listener.received]
    assert heard == ["alert.raised", "alert.raised"]
