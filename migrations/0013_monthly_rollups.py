from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0012_cell_indicator")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MonthlyRollup",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("month", fields.DateField()),
                ("town_path", fields.CharField(max_length=255)),
                ("stream_id", fields.CharField(max_length=32)),
                ("category_id", fields.CharField(max_length=64)),
                ("measure", fields.CharField(max_length=8)),
                ("mode", fields.CharField(max_length=16)),
                ("weight_kg", fields.DecimalField(default=0, max_digits=18, decimal_places=3)),
                ("volume_m3", fields.DecimalField(default=0, max_digits=16, decimal_places=3)),
                ("items", fields.BigIntField(default=0)),
                ("batches", fields.IntField(default=0)),
            ],
            options={
                "table": "rollup_monthly",
                "app": "wastetrack",
                "unique_together": (
                    ("month", "town_path", "stream_id", "category_id", "measure", "mode"),
                ),
                "pk_attr": "id",
                "table_description": "The same sums per calendar month (city time) × town (or the city itself): what",
            },
            bases=["Model"],
        ),
    ]
