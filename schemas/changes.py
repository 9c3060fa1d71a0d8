"""The change feed's contract."""

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schemas.base import Schema

ChangeType = Literal[
    "batch.event_recorded", "manifest.changed", "alert.raised", "alert.changed", "delivery.recorded"
]


class ChangeRead(Schema):
    cursor: str = Field(description="resume after this change with ?after=<cursor>")
    type: ChangeType
    occurred_at: datetime
    data: dict[str, Any] = Field(
        description="ids, codes, state and event type: enough to decide what to fetch"
    )


class ChangePage(Schema):
    changes: list[ChangeRead] = Field(
        description="in the order of their transactions, a batch's events in their order (seq)"
    )
    next: str = Field(
        description="the cursor to read on from: the last change's, or the one given when"
        " nothing new is readable yet"
    )
