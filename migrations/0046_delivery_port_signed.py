from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# Whether the port signed for a delivery was read from its recorder's *current* organization:
# a port operator moved to another organization later turned every delivery they had signed into
# the vessel's unsigned declaration (and its lines back to pending on the receipt). A delivery now
# keeps what it was when recorded. Those recorded before get what was read until now.
BACKFILL = """
UPDATE delivery AS d
   SET signed_by_port = (u.organization_id = d.port_id)
  FROM app_user AS u
 WHERE u.id = d.recorded_by_id;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0045_delivery_owner")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Delivery",
            name="signed_by_port",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.RunSQL(BACKFILL, reverse_sql=ops.RunSQL.noop),
    ]
