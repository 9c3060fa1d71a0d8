"""An event whose device time runs backwards from its batch's previous event by more than the
clock skew is recorded, and flagged to the manager as a scan anomaly."""

from datetime import UTC, datetime, timedelta

import httpx

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event, medical_bag
from wastetrack.alerts.models import Alert
from wastetrack.batches.models import Label


def ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


async def test_a_backwards_clock_is_flagged_not_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier, device_time=ago(5))
    collected = event("collected", bag["code"], device_time=ago(1))
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    behind = event(
        "in_transit",
        bag["code"],
        device_time=ago(3),
        destination_organization_id=world.orgs["facility"].id,
    )
    recorded = await post_event(client, world, "carrier", behind)
    assert recorded.status_code == 201, recorded.text
    again = await post_event(client, world, "carrier", behind)  # the phone resends it
    assert again.status_code in (200, 201)
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    (anomaly,) = [a for a in listed if a["kind"] == "scan_anomaly"]
    assert anomaly["details"]["code"] == bag["code"]
    assert anomaly["details"]["flags"] == ["device_clock_behind"]
    assert anomaly["details"]["seq"] == 3
    assert 7100 < anomaly["details"]["behind_seconds"] < 7300
    assert anomaly["organization_id"] == carrier


async def test_a_clock_behind_within_the_skew_is_not_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(
        client, world, carrier_organization_id=world.orgs["carrier"].id, device_time=ago(2)
    )
    collected = event("collected", bag["code"], device_time=ago(1))
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    slightly = event(
        "in_transit",
        bag["code"],
        device_time=ago(1 + 5 / 60),
        destination_organization_id=world.orgs["facility"].id,
    )
    assert (await post_event(client, world, "carrier", slightly)).status_code == 201
    assert await Alert.filter(kind="scan_anomaly").count() == 0


async def test_a_late_event_does_not_turn_the_batchs_clock_back(
    client: httpx.AsyncClient, world: World
) -> None:
    """After an event synced late (3 h ago, after one 1 h ago), an event 2 h ago still precedes
    the latest the batch has seen, and is flagged against that."""
    bag = await tag_bag(
        client, world, carrier_organization_id=world.orgs["carrier"].id, device_time=ago(5)
    )
    facility = world.orgs["facility"].id
    for who, body in (
        ("carrier", event("collected", bag["code"], device_time=ago(1))),
        (
            "carrier",
            event(
                "in_transit",
                bag["code"],
                device_time=ago(3),
                destination_organization_id=facility,
            ),
        ),
        (
            "facility",
            event(
                "received",
                bag["code"],
                device_time=ago(2),
                outcome="accepted",
                weight_kg="2.5",
            ),
        ),
    ):
        assert (await post_event(client, world, who, body)).status_code == 201
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    behind = {
        a["details"]["seq"]: a["details"]["behind_seconds"]
        for a in listed
        if a["kind"] == "scan_anomaly" and a["details"]["code"] == bag["code"]
    }
    assert set(behind) == {3, 4}
    assert 3500 < behind[4] < 3700


async def printed_label(client: httpx.AsyncClient, world: World) -> Label:
    """One label of the clinic's, printed on a sheet now (the server's clock)."""
    printed = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": 1},
    )
    assert printed.status_code == 201, printed.text
    (label,) = await Label.filter(organization=world.orgs["clinic"])
    return label


async def test_a_label_tagged_before_it_was_printed_is_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    """A pre-printed label's tagging dated two days before the sheet was printed: a phone whose
    clock is wrong (its cohort day would be too). Recorded, and flagged to the manager."""
    label = await printed_label(client, world)
    body = medical_bag(batch=label.code, device_time=ago(48))
    tagged = await post_event(client, world, "clinic", body)
    assert tagged.status_code == 201, tagged.text
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    (anomaly,) = [a for a in listed if a["kind"] == "scan_anomaly"]
    assert (anomaly["details"]["code"], anomaly["details"]["seq"]) == (label.code, 1)
    assert 48 * 3600 - 120 < anomaly["details"]["behind_seconds"] < 48 * 3600 + 120


async def test_a_label_tagging_corrected_to_before_it_was_printed_is_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    """A pre-printed label tagged in time, its tagging then corrected to two days before the
    sheet was printed: flagged as the tagging would have been (the correction moved it there
    unflagged: corrections review). A correction within the printing is not."""
    label = await printed_label(client, world)
    body = medical_bag(batch=label.code, device_time=ago(0))
    tagged = await post_event(client, world, "clinic", body)
    assert tagged.status_code == 201, tagged.text
    tagging = tagged.json()["event_id"]
    for hours, seq in ((0.05, None), (48, 3)):
        fix = event(
            "corrected",
            label.code,
            corrects=tagging,
            event_time=ago(hours),
            device_time=ago(0),
            reason="钟错",
        )
        corrected = await post_event(client, world, "clinic", fix)
        assert corrected.status_code == 201, corrected.text
        await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
        listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
        flagged = [a["details"]["seq"] for a in listed if a["kind"] == "scan_anomaly"]
        assert flagged == ([] if seq is None else [seq]), (hours, listed)


async def test_a_label_made_with_its_bag_corrected_an_hour_earlier_is_not_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    """A bag tagged with no pre-printed label has its code made as the server records it: its
    tagging corrected to the hour the bag was filled (a phone offline, synced late) was printed
    at no time before, and is not flagged (diff review: it was, as behind its printing)."""
    tagged = await post_event(client, world, "clinic", medical_bag(device_time=ago(0)))
    assert tagged.status_code == 201, tagged.text
    code, tagging = tagged.json()["batch_code"], tagged.json()["event_id"]
    assert not (await Label.get(code=code)).pre_printed
    fix = event(
        "corrected", code, corrects=tagging, event_time=ago(1), device_time=ago(0), reason="补录"
    )
    corrected = await post_event(client, world, "clinic", fix)
    assert corrected.status_code == 201, corrected.text
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    assert [a["details"] for a in listed if a["kind"] == "scan_anomaly"] == []
