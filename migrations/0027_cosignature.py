from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

# Which streams need the producer's one-time PIN at handover (streams.json edition 2026.3,
# pinned here): medical waste of producers with no user account of their own (small clinics).
PRODUCER_PIN = {"medical": "without_users"}


async def add_pin_rule(apps, schema_editor):
    for stream, rule in PRODUCER_PIN.items():
        await schema_editor.client.execute_query(
            "UPDATE waste_stream SET rules = COALESCE(rules, '{}'::jsonb)"
            " || jsonb_build_object('producer_pin', $2::text) WHERE code = $1",
            [stream, rule],
        )


async def remove_pin_rule(apps, schema_editor):
    await schema_editor.client.execute_script(
        "UPDATE waste_stream SET rules = rules - 'producer_pin' WHERE rules ? 'producer_pin';"
    )


class Migration(migrations.Migration):
    # Co-signature by one-time PINs.
    dependencies = [("wastetrack", "0026_vehicles")]

    initial = False

    operations = [
        ops.CreateModel(
            name="PinList",
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
                        related_name="pin_lists",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("serial", fields.IntField(description="the producer's n-th list, printed on it")),
                (
                    "key_version",
                    fields.IntField(description="the master key version its codes derive from"),
                ),
                ("size", fields.IntField()),
                ("issued_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "issued_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="issued_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="pin_lists_issued",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "producer_pin_list",
                "app": "wastetrack",
                "unique_together": (("organization", "serial"),),
                "pk_attr": "id",
                "table_description": "One printed list of a producer's one-time PINs; issuing a"
                " new one revokes the last.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PinUse",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "pin_list",
                    fields.ForeignKeyField(
                        "wastetrack.PinList",
                        source_field="pin_list_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="uses",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("position", fields.IntField(description="1-based, as printed")),
                (
                    "used_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="used_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="pin_uses",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "device_time",
                    fields.DatetimeField(
                        description="the handover's time by the phone's clock",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("used_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "producer_pin_use",
                "app": "wastetrack",
                "unique_together": (("pin_list", "position"),),
                "pk_attr": "id",
                "table_description": "A spent code: the list and its position, who used it and"
                " for which handover.",
            },
            bases=["Model"],
        ),
        ops.RunPython(add_pin_rule, remove_pin_rule),
    ]
