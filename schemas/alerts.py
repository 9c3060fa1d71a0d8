"""Alerts and the medical collection coverage."""

from datetime import datetime
from typing import Any

from schemas.base import Ratio, Schema


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
    days: int
    since: datetime
    all_institutions: Ratio
    small_clinics: Ratio
    not_collected: list[MissedInstitution]
