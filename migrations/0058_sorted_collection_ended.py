from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint

# A community's or village's sorted collection was one date, `region.sorted_collection_since`:
# recording that it no longer sorts (null) erased the days it had, so the coverage of every
# past period that counted it fell. A period that ends now moves to `sorted_collection_ended`
# (from `since` to the day before `until`), and coverage as of a day reads both. Nothing to copy:
# no ended period was kept before.


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0057_alert_raised_again")]

    initial = False

    operations = [
        ops.CreateModel(
            name="SortedCollectionEnded",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "region",
                    fields.ForeignKeyField(
                        "wastetrack.Region",
                        source_field="region_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sorted_collection_ended",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("since", fields.DateField()),
                ("until", fields.DateField()),
                ("recorded_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "sorted_collection_ended",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "A period of a community's or village's sorted collection"
                " that has ended.",
                "constraints": [
                    CheckConstraint(check="until > since", name="sorted_collection_ends_after")
                ],
            },
            bases=["Model"],
        ),
    ]
