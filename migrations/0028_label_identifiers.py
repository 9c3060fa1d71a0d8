from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    # The HJ 1276 digital identifier of hazardous-waste batches.
    dependencies = [("wastetrack", "0027_cosignature")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Batch",
            name="identifier",
            field=fields.CharField(null=True, unique=True, max_length=37),
        ),
        ops.CreateModel(
            name="IdentifierSequence",
            fields=[
                (
                    "prefix",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=34),
                ),
                ("last_number", fields.IntField()),
            ],
            options={
                "table": "identifier_sequence",
                "app": "wastetrack",
                "pk_attr": "prefix",
                "table_description": (
                    "The last HJ 1276 sequence number issued per unit, waste code and day."
                ),
            },
            bases=["Model"],
        ),
    ]
