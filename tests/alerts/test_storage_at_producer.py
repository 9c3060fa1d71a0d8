"""The overdue-storage alert and the inventory's `overdue` on waste back at its producer:
one clock, from the waste's tagging, and one alert (first written by an independent review)."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.custody.helpers import recorded, tag_bag
from tests.factories import World, event
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert

ZONE = ZoneInfo("Asia/Shanghai")
START = (datetime.now(UTC) - timedelta(hours=60)).replace(microsecond=0)


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


def body(kind: str, code: str, hours: float, **fields: Any) -> dict[str, Any]:
    made = event(kind, code, **fields)
    made["device_time"] = at(hours)
    return made


async def inventory(client: httpx.AsyncClient, world: World, who: str) -> dict[str, Any]:
    today = datetime.now(ZONE).date()
    response = await client.get(
        "/m/v1/registers/inventory",
        params={"date_from": (today - timedelta(days=5)).isoformat(), "date_to": today.isoformat()},
        headers=world.headers(who),
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _watched_alike(client: httpx.AsyncClient, world: World, code: str | None) -> None:
    """The clinic's inventory counts the batch (`code`, else its only one) overdue, and one
    overdue_storage alert says so, from the same start."""
    stock = await inventory(client, world, "clinic")
    (held,) = [b for b in stock["batches"] if code is None or b["code"] == code]
    await alerts.refresh(now=datetime.now(UTC))
    raised = await Alert.filter(kind=alerts.OVERDUE_STORAGE, batch__code=held["code"])
    assert held["overdue"] is True
    assert len(raised) == 1, (held, [(a.subject, a.details) for a in raised])
    assert datetime.fromisoformat(held["since"]) == datetime.fromisoformat(
        raised[0].details["since"]
    )


async def test_a_bag_rejected_back_to_the_clinic_that_produced_it_is_watched_by_the_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic delivers its own bag to the facility, which rejects it: the bag is back at its
    producer, 60 h after it was tagged. medical.md: "A bag still waiting at its producer past
    its class's storage limit (48 h ...) raises an overdue_storage alert"; registers.md: the
    alert and the inventory's storage read the same clock and limit, and "for waste the
    organization produced the two agree"."""
    bag = (await tag_bag(client, world, device_time=at(0)))["code"]
    facility = world.orgs["facility"].id
    await recorded(
        client, world, "clinic", body("handed_over", bag, 1, to_organization_id=facility)
    )
    await recorded(
        client, world, "facility", body("received", bag, 2, outcome="rejected", reason="wrong bag")
    )
    await _watched_alike(client, world, bag)


async def test_a_bag_handed_back_to_the_clinic_that_produced_it_is_watched_by_the_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    """Handed to the township hospital by mistake and handed back an hour later: the bag waits
    at its producer again, 60 h after its tagging."""
    bag = (await tag_bag(client, world, device_time=at(0)))["code"]
    other, clinic = world.orgs["other_clinic"].id, world.orgs["clinic"].id
    await recorded(client, world, "clinic", body("handed_over", bag, 1, to_organization_id=other))
    await recorded(
        client, world, "other_clinic", body("handed_over", bag, 2, to_organization_id=clinic)
    )
    await _watched_alike(client, world, bag)


async def test_the_refused_part_back_at_the_clinic_that_produced_it_is_watched_by_the_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic delivers its own bag; the facility accepts 2 kg of 3.5 and refuses the rest,
    which goes back to the clinic (docs/registers.md): waste back at its producer, 60 h after
    it was produced."""
    bag = (await tag_bag(client, world, device_time=at(0)))["code"]
    facility = world.orgs["facility"].id
    await recorded(
        client, world, "clinic", body("handed_over", bag, 1, to_organization_id=facility)
    )
    await recorded(
        client,
        world,
        "facility",
        body("received", bag, 2, outcome="partially_accepted", weight_kg="2.0", reason="torn"),
    )
    await _watched_alike(client, world, None)  # the refused part, all the clinic holds


async def test_a_box_of_the_clinics_own_bag_counts_from_the_same_start_in_both(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic's own bag, handed to the township hospital by mistake and back an hour
    later, then packed into a box: registers.md — the alert and the inventory read the same
    clock, and "for waste the organization produced the two agree"."""
    bag = (await tag_bag(client, world, device_time=at(0)))["code"]
    other, clinic = world.orgs["other_clinic"].id, world.orgs["clinic"].id
    await recorded(client, world, "clinic", body("handed_over", bag, 1, to_organization_id=other))
    await recorded(
        client, world, "other_clinic", body("handed_over", bag, 2, to_organization_id=clinic)
    )
    box = (await tag_bag(client, world, device_time=at(3)))["code"]
    await recorded(client, world, "clinic", body("aggregated", box, 4, children=[bag]))
    stock = await inventory(client, world, "clinic")
    (held,) = stock["batches"]
    assert held["code"] == box
    await alerts.refresh(now=datetime.now(UTC))
    (raised,) = await Alert.filter(kind=alerts.OVERDUE_STORAGE, batch__code=box)
    assert datetime.fromisoformat(held["since"]) == datetime.fromisoformat(
        raised.details["since"]
    ), (held["since"], raised.details["since"])


async def test_an_acknowledged_alert_is_raised_again_when_the_bag_is_back_overdue(
    client: httpx.AsyncClient, world: World
) -> None:
    """medical.md: the alert clears once the bag leaves its producer and is raised again if it
    falls due again. A manager acknowledged it while the bag waited; the bag went to the
    township hospital and came back, 60 h after its tagging: a new stay, overdue, raised again
    (its acknowledgement covered the stay that ended), said `alert.raised` in the change feed;
    refreshing again changes nothing (first written by an independent review)."""
    code = (await tag_bag(client, world, device_time=at(0)))["code"]
    await alerts.refresh(now=datetime.now(UTC))
    (alert,) = await Alert.filter(kind=alerts.OVERDUE_STORAGE)
    ack = await client.post(f"/m/v1/alerts/{alert.id}/ack", headers=world.headers("manager"))
    assert ack.status_code == 200, ack.text
    other, clinic = world.orgs["other_clinic"].id, world.orgs["clinic"].id
    await recorded(client, world, "clinic", body("handed_over", code, 50, to_organization_id=other))
    await alerts.refresh(now=datetime.now(UTC))
    back = body("handed_over", code, 55, to_organization_id=clinic)
    await recorded(client, world, "other_clinic", back)
    for _ in range(2):
        await alerts.refresh(now=datetime.now(UTC))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    assert [(a["id"], a["details"]["code"]) for a in listed] == [(alert.id, code)]
    feed = await client.get(
        "/m/v1/changes", params={"limit": 500}, headers=world.headers("manager")
    )
    raised = [c for c in feed.json()["changes"] if c["type"] == "alert.raised"]
    assert len(raised) == 2, feed.json()
