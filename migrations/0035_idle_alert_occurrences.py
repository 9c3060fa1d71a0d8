from tortoise import migrations
from tortoise.migrations import operations as ops

# Idle-batch alerts were one per batch and state (subject `CODE:state`), so a batch idle again
# later in the same state was never alerted again; the subject is now `CODE:epoch of the moment
# the batch last moved` (its details keep `since`), as the rule writes it, so that a refresh
# neither clears an alert still due nor raises a second one beside it.
REWRITE = """
WITH renamed AS (
    SELECT DISTINCT ON (subject) id, subject FROM (
        SELECT id, (details->>'code') || ':'
                   || extract(epoch FROM (details->>'since')::timestamptz)::bigint AS subject
        FROM alert
        WHERE kind = 'idle_batch' AND details ? 'code' AND details ? 'since'
          AND subject = left((details->>'code') || ':' || (details->>'state'), 32)
    ) old
    WHERE NOT EXISTS (SELECT 1 FROM alert b WHERE b.kind = 'idle_batch'
                      AND b.subject = old.subject)
    ORDER BY subject, id DESC
)
UPDATE alert a SET subject = r.subject FROM renamed r WHERE a.id = r.id;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0034_batch_fact_method")]

    initial = False

    operations = [ops.RunSQL(REWRITE, reverse_sql="SELECT 1;")]
