from tortoise import migrations
from tortoise.migrations import operations as ops

# A manifest's changes in the feed in their order, as a batch's events since 0038: a
# transaction's id is given at its first write or lock, not at its commit, so a carrier's bulk
# signature that locked one manifest and waited for another wrote that other's next change
# under a lower id than the change committed before it (the producer's signature), and the
# feed, in (txid, id) order, listed the later state first — a webhook subscriber kept the
# earlier one as the manifest's state. A manifest's change_log row now takes the later of its
# transaction's id and that of the manifest's previous row (committed: a write holds the
# manifest row's lock until its transaction ends). 0023's function is history: replaced here.
MANIFEST_ORDER = """
CREATE INDEX change_log_manifest_idx ON change_log (manifest_id, txid)
    WHERE manifest_id IS NOT NULL;

CREATE OR REPLACE FUNCTION wastetrack_log_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (txid, kind, subject, manifest_id, region_path, data)
    VALUES (greatest(pg_current_xact_id(),
                     (SELECT c.txid FROM change_log c WHERE c.manifest_id = NEW.id
                      ORDER BY c.txid DESC LIMIT 1)),
            'manifest.changed', NEW.id::text, NEW.id, NEW.region_path,
            jsonb_build_object('manifest_id', NEW.id, 'number', NEW.number,
                               'state', NEW.state, 'change', lower(TG_OP),
                               'previous_state',
                               CASE TG_OP WHEN 'UPDATE' THEN OLD.state END));
    RETURN NULL;
END $$;
"""

MANIFEST_ORDER_REVERSE = """
CREATE OR REPLACE FUNCTION wastetrack_log_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, subject, manifest_id, region_path, data)
    VALUES ('manifest.changed', NEW.id::text, NEW.id, NEW.region_path,
            jsonb_build_object('manifest_id', NEW.id, 'number', NEW.number,
                               'state', NEW.state, 'change', lower(TG_OP),
                               'previous_state',
                               CASE TG_OP WHEN 'UPDATE' THEN OLD.state END));
    RETURN NULL;
END $$;
DROP INDEX IF EXISTS change_log_manifest_idx;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0065_idle_alert_spells")]

    initial = False

    operations = [ops.RunSQL(MANIFEST_ORDER, reverse_sql=MANIFEST_ORDER_REVERSE)]
