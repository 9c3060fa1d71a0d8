"""Custody events as phones submit them, one at a time, and what became of them."""

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from schemas.base import Schema
from wastetrack.core.commands import Hazard, Latitude, Longitude, Sha256
from wastetrack.custody.commands import EventCommand

__all__ = [
    "ChainVerification",
    "EventCreate",
    "EventError",
    "EventRead",
    "EventResult",
    "Hazard",
    "Latitude",
    "Longitude",
    "Sha256",
]


class EventCreate(EventCommand):
    """One step in a batch's custody, as recorded on the phone."""


class EventError(Schema):
    code: str
    field: str | None = None
    detail: str


class EventResult(Schema):
    client_event_id: UUID | None
    status: Literal["applied", "duplicate", "conflict", "rejected"]
    batch_code: str | None = Field(
        None, description="the event's batch, or the batch a pickup or clean-up became"
    )
    event_id: UUID | None = None
    state: str | None = None
    record_id: int | None = Field(
        None, description="the stream record made: a delivery, clean-up, pickup or return"
    )
    flags: list[str] | None = Field(None, description="a delivery's flags")
    error: EventError | None = None


class EventRead(Schema):
    id: UUID
    seq: int
    event_type: str
    state_after: str
    outcome: str | None
    reason: str | None
    method: str | None = Field(None, validation_alias="method_id")
    mode: str | None
    to_organization_id: int | None
    related_batch_id: int | None
    corrects_id: UUID | None
    details: dict[str, Any]
    device_time: datetime
    server_time: datetime
    actor_id: int
    organization_id: int
    latitude: float | None
    longitude: float | None
    weight_kg: Decimal | None
    photo_sha256: str | None
    client_event_id: UUID | None
    prev_hash: str
    hash: str


class ChainVerification(Schema):
    batch_code: str
    events: int
    valid: bool
    broken_at_seq: int | None = None
    detail: str | None = None
