"""The one base model every API contract builds on."""

from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

# PostgreSQL stores no NUL character in text or JSON: refused at the edge, naming the field.
NO_NUL = r"^[^\x00]*$"
INT32_MAX = 2**31 - 1

Text = Annotated[str, StringConstraints(pattern=NO_NUL)]
"""Any string the API accepts: no NUL characters; lengths come from the column, per field."""

Id = Annotated[int, Interval(ge=1, le=INT32_MAX)]
"""A row id: the columns are PostgreSQL integers (int32)."""

Int32 = Annotated[int, Interval(ge=-INT32_MAX - 1, le=INT32_MAX)]

Key = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
"""A short name used as a JSON object key (item counts, indicator scores)."""

Code = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=NO_NUL)]
"""A code, a signed token or a scanned URL in a path or query."""


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


def rule_error(field: str, message: str) -> PydanticCustomError:
    """A rule across several fields (raised in a model_validator) that names the field the
    client must fix: ``error_field`` appends it to the model's location."""
    return PydanticCustomError("model_rule", message, {"field": field})


def error_field(error: Any) -> str:
    """The field a pydantic error names: its location, and a model rule's own field."""
    name = field_of(error["loc"])
    own = (error.get("ctx") or {}).get("field") if error.get("type") == "model_rule" else None
    if own:
        return f"{name}.{own}" if name else str(own)
    return name


class Definition(Schema):
    """What a figure means: the formula in words, and the standard, plan chapter or local
    practice it comes from."""

    formula: str
    source: str


class Ratio(Schema):
    """A rate is never shown bare: numerator, denominator and unit come with it."""

    numerator: Decimal
    denominator: Decimal
    rate: Decimal | None
    unit: str
    # Published figures carry their definition; helper ratios have none, and say nothing.
    definition: Definition | None = Field(None, exclude_if=lambda value: value is None)
