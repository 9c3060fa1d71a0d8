from tortoise import migrations
from tortoise.migrations import operations as ops

# Sealing a day (wastetrack.custody.checkpoints) reads that day's events by the time the server
# recorded them, and finds the days after the last seal the same way: with no index on
# server_time each was a scan of the whole custody log, once a day and at every start-up with
# a day to seal. The log is appended in server time within each partition (rows are never
# updated), so a BRIN index keeps a few bytes per 128 pages and costs the hot path next to
# nothing, unlike a B-tree that every recorded event would have to enter. On the partitioned
# log each partition, and each partition made ahead later, gets its own copy.
CREATE = """
CREATE INDEX IF NOT EXISTS custody_event_server_time_brin
    ON custody_event USING brin (server_time);
"""
DROP = "DROP INDEX IF EXISTS custody_event_server_time_brin;"


class Migration(migrations.Migration):
    # An index for the checkpoints' day reads (SQL only: no model changes).
    dependencies = [("wastetrack", "0043_batches_without_mass")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
