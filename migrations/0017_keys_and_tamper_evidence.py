"""Keys and tamper evidence: daily checkpoints, chains begun before keyed hashes, an append-only
custody log, and refresh-token families.

Chains in an existing database were hashed with plain SHA-256; they are not re-hashed (that would
rewrite the evidence). Instead each chain's length at this migration is recorded in legacy_chain:
those events keep verifying as plain SHA-256, every later one must carry the keyed HMAC. The table
is filled here and refuses every change afterwards.

Refresh tokens issued before this migration carry no key id and would be refused anyway, so they
are deleted (users log in once more) rather than given a made-up family.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

APPEND_ONLY = """
CREATE FUNCTION wastetrack_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'WT001',
              HINT = 'custody history is corrected by new events, never by editing rows';
END $$;

CREATE TRIGGER custody_event_append_only BEFORE UPDATE OR DELETE ON custody_event
    FOR EACH ROW EXECUTE FUNCTION wastetrack_refuse_change();
CREATE TRIGGER checkpoint_append_only BEFORE UPDATE OR DELETE ON checkpoint
    FOR EACH ROW EXECUTE FUNCTION wastetrack_refuse_change();

INSERT INTO legacy_chain (batch_id, through_seq) SELECT id, last_seq FROM batch WHERE last_seq > 0;
CREATE TRIGGER legacy_chain_frozen BEFORE INSERT OR UPDATE OR DELETE ON legacy_chain
    FOR EACH ROW EXECUTE FUNCTION wastetrack_refuse_change();

CREATE FUNCTION wastetrack_revoke_refresh_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE refresh_token SET revoked_at = now() WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER app_user_deactivated AFTER UPDATE OF is_active ON app_user
    FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active)
    EXECUTE FUNCTION wastetrack_revoke_refresh_tokens();
"""

APPEND_ONLY_REVERSE = """
DROP TRIGGER IF EXISTS app_user_deactivated ON app_user;
DROP FUNCTION IF EXISTS wastetrack_revoke_refresh_tokens();
DROP TRIGGER IF EXISTS legacy_chain_frozen ON legacy_chain;
DELETE FROM legacy_chain;
DROP TRIGGER IF EXISTS checkpoint_append_only ON checkpoint;
DROP TRIGGER IF EXISTS custody_event_append_only ON custody_event;
DROP FUNCTION IF EXISTS wastetrack_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0016_working_calendar")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Checkpoint",
            fields=[
                ("day", fields.DateField(primary_key=True, unique=True, db_index=True)),
                ("events", fields.IntField()),
                ("root", fields.CharField(max_length=64)),
                ("signature", fields.CharField(max_length=128)),
                ("public_key", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "checkpoint",
                "app": "wastetrack",
                "pk_attr": "day",
                "table_description": "One sealed day of the custody log; rows are never updated"
                " or deleted (a trigger).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LegacyChain",
            fields=[
                (
                    "batch_id",
                    fields.IntField(generated=False, primary_key=True, unique=True, db_index=True),
                ),
                ("through_seq", fields.IntField()),
            ],
            options={
                "table": "legacy_chain",
                "app": "wastetrack",
                "pk_attr": "batch_id",
                "table_description": "A chain begun before chain hashes were keyed: its events up"
                " to through_seq carry plain",
            },
            bases=["Model"],
        ),
        ops.AlterModelOptions(
            name="RefreshToken",
            options={
                "table": "refresh_token",
                "app": "wastetrack",
                "pk_attr": "jti",
                "table_description": "One issued refresh token; rotation revokes it, so a stolen"
                " copy works once at most, and",
            },
        ),
        ops.RunSQL("DELETE FROM refresh_token", reverse_sql=""),
        ops.AddField(
            model_name="RefreshToken",
            name="family",
            field=fields.UUIDField(db_index=True),
        ),
        ops.RunSQL(APPEND_ONLY, reverse_sql=APPEND_ONLY_REVERSE),
    ]
