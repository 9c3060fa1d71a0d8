from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0002_catalog")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Berth",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "port",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="port_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="berths",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=64)),
                ("code", fields.CharField(unique=True, max_length=16)),
                ("latitude", fields.FloatField()),
                ("longitude", fields.FloatField()),
                ("geofence_m", fields.IntField(default=300)),
            ],
            options={
                "table": "berth",
                "app": "wastetrack",
                "unique_together": (("port", "name"),),
                "pk_attr": "id",
                "table_description": "A berth with a fixed QR code that crews scan when they deliver waste.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CleanUp",
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
                        related_name="cleanups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "region",
                    fields.ForeignKeyField(
                        "wastetrack.Region",
                        source_field="region_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="cleanups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("area_name", fields.CharField(max_length=128)),
                ("setting", fields.CharField(max_length=16)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("ended_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("latitude", fields.FloatField()),
                ("longitude", fields.FloatField()),
                ("participants", fields.IntField(null=True)),
                (
                    "item_counts",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("total_weight_kg", fields.DecimalField(max_digits=10, decimal_places=3)),
                (
                    "photos",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="batch_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="cleanups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "recorded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="recorded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="cleanups",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("client_event_id", fields.UUIDField(unique=True)),
                ("payload_digest", fields.CharField(max_length=64)),
            ],
            options={
                "table": "cleanup",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A beach or sea-surface clean-up (净滩行动) and what it picked up.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FishingPort",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "organization",
                    fields.OneToOneField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="fishing_port",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("grade", fields.CharField(max_length=16)),
                ("latitude", fields.FloatField()),
                ("longitude", fields.FloatField()),
                ("reception_facility", fields.BooleanField(default=False)),
                ("listed", fields.BooleanField(default=True)),
            ],
            options={
                "table": "fishing_port",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "What a fishing-port organization adds to the registry.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FloatReplacement",
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
                        related_name="float_replacements",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "region",
                    fields.ForeignKeyField(
                        "wastetrack.Region",
                        source_field="region_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="float_replacements",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("replaced_on", fields.DateField()),
                ("foam_floats_removed", fields.IntField()),
                ("new_floats_installed", fields.IntField()),
                ("new_float_type", fields.CharField(max_length=64)),
                (
                    "recorded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="recorded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="float_replacements",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("client_event_id", fields.UUIDField(unique=True)),
            ],
            options={
                "table": "float_replacement",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "Aquaculture floats (浮球) replaced: foam ones out, compliant ones in.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PortCall",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "vessel",
                    fields.ForeignKeyField(
                        "wastetrack.Vessel",
                        source_field="vessel_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="port_calls",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "port",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="port_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="port_calls",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("arrived_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "departed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("days_at_sea", fields.IntField()),
                ("crew", fields.IntField()),
                ("fishing_area", fields.CharField(null=True, max_length=32)),
                (
                    "notification",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "recorded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="recorded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="port_calls",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
            ],
            options={"table": "port_call", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Delivery",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("receipt_number", fields.CharField(unique=True, max_length=32)),
                (
                    "vessel",
                    fields.ForeignKeyField(
                        "wastetrack.Vessel",
                        source_field="vessel_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "port",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="port_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "berth",
                    fields.ForeignKeyField(
                        "wastetrack.Berth",
                        source_field="berth_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "port_call",
                    fields.ForeignKeyField(
                        "wastetrack.PortCall",
                        source_field="port_call_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("ended_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("recorded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("latitude", fields.FloatField(null=True)),
                ("longitude", fields.FloatField(null=True)),
                ("distance_m", fields.FloatField(null=True)),
                (
                    "flags",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "recorded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="recorded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("client_event_id", fields.UUIDField(unique=True)),
                ("payload_digest", fields.CharField(max_length=64)),
            ],
            options={
                "table": "delivery",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "What one vessel handed over at one berth; each line became a batch.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DeliveryLine",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "delivery",
                    fields.ForeignKeyField(
                        "wastetrack.Delivery",
                        source_field="delivery_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="lines",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "category",
                    fields.ForeignKeyField(
                        "wastetrack.WasteCategory",
                        source_field="category_id",
                        db_constraint=True,
                        to_field="key",
                        related_name="delivery_lines",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("volume_m3", fields.DecimalField(null=True, max_digits=10, decimal_places=3)),
                ("mass_kg", fields.DecimalField(null=True, max_digits=12, decimal_places=3)),
                ("mass_derived", fields.BooleanField(default=False)),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="batch_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="delivery_lines",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
            ],
            options={"table": "delivery_line", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SeaArea",
            fields=[
                (
                    "code",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32),
                ),
                ("name_zh", fields.CharField(max_length=64)),
                ("name_en", fields.CharField(max_length=96)),
                ("zero_waste", fields.BooleanField(default=True)),
                (
                    "polygon",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("source", fields.CharField(max_length=255)),
                ("edition", fields.CharField(max_length=32)),
            ],
            options={
                "table": "sea_area",
                "app": "wastetrack",
                "pk_attr": "code",
                "table_description": "A named sea area (e.g. a zero-waste sea area, 无废航区) as a polygon of lon/lat points.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Vessel",
            name="crew",
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name="Vessel",
            name="flag_state",
            field=fields.CharField(default="CHN", max_length=3),
        ),
    ]
