"""Issued API keys. Only a keyed hash of the key is stored, with its public prefix for lookup."""

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.registry.models import Organization


class ApiKey(Model):
    id = fields.IntField(primary_key=True)
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="api_keys", on_delete=fields.RESTRICT
    )
    # The service user the key acts as: custody events and manifests it records name this user.
    user_id: int
    user: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="service_keys", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=64)
    prefix = fields.CharField(max_length=16, unique=True)
    # HMAC-SHA256 (hex) of the whole key under the api_key purpose key of master `hash_version`.
    secret_hash = fields.CharField(max_length=64)
    hash_version = fields.SmallIntField()
    scopes: list[str] = fields.JSONField()
    created_by_id: int
    created_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="issued_api_keys", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"
