from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

# A partial acceptance splits the refused part off as a remainder batch of its own, which points
# to the batch it was split from. Scan views look remainders up by that column: a partial index
# keeps the lookup cheap and costs nothing for the great majority of batches, which have none.
INDEX = (
    "CREATE INDEX IF NOT EXISTS batch_split_from_idx ON batch (split_from_id)"
    " WHERE split_from_id IS NOT NULL;"
)


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0019_list_indexes")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Batch",
            name="split_from",
            field=fields.ForeignKeyField(
                "wastetrack.Batch",
                source_field="split_from_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="remainders",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        ops.RunSQL(INDEX, reverse_sql="DROP INDEX IF EXISTS batch_split_from_idx;"),
    ]
