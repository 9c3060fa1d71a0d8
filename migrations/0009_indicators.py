from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0008_rollups")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Indicator",
            fields=[
                (
                    "code",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("name_zh", fields.CharField(max_length=128)),
                ("name_en", fields.CharField(max_length=128)),
                ("unit", fields.CharField(max_length=8)),
                ("baseline", fields.DecimalField(null=True, max_digits=8, decimal_places=2)),
                ("target", fields.DecimalField(null=True, max_digits=8, decimal_places=2)),
                ("target_text", fields.CharField(null=True, max_length=64)),
                ("direction", fields.CharField(max_length=16)),
                ("computed_by", fields.CharField(null=True, max_length=32)),
                ("section", fields.CharField(max_length=128)),
                ("source", fields.CharField(max_length=255)),
            ],
            options={"table": "indicator", "app": "wastetrack", "pk_attr": "code"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="IndicatorValue",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "indicator",
                    fields.ForeignKeyField(
                        "wastetrack.Indicator",
                        source_field="indicator_id",
                        db_constraint=True,
                        to_field="code",
                        related_name="values",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("period_end", fields.DateField()),
                ("value", fields.DecimalField(max_digits=8, decimal_places=2)),
                ("source_note", fields.CharField(max_length=255)),
                (
                    "entered_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="entered_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="indicator_values",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("entered_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "indicator_value",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A value entered where the tracker holds no data, with its source and author.",
            },
            bases=["Model"],
        ),
    ]
