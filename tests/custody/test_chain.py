"""A batch's custody chain: order, roles, parties, licences and the hash chain."""

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from tortoise.transactions import in_transaction

from tests.custody.helpers import (
    advance,
    as_superuser_without_triggers,
    collect,
    post_event,
    tag_bag,
)
from tests.factories import World, event
from wastetrack.batches.models import Batch
from wastetrack.custody.models import CustodyEvent


async def test_medical_bag_follows_its_chain_to_treatment(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="treated")
    response = await client.get(f"/m/v1/batches/{batch['code']}", headers=world.headers("clinic"))
    assert response.json()["state"] == "treated"
    events = (
        await client.get(f"/m/v1/batches/{batch['code']}/events", headers=world.headers("clinic"))
    ).json()
    assert [e["event_type"] for e in events] == [
        "tagged",
        "collected",
        "in_transit",
        "received",
        "treated",
    ]
    assert events[-1]["mode"] == "disposal"
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))
    verdict = (
        await client.get(f"/m/v1/batches/{batch['code']}/verify", headers=world.headers("clinic"))
    ).json()
    assert verdict == {
        "batch_code": batch["code"],
        "events": 5,
        "valid": True,
        "broken_at_seq": None,
        "detail": None,
    }


async def test_tampered_event_breaks_the_chain(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="received")
    # As an intruder with the database owner's rights would: the append-only trigger off.
    async with in_transaction() as conn:
        await conn.execute_script("SET LOCAL session_replication_role = replica")
        await (
            CustodyEvent.filter(batch__code=batch["code"], seq=2)
            .using_db(conn)
            .update(latitude=10.0, longitude=10.0)
        )
    verdict = (
        await client.get(f"/m/v1/batches/{batch['code']}/verify", headers=world.headers("clinic"))
    ).json()
    assert verdict["valid"] is False
    assert verdict["broken_at_seq"] == 2


async def test_collector_cannot_record_treatment(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="received")
    response = await post_event(
        client, world, "carrier", event("treated", batch["code"], minutes=90, method="D10")
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "event_type"
    assert "carrier cannot record a treated event" in response.json()["detail"]


async def test_unlicensed_facility_cannot_receive(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(
        client,
        world,
        carrier_organization_id=world.orgs["carrier"].id,
        destination_organization_id=world.orgs["unlicensed"].id,
    )
    await advance(client, world, batch["code"], until="collected")
    await post_event(client, world, "carrier", event("in_transit", batch["code"], minutes=20))
    response = await post_event(
        client,
        world,
        "unlicensed",
        event("received", batch["code"], minutes=60, outcome="accepted", weight_kg="3"),
    )
    assert response.status_code == 403
    assert "no valid licence for med.infectious" in response.json()["detail"]


async def test_treatment_method_must_be_licensed(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="received")
    response = await post_event(
        client, world, "facility", event("treated", batch["code"], minutes=90, method="R1")
    )
    assert response.status_code == 403
    assert response.json()["field"] == "method"


async def test_pending_storage_is_not_a_final_treatment(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="received")
    stored = await post_event(
        client, world, "facility", event("treated", batch["code"], minutes=90, method="D15")
    )
    assert stored.json()["state"] == "stored"
    final = await post_event(
        client, world, "facility", event("treated", batch["code"], minutes=100, method="D9")
    )
    assert final.json()["state"] == "treated"


async def test_nothing_follows_a_final_state(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="treated")
    response = await post_event(
        client,
        world,
        "facility",
        event("received", batch["code"], minutes=130, outcome="accepted", weight_kg="1"),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "rule_violation"
    assert "final state" in response.json()["detail"]


async def test_out_of_order_event_is_refused(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    response = await post_event(
        client, world, "carrier", event("in_transit", batch["code"], minutes=5)
    )
    assert response.status_code == 409
    assert "cannot follow the state tagged" in response.json()["detail"]


async def test_other_organization_cannot_see_or_act(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    seen = await client.get(f"/m/v1/batches/{batch['code']}", headers=world.headers("other_clinic"))
    assert seen.status_code == 404
    acted = await post_event(client, world, "carrier", event("collected", batch["code"], minutes=5))
    assert acted.status_code == 404
    assert acted.json()["detail"] == "no batch or label with this code"


async def test_rejected_waste_goes_back_on_the_road(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="in_transit")
    missing_reason = await post_event(
        client, world, "facility", event("received", batch["code"], minutes=60, outcome="rejected")
    )
    assert missing_reason.status_code == 422
    assert missing_reason.json()["field"] == "reason"
    rejected = await post_event(
        client,
        world,
        "facility",
        event("received", batch["code"], minutes=61, outcome="rejected", reason="bag torn"),
    )
    assert rejected.json()["state"] == "rejected"
    again = await post_event(
        client, world, "carrier", event("in_transit", batch["code"], minutes=70)
    )
    assert again.status_code == 201


async def test_accepting_waste_needs_a_measured_weight(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="in_transit")
    response = await post_event(
        client, world, "facility", event("received", batch["code"], minutes=60, outcome="accepted")
    )
    assert response.status_code == 422
    assert response.json()["field"] == "weight_kg"


async def test_bags_aggregate_into_a_container_and_stay_visible_to_their_clinic(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier = world.orgs["carrier"].id
    bags = [await tag_bag(client, world, carrier_organization_id=carrier) for _ in range(3)]
    other = await tag_bag(client, world, "other_clinic", carrier_organization_id=carrier)
    container = await tag_bag(client, world, "carrier", producer_organization_id=carrier)
    await collect(client, world, *(b["code"] for b in [*bags, other]), minutes=20)
    response = await post_event(
        client,
        world,
        "carrier",
        event(
            "aggregated",
            container["code"],
            minutes=30,
            children=[b["qr_url"] for b in bags] + [other["code"]],
        ),
    )
    assert response.status_code == 201, response.text
    child = (
        await client.get(f"/m/v1/batches/{bags[0]['code']}", headers=world.headers("clinic"))
    ).json()
    assert child["state"] == "aggregated"
    assert child["parent_id"] is not None
    after = await post_event(
        client, world, "carrier", event("collected", bags[1]["code"], minutes=40)
    )
    assert after.status_code == 409
    assert (
        await client.get(f"/m/v1/batches/{bags[2]['code']}/verify", headers=world.headers("clinic"))
    ).json()["valid"]


async def test_only_what_is_in_hand_goes_into_a_container(
    client: httpx.AsyncClient, world: World
) -> None:
    """A bag the carrier is named on but has not collected stays the clinic's: loading it would
    skip the collection's checks (the producer's PIN, the vehicle)."""
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    load = await tag_bag(client, world, "carrier", producer_organization_id=carrier)
    scanned = await client.get(
        "/m/v1/scan", params={"qr": bag["qr_url"]}, headers=world.headers("carrier")
    )
    assert "aggregated" not in scanned.json()["actions"]
    refused = await post_event(
        client,
        world,
        "carrier",
        event("aggregated", load["code"], minutes=5, children=[bag["code"]]),
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == "children[0]"
    assert "holder" in refused.json()["detail"]
    unchanged = await client.get(f"/m/v1/batches/{bag['code']}", headers=world.headers("clinic"))
    assert (unchanged.json()["state"], unchanged.json()["parent_id"]) == ("tagged", None)
    # The clinic may pack its own bags into a box of its own before the carrier comes.
    box = await tag_bag(client, world)
    packed = await post_event(
        client, world, "clinic", event("aggregated", box["code"], minutes=5, children=[bag["code"]])
    )
    assert packed.status_code == 201, packed.text


async def test_another_producers_bag_does_not_become_a_container(
    client: httpx.AsyncClient, world: World
) -> None:
    """A carrier holding two clinic bags may not scan one into the other: a container is never
    counted itself, so the bag's own waste would drop out of every rate."""
    carrier = world.orgs["carrier"].id
    bags = [await tag_bag(client, world, carrier_organization_id=carrier) for _ in range(2)]
    await collect(client, world, *(bag["code"] for bag in bags))
    refused = await post_event(
        client,
        world,
        "carrier",
        event("aggregated", bags[0]["code"], minutes=8, children=[bags[1]["code"]]),
    )
    assert (refused.status_code, refused.json()["field"]) == (409, "batch")
    assert (await Batch.get(code=bags[1]["code"])).parent_id is None


async def test_a_child_enters_its_container_at_the_time_the_phone_recorded(
    client: httpx.AsyncClient, world: World
) -> None:
    """Synced late, the children's events keep the round's time, not the server's: registers
    and coverage date them by it."""
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    load = await tag_bag(
        client,
        world,
        "carrier",
        producer_organization_id=carrier,
        device_time=event("tagged", minutes=-120)["device_time"],
    )
    await collect(client, world, bag["code"])
    early = await post_event(
        client,
        world,
        "carrier",
        event("aggregated", load["code"], minutes=-60, children=[bag["code"]]),
    )
    assert early.status_code == 422, early.text
    assert early.json()["field"] == "children[0]"
    packed = event("aggregated", load["code"], minutes=30, children=[bag["code"]])
    assert (await post_event(client, world, "carrier", packed)).status_code == 201
    events = await client.get(
        f"/m/v1/batches/{bag['code']}/events", headers=world.headers("clinic")
    )
    last = events.json()[-1]
    assert last["event_type"] == "aggregated"
    assert datetime.fromisoformat(last["device_time"]) == datetime.fromisoformat(
        packed["device_time"]
    )


async def test_custody_moves_only_from_whoever_holds_the_batch(
    client: httpx.AsyncClient, world: World
) -> None:
    """A destination takes a batch only as it arrives; its carrier picks it up only where it
    was collected or refused, never back from the facility that accepted it."""
    facility = world.orgs["facility"].id
    bag = await tag_bag(
        client,
        world,
        carrier_organization_id=world.orgs["carrier"].id,
        destination_organization_id=facility,
    )
    code = bag["code"]
    await collect(client, world, code)
    on_the_truck = await post_event(client, world, "facility", event("stored", code, minutes=8))
    assert on_the_truck.status_code == 403, on_the_truck.text
    assert on_the_truck.json()["field"] == "batch"
    assert "while it is collected" in on_the_truck.json()["detail"]
    for who, body in (
        ("carrier", event("in_transit", code, minutes=20)),
        ("facility", event("received", code, minutes=60, outcome="accepted", weight_kg="3.4")),
    ):
        assert (await post_event(client, world, who, body)).status_code == 201
    stored = await post_event(client, world, "facility", event("stored", code, minutes=70))
    assert stored.status_code == 201, stored.text
    taken_back = await post_event(client, world, "carrier", event("in_transit", code, minutes=80))
    assert taken_back.status_code == 403, taken_back.text
    assert "(it must be the batch's holder)" in taken_back.json()["detail"]
    held = await client.get(f"/m/v1/batches/{code}", headers=world.headers("facility"))
    assert (held.json()["state"], held.json()["holder_id"]) == ("stored", facility)


async def _received_paper(client: httpx.AsyncClient, world: World) -> str:
    """A collector's paper, delivered to the plant licensed for R3 and R4 and accepted there."""
    paper = await tag_bag(
        client, world, "collector", stream="household", category="hh.recyclable.paper"
    )
    code, plant = paper["code"], world.orgs["unlicensed"].id
    for who, body in (
        ("collector", event("collected", code, minutes=10)),
        ("collector", event("in_transit", code, minutes=20, destination_organization_id=plant)),
        ("unlicensed", event("received", code, minutes=60, outcome="accepted", weight_kg="3")),
    ):
        assert (await post_event(client, world, who, body)).status_code == 201
    return str(code)


async def test_a_corrected_treatment_keeps_to_the_facilitys_licence(
    client: httpx.AsyncClient, world: World
) -> None:
    """The facility is licensed for R3 and R4 on recyclables: a correction to D10 would make a
    recycling a disposal it may not do. A manager's correction is judged by the same licence."""
    code = await _received_paper(client, world)
    treated = await post_event(
        client, world, "unlicensed", event("treated", code, minutes=90, method="R3")
    )
    assert treated.status_code == 201, treated.text
    for who in ("unlicensed", "manager"):
        fix = event(
            "corrected", code, minutes=95, corrects=treated.json()["event_id"], method="D10"
        )
        refused = await post_event(client, world, who, fix)
        assert refused.status_code == 403, refused.text
        assert refused.json()["field"] == "method"
    fix = event("corrected", code, minutes=95, corrects=treated.json()["event_id"], method="R4")
    assert (await post_event(client, world, "manager", fix)).status_code == 201


async def test_a_corrected_treatment_is_judged_by_the_licence_of_the_treatments_day(
    client: httpx.AsyncClient, world: World
) -> None:
    """A treatment done three days ago, under a licence that has lapsed since, may still be
    corrected to another method that licence covered: the correction is judged as the
    treatment was, on the treatment's own day."""
    code = await _received_paper(client, world)
    plant = world.orgs["unlicensed"].id
    body = event("treated", code, minutes=90, method="R3")
    assert (await post_event(client, world, "unlicensed", body)).status_code == 201
    treated = await CustodyEvent.get(batch__code=code, event_type="treated")
    done = datetime.now(UTC) - timedelta(days=3)
    await as_superuser_without_triggers(
        ("UPDATE custody_event SET device_time = $1 WHERE id = $2", [done, treated.id]),
        (
            "UPDATE facility_licence SET valid_until = $1 WHERE organization_id = $2",
            [(done + timedelta(days=1)).date(), plant],
        ),
    )
    fix = event("corrected", code, minutes=95, corrects=str(treated.id), method="R4")
    corrected = await post_event(client, world, "manager", fix)
    assert corrected.status_code == 201, corrected.text
    fix = event("corrected", code, minutes=96, corrects=str(treated.id), method="D10")
    refused = await post_event(client, world, "manager", fix)
    assert (refused.status_code, refused.json()["field"]) == (403, "method")


async def test_a_receipt_is_judged_by_the_licence_of_its_own_day(
    client: httpx.AsyncClient, world: World
) -> None:
    """Received offline at 23:50 on the licence's last day and synced after midnight: the
    receipt stands, as a vehicle's permit or an agreement would on the event's day; a
    treatment on the next day is refused."""
    city = ZoneInfo(world.settings.timezone)
    yesterday = datetime.now(city).replace(hour=23, minute=0, second=0, microsecond=0) - timedelta(
        days=1
    )
    plant = world.orgs["unlicensed"].id
    await as_superuser_without_triggers(
        (
            "UPDATE facility_licence SET valid_until = $1 WHERE organization_id = $2",
            [yesterday.date(), plant],
        ),
    )
    paper = await tag_bag(
        client,
        world,
        "collector",
        stream="household",
        category="hh.recyclable.paper",
        device_time=yesterday.isoformat(),
    )
    code = paper["code"]
    at = {
        step: (yesterday + timedelta(minutes=m)).isoformat()
        for step, m in ((1, 10), (2, 20), (3, 50))
    }
    for who, body in (
        ("collector", event("collected", code, device_time=at[1])),
        (
            "collector",
            event("in_transit", code, device_time=at[2], destination_organization_id=plant),
        ),
        (
            "unlicensed",
            event("received", code, device_time=at[3], outcome="accepted", weight_kg="3"),
        ),
    ):
        recorded = await post_event(client, world, who, body)
        assert recorded.status_code == 201, recorded.text
    today = event("treated", code, device_time=datetime.now(UTC).isoformat(), method="R3")
    refused = await post_event(client, world, "unlicensed", today)
    assert (refused.status_code, refused.json()["field"]) == (403, "batch"), refused.text


async def test_a_tagging_is_not_moved_after_its_next_step_was_recorded(
    client: httpx.AsyncClient, world: World
) -> None:
    """A tagging corrected for a phone's wrong clock may pass the steps that phone dated, never
    the moment the server recorded the next one."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await collect(client, world, bag["code"], minutes=10)
    events = await client.get(
        f"/m/v1/batches/{bag['code']}/events", headers=world.headers("clinic")
    )
    tagging = events.json()[0]["id"]
    late = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    fix = event("corrected", bag["code"], minutes=40, corrects=tagging, event_time=late)
    refused = await post_event(client, world, "clinic", fix)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "event_time"
    earlier = event("tagged", minutes=30)["device_time"]  # past the collection's device time
    fix = event("corrected", bag["code"], minutes=40, corrects=tagging, event_time=earlier)
    assert (await post_event(client, world, "clinic", fix)).status_code == 201


async def test_a_batch_cannot_contain_itself(client: httpx.AsyncClient, world: World) -> None:
    container = await tag_bag(
        client, world, "carrier", producer_organization_id=world.orgs["carrier"].id
    )
    response = await post_event(
        client,
        world,
        "carrier",
        event("aggregated", container["code"], minutes=30, children=[container["code"]]),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "children[0]"


async def test_correction_names_the_event_and_keeps_the_original(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="received")
    events = (
        await client.get(f"/m/v1/batches/{batch['code']}/events", headers=world.headers("facility"))
    ).json()
    received = events[-1]
    by_other = await post_event(
        client,
        world,
        "carrier",
        event("corrected", batch["code"], minutes=80, corrects=received["id"], weight_kg="3.9"),
    )
    assert by_other.status_code == 403
    fixed = await post_event(
        client,
        world,
        "facility",
        event(
            "corrected",
            batch["code"],
            minutes=80,
            corrects=received["id"],
            weight_kg="3.9",
            reason="scale recalibrated",
        ),
    )
    assert fixed.status_code == 201
    events = (
        await client.get(f"/m/v1/batches/{batch['code']}/events", headers=world.headers("facility"))
    ).json()
    assert events[3]["weight_kg"] == "3.400"
    assert events[-1]["corrects_id"] == received["id"]
    assert events[-1]["state_after"] == "received"


async def test_cancel_only_before_collection(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="collected")
    late = await post_event(
        client, world, "clinic", event("cancelled", batch["code"], minutes=20, reason="mistake")
    )
    assert late.status_code == 409
    fresh = await tag_bag(client, world)
    ok = await post_event(
        client,
        world,
        "clinic",
        event("cancelled", fresh["code"], minutes=5, reason="wrong category"),
    )
    assert ok.json()["state"] == "cancelled"


async def test_auditor_cannot_record_events(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world)
    response = await post_event(
        client, world, "auditor", event("cancelled", batch["code"], minutes=5, reason="x")
    )
    assert response.status_code == 403


async def test_manager_sees_only_their_region_subtree(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    city = await client.get(f"/m/v1/batches/{batch['code']}", headers=world.headers("manager"))
    assert city.status_code == 200
    town = await client.get(f"/m/v1/batches/{batch['code']}", headers=world.headers("town_manager"))
    assert town.status_code == 404


async def test_device_time_in_the_future_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    response = await post_event(
        client, world, "carrier", event("collected", batch["code"], minutes=60 * 24)
    )
    assert response.status_code == 422
    assert response.json()["field"] == "device_time"
