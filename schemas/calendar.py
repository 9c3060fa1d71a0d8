"""The official working-day calendar (工作日历)."""

from datetime import date

from pydantic import Field

from schemas.base import Boolean, Schema
from wastetrack.core.commands import Text


class CalendarDayRead(Schema):
    day: date
    is_working_day: bool
    name: str | None
    source: str


class CalendarDayUpdate(Schema):
    is_working_day: Boolean
    name: Text | None = Field(None, max_length=64)
    reason: Text | None = Field(
        None,
        max_length=500,
        description="why (required for a day already past: it moves deadlines that have run)",
    )


class CalendarLoadRead(Schema):
    years: list[int]
    days: int
    source: str
