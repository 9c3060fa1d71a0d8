"""Reference data shipped inside the package: versioned JSON files with source and edition."""

import json
from importlib import resources
from typing import Any


def read_data_file(package: str, name: str) -> dict[str, Any]:
    """`<package>/data/<name>` parsed."""
    text = resources.files(package).joinpath("data", name).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data
