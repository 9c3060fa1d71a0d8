# Migration 0060 gave each open overdue-storage alert the subject its batch has now: `:contents`
# when the batch holds waste, else its code. An alert the release before raised for the other
# clock — a box alerted while it stood empty (its `since` the box's own tagging) and filled
# before the upgrade, or one alerted for its waste and emptied since — would stand, with its
# acknowledgement, for a condition it never measured. Each such alert is cleared here as the
# rules clear one whose condition ended (its acknowledgement kept, `cleared_at` set), so the
# next refresh raises the batch's alert as a new one. Open alerts only; their `since` is still
# the one the release before measured, as 0060 left details untouched.
from tortoise import migrations
from tortoise.migrations import operations as ops

CLEAR = """
UPDATE alert a
   SET acknowledged_at = coalesce(a.acknowledged_at, now()),
       details = a.details || jsonb_build_object('cleared_at', now())
  FROM batch b
 WHERE b.id = a.batch_id AND a.kind = 'overdue_storage' AND NOT a.details ? 'cleared_at'
   AND a.details ? 'since'
   AND (a.subject LIKE '%:contents') = ((a.details->>'since')::timestamptz = b.tagged_at);
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0060_storage_alert_subjects")]

    initial = False

    operations = [ops.RunSQL(CLEAR, reverse_sql="SELECT 1;")]
