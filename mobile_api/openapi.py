"""The OpenAPI document, extended past what FastAPI generates: each extension edits the
document once, when it is first built."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Document = dict[str, Any]


def extend(app: FastAPI, edit: Callable[[Document], None]) -> None:
    """Have `edit` change the app's OpenAPI document after everything added before it."""
    build = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        edit(document)
        app.openapi_schema = document
        return document

    # FastAPI's documented way to extend the generated schema; mypy forbids assigning a method.
    app.openapi = openapi  # type: ignore[method-assign]
