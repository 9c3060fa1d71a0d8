from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0006_stream_rules_data")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Alert",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("kind", fields.CharField(max_length=32)),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="batch_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="alerts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="alerts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("region_path", fields.CharField(db_index=True, max_length=255)),
                ("raised_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("due_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "details",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "acknowledged_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="acknowledged_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="acknowledged_alerts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "acknowledged_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "alert",
                "app": "wastetrack",
                "unique_together": (("kind", "batch"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
