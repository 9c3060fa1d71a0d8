"""Webhook subscriptions and their deliveries.

A subscription is a durable consumer of the change feed (change_log): it keeps its own cursor
in the feed, and each change its owner may see and it asked for becomes one delivery row
(unique per subscription and change, so a dispatcher that crashes mid-round never duplicates
one). A delivery keeps the exact body it sends, so every retry carries the same bytes and the
same signature."""

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.registry.models import Organization


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    # Not sent: by the time it was due, the owner could no longer see its change (access
    # lost: another organization, an agreement ended). A replay tries again.
    withheld = "withheld"


class WebhookSubscription(Model):
    id = fields.IntField(primary_key=True)
    # The owner's read rights decide what the subscription hears.
    owner_id: int
    owner: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="webhooks", on_delete=fields.CASCADE
    )
    # The owner's organization when it subscribed (a record); what the subscription hears, its
    # alerts and its audit entries follow the owner's organization as it is now.
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="webhooks", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2048)
    events: list[str] = fields.JSONField()
    # The signing secret, AES-GCM encrypted under the key ring's webhook key of this version.
    secret_ciphertext = fields.BinaryField()
    secret_key_version = fields.SmallIntField()
    # Where the subscription stands in the change feed: after row `cursor_id` of `cursor_txid`.
    cursor_txid = fields.BigIntField()
    cursor_id = fields.BigIntField(default=0)
    active = fields.BooleanField(default=True)
    consecutive_failures = fields.IntField(default=0)
    # When the current run of failed rounds began (none while deliveries get through).
    failing_since = fields.DatetimeField(null=True)
    disabled_at = fields.DatetimeField(null=True)
    times_disabled = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_subscription"


class WebhookDelivery(Model):
    id = fields.BigIntField(primary_key=True)
    subscription_id: int
    subscription: fields.ForeignKeyRelation[WebhookSubscription] = fields.ForeignKeyField(
        "wastetrack.WebhookSubscription", related_name="deliveries", on_delete=fields.CASCADE
    )
    change_id = fields.BigIntField()
    # The event id the receiver sees: the same on every retry and replay.
    event_id = fields.UUIDField(unique=True)
    event_type = fields.CharField(max_length=32)
    # Deliveries with the same key (one batch, manifest or port delivery) go out in order:
    # a batch's events by their seq, then the rest (no seq) by id.
    order_key = fields.CharField(max_length=48)
    seq = fields.IntField(null=True)
    body = fields.TextField()
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.pending)
    attempts = fields.IntField(default=0)
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    next_attempt_at = fields.DatetimeField()
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_delivery"
        unique_together = (("subscription", "change_id"),)
        indexes = (("status", "next_attempt_at"),)
