"""Alerts raised by the tracker's rules, acknowledged by a manager."""

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.batches.models import Batch
    from wastetrack.registry.models import Organization


class Alert(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    # What the alert is about, e.g. a batch code or a manifest number: one alert per subject.
    subject = fields.CharField(max_length=32)
    batch_id: int | None
    batch: fields.ForeignKeyNullableRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="alerts", null=True, on_delete=fields.RESTRICT
    )
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="alerts", on_delete=fields.RESTRICT
    )
    region_path = fields.CharField(max_length=255, db_index=True)
    raised_at = fields.DatetimeField()
    due_at = fields.DatetimeField(null=True)
    details: dict[str, Any] = fields.JSONField(default=dict)
    acknowledged_by_id: int | None
    acknowledged_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User",
        related_name="acknowledged_alerts",
        null=True,
        on_delete=fields.RESTRICT,
    )
    acknowledged_at = fields.DatetimeField(null=True)

    class Meta:
        table = "alert"
        unique_together = (("kind", "subject"),)
