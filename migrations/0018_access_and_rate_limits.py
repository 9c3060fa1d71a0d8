from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    # Service agreements (who may tag whose waste) and rate-limit counters shared by workers.
    dependencies = [("wastetrack", "0017_keys_and_tamper_evidence")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RateLimitCounter",
            fields=[
                (
                    "key",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=255),
                ),
                ("count", fields.IntField(default=0)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("touched_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "rate_limit_counter",
                "app": "wastetrack",
                "pk_attr": "key",
                "table_description": "One fixed-window counter (or one login back-off) by key.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ServiceAgreement",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "provider",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="provider_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="agreements_as_provider",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "client",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="client_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="agreements_as_client",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "streams",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("valid_from", fields.DateField()),
                ("valid_to", fields.DateField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "service_agreement",
                "app": "wastetrack",
                "indexes": [Index(fields=["provider_id", "client_id"])],
                "pk_attr": "id",
                "table_description": "A carrier or collector serving a client organization (收运服务协议): it may tag the client's",
            },
            bases=["Model"],
        ),
    ]
