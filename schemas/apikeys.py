"""API keys for machines: issued by administrators, shown once, listed without their secret."""

from datetime import datetime

from pydantic import Field

from schemas.base import Id, Schema, Text
from wastetrack.apikeys.scopes import Scope
from wastetrack.auth.models import Role


class ApiKeyCreate(Schema):
    name: Text = Field(min_length=1, max_length=64)
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=3,
        description="read: GET routes; events: also record events and sync; "
        "manifests: also manifest actions",
    )
    organization_id: Id | None = Field(
        None, description="the organization the key acts for; default: the issuer's"
    )
    role: Role | None = Field(
        None,
        description="the role the key acts in (never admin); default: the usual role of the "
        "organization's kind",
    )


class ApiKeyRead(Schema):
    id: int
    name: str
    organization_id: int
    role: Role
    scopes: list[Scope]
    prefix: str
    created_by: int
    created_by_username: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(description="the key itself, shown this once: send it as a Bearer token")
