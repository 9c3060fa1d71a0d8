"""A partitioned custody log: custody_event becomes a table partitioned by range of batch_id,
one partition per million batch ids, so a batch's chain lives in one partition and old ranges
go cold; exactly-once moves to client_event.

PostgreSQL cannot keep a unique index across partitions unless it includes the partition key,
so: the primary key becomes (id, batch_id) (event ids stay unique: they are random UUIDs and
every lookup by id still uses that index, one probe per partition); a correction references an
event of its own batch by (batch_id, corrects_id); and the phone's client_event_id, still a
hashed column of the event, is kept unique by the small client_event table, written in the same
statement as the events.

The existing table is renamed, the partitioned one created beside it with the same columns,
defaults, checks and indexes, the rows copied, then its foreign keys, triggers (the append-only
guard of 0017, the change feed of 0022) and grants are copied from the old table, which is then
dropped. Partitions are made by wastetrack_custody_partitions_ahead(ahead), a function owned by
the schema's owner (SECURITY DEFINER: the service's own role may not create tables) that the
service calls from a background job (wastetrack.custody.partitions). Reversible: going back
copies the rows into a plain table again.
"""

from uuid import uuid4

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

SPAN = 1_000_000  # batch ids per partition: fixed once partitions exist

FUNCTIONS = f"""
CREATE FUNCTION wastetrack_custody_partition(of_batch bigint) RETURNS text
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    low bigint := (of_batch / {SPAN}) * {SPAN};
    name text := format('custody_event_p%s', lpad((of_batch / {SPAN})::text, 4, '0'));
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    -- Created apart and attached: attaching locks the log less than CREATE ... PARTITION OF,
    -- and brings the parent's indexes, foreign keys and triggers to the new partition.
    EXECUTE format('CREATE TABLE %I (LIKE custody_event INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS INCLUDING STORAGE)', name);
    EXECUTE format('ALTER TABLE custody_event ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   name, low, low + {SPAN});
    RETURN name;
END $$;
REVOKE EXECUTE ON FUNCTION wastetrack_custody_partition(bigint) FROM PUBLIC;

CREATE FUNCTION wastetrack_custody_partitions_ahead(ahead integer) RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
AS $$
DECLARE
    newest bigint;
    made text[] := '{{}}';
    name text;
BEGIN
    IF ahead < 0 OR ahead > 100 THEN
        RAISE EXCEPTION 'ahead must be between 0 and 100, got %', ahead;
    END IF;
    -- One caller at a time; the others find the partitions made.
    PERFORM pg_advisory_xact_lock(hashtext('wastetrack_custody_partitions'));
    EXECUTE format('SELECT last_value FROM %s', pg_get_serial_sequence('batch', 'id'))
        INTO newest;
    newest := greatest(newest, (SELECT coalesce(max(id), 0) FROM batch));
    FOR step IN 0 .. ahead LOOP
        name := wastetrack_custody_partition(newest + step::bigint * {SPAN});
        IF name IS NOT NULL THEN
            made := made || name;
        END IF;
    END LOOP;
    RETURN made;
END $$;
"""


def _carry_over(source: str, target: str) -> str:
    """Foreign keys to other tables, triggers and grants of `source`, given to `target`."""
    return f"""
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE conrelid = '{source}'::regclass AND contype = 'f'
               AND confrelid <> conrelid AND conparentid = 0
    LOOP
        EXECUTE format('ALTER TABLE {target} ADD CONSTRAINT %I %s', r.conname, r.def);
    END LOOP;
    FOR r IN SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger
             WHERE tgrelid = '{source}'::regclass AND NOT tgisinternal AND tgparentid = 0
    LOOP
        EXECUTE replace(r.def, ' ON public.{source} ', ' ON public.{target} ');
    END LOOP;
    FOR r IN SELECT a.privilege_type AS privilege,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                         ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
             FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = '{source}'::regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON {target} TO %s', r.privilege, r.grantee);
    END LOOP;
END $$;
"""


# The append-only guard of 0017 names the table refused: a partition's rows are the log's.
REFUSE_CHANGE = """
CREATE OR REPLACE FUNCTION wastetrack_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused',
        coalesce(pg_partition_root(TG_RELID)::text, TG_TABLE_NAME), TG_OP
        USING ERRCODE = 'WT001',
              HINT = 'custody history is corrected by new events, never by editing rows';
END $$;
"""
REFUSE_CHANGE_BEFORE = """
CREATE OR REPLACE FUNCTION wastetrack_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'WT001',
              HINT = 'custody history is corrected by new events, never by editing rows';
END $$;
"""

COLUMNS_OF = (
    "LIKE {source} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED"
    " INCLUDING STORAGE INCLUDING COMMENTS"
)

PARTITION = f"""
ALTER TABLE custody_event RENAME TO custody_event_unpartitioned;
ALTER INDEX custody_event_pkey RENAME TO custody_event_unpartitioned_pkey;
ALTER INDEX uid_custody_eve_batch_i_75b54b RENAME TO custody_event_unpartitioned_batch_seq;
ALTER INDEX custody_event_corrects_idx RENAME TO custody_event_unpartitioned_corrects_idx;

CREATE TABLE custody_event ({COLUMNS_OF.format(source="custody_event_unpartitioned")})
    PARTITION BY RANGE (batch_id);
ALTER TABLE custody_event ADD CONSTRAINT custody_event_pkey PRIMARY KEY (id, batch_id);
ALTER TABLE custody_event ADD CONSTRAINT uid_custody_eve_batch_i_75b54b UNIQUE (batch_id, seq);
CREATE INDEX custody_event_corrects_idx ON custody_event (corrects_id)
    WHERE corrects_id IS NOT NULL;
COMMENT ON TABLE custody_event IS 'The append-only custody log, partitioned by range of'
    ' batch_id ({SPAN} ids a partition, made ahead by wastetrack_custody_partitions_ahead)';
{FUNCTIONS}
SELECT wastetrack_custody_partition(b)
FROM generate_series((SELECT coalesce(min(id), 0) FROM batch),
                     (SELECT coalesce(max(id), 0) FROM batch), {SPAN}) AS b;
SELECT wastetrack_custody_partitions_ahead(2);

-- Rows first, then the checks and triggers: the change feed must not log the copy again.
INSERT INTO custody_event SELECT * FROM custody_event_unpartitioned;
INSERT INTO client_event (client_event_id, batch_id, event_id)
    SELECT client_event_id, batch_id, id FROM custody_event_unpartitioned
    WHERE client_event_id IS NOT NULL;
{_carry_over("custody_event_unpartitioned", "custody_event")}
ALTER TABLE custody_event ADD CONSTRAINT custody_event_corrects_id_fkey
    FOREIGN KEY (batch_id, corrects_id) REFERENCES custody_event (batch_id, id)
    ON DELETE RESTRICT;
ALTER TABLE client_event ADD CONSTRAINT client_event_event_fkey
    FOREIGN KEY (batch_id, event_id) REFERENCES custody_event (batch_id, id) ON DELETE RESTRICT;
DROP TABLE custody_event_unpartitioned;
{REFUSE_CHANGE}
ANALYZE custody_event, client_event;
"""

UNPARTITION = f"""
ALTER TABLE client_event DROP CONSTRAINT client_event_event_fkey;
ALTER TABLE custody_event RENAME TO custody_event_partitioned;
ALTER INDEX custody_event_pkey RENAME TO custody_event_partitioned_pkey;
ALTER INDEX uid_custody_eve_batch_i_75b54b RENAME TO custody_event_partitioned_batch_seq;
ALTER INDEX custody_event_corrects_idx RENAME TO custody_event_partitioned_corrects_idx;

CREATE TABLE custody_event ({COLUMNS_OF.format(source="custody_event_partitioned")});
COMMENT ON TABLE custody_event IS NULL;
ALTER TABLE custody_event ADD CONSTRAINT custody_event_pkey PRIMARY KEY (id);
ALTER TABLE custody_event ADD CONSTRAINT uid_custody_eve_batch_i_75b54b UNIQUE (batch_id, seq);
CREATE INDEX custody_event_corrects_idx ON custody_event (corrects_id)
    WHERE corrects_id IS NOT NULL;
INSERT INTO custody_event SELECT * FROM custody_event_partitioned;
{_carry_over("custody_event_partitioned", "custody_event")}
ALTER TABLE custody_event ADD CONSTRAINT custody_event_corrects_id_fkey
    FOREIGN KEY (corrects_id) REFERENCES custody_event (id) ON DELETE RESTRICT;
DROP TABLE custody_event_partitioned;
DROP FUNCTION wastetrack_custody_partitions_ahead(integer);
DROP FUNCTION wastetrack_custody_partition(bigint);
{REFUSE_CHANGE_BEFORE}
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0028_label_identifiers")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="CustodyEvent",
            name="client_event_id",
            field=fields.UUIDField(null=True),
        ),
        ops.CreateModel(
            name="ClientEvent",
            fields=[
                (
                    "client_event_id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("batch_id", fields.IntField()),
                ("event_id", fields.UUIDField()),
            ],
            options={
                "table": "client_event",
                "app": "wastetrack",
                "pk_attr": "client_event_id",
                "table_description": "The phone's id of each recorded custody event, once: a"
                " resend conflicts here.",
            },
            bases=["Model"],
        ),
        ops.RunSQL(PARTITION, reverse_sql=UNPARTITION),
    ]
