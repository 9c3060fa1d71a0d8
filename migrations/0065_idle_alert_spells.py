from tortoise import migrations
from tortoise.migrations import operations as ops

# An idle-batch alert's subject named its spell by the moment it began (`CODE:epoch`), so a
# tagging time corrected while the batch stayed idle cleared the standing alert, acknowledged
# or not, and raised a second one. The spell is now named by the batch's latest step, the seq
# of its latest event that is neither a correction nor an aggregation a correction undid
# (`CODE:seq`), as the rule writes it: a standing alert takes that subject here, so a refresh
# neither clears it nor raises a second one beside it. Cleared alerts keep theirs (history).
REWRITE = """
WITH renamed AS (
    SELECT DISTINCT ON (subject) id, subject FROM (
        SELECT a.id, (a.details->>'code') || ':' || (
                   SELECT max(e.seq) FROM custody_event e
                   WHERE e.batch_id = a.batch_id AND e.event_type <> 'corrected'
                     AND NOT (e.event_type = 'aggregated' AND e.related_batch_id IS NOT NULL
                              AND (SELECT c.details->'corrected'->>'aggregated'
                                   FROM custody_event c
                                   WHERE c.batch_id = e.batch_id AND c.corrects_id = e.id
                                     AND c.details->'corrected' ? 'aggregated'
                                   ORDER BY c.seq DESC LIMIT 1) IS NOT DISTINCT FROM 'false')
               ) AS subject
        FROM alert a
        WHERE a.kind = 'idle_batch' AND a.batch_id IS NOT NULL AND a.details ? 'code'
          AND NOT a.details ? 'cleared_at'
          AND a.subject ~ ('^' || (a.details->>'code') || ':[0-9]{9,}$')
    ) old
    WHERE subject IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM alert b WHERE b.kind = 'idle_batch'
                      AND b.subject = old.subject)
    ORDER BY subject, id DESC
)
UPDATE alert a SET subject = r.subject FROM renamed r WHERE a.id = r.id;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0064_kept_lines_in_plain_figures")]

    initial = False

    operations = [ops.RunSQL(REWRITE, reverse_sql="SELECT 1;")]
