from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

# Which streams a carrier may move only in a registered vehicle (streams.json edition 2026.3,
# pinned here): medical waste in any registered, not retired vehicle of the carrier; hazardous
# waste in one whose 道路危险货物运输许可 is valid on the day.
VEHICLE_REQUIRED = {"medical": "registered", "hazardous": "hazardous_licence"}


async def add_vehicle_rule(apps, schema_editor):
    for stream, rule in VEHICLE_REQUIRED.items():
        await schema_editor.client.execute_query(
            "UPDATE waste_stream SET rules = COALESCE(rules, '{}'::jsonb)"
            " || jsonb_build_object('vehicle_required', $2::text) WHERE code = $1",
            [stream, rule],
        )


async def remove_vehicle_rule(apps, schema_editor):
    await schema_editor.client.execute_script(
        "UPDATE waste_stream SET rules = rules - 'vehicle_required' WHERE rules ? 'vehicle_required';"
    )


class Migration(migrations.Migration):
    # Vehicles and drivers of carriers, GPS positions.
    dependencies = [("wastetrack", "0025_global_identities")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Driver",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="drivers",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=64)),
                ("licence_number", fields.CharField(max_length=32)),
                ("qualification_number", fields.CharField(null=True, max_length=64)),
                ("qualification_expires", fields.DateField(null=True)),
                ("phone", fields.CharField(null=True, max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("retired_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "driver",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A carrier's driver and the dangerous-goods qualification (从业资格证) held.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Vehicle",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="vehicles",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("plate", fields.CharField(unique=True, max_length=16)),
                ("permit_number", fields.CharField(max_length=64)),
                ("hazardous_licence_number", fields.CharField(null=True, max_length=64)),
                ("hazardous_licence_expires", fields.DateField(null=True)),
                ("capacity_kg", fields.DecimalField(max_digits=10, decimal_places=1)),
                (
                    "driver",
                    fields.ForeignKeyField(
                        "wastetrack.Driver",
                        source_field="driver_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="vehicles",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("retired_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "vehicle",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "One vehicle of a carrier; retired instead of deleted, so the chain's plates stay known.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="VehiclePosition",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "vehicle",
                    fields.ForeignKeyField(
                        "wastetrack.Vehicle",
                        source_field="vehicle_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="positions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("time", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("latitude", fields.FloatField()),
                ("longitude", fields.FloatField()),
                ("received_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "vehicle_position",
                "app": "wastetrack",
                "unique_together": (("vehicle", "time"),),
                "pk_attr": "id",
                "table_description": "One GPS fix of a vehicle; a resent fix (same vehicle and time) is stored once.",
            },
            bases=["Model"],
        ),
        ops.RunPython(add_vehicle_rule, remove_vehicle_rule),
    ]
