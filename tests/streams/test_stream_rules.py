"""Stream rules live in the catalog: fields required at tagging, methods allowed per stream."""

import httpx

from tests.custody.helpers import advance, post_event, tag_bag
from tests.factories import World, event, medical_bag
from wastetrack.registry import service as registry


async def test_hazardous_waste_needs_code_and_characteristics(
    client: httpx.AsyncClient, world: World
) -> None:
    base = medical_bag(stream="hazardous", category="hw.08")
    base.pop("event_type")
    no_code = await client.post("/m/v1/batches", json=base, headers=world.headers("clinic"))
    assert (no_code.status_code, no_code.json()["field"]) == (422, "waste_code")
    no_hazard = await client.post(
        "/m/v1/batches", json={**base, "waste_code": "900-249-08"}, headers=world.headers("clinic")
    )
    assert (no_hazard.status_code, no_hazard.json()["field"]) == (422, "hazard")
    unknown = await client.post(
        "/m/v1/batches",
        headers=world.headers("clinic"),
        json={**base, "waste_code": "900-249-08", "hazard": ["X"]},
    )
    assert unknown.json()["field"] == "hazard[0]"
    ok = await client.post(
        "/m/v1/batches",
        headers=world.headers("clinic"),
        json={**base, "waste_code": "900-249-08", "hazard": ["T", "I"]},
    )
    assert ok.json()["hazard"] == ["T", "I"]


async def test_medical_bag_inherits_its_category_hazard(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world)
    assert bag["hazard"] == ["In"]


async def test_medical_waste_only_by_methods_allowed_for_the_stream(
    client: httpx.AsyncClient, world: World
) -> None:
    # Even a licence that names R1 cannot make energy recovery a medical-waste method.
    await registry.add_licence(
        organization_id=world.orgs["facility"].id,
        category_key="med.hw01",
        method_codes=["D9", "D10", "R1"],
    )
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="received")
    refused = await post_event(
        client, world, "facility", event("treated", batch["code"], minutes=90, method="R1")
    )
    assert refused.status_code == 409
    assert refused.json()["field"] == "method"
    assert "D9, D10, D15" in refused.json()["detail"]


async def test_hazardous_waste_moves_only_on_a_signed_manifest(
    client: httpx.AsyncClient, world: World
) -> None:
    body = medical_bag(
        stream="hazardous",
        category="hw.08",
        waste_code="900-249-08",
        hazard=["T"],
        carrier_organization_id=world.orgs["carrier"].id,
    )
    body.pop("event_type")
    batch = (await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))).json()
    # Not even collected: every change of hands needs a manifest naming the taker.
    moved = await post_event(client, world, "carrier", event("collected", batch["code"], minutes=5))
    assert (moved.status_code, moved.json()["field"]) == (409, "batch")
    assert "manifest" in moved.json()["detail"]
    household = await tag_bag(
        client,
        world,
        stream="household",
        category="hh.hazardous.battery",
        carrier_organization_id=world.orgs["carrier"].id,
    )
    await post_event(client, world, "carrier", event("collected", household["code"], minutes=5))
    exempt = await post_event(
        client, world, "carrier", event("in_transit", household["code"], minutes=10)
    )
    assert exempt.status_code == 201
