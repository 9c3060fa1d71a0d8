from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# A treatment licence is kept in versions: each row covers valid_from…valid_until, a change is
# a new row and the version before ends the day before it. valid_from is NULL on the rows kept
# before, meaning "since always". One (organization, category) may now have several rows, so
# its unique constraint becomes an index.


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0041_rollup_basis")]

    initial = False

    operations = [
        ops.RemoveConstraint(
            model_name="FacilityLicence",
            name=None,
            fields=["organization", "category_key"],
        ),
        ops.AlterModelOptions(
            name="FacilityLicence",
            options={
                "table": "facility_licence",
                "app": "wastetrack",
                "indexes": [Index(fields=["organization_id", "category_key"])],
                "pk_attr": "id",
                "table_description": (
                    "One version of a treatment facility's permit for one category (and its"
                ),
            },
        ),
        ops.AddField(
            model_name="FacilityLicence",
            name="valid_from",
            field=fields.DateField(null=True),
        ),
        ops.AddIndex(
            model_name="FacilityLicence",
            index=Index(fields=["organization_id", "category_key"]),
        ),
    ]
