"""The webhooks' contract: subscriptions and their deliveries."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import Schema, Text

EventType = Literal[
    "batch.event_recorded",
    "manifest.signed",
    "manifest.decided",
    "manifest.cancelled",
    "alert.raised",
    "delivery.recorded",
]


class WebhookCreate(Schema):
    url: Text = Field(
        min_length=1,
        max_length=2048,
        description="http(s) URL receiving a POST per event; not a private or loopback address",
    )
    events: list[EventType] = Field(min_length=1, max_length=6, description="events to hear")


class WebhookRead(Schema):
    id: int
    url: str
    events: list[EventType]
    active: bool = Field(description="false once disabled after repeated failures")
    consecutive_failures: int
    disabled_at: datetime | None
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="signs every delivery (webhook-signature); shown this once only"
    )


class WebhookDeliveryRead(Schema):
    id: int = Field(description="the X-Wastetrack-Delivery header; replay by this id")
    event_id: str = Field(description="the body's id: the same on every retry and replay")
    type: EventType
    status: Literal["pending", "delivered", "withheld"] = Field(
        description="withheld: not sent, its owner no longer seeing its change when it was due"
    )
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="when it is tried next, if pending")
    delivered_at: datetime | None
    created_at: datetime
