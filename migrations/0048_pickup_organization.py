from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# A resend of a pickup, and reading one, were told "another organization's record" by the
# recorder's *current* organization: a collector who moved on took their old pickups along
# (their new organization read them, the old one lost them). A pickup now keeps the
# organization it was recorded for, as the other stream records keep theirs. Pickups recorded
# before get it from the custody log, which keeps the organization each event was recorded for
# (the tagging of the pickup's batch); the recorder's organization stands in only should that
# event be missing.
BACKFILL = """
UPDATE pickup AS p
   SET organization_id = COALESCE(
        (SELECT e.organization_id FROM custody_event AS e
          WHERE e.batch_id = p.batch_id AND e.event_type = 'tagged'
          ORDER BY e.seq LIMIT 1),
        (SELECT u.organization_id FROM app_user AS u WHERE u.id = p.recorded_by_id));
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0047_delivery_port_signed_from_log")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Pickup",
            name="organization",
            field=fields.ForeignKeyField(
                "wastetrack.Organization",
                source_field="organization_id",
                to_field="id",
                related_name="pickups",
                null=True,
                on_delete=fields.RESTRICT,
            ),
        ),
        ops.RunSQL(BACKFILL, reverse_sql=ops.RunSQL.noop),
        ops.AlterField(
            model_name="Pickup",
            name="organization",
            field=fields.ForeignKeyField(
                "wastetrack.Organization",
                source_field="organization_id",
                to_field="id",
                related_name="pickups",
                on_delete=fields.RESTRICT,
            ),
        ),
    ]
