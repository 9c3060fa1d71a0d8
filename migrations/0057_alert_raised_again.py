# An alert that cleared itself and is raised again when its condition returns (alerts.service
# _RAISE_AGAIN: an UPDATE that reopens it) was logged as `alert.changed`, so the change feed and
# the webhooks, which send `alert.raised` only, never told a subscriber it was raised again. The
# alert's log function now names a reopening (acknowledged before, open after) `alert.raised`,
# dated when it was raised again; other updates stay `alert.changed`. Rows already logged stay
# as they were (the log is append-only).
from tortoise import migrations
from tortoise.migrations import operations as ops

LOG_ALERT = """
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

LOG_ALERT_BEFORE = """
CREATE OR REPLACE FUNCTION wastetrack_log_alert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, subject, organization_id, region_path, occurred_at, data)
    VALUES (CASE TG_OP WHEN 'INSERT' THEN 'alert.raised' ELSE 'alert.changed' END,
            NEW.id::text, NEW.organization_id, NEW.region_path,
            CASE TG_OP WHEN 'INSERT' THEN NEW.raised_at ELSE now() END,
            jsonb_build_object('alert_id', NEW.id, 'kind', NEW.kind, 'subject', NEW.subject,
                               'batch_id', NEW.batch_id,
                               'acknowledged', NEW.acknowledged_at IS NOT NULL));
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0056_webhook_withheld")]

    initial = False

    operations = [ops.RunSQL(LOG_ALERT, reverse_sql=LOG_ALERT_BEFORE)]
