"""A batch's history as EPCIS 2.0, validated against GS1's published JSON schema."""

import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from tests.custody.helpers import advance, post_event, tag_bag
from tests.factories import World, event

# GS1's published schema, vendored with its licence and origin (see tests/data/epcis/README.md).
EPCIS_DATA = Path(__file__).resolve().parents[1] / "data" / "epcis"
SCHEMA = EPCIS_DATA / "EPCIS-JSON-Schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    assert SCHEMA.is_file(), f"GS1's EPCIS 2.0 schema not found at {SCHEMA}"
    schema = json.loads(SCHEMA.read_text("utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


async def test_bag_history_validates_against_the_gs1_schema(
    client: httpx.AsyncClient, world: World, validator: jsonschema.Draft7Validator
) -> None:
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(
        client, world, carrier_organization_id=carrier, latitude=37.2, longitude=122.5
    )
    load = await tag_bag(
        client, world, "carrier", producer_organization_id=carrier, category="med.hw01"
    )
    await post_event(client, world, "carrier", event("collected", bag["code"], minutes=5))
    events = (
        await client.get(f"/m/v1/batches/{bag['code']}/events", headers=world.headers("clinic"))
    ).json()
    corrected = await post_event(
        client,
        world,
        "carrier",
        event(
            "corrected",
            bag["code"],
            minutes=6,
            corrects=events[1]["id"],
            latitude=37.21,
            longitude=122.51,
        ),
    )
    assert corrected.status_code == 201, corrected.text
    await post_event(
        client,
        world,
        "carrier",
        event("aggregated", load["code"], minutes=8, children=[bag["code"]]),
    )
    await advance(client, world, load["code"], until="treated")
    for code, who in ((bag["code"], "clinic"), (load["code"], "carrier")):
        response = await client.get(
            f"/m/v1/batches/{code}/epcis.jsonld", headers=world.headers(who)
        )
        assert response.headers["content-type"] == "application/ld+json"
        document = response.json()
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == []
        for item in document["epcisBody"]["eventList"]:
            assert [] == [
                e.message for e in validator.iter_errors({"@context": document["@context"], **item})
            ]
    bag_events = (
        await client.get(
            f"/m/v1/batches/{bag['code']}/epcis.jsonld", headers=world.headers("clinic")
        )
    ).json()["epcisBody"]
    types = [(e["type"], e.get("bizStep")) for e in bag_events["eventList"]]
    assert types == [
        ("ObjectEvent", "commissioning"),
        ("ObjectEvent", "collecting"),
        ("ObjectEvent", "inspecting"),
        ("AggregationEvent", "packing"),
    ]
    tagged, collected = bag_events["eventList"][:2]
    assert tagged["quantityList"] == [
        {
            "epcClass": "https://id.wastetrack.dev/category/med.infectious",
            "quantity": 3.5,
            "uom": "KGM",
        }
    ]
    assert tagged["readPoint"] == {"id": "geo:37.2,122.5"}
    assert collected["errorDeclaration"]["reason"] == "incorrect_data"
    load_events = (
        await client.get(
            f"/m/v1/batches/{load['code']}/epcis.jsonld", headers=world.headers("carrier")
        )
    ).json()
    last = load_events["epcisBody"]["eventList"][-1]
    assert (last["type"], last["action"], last["disposition"]) == (
        "ObjectEvent",
        "DELETE",
        "destroyed",
    )


def test_a_broken_document_is_caught(validator: jsonschema.Draft7Validator) -> None:
    broken = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "ObjectEvent",
        "eventTime": "2026-11-29T00:00:00Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "SHRED",
    }
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("example", ["example-ObjectEvent.json", "example-AggregationEvent.json"])
def test_gs1_examples_validate(validator: jsonschema.Draft7Validator, example: str) -> None:
    document = json.loads((EPCIS_DATA / example).read_text("utf-8"))
    assert [e.message for e in validator.iter_errors(document)] == []
