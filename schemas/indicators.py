"""The plan's indicators and entered values."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from schemas.base import Day, Schema, Text
from wastetrack.indicators.service import Status


class Actual(Schema):
    value: Decimal
    source: Literal["computed", "entered"]
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    period_start: date | None = None
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
