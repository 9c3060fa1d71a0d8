from tortoise import migrations
from tortoise.migrations import operations as ops

# The change feed (GET /m/v1/changes): one row per custody event, manifest change and alert,
# written by triggers in the transaction that makes the change, so a change and its feed row
# commit (or roll back) together. Each row carries the id of its writing transaction (txid);
# readers return only rows of transactions older than every transaction still running
# (txid < pg_snapshot_xmin), ordered by (txid, id), so a row of a transaction still in flight
# is never skipped by a cursor: it becomes readable, after that cursor, once its transaction
# ends. The scope columns let readers apply the same read rules as the batch, manifest and
# alert lists. Like custody_event, the log is append-only.
CREATE = """
CREATE TABLE change_log (
    id bigserial PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    kind text NOT NULL,
    subject text NOT NULL,
    batch_id integer NULL,
    manifest_id integer NULL,
    organization_id integer NULL,
    region_path text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    data jsonb NOT NULL
);
CREATE INDEX change_log_order_idx ON change_log (txid, id);
COMMENT ON TABLE change_log IS 'The change feed: custody events, manifest changes and alerts,'
    ' in commit order by (txid, id)';

CREATE FUNCTION wastetrack_log_custody_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, subject, batch_id, region_path, occurred_at, data)
    SELECT 'batch.event_recorded', NEW.id::text, b.id, b.region_path, NEW.server_time,
           jsonb_build_object('event_id', NEW.id, 'batch_id', b.id, 'batch', b.code,
                              'seq', NEW.seq, 'event_type', NEW.event_type,
                              'state', NEW.state_after)
    FROM batch b WHERE b.id = NEW.batch_id;
    RETURN NULL;
END $$;
CREATE TRIGGER custody_event_change_log AFTER INSERT ON custody_event
    FOR EACH ROW EXECUTE FUNCTION wastetrack_log_custody_event();

CREATE FUNCTION wastetrack_log_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, subject, manifest_id, region_path, data)
    VALUES ('manifest.changed', NEW.id::text, NEW.id, NEW.region_path,
            jsonb_build_object('manifest_id', NEW.id, 'number', NEW.number,
                               'state', NEW.state, 'change', lower(TG_OP)));
    RETURN NULL;
END $$;
CREATE TRIGGER manifest_change_log_insert AFTER INSERT ON manifest
    FOR EACH ROW EXECUTE FUNCTION wastetrack_log_manifest();
CREATE TRIGGER manifest_change_log_update AFTER UPDATE ON manifest
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION wastetrack_log_manifest();

CREATE FUNCTION wastetrack_log_alert() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER alert_change_log_insert AFTER INSERT ON alert
    FOR EACH ROW EXECUTE FUNCTION wastetrack_log_alert();
CREATE TRIGGER alert_change_log_update AFTER UPDATE ON alert
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION wastetrack_log_alert();

CREATE TRIGGER change_log_append_only BEFORE UPDATE OR DELETE ON change_log
    FOR EACH ROW EXECUTE FUNCTION wastetrack_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS alert_change_log_update ON alert;
DROP TRIGGER IF EXISTS alert_change_log_insert ON alert;
DROP FUNCTION IF EXISTS wastetrack_log_alert();
DROP TRIGGER IF EXISTS manifest_change_log_update ON manifest;
DROP TRIGGER IF EXISTS manifest_change_log_insert ON manifest;
DROP FUNCTION IF EXISTS wastetrack_log_manifest();
DROP TRIGGER IF EXISTS custody_event_change_log ON custody_event;
DROP FUNCTION IF EXISTS wastetrack_log_custody_event();
DROP TABLE IF EXISTS change_log;
"""


class Migration(migrations.Migration):
    # The change feed's log and its triggers (SQL only: the table has no Tortoise model, its
    # txid column being of a type the ORM does not know).
    dependencies = [("wastetrack", "0021_rollup_layers")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
