"""A manifest leg's vehicle: a registered vehicle of the leg's carrier, licensed for hazardous
goods on the day; and the alert on a leg overdue."""

from datetime import timedelta

import httpx

from tests.factories import World
from tests.manifests.test_manifests import (  # noqa: F401 (the fixture)
    NOW,
    Parties,
    call,
    parties,
    sign_producer,
)
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.core.settings import Settings
from wastetrack.custody.models import CustodyEvent
from wastetrack.fleet.models import Vehicle


async def test_a_legs_vehicle_must_be_the_carriers_and_licensed_on_the_day(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    vehicle = {"plate": "鲁K12345", "permit_number": "1", "capacity_kg": "5000"}
    headers = world.headers("carrier")
    assert (await client.post("/m/v1/vehicles", json=vehicle, headers=headers)).status_code == 201
    body = parties.body
    stranger = {**body, "legs": [{**body["legs"][0], "vehicle_plate": "鲁K99999"}, body["legs"][1]]}
    refused = await call(client, world, "maker", "", stranger)
    assert (refused.status_code, refused.json()["field"]) == (422, "legs[0].vehicle_plate")
    # A vehicle without a hazardous-goods licence, as the hand-overs would refuse it: refused
    # while the draft can still change.
    unlicensed = await call(client, world, "maker", "", body)
    assert (unlicensed.status_code, unlicensed.json()["field"]) == (422, "legs[0].vehicle_plate")
    licence = {"hazardous_licence_number": "鲁交危许字1", "hazardous_licence_expires": "2099-12-31"}
    patched = await client.patch("/m/v1/vehicles/鲁K12345", json=licence, headers=headers)
    assert patched.status_code == 200, patched.text
    made = await call(client, world, "maker", "", body)
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=2))).status_code == 200
    signed = await call(
        client,
        world,
        "carrier",
        f"/{mid}/legs/1/sign",
        {"handover_at": (NOW - timedelta(hours=2)).isoformat(), "handover_place": "石岛"},
    )
    assert signed.status_code == 200, signed.text
    plates = [
        (e.event_type, e.details.get("vehicle_plate"))
        for e in await CustodyEvent.filter(batch__code=parties.batches[0])
    ]
    assert ("handed_over", "鲁K12345") in plates and ("in_transit", "鲁K12345") in plates


async def test_a_leg_handed_over_before_its_vehicle_was_retired_is_signed(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """The carrier took the drums over in its vehicle, retired (sold) since, and signs its leg
    at the end of its round: the carriage happened in a vehicle in service, as the licence is
    judged on the handover's day. A handover after the retirement is refused."""
    vehicle = {
        "plate": "鲁K12345",
        "permit_number": "1",
        "capacity_kg": "5000",
        "hazardous_licence_number": "鲁交危许字1",
        "hazardous_licence_expires": "2099-12-31",
    }
    headers = world.headers("carrier")
    assert (await client.post("/m/v1/vehicles", json=vehicle, headers=headers)).status_code == 201
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    handed = NOW - timedelta(hours=2)
    assert (await sign_producer(client, world, mid, handed)).status_code == 200
    retired = await client.delete("/m/v1/vehicles/鲁K12345", headers=headers)
    assert retired.status_code == 200, retired.text
    # After the retirement (the server's clock, not the tests' NOW, set when they started).
    retired_at = (await Vehicle.get(plate="鲁K12345")).retired_at
    assert retired_at is not None
    late = {
        "handover_at": (retired_at + timedelta(seconds=30)).isoformat(),
        "handover_place": "石岛",
    }
    refused = await call(client, world, "carrier", f"/{mid}/legs/1/sign", late)
    assert (refused.status_code, refused.json()["field"]) == (422, "legs[0].vehicle_plate")
    on_time = {"handover_at": (handed + timedelta(minutes=5)).isoformat(), "handover_place": "石岛"}
    signed = await call(client, world, "carrier", f"/{mid}/legs/1/sign", on_time)
    assert signed.status_code == 200, signed.text


async def test_a_leg_overdue_raises_an_alert_cleared_by_the_next_step(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    made = (await call(client, world, "maker", "", parties.body)).json()
    mid, number = made["id"], made["number"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=2))).status_code == 200

    async def sign(seq: int, who: str, hours_ago: int) -> None:
        when = (NOW - timedelta(hours=hours_ago)).isoformat()
        body = {"handover_at": when, "handover_place": "石岛"}
        assert (await call(client, world, who, f"/{mid}/legs/{seq}/sign", body)).status_code == 200

    async def open_legs() -> list[str]:
        await alerts.refresh(settings=Settings(leg_overdue_hours=1))
        return sorted(
            a.subject for a in await Alert.filter(kind=alerts.LEG_OVERDUE, acknowledged_at=None)
        )

    await sign(1, "carrier", 2)
    assert await open_legs() == [f"{number}:1"]
    await sign(2, "second", 1)
    assert await open_legs() == [f"{number}:2"]
    arrival = await call(client, world, "plant", f"/{mid}/arrival", {"arrived_at": NOW.isoformat()})
    assert arrival.status_code == 200, arrival.text
    assert await open_legs() == []
    cleared = await Alert.filter(kind=alerts.LEG_OVERDUE).order_by("id")
    assert [a.details["leg"] for a in cleared] == [1, 2]
    assert all(a.details.get("cleared_at") for a in cleared)


async def test_a_later_leg_of_the_same_carrier_records_its_vehicle_in_the_chain(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """Two legs of one carrier in two vehicles (a transfer at its depot): the second leg's
    signature records the batches' departure in its vehicle, so the hash chain keeps the
    plate (docs/transport.md), as it does for a leg of another carrier."""
    carrier = world.orgs["carrier"].id
    legs = [
        {"carrier_organization_id": carrier, "vehicle_plate": plate, "permit_number": "1"}
        for plate in ("鲁K12345", "鲁K67890")
    ]
    made = await call(client, world, "maker", "", {**parties.body, "legs": legs})
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=2))).status_code == 200
    for seq, minutes in ((1, 110), (2, 60)):
        at = {"handover_at": (NOW - timedelta(minutes=minutes)).isoformat()}
        signed = await call(
            client, world, "carrier", f"/{mid}/legs/{seq}/sign", {**at, "handover_place": "石岛"}
        )
        assert signed.status_code == 200, signed.text
    for code in parties.batches:
        steps = [
            (e.event_type, e.details.get("vehicle_plate"))
            for e in await CustodyEvent.filter(batch__code=code).order_by("seq")
        ]
        assert steps[-2:] == [("in_transit", "鲁K12345"), ("in_transit", "鲁K67890")], steps
    # Signed again (a retry), nothing more is written.
    events = await CustodyEvent.all().count()
    again = await call(
        client,
        world,
        "carrier",
        f"/{mid}/legs/2/sign",
        {"handover_at": (NOW - timedelta(minutes=60)).isoformat(), "handover_place": "石岛"},
    )
    assert again.status_code in (200, 409), again.text
    assert await CustodyEvent.all().count() == events
