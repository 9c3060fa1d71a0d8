"""A route that answers a resend with what its first send recorded (200 beside the first send's
201, docs/integrations.md) says so in the OpenAPI document, in the same shape, so a generated
client reads both answers alike. Each route's own tests send the resend and check the 200."""

from typing import Any

from fastapi import FastAPI

RESENDS = {
    ("post", "/m/v1/events"),
    ("post", "/m/v1/batches"),
    ("post", "/m/v1/photos"),
    ("post", "/m/v1/pickups"),
    ("post", "/m/v1/deliveries"),
    ("post", "/m/v1/cleanups"),
    ("post", "/m/v1/float-replacements"),
    ("post", "/m/v1/pesticide/returns"),
    ("post", "/m/v1/pesticide/consignments"),
    ("post", "/m/v1/pesticide/sales"),
    ("post", "/m/v1/cells/{cell_id}/assessments"),
}


def json_schema(response: dict[str, Any]) -> Any:
    return response["content"]["application/json"]["schema"]


def test_every_resend_answer_is_documented_in_the_shape_of_the_first(app: FastAPI) -> None:
    both = {
        (method, path): operation["responses"]
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if {"200", "201"} <= set(operation.get("responses", {}))
    }
    assert set(both) == RESENDS
    for route, responses in both.items():
        assert json_schema(responses["200"]) == json_schema(responses["201"]), route
        assert "first send" in responses["200"]["description"], route
