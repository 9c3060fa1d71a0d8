"""Zero-waste cells."""

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from schemas.base import Day, Definition, Id, Key, Ratio, Schema, Text


class CellCreate(Schema):
    cell_type: Text = Field(max_length=32)
    name: Text = Field(min_length=1, max_length=128)
    region_id: Id
    organization_id: Id | None = None


class CellRead(Schema):
    id: int
    cell_type: str
    name: str
    region_id: int
    organization_id: int | None


class Entered(Schema):
    value: Decimal = Field(ge=0, le=100)
    evidence: Text = Field(min_length=1, max_length=500, description="document, visit, photo…")


class AssessmentCreate(Schema):
    level: Literal["county", "city", "province"]
    assessed_on: Day
    entered: dict[Key, Entered] = Field(default_factory=dict)


class AssessmentRead(Schema):
    id: int
    cell_id: int
    level: str
    assessed_on: date
    expires_on: date
    scores: dict[str, Any]
    total: Decimal
    tier: str


class TypeShare(Schema):
    cell_type: str
    name_zh: str
    share: Ratio


class CellAchievementRead(Schema):
    today: date
    target_share: Decimal
    share: Ratio
    types: list[TypeShare]
    definition: Definition
