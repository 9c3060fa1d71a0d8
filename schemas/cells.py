"""Zero-waste cells."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from schemas.base import Day, Definition, Id, MapKey, Ratio, Schema, Text


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
    # Kept and judged to the hundredth of a per cent, as written: 89.995 would be kept as
    # 90.00 and pass a threshold of 90 unsaid (as an indicator's entered value, two places).
    value: Decimal = Field(ge=0, le=100, max_digits=5, decimal_places=2)
    evidence: Text = Field(min_length=1, max_length=500, description="document, visit, photo…")


class AssessmentCreate(Schema):
    level: Literal["county", "city", "province"]
    assessed_on: Day
    entered: dict[MapKey, Entered] = Field(default_factory=dict)


class AssessmentRead(Schema):
    id: int
    cell_id: int
    level: str
    assessed_on: date
    expires_on: date
    scores: dict[str, Any]
    total: Decimal
    tier: str


class AssessmentListed(AssessmentRead):
    assessor_id: int
    created_at: datetime = Field(description="when it was recorded")
    stands: bool = Field(
        description="counts: at the first level always, above it only while the level below"
        " is achieved on its day"
    )


class CellStandingRead(Schema):
    cell_id: int
    today: date = Field(description="the city's day the standing is read on")
    achieved: bool = Field(description="as /m/v1/metrics/cells counts the cell today")
    governing_id: int | None = Field(description="the assessment that decides it, if any")
    assessments: list[AssessmentListed] = Field(description="every one, in the order recorded")


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
