"""The one base model every API contract builds on."""

from decimal import Decimal

from wastetrack.core.commands import (
    INT32_MAX,
    NO_CONTROL,
    Boolean,
    Code,
    Command,
    Day,
    Id,
    Int32,
    Integer,
    Key,
    MapKey,
    Moment,
    QueryBoolean,
    Scanned,
    SearchedFor,
    Text,
    error_field,
    field_of,
    rule_error,
)

__all__ = [
    "INT32_MAX",
    "NO_CONTROL",
    "Boolean",
    "Code",
    "Day",
    "Definition",
    "Id",
    "Int32",
    "Integer",
    "Key",
    "MapKey",
    "Moment",
    "QueryBoolean",
    "Ratio",
    "Scanned",
    "Schema",
    "SearchedFor",
    "Text",
    "error_field",
    "field_of",
    "rule_error",
]


class Schema(Command):
    """The base of every API contract: the domain's command rules (no unknown fields, strings
    stripped, read from attributes), for answers as well as requests."""


class Definition(Schema):
    """What a figure means: the formula in words, and the standard, plan chapter or local
    practice it comes from."""

    formula: str
    source: str


class Ratio(Schema):
    """A rate is never shown bare: numerator, denominator, unit and definition come with it."""

    numerator: Decimal
    denominator: Decimal
    rate: Decimal | None
    unit: str
    definition: Definition
