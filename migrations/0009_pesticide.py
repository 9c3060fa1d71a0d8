from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0008_household")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Consignment",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "point",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="point_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="consignments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "destination",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="destination_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="received_consignments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "sent_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "lines",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "recorded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="recorded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="consignments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("client_event_id", fields.UUIDField(unique=True)),
                ("payload_digest", fields.CharField(max_length=64)),
            ],
            options={
                "table": "consignment",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "Packaging a point sends on to treatment; each material became a batch.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Farmer",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=64)),
                ("masked", fields.CharField(max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "farmer",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A farmer with no account, known by a keyed hash of a phone or ID number.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PackageSale",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "shop",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="shop_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="package_sales",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("sold_on", fields.DateField(db_index=True)),
                ("material", fields.CharField(max_length=64)),
                ("count", fields.IntField()),
                ("client_event_id", fields.UUIDField(unique=True)),
            ],
            options={
                "table": "package_sale",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "Pesticide packages a shop sold: what take-back is measured against.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PackagingReturn",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "point",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="point_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="packaging_returns",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "farmer",
                    fields.ForeignKeyField(
                        "wastetrack.Farmer",
                        source_field="farmer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="returns",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "returned_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "lines",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("points", fields.DecimalField(max_digits=10, decimal_places=1)),
                (
                    "recorded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="recorded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="packaging_returns",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("client_event_id", fields.UUIDField(unique=True)),
                ("payload_digest", fields.CharField(max_length=64)),
            ],
            options={"table": "packaging_return", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
