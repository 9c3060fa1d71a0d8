from tortoise import migrations
from tortoise.migrations import operations as ops

# 0046 filled `signed_by_port` of the deliveries recorded before it from their recorder's
# organization as it was when the migration ran: an operator who had moved to another
# organization by then left their deliveries unsigned, the very fault 0046 fixes. The custody log
# keeps the organization each event was recorded for: a delivery is signed by the port when its
# lines were tagged for the port (the port's operator recorded it), as `record_delivery` sets the
# flag. For deliveries recorded since 0046 this reads the same value again.
BACKFILL = """
UPDATE delivery AS d
   SET signed_by_port = EXISTS (
        SELECT 1 FROM delivery_line AS l
          JOIN custody_event AS e ON e.batch_id = l.batch_id AND e.event_type = 'tagged'
         WHERE l.delivery_id = d.id AND e.organization_id = d.port_id);
"""


class Migration(migrations.Migration):
    # Data only: no model changes.
    dependencies = [("wastetrack", "0046_delivery_port_signed")]

    initial = False

    operations = [ops.RunSQL(BACKFILL, reverse_sql=ops.RunSQL.noop)]
