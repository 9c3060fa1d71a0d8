from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    # A sale entered wrong (a count typed as 1000 for 100) swelled the recovery rate's
    # denominator for good: nothing could take it back. Its shop may now cancel it (作废), with
    # when, by whom and why; a cancelled sale counts in no figure. Null for every sale recorded
    # before (none was cancelled).
    dependencies = [("wastetrack", "0048_pickup_organization")]

    initial = False

    operations = [
        ops.AddField(
            model_name="PackageSale",
            name="cancelled_at",
            field=fields.DatetimeField(null=True),
        ),
        ops.AddField(
            model_name="PackageSale",
            name="cancelled_by",
            field=fields.ForeignKeyField(
                "wastetrack.User",
                source_field="cancelled_by_id",
                to_field="id",
                related_name="package_sales_cancelled",
                null=True,
                on_delete=fields.RESTRICT,
            ),
        ),
        ops.AddField(
            model_name="PackageSale",
            name="cancel_reason",
            field=fields.TextField(null=True),
        ),
    ]
