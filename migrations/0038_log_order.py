from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# A transaction's id (txid) is given at its first write or lock, not at its commit, so the
# order of txids is not the order in which a batch's events were recorded: a sync that locked
# one batch and waited for another's lock records its event after the event of a transaction
# begun later. So a batch event's change_log row takes the later of its transaction's id and
# that of the batch's previous row (committed: the recorder holds the batch's lock), and the
# feed, in (txid, id) order, lists a batch's events in their order (seq). The row of a
# transaction still in flight stays unreadable whatever txid it carries: it is never below
# the snapshot's xmin while its transaction runs.
BATCH_ORDER = """
CREATE INDEX change_log_batch_idx ON change_log (batch_id, txid) WHERE batch_id IS NOT NULL;

CREATE OR REPLACE FUNCTION wastetrack_log_custody_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (txid, kind, subject, batch_id, region_path, occurred_at, data)
    SELECT greatest(pg_current_xact_id(),
                    (SELECT c.txid FROM change_log c WHERE c.batch_id = b.id
                     ORDER BY c.txid DESC LIMIT 1)),
           'batch.event_recorded', NEW.id::text, b.id, b.region_path, NEW.server_time,
           jsonb_build_object('event_id', NEW.id, 'batch_id', b.id, 'batch', b.code,
                              'seq', NEW.seq, 'event_type', NEW.event_type,
                              'state', NEW.state_after)
    FROM batch b WHERE b.id = NEW.batch_id;
    RETURN NULL;
END $$;
COMMENT ON TABLE change_log IS 'The change feed: custody events, manifest changes and alerts,'
    ' in (txid, id) order, a batch''s events in their order (seq)';
"""

BATCH_ORDER_REVERSE = """
CREATE OR REPLACE FUNCTION wastetrack_log_custody_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, subject, batch_id, region_path, occurred_at, data)
    SELECT 'batch.event_recorded', NEW.id::text, b.id, b.region_path, NEW.server_time,
           jsonb_build_object('event_id', NEW.id, 'batch_id', b.id, 'batch', b.code,
                              'seq', NEW.seq, 'event_type', NEW.event_type,
                              'state', NEW.state_after)
    FROM batch b WHERE b.id = NEW.batch_id;
    RETURN NULL;
END $$;
COMMENT ON TABLE change_log IS 'The change feed: custody events, manifest changes and alerts,'
    ' in commit order by (txid, id)';
DROP INDEX IF EXISTS change_log_batch_idx;
"""

# The audit log is read like the change feed (wastetrack.changes.paging): an entry's id is
# given at its insert, mid-transaction, so a reader paging by id skipped an entry whose
# transaction committed after a later entry was read. Each entry now carries its transaction's
# id, like change_log (xid8, which the ORM does not know: the column is not in the model and
# the database fills it in). Entries written before this migration take 0: they come first,
# in id order, and all their transactions have ended. Added with a constant default, so the
# append-only table is neither updated nor rewritten.
AUDIT_TXID = """
ALTER TABLE audit_entry ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
ALTER TABLE audit_entry ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE INDEX audit_entry_order_idx ON audit_entry (txid, id);
"""

AUDIT_TXID_REVERSE = """
DROP INDEX IF EXISTS audit_entry_order_idx;
ALTER TABLE audit_entry DROP COLUMN IF EXISTS txid;
"""

# Webhooks send one batch's deliveries in the order of its events (seq), not of the
# deliveries' ids. Pending deliveries of batch events take the seq their body carries; a
# delivered one is sent again only if replayed, and then after the batch's pending events.
DELIVERY_SEQ = """
UPDATE webhook_delivery SET seq = (body::jsonb #>> '{data,seq}')::integer
WHERE status = 'pending' AND event_type = 'batch.event_recorded';
DROP INDEX IF EXISTS webhook_delivery_pending_order_idx;
CREATE INDEX webhook_delivery_pending_seq_idx
    ON webhook_delivery (subscription_id, order_key, seq, id) WHERE status = 'pending';
"""

DELIVERY_SEQ_REVERSE = """
DROP INDEX IF EXISTS webhook_delivery_pending_seq_idx;
CREATE INDEX webhook_delivery_pending_order_idx
    ON webhook_delivery (subscription_id, order_key, id) WHERE status = 'pending';
"""


class Migration(migrations.Migration):
    # The change feed lists a batch's events in their order, the audit log is paged by
    # transaction like the feed, and webhooks send a batch's deliveries in the events' order.
    dependencies = [("wastetrack", "0037_manifest_cancellation")]

    initial = False

    operations = [
        ops.RunSQL(BATCH_ORDER, reverse_sql=BATCH_ORDER_REVERSE),
        ops.RunSQL(AUDIT_TXID, reverse_sql=AUDIT_TXID_REVERSE),
        ops.AddField(
            model_name="WebhookDelivery",
            name="seq",
            field=fields.IntField(null=True),
        ),
        ops.RunSQL(DELIVERY_SEQ, reverse_sql=DELIVERY_SEQ_REVERSE),
    ]
