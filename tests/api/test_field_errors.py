"""A rule across several fields (a model validator) is refused naming the field to fix, in a
single request and in an offline sync alike."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.custody.helpers import tag_bag
from tests.factories import World, event


async def test_event_missing_a_field_of_its_type_names_it(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    for body, field in (
        (event("treated", batch["code"], minutes=5), "method"),
        (event("cancelled", batch["code"], minutes=5), "reason"),
        (event("cancelled", batch["code"], minutes=5, reason=""), "reason"),
        (event("cancelled", batch["code"], minutes=5, reason="   "), "reason"),
        (event("collected", minutes=5), "batch"),
        (event("collected", batch["code"], minutes=5, latitude=37.2), "longitude"),
    ):
        response = await client.post("/m/v1/events", json=body, headers=world.headers("carrier"))
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["field"] == field, problem
        assert problem["detail"].startswith(f"{field}: ")


async def test_offline_sync_reports_the_field_of_a_model_rule(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    response = await client.post(
        "/m/v1/sync",
        json={"events": [event("treated", batch["code"], minutes=5)]},
        headers=world.headers("carrier"),
    )
    (result,) = response.json()["results"]
    assert (result["status"], result["error"]["field"]) == ("rejected", "method")


async def test_delivery_rules_name_the_field_and_the_line(
    client: httpx.AsyncClient, world: World
) -> None:
    now = datetime.now(UTC)
    body = {
        "client_event_id": str(uuid.uuid4()),
        "berth": "X",
        "vessel_id": 1,
        "started_at": now.isoformat(),
        "ended_at": (now - timedelta(hours=1)).isoformat(),
        "lines": [{"annex_v": "A", "scheme_version": "2018", "volume_m3": "0.5"}],
    }
    reversed_times = await client.post("/m/v1/deliveries", json=body, headers=world.headers("port"))
    assert reversed_times.json()["field"] == "ended_at"
    body["ended_at"] = (now + timedelta(hours=1)).isoformat()
    body["lines"] = [body["lines"][0], {"annex_v": "A"}]
    line = await client.post("/m/v1/deliveries", json=body, headers=world.headers("port"))
    assert (line.status_code, line.json()["field"]) == (422, "lines[1].scheme_version")
    # A catalog key with a scheme version says two things: refused, not read as one.
    body["lines"] = [body["lines"][0], {"category": "marine.sewage", "scheme_version": "2013"}]
    both = await client.post("/m/v1/deliveries", json=body, headers=world.headers("port"))
    assert (both.status_code, both.json()["field"]) == (422, "lines[1].scheme_version")
