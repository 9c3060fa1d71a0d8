from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# The stored facts record everything they were computed on (counting rules, the city's time
# zone, the catalog editions and a digest of the catalog values they read), so a later catalog
# edition or another WASTETRACK_TIMEZONE rebuilds them at the next start-up. Facts kept before
# have no basis and are rebuilt once.


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0040_photo_holders")]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name="RollupDefinition",
            options={
                "table": "rollup_definition",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": (
                    "What the stored facts were computed on: the version of the counting rules,"
                    " and the"
                ),
            },
        ),
        ops.AddField(
            model_name="RollupDefinition",
            name="basis",
            field=fields.TextField(null=True),
        ),
    ]
