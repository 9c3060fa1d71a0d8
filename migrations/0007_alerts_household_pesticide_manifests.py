from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0006_stream_rules_data")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Alert",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("kind", fields.CharField(max_length=32)),
                ("subject", fields.CharField(max_length=32)),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="batch_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="alerts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="alerts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("region_path", fields.CharField(db_index=True, max_length=255)),
                ("raised_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("due_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "details",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "acknowledged_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="acknowledged_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="acknowledged_alerts",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "acknowledged_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "alert",
                "app": "wastetrack",
                "unique_together": (("kind", "subject"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
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
            name="Manifest",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("number", fields.CharField(unique=True, max_length=14)),
                ("state", fields.CharField(db_index=True, max_length=24)),
                (
                    "producer",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="producer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="manifests_out",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("region_path", fields.CharField(db_index=True, max_length=255)),
                (
                    "category",
                    fields.ForeignKeyField(
                        "wastetrack.WasteCategory",
                        source_field="category_id",
                        db_constraint=True,
                        to_field="key",
                        related_name="manifests",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("waste_code", fields.CharField(max_length=16)),
                ("waste_name", fields.CharField(max_length=128)),
                (
                    "hazard",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("physical_form", fields.CharField(max_length=32)),
                ("packaging", fields.CharField(max_length=64)),
                ("quantity_kg", fields.DecimalField(max_digits=12, decimal_places=3)),
                ("emergency_measures", fields.TextField(unique=False)),
                (
                    "batch_codes",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "producer_signed_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="producer_signed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="manifest_producer_signatures",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "producer_signed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "receiver",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="receiver_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="manifests_in",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("arrived_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "decision_due_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("decision", fields.CharField(null=True, max_length=24)),
                (
                    "received_quantity_kg",
                    fields.DecimalField(null=True, max_digits=12, decimal_places=3),
                ),
                (
                    "method",
                    fields.ForeignKeyField(
                        "wastetrack.TreatmentMethod",
                        source_field="method_id",
                        null=True,
                        db_constraint=True,
                        to_field="code",
                        related_name="manifests",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("decision_reason", fields.TextField(null=True, unique=False)),
                (
                    "receiver_signed_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="receiver_signed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="manifest_receiver_signatures",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "receiver_signed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="created_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="manifests_created",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "manifest", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ManifestDiscrepancy",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "manifest",
                    fields.ForeignKeyField(
                        "wastetrack.Manifest",
                        source_field="manifest_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="discrepancies",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("field", fields.CharField(max_length=32)),
                ("declared", fields.CharField(max_length=128)),
                ("found", fields.CharField(max_length=128)),
                ("recorded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "manifest_discrepancy",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A mismatch found on receipt, for the producer and the authority to see.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ManifestLeg",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "manifest",
                    fields.ForeignKeyField(
                        "wastetrack.Manifest",
                        source_field="manifest_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="legs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("seq", fields.IntField()),
                (
                    "carrier",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="carrier_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="manifest_legs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("vehicle_plate", fields.CharField(max_length=16)),
                ("permit_number", fields.CharField(max_length=64)),
                (
                    "handover_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("handover_place", fields.CharField(null=True, max_length=128)),
                (
                    "signed_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="signed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="manifest_leg_signatures",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("signed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "manifest_leg",
                "app": "wastetrack",
                "unique_together": (("manifest", "seq"),),
                "pk_attr": "id",
                "table_description": "One carrier's leg (联运: several, in order), locked by the carrier's signature.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ManifestRevision",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "manifest",
                    fields.ForeignKeyField(
                        "wastetrack.Manifest",
                        source_field="manifest_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="revisions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "proposed_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="proposed_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="manifest_revisions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("proposer_organization_id", fields.IntField()),
                (
                    "changes",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "previous",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("reason", fields.TextField(unique=False)),
                ("state", fields.CharField(default="pending", max_length=16)),
                (
                    "approvals",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("decided_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "manifest_revision",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A correction one party proposes and every other party must approve; the manifest keeps",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ManifestSerial",
            fields=[
                (
                    "key",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=16),
                ),
                ("last_serial", fields.IntField(default=0)),
            ],
            options={
                "table": "manifest_serial",
                "app": "wastetrack",
                "pk_attr": "key",
                "table_description": "The last serial used per year and area, for the 14-digit manifest number.",
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
