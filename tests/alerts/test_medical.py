"""Medical waste: overdue storage raises an alert, a bag's fate inside a round, coverage."""

from datetime import UTC, datetime, timedelta

import httpx

from tests.custody.helpers import collect, post_event, tag_bag
from tests.factories import World, event
from wastetrack.alerts.models import Alert


def hours_ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


async def test_bag_left_past_48_hours_raises_one_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    old = await tag_bag(client, world, device_time=hours_ago(50))
    await tag_bag(client, world, device_time=hours_ago(2))
    collected = await tag_bag(
        client, world, device_time=hours_ago(60), carrier_organization_id=world.orgs["carrier"].id
    )
    assert (
        await post_event(client, world, "carrier", event("collected", collected["code"], minutes=0))
    ).status_code == 201
    for _ in range(2):  # a second round raises nothing new
        await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
        listed = (await client.get("/m/v1/alerts", headers=world.headers("clinic"))).json()
        assert [(a["kind"], a["details"]["code"]) for a in listed] == [
            ("overdue_storage", old["code"])
        ]
    assert await Alert.all().count() == 1
    other = (await client.get("/m/v1/alerts", headers=world.headers("other_clinic"))).json()
    assert other == []


async def test_only_managers_acknowledge_and_only_once(
    client: httpx.AsyncClient, world: World
) -> None:
    await tag_bag(client, world, device_time=hours_ago(50))
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    (alert,) = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    refused = await client.post(f"/m/v1/alerts/{alert['id']}/ack", headers=world.headers("clinic"))
    assert refused.status_code == 403
    done = await client.post(f"/m/v1/alerts/{alert['id']}/ack", headers=world.headers("manager"))
    assert done.json()["acknowledged_by_id"] == world.users["manager"].id
    again = await client.post(f"/m/v1/alerts/{alert['id']}/ack", headers=world.headers("manager"))
    assert again.status_code == 409
    assert (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json() == []


async def test_clinic_follows_its_bag_through_the_carriers_round(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    neighbour = await tag_bag(client, world, "other_clinic", carrier_organization_id=carrier)
    load = await tag_bag(
        client, world, "carrier", producer_organization_id=carrier, category="med.hw01"
    )
    await collect(client, world, bag["code"], neighbour["code"])
    steps = [
        ("carrier", event("collected", load["code"], minutes=5)),
        (
            "carrier",
            event(
                "aggregated", load["code"], minutes=10, children=[bag["code"], neighbour["code"]]
            ),
        ),
        (
            "carrier",
            event(
                "in_transit",
                load["code"],
                minutes=20,
                destination_organization_id=world.orgs["facility"].id,
            ),
        ),
        (
            "facility",
            event("received", load["code"], minutes=60, outcome="accepted", weight_kg="7.1"),
        ),
        ("facility", event("treated", load["code"], minutes=90, method="D10")),
    ]
    for who, body in steps:
        response = await post_event(client, world, who, body)
        assert response.status_code == 201, response.text
    fate = (
        await client.get(f"/m/v1/batches/{bag['code']}/fate", headers=world.headers("clinic"))
    ).json()
    assert fate["state"] == "aggregated"
    assert fate["containers"] == [load["code"]]
    assert (fate["fate_state"], fate["method"], fate["mode"]) == ("treated", "D10", "disposal")
    assert fate["fate"] == "disposed_harmless"
    # The method corrected, the fate reports the batch as the metrics count it.
    treated = (
        await client.get(f"/m/v1/batches/{load['code']}/events", headers=world.headers("carrier"))
    ).json()[-1]
    fix = event("corrected", load["code"], minutes=95, corrects=treated["id"], method="D9")
    assert (await post_event(client, world, "facility", fix)).status_code == 201
    fate = (
        await client.get(f"/m/v1/batches/{bag['code']}/fate", headers=world.headers("clinic"))
    ).json()
    assert (fate["fate_state"], fate["method"], fate["mode"]) == ("treated", "D9", "disposal")
    own = await client.get(f"/m/v1/batches/{load['code']}/fate", headers=world.headers("carrier"))
    assert (own.json()["fate"], own.json()["method"]) == ("container", "D9")
    hidden = await client.get(
        f"/m/v1/batches/{neighbour['code']}/fate", headers=world.headers("clinic")
    )
    assert hidden.status_code == 404


async def test_coverage_counts_small_clinics_apart(client: httpx.AsyncClient, world: World) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await post_event(client, world, "carrier", event("collected", bag["code"], minutes=5))
    await tag_bag(client, world, "other_clinic")  # tagged, never collected
    coverage = (
        await client.get(
            "/m/v1/metrics/medical-coverage", params={"days": 30}, headers=world.headers("manager")
        )
    ).json()
    assert coverage["all_institutions"]["numerator"] == "1"
    assert coverage["all_institutions"]["denominator"] == "2"
    assert coverage["small_institutions"]["rate"] == "0.5000"
    assert coverage["days"] == 30
    assert [m["name"] for m in coverage["not_collected"]] == ["石岛卫生院"]
    assert (
        await client.get("/m/v1/metrics/medical-coverage", headers=world.headers("clinic"))
    ).status_code == 403


async def test_metrics_narrow_to_a_sub_region_but_not_beyond_yours(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await post_event(client, world, "carrier", event("collected", bag["code"], minutes=5))
    url = "/m/v1/metrics/medical-coverage"
    town = await client.get(
        url, params={"region_id": world.regions["other_town"].id}, headers=world.headers("manager")
    )
    assert town.json()["all_institutions"]["denominator"] == "1"  # only 石岛卫生院
    assert town.json()["all_institutions"]["numerator"] == "0"
    beyond = await client.get(
        url, params={"region_id": world.regions["town"].id}, headers=world.headers("town_manager")
    )
    assert (beyond.status_code, beyond.json()["field"]) == (404, "region_id")
