from tortoise import migrations
from tortoise.migrations import operations as ops

# An organization's registers (wastetrack/registers) start from every batch that ever passed
# through it: the events it recorded or that were handed to it. Without an index for each
# party that is one scan of the whole custody log per register; with them, two index reads
# (a BitmapOr). On the partitioned log each partition gets its own copy of the index. Handovers
# are a minority of events, so the receiver's index holds only the rows that name one.
CREATE = """
CREATE INDEX IF NOT EXISTS custody_event_actor_org_idx
    ON custody_event (organization_id, batch_id);
CREATE INDEX IF NOT EXISTS custody_event_receiver_org_idx
    ON custody_event (to_organization_id, batch_id) WHERE to_organization_id IS NOT NULL;
"""
DROP = """
DROP INDEX IF EXISTS custody_event_actor_org_idx;
DROP INDEX IF EXISTS custody_event_receiver_org_idx;
"""


class Migration(migrations.Migration):
    # Indexes for the registers' parties on the custody log (SQL only: no model changes).
    dependencies = [("wastetrack", "0029_partitioned_custody_log")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
