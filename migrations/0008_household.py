from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0007_alerts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Pickup",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "site",
                    fields.ForeignKeyField(
                        "wastetrack.Site",
                        source_field="site_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="pickups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("region_path", fields.CharField(db_index=True, max_length=255)),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="batch_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="pickups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "picked_up_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                ("quality_checked", fields.BooleanField(default=False)),
                ("quality_passed", fields.BooleanField(null=True)),
                (
                    "contamination_share",
                    fields.DecimalField(null=True, max_digits=4, decimal_places=3),
                ),
                ("photo_sha256", fields.CharField(null=True, max_length=64)),
                (
                    "recorded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="recorded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="pickups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("client_event_id", fields.UUIDField(unique=True)),
                ("payload_digest", fields.CharField(max_length=64)),
            ],
            options={
                "table": "pickup",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A collector's pickup of one class at a collection point; it became a batch.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Region",
            name="sorted_collection_since",
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name="Site",
            name="code",
            field=fields.CharField(null=True, unique=True, max_length=16),
        ),
    ]
