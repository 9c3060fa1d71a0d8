"""Users, refresh tokens and login throttling."""

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.registry.models import Organization


class Role(StrEnum):
    collector = "collector"
    port_operator = "port_operator"
    carrier = "carrier"
    facility_operator = "facility_operator"
    generator = "generator"
    manager = "manager"
    auditor = "auditor"
    admin = "admin"


USERNAME = r"^[A-Za-z0-9_.]{1,64}$"
"""A username: 1-64 ASCII letters, digits, dots or underscores (a letter of another script
reading as a Latin one, Cyrillic с for c, would be another account looking like one)."""


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=255)
    full_name = fields.CharField(max_length=64, default="")
    role = fields.CharEnumField(Role, max_length=32)
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="users", on_delete=fields.RESTRICT
    )
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"


class RefreshToken(Model):
    """One issued refresh token; rotation revokes it, so a stolen copy works once at most, and
    presenting a rotated one revokes its whole family (every token descended from one login)."""

    jti = fields.UUIDField(primary_key=True)
    family = fields.UUIDField(db_index=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "wastetrack.User", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_token"


class LoginThrottle(Model):
    """Failed logins per username, whether or not the user exists."""

    username = fields.CharField(max_length=64, primary_key=True)
    failures = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    last_failure_at = fields.DatetimeField(null=True)

    class Meta:
        table = "login_throttle"
