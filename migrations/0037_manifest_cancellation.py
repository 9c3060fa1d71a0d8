from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    # A manifest may be cancelled (作废) before it arrives: when, by whom and why. Null for
    # every manifest recorded before (none was cancelled).
    dependencies = [("wastetrack", "0036_webhook_failing_since")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Manifest",
            name="cancelled_at",
            field=fields.DatetimeField(null=True),
        ),
        ops.AddField(
            model_name="Manifest",
            name="cancelled_by",
            field=fields.ForeignKeyField(
                "wastetrack.User",
                source_field="cancelled_by_id",
                to_field="id",
                related_name="manifests_cancelled",
                null=True,
                on_delete=fields.RESTRICT,
            ),
        ),
        ops.AddField(
            model_name="Manifest",
            name="cancel_reason",
            field=fields.TextField(null=True),
        ),
    ]
