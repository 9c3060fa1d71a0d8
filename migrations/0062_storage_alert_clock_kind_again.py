# Migration 0061 told the clock an open overdue-storage alert had measured by whether its
# `since` equalled its batch's tagging time, which is not what tells them apart: a bag whose
# tagging time was corrected before the upgrade (the same clock, moved) and a box whose waste was
# tagged at the same second as the box lost their alerts and acknowledgements. Here the alerts
# 0061 cleared are opened again as they were (an alert it marked acknowledged by nobody is
# unacknowledged again), and only those that can have measured nothing but the other clock are
# cleared:
# - named for a box's waste (`:contents`), its `since` the box's own tagging time, and none of
#   the waste in the box, down through containers of containers, tagged at that time: the
#   alert of the box while it stood empty, filled since;
# - named for a batch's own tagging, its `since` not that tagging time, and the batch a
#   container once (its own `aggregated` event): the alert of its waste, the box emptied since.
# A bag's alert is never cleared here: its only clock is its tagging, moved or not.
from tortoise import migrations
from tortoise.migrations import operations as ops

REOPEN = """
UPDATE alert a
   SET details = a.details - 'cleared_at',
       acknowledged_at = CASE WHEN a.acknowledged_by_id IS NULL
                               AND a.acknowledged_at = (a.details->>'cleared_at')::timestamptz
                              THEN NULL ELSE a.acknowledged_at END
  FROM batch b
 WHERE b.id = a.batch_id AND a.kind = 'overdue_storage' AND a.details ? 'cleared_at'
   AND a.subject IN (b.code, b.code || ':contents');
"""

CLEAR = """
WITH RECURSIVE contents (root_id, id, tagged_at) AS (
    SELECT k.parent_id, k.id, k.tagged_at FROM alert a JOIN batch k ON k.parent_id = a.batch_id
     WHERE a.kind = 'overdue_storage' AND NOT a.details ? 'cleared_at'
  UNION ALL
    SELECT c.root_id, k.id, k.tagged_at FROM contents c JOIN batch k ON k.parent_id = c.id
)
UPDATE alert a
   SET acknowledged_at = coalesce(a.acknowledged_at, now()),
       details = a.details || jsonb_build_object('cleared_at', now())
  FROM batch b
 WHERE b.id = a.batch_id AND a.kind = 'overdue_storage' AND NOT a.details ? 'cleared_at'
   AND a.details ? 'since'
   AND CASE WHEN a.subject = b.code || ':contents'
            THEN (a.details->>'since')::timestamptz = b.tagged_at
                 AND NOT EXISTS (SELECT 1 FROM contents c
                                  WHERE c.root_id = b.id AND c.tagged_at = b.tagged_at)
            ELSE (a.details->>'since')::timestamptz <> b.tagged_at
                 AND EXISTS (SELECT 1 FROM custody_event e
                              WHERE e.batch_id = b.id AND e.event_type = 'aggregated'
                                AND e.related_batch_id IS NULL)
       END;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0061_storage_alert_clock_kind")]

    initial = False

    operations = [ops.RunSQL(REOPEN + CLEAR, reverse_sql="SELECT 1;")]
