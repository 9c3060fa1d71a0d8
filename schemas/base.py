"""The one base model every API contract builds on."""

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True, str_strip_whitespace=True)


def field_of(location: tuple[Any, ...] | list[Any]) -> str:
    """'events[3].weight_kg' style names from a pydantic error location."""
    parts: list[str] = []
    for part in location:
        if isinstance(part, int) and parts:
            parts[-1] = f"{parts[-1]}[{part}]"
        elif isinstance(part, int):
            parts.append(f"[{part}]")
        elif part not in ("body", "query", "path", "form"):
            parts.append(str(part))
    return ".".join(parts)


class Ratio(Schema):
    """A rate is never shown bare: numerator, denominator and unit come with it."""

    numerator: Decimal
    denominator: Decimal
    rate: Decimal | None
    unit: str
