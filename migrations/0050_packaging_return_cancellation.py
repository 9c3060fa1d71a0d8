from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    # A return entered wrong (a count typed as 200 for 20) swelled the recovery rate's
    # numerator and the farmer's credit points for good. Its point may now cancel it (作废), as
    # a shop cancels a sale (0049): when, by whom and why; a cancelled return counts in no
    # figure and no balance. Null for every return recorded before (none was cancelled).
    dependencies = [("wastetrack", "0049_package_sale_cancellation")]

    initial = False

    operations = [
        ops.AddField(
            model_name="PackagingReturn",
            name="cancelled_at",
            field=fields.DatetimeField(null=True),
        ),
        ops.AddField(
            model_name="PackagingReturn",
            name="cancelled_by",
            field=fields.ForeignKeyField(
                "wastetrack.User",
                source_field="cancelled_by_id",
                to_field="id",
                related_name="packaging_returns_cancelled",
                null=True,
                on_delete=fields.RESTRICT,
            ),
        ),
        ops.AddField(
            model_name="PackagingReturn",
            name="cancel_reason",
            field=fields.TextField(null=True),
        ),
    ]
