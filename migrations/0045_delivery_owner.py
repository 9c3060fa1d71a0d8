from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# A delivery was readable by its vessel's *current* owner: once a vessel changed hands, the new
# owner read every receipt of the old one (and the old owner lost its own). A delivery now keeps
# the owner it was made for, as its batches keep their producer. Deliveries recorded before get
# it from those batches: their producer is the vessel's owner at the time, or the port when the
# vessel had none (then no owner).
BACKFILL = """
UPDATE delivery AS d
   SET owner_id = first_line.producer_id
  FROM (SELECT DISTINCT ON (l.delivery_id) l.delivery_id, b.producer_id
          FROM delivery_line AS l JOIN batch AS b ON b.id = l.batch_id
         ORDER BY l.delivery_id, l.id) AS first_line
 WHERE first_line.delivery_id = d.id AND first_line.producer_id <> d.port_id;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0044_custody_server_time_brin")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Delivery",
            name="owner",
            field=fields.ForeignKeyField(
                "wastetrack.Organization",
                source_field="owner_id",
                to_field="id",
                related_name="owned_deliveries",
                null=True,
                on_delete=fields.RESTRICT,
            ),
        ),
        ops.RunSQL(BACKFILL, reverse_sql=ops.RunSQL.noop),
    ]
