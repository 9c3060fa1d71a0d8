"""The plan's indicators and entered values."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from schemas.base import Day, Definition, Schema, Text
from wastetrack.indicators.loader import Direction
from wastetrack.indicators.service import Status


class Actual(Schema):
    """Computed: the value with its numerator, denominator, their unit, the period and the
    rate's definition; entered: the value with its source and author."""

    value: Decimal
    source: Literal["computed", "entered"]
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    unit: str | None = Field(
        default=None, description="what the numerator and denominator count (computed)"
    )
    definition: Definition | None = Field(
        default=None, description="the formula in words and its source (computed)"
    )
    period_start: date | None = Field(
        default=None, description="equal to period_end for a standing on the day"
    )
    period_end: date | None = None
    source_note: str | None = None
    entered_by: str | None = None
    entered_at: datetime | None = None


class IndicatorRead(Schema):
    code: str
    name_zh: str
    name_en: str
    unit: str
    baseline_2020: Decimal | None
    target_2025: Decimal | None
    target_text: str | None
    direction: Direction = Field(
        description="which way it improves, as `status_rule` reads it: at_least (met at or"
        " above the target) or at_most (a cap, met at or below it)"
    )
    section: str
    actual: Actual | None
    status: Status


class IndicatorsRead(Schema):
    status_rule: str
    indicators: list[IndicatorRead]


class IndicatorValueCreate(Schema):
    value: Decimal = Field(ge=0, le=1000, max_digits=8, decimal_places=2)
    period_end: Day
    source_note: Text = Field(
        min_length=1, max_length=255, description="where the figure comes from"
    )


class IndicatorValueRead(Schema):
    id: int
    indicator_id: str
    value: Decimal
    period_end: date
    source_note: str
    entered_by_id: int
    entered_at: datetime
