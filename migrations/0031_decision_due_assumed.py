from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    # A manifest's decision deadline keeps the years whose working days it had to assume
    # Monday to Friday (the official calendar lacking them), so that it says so and is
    # computed again once an operator enters them. Null for every deadline computed before:
    # released on 1 December 2026, when the calendar ran to the end of 2026, and a deadline is
    # at most about two weeks after its arrival.
    dependencies = [("wastetrack", "0030_custody_party_indexes")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Manifest",
            name="decision_due_assumed",
            field=fields.JSONField(null=True),
        ),
    ]
