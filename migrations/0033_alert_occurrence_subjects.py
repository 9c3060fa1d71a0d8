from tortoise import migrations
from tortoise.migrations import operations as ops

# Alerts raised before occurrences were told apart: a batch overdue in transit was subject
# `CODE`, now `CODE:epoch of the journey's start` (its details keep `since`); a manifest overdue
# for decision was subject `NUMBER`, now `NUMBER:epoch of the deadline` (the alert's due_at).
# Rewritten as the rules now write them, so that a refresh neither clears an alert still due nor
# raises a second one beside it.
REWRITE = """
UPDATE alert
   SET subject = (details->>'code') || ':'
                 || extract(epoch FROM (details->>'since')::timestamptz)::bigint
 WHERE kind = 'leg_overdue' AND position(':' IN subject) = 0
   AND details ? 'code' AND details ? 'since';
UPDATE alert
   SET subject = subject || ':' || floor(extract(epoch FROM due_at))::bigint
 WHERE kind = 'manifest_overdue' AND position(':' IN subject) = 0 AND due_at IS NOT NULL;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0032_idempotency_keys")]

    initial = False

    operations = [ops.RunSQL(REWRITE, reverse_sql="SELECT 1;")]
