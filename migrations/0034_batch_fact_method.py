from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    # A batch's fact keeps the treatment method of its deciding event after corrections, which
    # a batch's fate reports. Null until the facts are rebuilt: the facts' definition version
    # changed with it (2026-12-cohorts-4), so the next start-up rebuilds every fact.
    dependencies = [("wastetrack", "0033_alert_occurrence_subjects")]

    initial = False

    operations = [
        ops.AddField(
            model_name="BatchFact",
            name="method",
            field=fields.CharField(max_length=8, null=True),
        ),
    ]
