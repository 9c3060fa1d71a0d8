from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0007_alerts_household_pesticide_manifests")]

    initial = False

    operations = [
        ops.CreateModel(
            name="DailyRollup",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("day", fields.DateField()),
                ("region_path", fields.CharField(max_length=255)),
                ("stream_id", fields.CharField(max_length=32)),
                ("category_id", fields.CharField(max_length=64)),
                ("measure", fields.CharField(max_length=8)),
                ("mode", fields.CharField(max_length=16)),
                ("weight_kg", fields.DecimalField(default=0, max_digits=16, decimal_places=3)),
                ("volume_m3", fields.DecimalField(default=0, max_digits=14, decimal_places=3)),
                ("items", fields.BigIntField(default=0)),
                ("batches", fields.IntField(default=0)),
            ],
            options={
                "table": "rollup_daily",
                "app": "wastetrack",
                "unique_together": (
                    ("day", "region_path", "stream_id", "category_id", "measure", "mode"),
                ),
                "pk_attr": "id",
                "table_description": "Per day (city time) × producer region × stream × category × measure × treatment mode.",
            },
            bases=["Model"],
        ),
    ]
