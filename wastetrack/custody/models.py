"""The append-only custody event log: one hash-chained row per step of a batch.

In the database custody_event is partitioned by range of batch_id (migration 0029,
wastetrack.custody.partitions): a batch's chain lives in one partition. Its primary key is
(id, batch_id) and a correction points at an event of its own batch through the composite key
(batch_id, corrects_id); Tortoise sees an ordinary table keyed by id, which reads need no more.
A unique index across partitions is impossible, so exactly-once lives in client_event."""

import uuid
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.batches.models import Batch
    from wastetrack.catalog.models import TreatmentMethod
    from wastetrack.registry.models import Organization


class CustodyEvent(Model):
    id = fields.UUIDField(primary_key=True)
    batch_id: int
    method_id: str | None
    to_organization_id: int | None
    related_batch_id: int | None
    corrects_id: uuid.UUID | None
    actor_id: int
    organization_id: int
    batch: fields.ForeignKeyRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="events", on_delete=fields.RESTRICT
    )
    seq = fields.IntField()
    event_type = fields.CharField(max_length=24)
    state_after = fields.CharField(max_length=24)
    outcome = fields.CharField(max_length=24, null=True)
    reason = fields.TextField(null=True)
    method: fields.ForeignKeyNullableRelation["TreatmentMethod"] = fields.ForeignKeyField(
        "wastetrack.TreatmentMethod", related_name="events", null=True, on_delete=fields.RESTRICT
    )
    mode = fields.CharField(max_length=16, null=True)
    to_organization: fields.ForeignKeyNullableRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization",
        related_name="received_handovers",
        null=True,
        on_delete=fields.RESTRICT,
    )
    related_batch: fields.ForeignKeyNullableRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="related_events", null=True, on_delete=fields.RESTRICT
    )
    corrects: fields.ForeignKeyNullableRelation["CustodyEvent"] = fields.ForeignKeyField(
        "wastetrack.CustodyEvent", related_name="corrections", null=True, on_delete=fields.RESTRICT
    )
    details: dict[str, Any] = fields.JSONField(default=dict)
    device_time = fields.DatetimeField()
    server_time = fields.DatetimeField()
    actor: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="events", on_delete=fields.RESTRICT
    )
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="events", on_delete=fields.RESTRICT
    )
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    weight_kg = fields.DecimalField(max_digits=12, decimal_places=3, null=True)
    photo_sha256 = fields.CharField(max_length=64, null=True)
    # Part of the hashed content; its uniqueness is kept by ClientEvent.
    client_event_id = fields.UUIDField(null=True)
    payload_digest = fields.CharField(max_length=64, null=True)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "custody_event"
        unique_together = (("batch", "seq"),)


class ClientEvent(Model):
    """The phone's id of each recorded custody event, once: a resend conflicts here.

    Written in the same statement as the event, which (batch_id, event_id) references."""

    client_event_id = fields.UUIDField(primary_key=True)
    batch_id = fields.IntField()
    event_id = fields.UUIDField()

    class Meta:
        table = "client_event"
