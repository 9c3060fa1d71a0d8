"""Who each register row names: the carrier of each movement (not the batch's latest one), and
the refused part of a partial acceptance going back from the receiver that refused it to
whoever delivered the batch, as custody chose (`delivered_by`), however the facility recorded
the batch first or whoever corrected the receipt."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.custody.helpers import advance, post_event, tag_bag
from tests.factories import World, event, make_user
from wastetrack.auth.models import Role
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

ZONE = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(ZONE).date()


async def rows(client: httpx.AsyncClient, world: World, who: str, kind: str) -> Any:
    query = {"date_from": (today() - timedelta(days=1)).isoformat(), "date_to": today().isoformat()}
    response = await client.get(f"/m/v1/registers/{kind}", params=query, headers=world.headers(who))
    assert response.status_code == 200, response.text
    return response.json()


async def posted(client: httpx.AsyncClient, world: World, who: str, body: dict) -> dict:
    response = await post_event(client, world, who, body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def second_carrier(world: World) -> int:
    org = await registry.create_organization(
        name="威海医废运输有限公司",
        kind=OrganizationKind.carrier,
        region_id=world.regions["city"].id,
    )
    world.orgs["carrier_b"] = org
    await make_user(world, "carrier_b", Role.carrier, org)
    return org.id


async def test_each_movement_names_the_carrier_of_its_time(
    client: httpx.AsyncClient, world: World
) -> None:
    """Carrier A collects the clinic's bag and hands it to carrier B: the clinic's registers
    still name A, who took it from the clinic; the handover between them names B."""
    a = world.orgs["carrier"].id
    b = await second_carrier(world)
    bag = await tag_bag(client, world, carrier_organization_id=a)
    await advance(client, world, bag["code"], until="collected")
    await posted(
        client,
        world,
        "carrier",
        event("handed_over", bag["code"], minutes=15, to_organization_id=b),
    )
    clinic_out = await rows(client, world, "clinic", "outgoing")
    assert [(r["how"], r["carrier"]["id"]) for r in clinic_out] == [("collected", a)]
    clinic_in = await rows(client, world, "clinic", "incoming")
    assert [(r["how"], r["carrier"]["id"]) for r in clinic_in] == [("tagged", a)]
    handovers = await rows(client, world, "clinic", "medical-handover")
    assert [(r["how"], r["carrier"]["id"]) for r in handovers] == [("collected", a)]
    taken = await rows(client, world, "carrier_b", "incoming")
    assert [(r["how"], r["from_organization"]["id"], r["carrier"]["id"]) for r in taken] == [
        ("handed_over", a, b)
    ]


async def _partial(client: httpx.AsyncClient, world: World, code: str, minutes: int) -> dict:
    return await posted(
        client,
        world,
        "facility",
        event(
            "received",
            code,
            minutes=minutes,
            outcome="partially_accepted",
            weight_kg="2.0",
            reason="two bags torn",
        ),
    )


async def _refused_part(
    client: httpx.AsyncClient, world: World, original: str, *, back_to: str
) -> dict:
    """The refused part as its deliverer's incoming register and inventory list it, as the
    facility's leaves it out, and as both medical handover registers record it."""
    facility = world.orgs["facility"].id
    back = [r for r in await rows(client, world, back_to, "incoming") if r["code"] != original]
    assert [(r["how"], r["from_organization"]["id"]) for r in back] == [
        ("refused_remainder", facility)
    ]
    code = back[0]["code"]
    stock = await rows(client, world, back_to, "inventory")
    assert code in [b["code"] for b in stock["batches"]]
    facility_stock = await rows(client, world, "facility", "inventory")
    assert code not in [b["code"] for b in facility_stock["batches"]]
    for line in facility_stock["balance"]:
        for unit in ("batches", "kg"):
            assert float(line["opening"][unit]) + float(line["incoming"][unit]) - float(
                line["outgoing"][unit]
            ) == float(line["closing"][unit])
    for who, direction in (("facility", "out"), (back_to, "in")):
        found = [r for r in await rows(client, world, who, "medical-handover") if r["code"] == code]
        assert [
            (
                r["how"],
                r["direction"],
                r["handed_by_organization"]["id"],
                r["received_by_organization"]["id"],
                r["handed_by"]["username"],
            )
            for r in found
        ] == [("refused_remainder", direction, facility, world.orgs[back_to].id, "facility")]
    return back[0]


async def test_a_part_refused_after_the_facility_stored_the_batch_goes_back_to_the_carrier(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="in_transit")
    await posted(client, world, "facility", event("stored", bag["code"], minutes=40))
    await _partial(client, world, bag["code"], 60)
    await _refused_part(client, world, bag["code"], back_to="carrier")


async def test_a_part_refused_after_a_handover_to_the_facility_goes_back_to_the_carrier(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="collected")
    facility = world.orgs["facility"].id
    await posted(
        client,
        world,
        "carrier",
        event("handed_over", bag["code"], minutes=30, to_organization_id=facility),
    )
    await _partial(client, world, bag["code"], 60)
    part = await _refused_part(client, world, bag["code"], back_to="carrier")
    assert part["carrier"]["id"] == world.orgs["carrier"].id


async def test_a_part_refused_from_a_clinic_delivering_itself_goes_back_to_the_clinic(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world)
    facility = world.orgs["facility"].id
    await posted(
        client,
        world,
        "clinic",
        event("handed_over", bag["code"], minutes=30, to_organization_id=facility),
    )
    await _partial(client, world, bag["code"], 60)
    await _refused_part(client, world, bag["code"], back_to="clinic")


async def test_a_manager_correcting_a_receipt_into_a_partial_one_is_not_the_giver(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="in_transit")
    receipt = await posted(
        client,
        world,
        "facility",
        event("received", bag["code"], minutes=60, outcome="accepted", weight_kg="3.5"),
    )
    await posted(
        client,
        world,
        "manager",
        event(
            "corrected",
            bag["code"],
            minutes=70,
            corrects=receipt["event_id"],
            outcome="partially_accepted",
            weight_kg="2.0",
            reason="two bags torn",
        ),
    )
    await _refused_part(client, world, bag["code"], back_to="carrier")


async def test_a_refused_part_comes_back_no_earlier_than_the_bag_went(
    client: httpx.AsyncClient, world: World
) -> None:
    """A receiving phone 40 minutes behind dated the partial receipt before the carrier's
    collection: the receipt counts at the collection's time, and its refused part came back to
    the carrier at the phone's — on the day before, held by the carrier before it had the bag."""
    midnight = datetime.combine(today() - timedelta(days=1), datetime.min.time(), ZONE)
    carrier, facility = world.orgs["carrier"].id, world.orgs["facility"].id
    tagged = (midnight - timedelta(hours=5)).isoformat()
    bag = (await tag_bag(client, world, device_time=tagged, carrier_organization_id=carrier))[
        "code"
    ]
    collected = midnight + timedelta(minutes=30)
    for who, kind, at, fields in (
        ("carrier", "collected", collected, {}),
        ("carrier", "in_transit", collected, {"destination_organization_id": facility}),
        (
            "facility",
            "received",
            midnight - timedelta(minutes=10),
            {"outcome": "partially_accepted", "weight_kg": "1.0", "reason": "破损"},
        ),
    ):
        await posted(
            client, world, who, event(kind, bag, **fields) | {"device_time": at.isoformat()}
        )
    manager = world.headers("manager")
    span = {"date_from": (today() - timedelta(days=2)).isoformat(), "date_to": today().isoformat()}
    back = [
        row
        for row in (
            await client.get(
                "/m/v1/registers/incoming",
                params={**span, "organization_id": carrier},
                headers=manager,
            )
        ).json()
        if row["how"] == "refused_remainder"
    ]
    assert [datetime.fromisoformat(row["time"]) for row in back] == [collected]
    day_before = (today() - timedelta(days=2)).isoformat()
    held = await client.get(
        "/m/v1/registers/inventory",
        params={"date_from": day_before, "date_to": day_before, "organization_id": carrier},
        headers=manager,
    )
    assert held.json()["batches"] == []
