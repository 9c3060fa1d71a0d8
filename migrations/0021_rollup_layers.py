from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# City-wide sums per month: a city-wide dashboard over whole months reads a few hundred rows a
# month here instead of summing every town's. The table starts empty; the counting rules'
# version changes with it, so the first start after this migration rebuilds every layer.
# Changes to the sums are appended to cohort_delta by the recording transaction and folded into
# the layers by a background round, so concurrent recordings never wait on the same sum rows.


def _sum(digits: int) -> fields.DecimalField:
    return fields.DecimalField(default=0, max_digits=digits, decimal_places=3)


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0020_partial_remainder")]

    initial = False

    operations = [
        ops.CreateModel(
            name="CityMonthlyRollup",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("month", fields.DateField()),
                ("city_path", fields.CharField(max_length=255)),
                ("stream_id", fields.CharField(max_length=32)),
                ("category_id", fields.CharField(max_length=64)),
                ("fate", fields.CharField(max_length=24)),
                ("mode", fields.CharField(max_length=16)),
                ("mass_kg", _sum(18)),
                ("estimated_kg", _sum(18)),
                ("balance_weighed_kg", _sum(18)),
                ("balance_declared_kg", _sum(18)),
                ("volume_m3", _sum(16)),
                ("items", fields.BigIntField(default=0)),
                ("batches", fields.IntField(default=0)),
            ],
            options={
                "table": "cohort_city_monthly",
                "app": "wastetrack",
                "unique_together": (
                    ("month", "city_path", "stream_id", "category_id", "fate", "mode"),
                ),
                "pk_attr": "id",
                "table_description": "The sums per month of the whole city: what city-wide"
                " dashboards over whole months read,",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CohortDelta",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("day", fields.DateField()),
                ("region_path", fields.CharField(max_length=255)),
                ("stream_id", fields.CharField(max_length=32)),
                ("category_id", fields.CharField(max_length=64)),
                ("fate", fields.CharField(max_length=24)),
                ("mode", fields.CharField(max_length=16)),
                ("mass_kg", _sum(16)),
                ("estimated_kg", _sum(16)),
                ("balance_weighed_kg", _sum(16)),
                ("balance_declared_kg", _sum(16)),
                ("volume_m3", _sum(14)),
                ("items", fields.BigIntField(default=0)),
                ("batches", fields.IntField(default=0)),
            ],
            options={
                "table": "cohort_delta",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "What recorded events changed in the sums and is not yet"
                " folded into them. Recording only",
            },
            bases=["Model"],
        ),
        ops.AlterModelOptions(
            name="MonthlyRollup",
            options={
                "table": "cohort_monthly",
                "app": "wastetrack",
                "unique_together": (
                    ("month", "town_path", "stream_id", "category_id", "fate", "mode"),
                ),
                "pk_attr": "id",
                "table_description": "The sums per month × town (or the city itself, for"
                " batches registered there): what",
            },
        ),
    ]
