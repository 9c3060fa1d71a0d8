from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint

# Credit codes were stored as typed: the service now keeps them upper case without spaces or
# hyphens, so rows written before are brought to that form (unless another row already holds
# the normalized code, which the unique index would refuse; such a row stays as it is).
NORMALIZE_CREDIT_CODES = r"""
UPDATE organization o
   SET credit_code = NULLIF(upper(regexp_replace(o.credit_code, '[\s-]', '', 'g')), '')
 WHERE o.credit_code IS NOT NULL
   AND o.credit_code IS DISTINCT FROM NULLIF(upper(regexp_replace(o.credit_code, '[\s-]', '', 'g')), '')
   AND NOT EXISTS (
       SELECT 1 FROM organization t
        WHERE t.id <> o.id
          AND t.credit_code = upper(regexp_replace(o.credit_code, '[\s-]', '', 'g')));
"""


class AddCheckKeepingOldRows(ops.AddConstraint):
    """A CHECK that never fails the migration on rows written before the rule: it is added
    NOT VALID, so every insert and update from now on obeys it, and validated at once when
    no existing row breaks it (the usual case). Otherwise PostgreSQL logs a WARNING with the
    count and the constraint stays NOT VALID (pg_constraint.convalidated = false) until an
    operator corrects those rows and runs ALTER TABLE … VALIDATE CONSTRAINT …."""

    def __init__(self, model_name: str, table: str, constraint: CheckConstraint) -> None:
        super().__init__(model_name=model_name, constraint=constraint)
        self.table = table

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not state_editor:
            return
        name, check, table = self.constraint.name, self.constraint.check, self.table
        await state_editor._run_sql(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({check}) NOT VALID;"
        )
        await state_editor._run_sql(
            f"""DO $$
DECLARE bad bigint;
BEGIN
  SELECT count(*) INTO bad FROM {table} WHERE NOT ({check});
  IF bad = 0 THEN
    ALTER TABLE {table} VALIDATE CONSTRAINT {name};
  ELSE
    RAISE WARNING '% row(s) of {table} break {name}: left NOT VALID until they are corrected', bad;
  END IF;
END $$;"""
        )


class Migration(migrations.Migration):
    # Global identities: regions by GB/T 2260 code, organizations by unified social credit code.
    dependencies = [("wastetrack", "0024_api_keys_and_audit")]

    initial = False

    operations = [
        ops.RunSQL(NORMALIZE_CREDIT_CODES, reverse_sql=ops.RunSQL.noop),
        AddCheckKeepingOldRows(
            model_name="Organization",
            table="organization",
            constraint=CheckConstraint(
                check="credit_code ~ '^[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}$'",
                name="organization_credit_code_format",
            ),
        ),
        AddCheckKeepingOldRows(
            model_name="Region",
            table="region",
            constraint=CheckConstraint(
                check="(level = 'city' AND code ~ '^[0-9]{6}$') OR (level = 'town' AND code ~ '^[0-9]{9}$') OR (level = 'village' AND code ~ '^[0-9]{12}$')",
                name="region_code_format",
            ),
        ),
    ]
