from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from wastetrack.auth.models import Role
from wastetrack.batches.models import Unit
from wastetrack.registry.models import OrganizationKind, RegionLevel
from tortoise import fields


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="LoginThrottle",
            fields=[
                (
                    "username",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("failures", fields.IntField(default=0)),
                (
                    "locked_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "last_failure_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "login_throttle",
                "app": "wastetrack",
                "pk_attr": "username",
                "table_description": "Failed logins per username, whether or not the user exists.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Region",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("code", fields.CharField(unique=True, max_length=32)),
                ("name", fields.CharField(max_length=64)),
                (
                    "level",
                    fields.CharEnumField(
                        description="city: city\ntown: town\nvillage: village",
                        enum_type=RegionLevel,
                        max_length=16,
                    ),
                ),
                (
                    "parent",
                    fields.ForeignKeyField(
                        "wastetrack.Region",
                        source_field="parent_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="children",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("path", fields.CharField(db_index=True, max_length=255)),
            ],
            options={"table": "region", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Organization",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=128)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="collection_point: collection_point\ncommunity: community\nclinic: clinic\nhospital: hospital\nenterprise: enterprise\nagri_input_shop: agri_input_shop\nrecovery_point: recovery_point\nfishing_port: fishing_port\nvessel_owner: vessel_owner\ncarrier: carrier\ntreatment_facility: treatment_facility\nauthority: authority",
                        enum_type=OrganizationKind,
                        max_length=32,
                    ),
                ),
                (
                    "region",
                    fields.ForeignKeyField(
                        "wastetrack.Region",
                        source_field="region_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="organizations",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("credit_code", fields.CharField(null=True, unique=True, max_length=32)),
                ("bed_count", fields.IntField(null=True)),
                ("contact_phone", fields.CharField(null=True, max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "organization", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FacilityLicence",
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
                        related_name="licences",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("category_key", fields.CharField(max_length=64)),
                (
                    "method_codes",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("permit_number", fields.CharField(null=True, max_length=64)),
                ("valid_until", fields.DateField(null=True)),
            ],
            options={
                "table": "facility_licence",
                "app": "wastetrack",
                "unique_together": (("organization", "category_key"),),
                "pk_attr": "id",
                "table_description": "A treatment facility's permit for one category (and its sub-categories).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Site",
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
                        related_name="sites",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=128)),
                (
                    "region",
                    fields.ForeignKeyField(
                        "wastetrack.Region",
                        source_field="region_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sites",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("latitude", fields.FloatField()),
                ("longitude", fields.FloatField()),
            ],
            options={"table": "site", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TreatmentMethod",
            fields=[
                (
                    "code",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=8),
                ),
                ("name_zh", fields.CharField(max_length=64)),
                ("name_en", fields.CharField(max_length=128)),
                ("mode", fields.CharField(max_length=16)),
                ("source", fields.CharField(max_length=255)),
                ("edition", fields.CharField(max_length=64)),
            ],
            options={"table": "treatment_method", "app": "wastetrack", "pk_attr": "code"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("username", fields.CharField(unique=True, max_length=64)),
                ("password_hash", fields.CharField(max_length=255)),
                ("full_name", fields.CharField(default="", max_length=64)),
                (
                    "role",
                    fields.CharEnumField(
                        description="collector: collector\nport_operator: port_operator\ncarrier: carrier\nfacility_operator: facility_operator\ngenerator: generator\nmanager: manager\nauditor: auditor\nadmin: admin",
                        enum_type=Role,
                        max_length=32,
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="users",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("is_active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "app_user", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Photo",
            fields=[
                (
                    "sha256",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("content_type", fields.CharField(max_length=32)),
                ("size_bytes", fields.IntField()),
                ("width", fields.IntField()),
                ("height", fields.IntField()),
                (
                    "uploaded_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="uploaded_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="photos",
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
                        related_name="photos",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "photo", "app": "wastetrack", "pk_attr": "sha256"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RefreshToken",
            fields=[
                (
                    "jti",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refresh_tokens",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "refresh_token",
                "app": "wastetrack",
                "pk_attr": "jti",
                "table_description": "One issued refresh token; rotation revokes it, so a stolen copy works once at most.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Vessel",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=128)),
                ("registration_number", fields.CharField(unique=True, max_length=64)),
                ("imo_number", fields.CharField(null=True, max_length=16)),
                ("mmsi", fields.CharField(null=True, max_length=16)),
                ("gross_tonnage", fields.DecimalField(max_digits=10, decimal_places=2)),
                ("vessel_type", fields.CharField(default="fishing", max_length=32)),
                (
                    "home_port",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="home_port_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="home_vessels",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "owner",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="owner_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="owned_vessels",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
            ],
            options={"table": "vessel", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WasteStream",
            fields=[
                (
                    "code",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32),
                ),
                ("name_zh", fields.CharField(max_length=64)),
                ("name_en", fields.CharField(max_length=64)),
                ("default_unit", fields.CharField(max_length=8)),
                ("source", fields.CharField(max_length=255)),
                ("edition", fields.CharField(max_length=32)),
            ],
            options={"table": "waste_stream", "app": "wastetrack", "pk_attr": "code"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Label",
            fields=[
                (
                    "code",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=16),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="labels",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "stream",
                    fields.ForeignKeyField(
                        "wastetrack.WasteStream",
                        source_field="stream_id",
                        db_constraint=True,
                        to_field="code",
                        related_name="labels",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "issued_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="issued_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="issued_labels",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("issued_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("bound_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "label",
                "app": "wastetrack",
                "pk_attr": "code",
                "table_description": "A QR code, pre-printed on label stock or made with its batch; bound at most once.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WasteCategory",
            fields=[
                (
                    "key",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                (
                    "stream",
                    fields.ForeignKeyField(
                        "wastetrack.WasteStream",
                        source_field="stream_id",
                        db_constraint=True,
                        to_field="code",
                        related_name="categories",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("parent_key", fields.CharField(null=True, max_length=64)),
                ("code", fields.CharField(max_length=32)),
                ("name_zh", fields.CharField(max_length=64)),
                ("name_en", fields.CharField(max_length=96)),
                ("colour", fields.CharField(null=True, max_length=7)),
                (
                    "hazard",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("storage_limit_hours", fields.IntField(null=True)),
                ("density_kg_m3", fields.DecimalField(null=True, max_digits=8, decimal_places=2)),
                ("level", fields.IntField(null=True)),
                ("scheme", fields.CharField(max_length=64)),
                ("scheme_version", fields.CharField(max_length=16)),
                ("source", fields.CharField(max_length=255)),
                ("edition", fields.CharField(max_length=32)),
            ],
            options={"table": "waste_category", "app": "wastetrack", "pk_attr": "key"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Batch",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("code", fields.CharField(unique=True, max_length=16)),
                (
                    "stream",
                    fields.ForeignKeyField(
                        "wastetrack.WasteStream",
                        source_field="stream_id",
                        db_constraint=True,
                        to_field="code",
                        related_name="batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "category",
                    fields.ForeignKeyField(
                        "wastetrack.WasteCategory",
                        source_field="category_id",
                        db_constraint=True,
                        to_field="key",
                        related_name="batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("waste_code", fields.CharField(null=True, max_length=16)),
                (
                    "producer",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="producer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="produced_batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "origin_site",
                    fields.ForeignKeyField(
                        "wastetrack.Site",
                        source_field="origin_site_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("region_path", fields.CharField(db_index=True, max_length=255)),
                ("quantity", fields.DecimalField(max_digits=12, decimal_places=3)),
                (
                    "unit",
                    fields.CharEnumField(
                        description="KG: kg\nCOUNT: count\nM3: m3", enum_type=Unit, max_length=8
                    ),
                ),
                ("state", fields.CharField(db_index=True, max_length=24)),
                (
                    "holder",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="holder_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="held_batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "carrier",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="carrier_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="carried_batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "destination",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="destination_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="destined_batches",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "parent",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="parent_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="children",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("tagged_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("last_seq", fields.IntField(default=0)),
                ("last_hash", fields.CharField(default="", max_length=64)),
                (
                    "last_device_time",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={"table": "batch", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CustodyEvent",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="batch_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("seq", fields.IntField()),
                ("event_type", fields.CharField(max_length=24)),
                ("state_after", fields.CharField(max_length=24)),
                ("outcome", fields.CharField(null=True, max_length=24)),
                ("reason", fields.TextField(null=True, unique=False)),
                (
                    "method",
                    fields.ForeignKeyField(
                        "wastetrack.TreatmentMethod",
                        source_field="method_id",
                        null=True,
                        db_constraint=True,
                        to_field="code",
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("mode", fields.CharField(null=True, max_length=16)),
                (
                    "to_organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="to_organization_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="received_handovers",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "related_batch",
                    fields.ForeignKeyField(
                        "wastetrack.Batch",
                        source_field="related_batch_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="related_events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "corrects",
                    fields.ForeignKeyField(
                        "wastetrack.CustodyEvent",
                        source_field="corrects_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="corrections",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "details",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("device_time", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("server_time", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="actor_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
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
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("latitude", fields.FloatField(null=True)),
                ("longitude", fields.FloatField(null=True)),
                ("weight_kg", fields.DecimalField(null=True, max_digits=12, decimal_places=3)),
                ("photo_sha256", fields.CharField(null=True, max_length=64)),
                ("client_event_id", fields.UUIDField(null=True, unique=True)),
                ("payload_digest", fields.CharField(null=True, max_length=64)),
                ("prev_hash", fields.CharField(max_length=64)),
                ("hash", fields.CharField(max_length=64)),
            ],
            options={
                "table": "custody_event",
                "app": "wastetrack",
                "unique_together": (("batch", "seq"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
