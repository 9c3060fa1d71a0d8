"""Every route answering a file declares it in OpenAPI as a binary string (so a generated
client keeps the bytes), and every table route its CSV and XLSX variants."""

from typing import Any

import httpx
from fastapi import FastAPI

from mobile_api.media import BINARY, CSV, PDF, PNG, XLSX
from tests.custody.helpers import tag_bag
from tests.factories import World

FILES = {
    ("get", "/m/v1/batches/{code}/label.png", "200"): {PNG},
    ("post", "/m/v1/labels", "201"): {PDF},
    ("get", "/m/v1/sites/{code}/label.png", "200"): {PNG},
    ("get", "/m/v1/berths/{code}/label.png", "200"): {PNG},
    ("get", "/m/v1/deliveries/{delivery_id}/receipt.pdf", "200"): {PDF},
    ("get", "/m/v1/manifests/{manifest_id}/manifest.pdf", "200"): {PDF},
    ("get", "/m/v1/pesticide/ledger.{extension}", "200"): {CSV, XLSX},
}
# Media types that are not files: JSON documents, the public pages, Prometheus' text.
NOT_FILES = {
    "application/json",
    "application/problem+json",
    "application/ld+json",
    "text/html",
    "text/plain",
}


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def test_file_routes_declare_only_binary_content(app: FastAPI) -> None:
    document = app.openapi()["paths"]
    for (method, path, status), media in FILES.items():
        content = document[path][method]["responses"][status]["content"]
        assert set(content) == media, path
        assert all(body["schema"] == BINARY for body in content.values()), path


def test_every_declared_file_is_binary_and_every_table_offers_csv_and_xlsx(app: FastAPI) -> None:
    tables = 0
    for method, path, operation in operations(app):
        for status, response in operation["responses"].items():
            for media, body in response.get("content", {}).items():
                if media not in NOT_FILES:
                    assert body.get("schema") == BINARY, (method, path, status, media)
        if any(p["name"] == "format" for p in operation.get("parameters", [])):
            tables += 1
            content = operation["responses"]["200"]["content"]
            assert {CSV, XLSX} <= set(content), path
            assert "application/json" in content, path
    assert tables >= 10


async def test_a_declared_table_really_comes_as_csv(
    client: httpx.AsyncClient, world: World
) -> None:
    await tag_bag(client, world)
    response = await client.get(
        "/m/v1/metrics/utilization", params={"format": "csv"}, headers=world.headers("manager")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == CSV
