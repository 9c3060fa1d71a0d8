"""Every JSON answer declares its fields in the OpenAPI document (docs/architecture.md: schemas/
holds the response models), so a dropped or renamed field fails the contract and a generated
client gets types; the few free-form answers are named here, each for its reason."""

from typing import Any

from fastapi import FastAPI

FREE_FORM = {
    # Counts by alert kind: a mapping of integers, its keys the kinds.
    ("post", "/m/v1/alerts/refresh"),
    # The cells' configuration (types, criteria, weights, tiers), data of the edition.
    ("get", "/m/v1/cell-types"),
    # Strings by name: the key and how to check a checkpoint with it.
    ("get", "/p/v1/checkpoints/key"),
    # Probes for a load balancer or an operator, not for clients.
    ("get", "/healthz"),
    ("get", "/readyz"),
}


def declared(schema: dict[str, Any]) -> bool:
    item = schema.get("items", schema) if schema.get("type") == "array" else schema
    return "$ref" in item or "properties" in item or "anyOf" in item


def test_every_json_answer_declares_its_fields(app: FastAPI) -> None:
    free = set()
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation.get("responses", {}).items():
                json = answer.get("content", {}).get("application/json")
                if status.startswith("2") and json is not None and not declared(json["schema"]):
                    free.add((method, path))
    assert free == FREE_FORM


def test_the_epcis_history_is_declared_as_json_ld_only(app: FastAPI) -> None:
    """GS1 EPCIS 2.0 JSON-LD has its own standard's schema: the route answers
    application/ld+json, and declares no application/json answer it never gives."""
    answer = app.openapi()["paths"]["/m/v1/batches/{code}/epcis.jsonld"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {"application/ld+json"}
