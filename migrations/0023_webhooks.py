import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from wastetrack.webhooks.models import DeliveryStatus

# What webhooks need of the change feed (0022 is history: functions are replaced, not edited).
# - manifest.changed rows also carry the state before an update, so a subscriber can tell a
#   signature (draft → submitted, → in_transit_leg_N) and a decision from other edits;
# - port deliveries (delivery) write a delivery.recorded row, scoped to the port (organization
#   and region), when the transaction that records them commits.
FEED = """
CREATE OR REPLACE FUNCTION wastetrack_log_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, subject, manifest_id, region_path, data)
    VALUES ('manifest.changed', NEW.id::text, NEW.id, NEW.region_path,
            jsonb_build_object('manifest_id', NEW.id, 'number', NEW.number,
                               'state', NEW.state, 'change', lower(TG_OP),
                               'previous_state',
                               CASE TG_OP WHEN 'UPDATE' THEN OLD.state END));
    RETURN NULL;
END $$;

CREATE FUNCTION wastetrack_log_port_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- At commit: the receipt number and the lines (one batch each) are written after the row.
    INSERT INTO change_log (kind, subject, organization_id, region_path, occurred_at, data)
    SELECT 'delivery.recorded', d.id::text, d.port_id, r.path, d.recorded_at,
           jsonb_build_object('delivery_id', d.id, 'receipt', d.receipt_number,
                              'port_id', d.port_id, 'vessel_id', d.vessel_id,
                              'berth_id', d.berth_id, 'flags', d.flags,
                              'batches', (SELECT coalesce(jsonb_agg(b.code ORDER BY l.id), '[]')
                                          FROM delivery_line l JOIN batch b ON b.id = l.batch_id
                                          WHERE l.delivery_id = d.id))
    FROM delivery d JOIN organization o ON o.id = d.port_id JOIN region r ON r.id = o.region_id
    WHERE d.id = NEW.id;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER delivery_change_log AFTER INSERT ON delivery
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION wastetrack_log_port_delivery();
"""

# The dispatcher looks for an earlier pending delivery of the same batch before sending one.
PENDING_INDEX = """
CREATE INDEX webhook_delivery_pending_order_idx
    ON webhook_delivery (subscription_id, order_key, id) WHERE status = 'pending';
"""

UNFEED = """
DROP TRIGGER IF EXISTS delivery_change_log ON delivery;
DROP FUNCTION IF EXISTS wastetrack_log_port_delivery();
CREATE OR REPLACE FUNCTION wastetrack_log_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, subject, manifest_id, region_path, data)
    VALUES ('manifest.changed', NEW.id::text, NEW.id, NEW.region_path,
            jsonb_build_object('manifest_id', NEW.id, 'number', NEW.number,
                               'state', NEW.state, 'change', lower(TG_OP)));
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    # Webhooks: subscriptions and their deliveries (filled in by the webhooks work).
    dependencies = [("wastetrack", "0022_change_feed")]

    initial = False

    operations: list = [
        ops.CreateModel(
            name="WebhookSubscription",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "owner",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="owner_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="webhooks",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="webhooks",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("url", fields.CharField(max_length=2048)),
                (
                    "events",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("secret_ciphertext", fields.BinaryField()),
                ("secret_key_version", fields.SmallIntField()),
                ("cursor_txid", fields.BigIntField()),
                ("cursor_id", fields.BigIntField(default=0)),
                ("active", fields.BooleanField(default=True)),
                ("consecutive_failures", fields.IntField(default=0)),
                (
                    "disabled_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("times_disabled", fields.IntField(default=0)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "webhook_subscription", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookDelivery",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "subscription",
                    fields.ForeignKeyField(
                        "wastetrack.WebhookSubscription",
                        source_field="subscription_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("change_id", fields.BigIntField()),
                ("event_id", fields.UUIDField(unique=True)),
                ("event_type", fields.CharField(max_length=32)),
                ("order_key", fields.CharField(max_length=48)),
                ("body", fields.TextField(unique=False)),
                (
                    "status",
                    fields.CharEnumField(
                        default=DeliveryStatus.pending,
                        description="pending: pending\ndelivered: delivered",
                        enum_type=DeliveryStatus,
                        max_length=16,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("last_status_code", fields.IntField(null=True)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("next_attempt_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "delivered_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "webhook_delivery",
                "app": "wastetrack",
                "unique_together": (("subscription", "change_id"),),
                "indexes": [Index(fields=["status", "next_attempt_at"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.RunSQL(
            PENDING_INDEX, reverse_sql="DROP INDEX IF EXISTS webhook_delivery_pending_order_idx;"
        ),
        ops.RunSQL(FEED, reverse_sql=UNFEED),
    ]
