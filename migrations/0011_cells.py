from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0010_indicators_data")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Cell",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("cell_type", fields.CharField(max_length=32)),
                ("name", fields.CharField(max_length=128)),
                (
                    "region",
                    fields.ForeignKeyField(
                        "wastetrack.Region",
                        source_field="region_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="cells",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("region_path", fields.CharField(db_index=True, max_length=255)),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="cells",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
            ],
            options={"table": "zero_waste_cell", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CellAssessment",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "cell",
                    fields.ForeignKeyField(
                        "wastetrack.Cell",
                        source_field="cell_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="assessments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("level", fields.CharField(max_length=16)),
                ("assessed_on", fields.DateField()),
                ("expires_on", fields.DateField()),
                (
                    "scores",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("total", fields.DecimalField(max_digits=6, decimal_places=2)),
                ("tier", fields.CharField(max_length=16)),
                (
                    "assessor",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="assessor_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="cell_assessments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "cell_assessment",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "One assessment at one level (county initial → city → province recognition).",
            },
            bases=["Model"],
        ),
    ]
