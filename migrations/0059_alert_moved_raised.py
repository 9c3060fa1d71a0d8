# A standing alert now follows its batch to the organization its rule names (alerts.service
# _RAISE_AGAIN: a corrected receipt gives an idle bag back to its carrier), and its change-log
# row follows it (the row carries the alert's new organization and region). That row was
# `alert.changed`, which webhooks do not send, so the organization now concerned was never told
# of an alert that had become its own. The alert's log function now names a move of an open
# alert to another organization `alert.raised` too, dated when it moved; a reopening stays
# `alert.raised` dated when it was raised again, and other updates `alert.changed`. Rows already
# logged stay as they were (the log is append-only).
from tortoise import migrations
from tortoise.migrations import operations as ops

LOG_ALERT = """
CREATE OR REPLACE FUNCTION wastetrack_log_alert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reopened boolean := TG_OP = 'UPDATE'
        AND OLD.acknowledged_at IS NOT NULL AND NEW.acknowledged_at IS NULL;
    moved boolean := TG_OP = 'UPDATE' AND NEW.acknowledged_at IS NULL
        AND OLD.organization_id IS DISTINCT FROM NEW.organization_id;
    raised boolean := TG_OP = 'INSERT' OR reopened OR moved;
BEGIN
    INSERT INTO change_log (kind, subject, organization_id, region_path, occurred_at, data)
    VALUES (CASE WHEN raised THEN 'alert.raised' ELSE 'alert.changed' END,
            NEW.id::text, NEW.organization_id, NEW.region_path,
            CASE WHEN TG_OP = 'INSERT' OR reopened THEN NEW.raised_at ELSE now() END,
            jsonb_build_object('alert_id', NEW.id, 'kind', NEW.kind, 'subject', NEW.subject,
                               'batch_id', NEW.batch_id,
                               'acknowledged', NEW.acknowledged_at IS NOT NULL));
    RETURN NULL;
END $$;
"""

# As migration 0057 left it.
LOG_ALERT_BEFORE = """
CREATE OR REPLACE FUNCTION wastetrack_log_alert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    raised boolean := TG_OP = 'INSERT'
        OR (OLD.acknowledged_at IS NOT NULL AND NEW.acknowledged_at IS NULL);
BEGIN
    INSERT INTO change_log (kind, subject, organization_id, region_path, occurred_at, data)
    VALUES (CASE WHEN raised THEN 'alert.raised' ELSE 'alert.changed' END,
            NEW.id::text, NEW.organization_id, NEW.region_path,
            CASE WHEN raised THEN NEW.raised_at ELSE now() END,
            jsonb_build_object('alert_id', NEW.id, 'kind', NEW.kind, 'subject', NEW.subject,
                               'batch_id', NEW.batch_id,
                               'acknowledged', NEW.acknowledged_at IS NOT NULL));
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0058_sorted_collection_ended")]

    initial = False

    operations = [ops.RunSQL(LOG_ALERT, reverse_sql=LOG_ALERT_BEFORE)]
