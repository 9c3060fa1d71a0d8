"""The sync body in the OpenAPI document is the union the server reads, told apart by `kind`
(docs/custody.md, "Exactly once: sync"): what the document takes, the server takes as the
same kind, so a generated client knows each entry's shape."""

from typing import Any

import httpx
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from tests.factories import World, event
from tests.household.test_sorting import pickup, point_url

__all__ = ["point_url"]  # the collection point's fixture, for the pickup


def problems(app: FastAPI, body: dict[str, Any]) -> list[str]:
    """What the document's schema of a sync body finds wrong with `body`."""
    document = app.openapi()
    request = document["paths"]["/m/v1/sync"]["post"]["requestBody"]
    schema = request["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    return [error.message for error in validator.iter_errors(body)]


def test_the_entries_are_a_union_told_apart_by_kind(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    entries = schemas["SyncRequest"]["properties"]["events"]["items"]
    mapping = entries["discriminator"]["mapping"]
    assert entries["discriminator"]["propertyName"] == "kind"
    assert list(mapping) == ["event", "delivery", "cleanup", "pickup", "return"]
    assert [m["$ref"] for m in entries["oneOf"]] == list(mapping.values())
    for kind, ref in mapping.items():
        member = schemas[ref.rsplit("/", 1)[1]]
        assert member["properties"]["kind"]["const"] == kind
        assert ("kind" in member["required"]) == (kind != "event"), kind
    # Posted alone, a record needs no kind, and an event takes none.
    assert "kind" not in schemas["PickupCreate"].get("required", [])
    assert "kind" not in schemas["EventCreate"]["properties"]


async def test_an_event_marked_kind_event_is_valid_and_applied(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    tagging = {
        **event("tagged"),
        "kind": "event",
        "stream": "medical",
        "category": "med.infectious",
        "quantity": "1.5",
        "unit": "kg",
    }
    body = {"events": [tagging]}
    assert problems(app, body) == []
    response = await client.post("/m/v1/sync", json=body, headers=world.headers("clinic"))
    assert (response.status_code, response.json()["applied"]) == (200, 1), response.text


async def test_a_record_without_its_kind_is_invalid_by_the_document_as_by_the_server(
    app: FastAPI, client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """An entry naming no kind is a custody event: a pickup's fields without `kind` are no
    valid entry, for the document as for the server; with its kind, the pickup is both."""
    bare = pickup(point_url)
    bare.pop("kind", None)
    assert problems(app, {"events": [bare]}) != []
    refused = await client.post(
        "/m/v1/sync", json={"events": [bare]}, headers=world.headers("collector")
    )
    assert refused.json()["results"][0]["status"] == "rejected", refused.json()
    marked = {**bare, "kind": "pickup"}
    assert problems(app, {"events": [marked]}) == []
    applied = await client.post(
        "/m/v1/sync", json={"events": [marked]}, headers=world.headers("collector")
    )
    assert applied.json()["results"][0]["status"] == "applied", applied.json()
