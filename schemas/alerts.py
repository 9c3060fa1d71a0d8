"""Alerts and the medical collection coverage."""

from datetime import date, datetime
from typing import Any

from pydantic import Field

from schemas.base import Definition, Ratio, Schema


class AlertRead(Schema):
    id: int
    kind: str
    batch_id: int | None
    organization_id: int
    raised_at: datetime
    due_at: datetime | None
    details: dict[str, Any]
    acknowledged_by_id: int | None
    acknowledged_at: datetime | None


class MissedInstitution(Schema):
    id: int
    name: str
    kind: str
    bed_count: int | None


class MedicalCoverageRead(Schema):
    date_from: date = Field(description="city day, included")
    date_to: date = Field(description="city day, included")
    days: int
    all_institutions: Ratio
    small_institutions: Ratio = Field(
        description="medical institutions of any kind with a known bed count ≤ 19"
    )
    unknown_bed_count: list[MissedInstitution] = Field(
        description="institutions whose bed count is unknown: in no small-institution figure"
    )
    not_collected: list[MissedInstitution]
    definition: Definition
