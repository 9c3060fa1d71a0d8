"""One row per change of the registry, a user, a licence, an API key or a webhook."""

from typing import Any

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """Append-only: a trigger refuses UPDATE and DELETE."""

    # The table also has a txid column, the writing transaction's id (xid8, which the ORM does
    # not know; the database fills it in, migration 0038): entries are read in (txid, id)
    # order, like the change feed (wastetrack.changes.paging).
    # Actors are plain ids, not foreign keys: the log outlives what it names.

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True)
    # The person, or the service user of the API key, that acted; null for the CLI and jobs.
    actor_user_id = fields.IntField(null=True)
    actor_api_key_id = fields.IntField(null=True)
    action = fields.CharField(max_length=64)
    subject_type = fields.CharField(max_length=32)
    subject_id = fields.CharField(max_length=64)
    # The organization the change concerns and the region path it lies in, for read scopes.
    organization_id = fields.IntField(null=True)
    region_path = fields.CharField(max_length=255)
    before: dict[str, Any] | None = fields.JSONField(null=True)
    after: dict[str, Any] | None = fields.JSONField(null=True)
    request_id = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "audit_entry"
        indexes = (("subject_type", "id"), ("actor_user_id", "id"))
