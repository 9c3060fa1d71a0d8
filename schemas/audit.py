"""The audit log of registry, user, licence, API key and webhook changes."""

from datetime import datetime
from typing import Any

from pydantic import Field

from schemas.base import Schema


class AuditEntryRead(Schema):
    id: int
    at: datetime
    actor_user_id: int | None
    actor_api_key_id: int | None
    action: str
    subject_type: str
    subject_id: str
    organization_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class AuditPage(Schema):
    entries: list[AuditEntryRead] = Field(description="in the order of their transactions")
    next: str = Field(
        description="the cursor to read on from (pass it as `after`): the last entry's, or the"
        " one given when nothing new is readable yet"
    )
