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
        ("ObjectEvent", "collecting"),  # the correction, as the collection it corrects
        ("AggregationEvent", "packing"),
    ]
    tagged, collected, corrective = bag_events["eventList"][:3]
    assert tagged["quantityList"] == [
        {
            "epcClass": "https://id.wastetrack.dev/category/med.infectious",
            "quantity": 3.5,
            "uom": "KGM",
        }
    ]
    assert tagged["readPoint"] == {"id": "geo:37.2,122.5"}
    assert collected["errorDeclaration"]["reason"] == "incorrect_data"
    assert collected["errorDeclaration"]["correctiveEventIDs"] == [corrective["eventID"]]
    assert corrective["eventID"] == f"urn:uuid:{corrected.json()['event_id']}"
    assert corrective["readPoint"] == {"id": "geo:37.21,122.51"}
    assert "errorDeclaration" not in corrective
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


def _in_force(document: dict) -> list[dict]:
    """What a consumer following EPCIS 2.0 keeps: every event not declared wrong."""
    return [e for e in document["epcisBody"]["eventList"] if "errorDeclaration" not in e]


async def test_a_correction_is_the_corrective_event_of_what_it_corrects(
    client: httpx.AsyncClient, world: World, validator: jsonschema.Draft7Validator
) -> None:
    """A correction was written as an `inspecting` observation carrying none of what it
    corrected, while the event it corrected was declared wrong: a consumer keeping what is not
    declared wrong lost the commissioning of a corrected bag, the destruction of a storage
    corrected into disposal, the refusal of a receipt corrected into a rejection. Each
    correction is now the event it corrects as the corrections so far leave it; an undone
    aggregation leaves nothing in force."""
    carrier = world.orgs["carrier"].id

    async def document(code: str) -> dict:
        read = await client.get(
            f"/m/v1/batches/{code}/epcis.jsonld", headers=world.headers("clinic")
        )
        assert [e.message for e in validator.iter_errors(read.json())] == []
        return read.json()

    async def correct(who: str, code: str, minutes: int, target: str, **fields: object) -> None:
        fix = event("corrected", code, minutes=minutes, corrects=target, **fields)
        response = await post_event(client, world, who, fix)
        assert response.status_code == 201, response.text

    # A tagging corrected twice: three commissionings, the last one in force.
    bag = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    tagging = await client.get(f"/m/v1/batches/{bag}/events", headers=world.headers("clinic"))
    first = tagging.json()[0]["id"]
    await correct("clinic", bag, 2, first, quantity="4")
    await correct("clinic", bag, 3, first, quantity="4.5")
    items = (await document(bag))["epcisBody"]["eventList"]
    assert [(e["quantityList"][0]["quantity"], e["eventID"]) for e in items] == [
        (3.5, f"urn:uuid:{first}"),
        (4.0, items[1]["eventID"]),
        (4.5, items[2]["eventID"]),
    ]
    assert [e.get("errorDeclaration", {}).get("correctiveEventIDs") for e in items] == [
        [items[1]["eventID"]],
        [items[2]["eventID"]],
        None,
    ]
    # A storage corrected into disposal is a destruction; a receipt corrected into a
    # rejection a non-conformant receipt.
    for who, step, fields, says in (
        ("facility", "treated", {"method": "D10"}, ("destroying", "destroyed")),
        (
            "facility",
            "received",
            {"outcome": "rejected", "reason": "渗漏"},
            ("receiving", "non_conformant"),
        ),
    ):
        code = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
        await advance(client, world, code, until="received")
        if step == "treated":
            stored = event("treated", code, minutes=100, method="D15")
            assert (await post_event(client, world, "facility", stored)).status_code == 201
        steps = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
        target = [e for e in steps.json() if e["event_type"] == step][-1]["id"]
        await correct(who, code, 110, target, **fields)
        kept = _in_force(await document(code))
        assert (kept[-1]["bizStep"], kept[-1]["disposition"]) == says
    # An aggregation undone: the bag was never in the box, and no packing stays in force.
    box = (
        await tag_bag(
            client, world, "carrier", producer_organization_id=carrier, category="med.hw01"
        )
    )["code"]
    collected = await post_event(client, world, "carrier", event("collected", bag, minutes=5))
    assert collected.status_code == 201, collected.text
    packed = await post_event(
        client, world, "carrier", event("aggregated", box, minutes=8, children=[bag])
    )
    assert packed.status_code == 201, packed.text
    steps = await client.get(f"/m/v1/batches/{bag}/events", headers=world.headers("clinic"))
    aggregation = [e for e in steps.json() if e["event_type"] == "aggregated"][-1]["id"]
    await correct("carrier", bag, 9, aggregation, aggregated=False)
    items = (await document(bag))["epcisBody"]["eventList"]
    (added,) = [e for e in items if e["type"] == "AggregationEvent"]
    assert "correctiveEventIDs" not in added["errorDeclaration"]
    assert [e["bizStep"] for e in _in_force({"epcisBody": {"eventList": items}})] == [
        "commissioning",
        "collecting",
    ]


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
