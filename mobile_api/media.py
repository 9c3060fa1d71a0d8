"""Files the API answers (PNG labels, PDF documents, CSV and XLSX tables), declared in the
OpenAPI document as binary strings so that a generated client keeps their bytes."""

from typing import Any

from fastapi import FastAPI

from mobile_api import openapi

PNG = "image/png"
PDF = "application/pdf"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BINARY: dict[str, str] = {"type": "string", "format": "binary"}


def binary(
    *media_types: str,
    status: int = 200,
    description: str = "The file",
    headers: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering a file in one of media_types, with the `headers`
    it may carry (a next file's `Link`)."""
    content = {media: {"schema": dict(BINARY)} for media in media_types}
    answer: dict[str, Any] = {"description": description, "content": content}
    if headers:
        answer["headers"] = headers
    return {status: answer}


def document_tables(app: FastAPI) -> None:
    """A route taking ``?format=`` (mobile_api.tables.Format) also answers its table as CSV or
    XLSX: add both to its 200 response in the OpenAPI document."""

    def edit(document: openapi.Document) -> None:
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                parameters = operation.get("parameters", [])
                if not any(p["name"] == "format" and p["in"] == "query" for p in parameters):
                    continue
                ok = operation.setdefault("responses", {}).setdefault(
                    "200", {"description": "Successful Response"}
                )
                ok.setdefault("content", {}).update(
                    binary(CSV, XLSX)[200]["content"],
                )

    openapi.extend(app, edit)
