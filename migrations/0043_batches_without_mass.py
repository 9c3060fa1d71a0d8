from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# A batch in items or m³ whose category has no unit mass or density, and never weighed, has no
# mass: its fact says so (mass_unknown) and every layer of sums counts such batches, so each
# cohort figure tells how many of its batches are in no mass. The rows kept before get the
# database defaults; the counting rules' version changed with it (2026-12-cohorts-8), so the
# next start-up rebuilds every fact and layer from the log and fills them.

SUMS = ("DailyRollup", "CohortDelta", "MonthlyRollup", "CityMonthlyRollup")


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0042_licence_versions")]

    initial = False

    operations = [
        ops.AddField(
            model_name="BatchFact",
            name="mass_unknown",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        *(
            ops.AddField(
                model_name=model,
                name="batches_without_mass",
                field=fields.IntField(default=0, db_default=0),
            )
            for model in SUMS
        ),
    ]
