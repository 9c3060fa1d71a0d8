# An overdue-storage alert's subject was `CODE:epoch of its clock's start`, so anything that
# moved the start while the batch stayed overdue (a corrected tagging time, an older bag packed
# into an overdue box) cleared the alert and raised a new, unacknowledged one. The subject is now
# the batch code, with `:contents` for a container whose clock the waste put into it sets (a box
# alerted while empty and filled later is still a new alert); the start stays in
# `details.since`. The open alerts are rewritten as the rule now writes them, so that a refresh
# neither clears one still due nor raises a second beside it; cleared ones keep their subject.
from tortoise import migrations
from tortoise.migrations import operations as ops

REWRITE = """
WITH renamed AS (
    SELECT DISTINCT ON (subject) id, subject FROM (
        SELECT a.id, b.code || CASE WHEN EXISTS (SELECT 1 FROM batch put_in
                                                 WHERE put_in.parent_id = b.id)
                                    THEN ':contents' ELSE '' END AS subject
        FROM alert a JOIN batch b ON b.id = a.batch_id
        WHERE a.kind = 'overdue_storage' AND NOT a.details ? 'cleared_at'
    ) old
    WHERE NOT EXISTS (SELECT 1 FROM alert x WHERE x.kind = 'overdue_storage'
                      AND x.subject = old.subject)
    ORDER BY subject, id DESC
)
UPDATE alert a SET subject = r.subject FROM renamed r WHERE a.id = r.id;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0059_alert_moved_raised")]

    initial = False

    operations = [ops.RunSQL(REWRITE, reverse_sql="SELECT 1;")]
