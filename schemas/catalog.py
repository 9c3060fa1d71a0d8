"""The reference catalog as the API shows it."""

from decimal import Decimal

from pydantic import Field

from schemas.base import Schema


class StreamRead(Schema):
    code: str
    name_zh: str
    name_en: str
    default_unit: str
    source: str
    edition: str


class CategoryRead(Schema):
    key: str
    stream: str = Field(validation_alias="stream_id")
    parent_key: str | None
    code: str
    name_zh: str
    name_en: str
    colour: str | None
    hazard: list[str]
    storage_limit_hours: int | None
    density_kg_m3: Decimal | None
    level: int | None
    waste_code: str | None = Field(None, description="the 名录 code the category fixes")
    waste_code_pattern: str | None = Field(
        None, description="the pattern its 名录 codes match (inherited when both are null)"
    )
    scheme: str
    scheme_version: str
    source: str
    edition: str


class MethodRead(Schema):
    code: str
    name_zh: str
    name_en: str
    mode: str
    source: str
    edition: str
