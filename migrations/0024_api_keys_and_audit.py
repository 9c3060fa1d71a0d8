import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# The audit log refuses every edit, like the custody log (wastetrack_refuse_change, 0017); the
# service's database role also loses UPDATE, DELETE and TRUNCATE on it (db._APPEND_ONLY).
AUDIT_APPEND_ONLY = """
CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION wastetrack_refuse_change();
"""
AUDIT_APPEND_ONLY_REVERSE = "DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry;"


class Migration(migrations.Migration):
    # API keys for machines and the audit log of registry, user, key and webhook changes.
    dependencies = [("wastetrack", "0023_webhooks")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ApiKey",
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
                        related_name="api_keys",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="service_keys",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=64)),
                ("prefix", fields.CharField(unique=True, max_length=16)),
                ("secret_hash", fields.CharField(max_length=64)),
                ("hash_version", fields.SmallIntField()),
                (
                    "scopes",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "wastetrack.User",
                        source_field="created_by_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="issued_api_keys",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "api_key", "app": "wastetrack", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("actor_user_id", fields.IntField(null=True)),
                ("actor_api_key_id", fields.IntField(null=True)),
                ("action", fields.CharField(max_length=64)),
                ("subject_type", fields.CharField(max_length=32)),
                ("subject_id", fields.CharField(max_length=64)),
                ("organization_id", fields.IntField(null=True)),
                ("region_path", fields.CharField(max_length=255)),
                (
                    "before",
                    fields.JSONField(
                        null=True,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "after",
                    fields.JSONField(
                        null=True,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("request_id", fields.CharField(null=True, max_length=64)),
            ],
            options={
                "table": "audit_entry",
                "app": "wastetrack",
                "indexes": [
                    Index(fields=["subject_type", "id"]),
                    Index(fields=["actor_user_id", "id"]),
                ],
                "pk_attr": "id",
                "table_description": "Append-only: a trigger refuses UPDATE and DELETE.",
            },
            bases=["Model"],
        ),
        ops.RunSQL(AUDIT_APPEND_ONLY, reverse_sql=AUDIT_APPEND_ONLY_REVERSE),
    ]
