from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

# A photo is cited as evidence only by an organization that uploaded its bytes: the bytes are
# stored once, with whoever sent them first, so each organization that sent them is recorded.
# Photos stored before hold the organization of their first upload.
HOLDERS = """
INSERT INTO photo_holder (photo_id, organization_id, first_uploaded_at)
SELECT sha256, organization_id, created_at FROM photo;
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0039_cell_once")]

    initial = False

    operations = [
        ops.CreateModel(
            name="PhotoHolder",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "photo",
                    fields.ForeignKeyField(
                        "wastetrack.Photo",
                        source_field="photo_id",
                        db_constraint=True,
                        to_field="sha256",
                        related_name="holders",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "wastetrack.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="photos_held",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("first_uploaded_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "photo_holder",
                "app": "wastetrack",
                "unique_together": (("photo", "organization"),),
                "pk_attr": "id",
                "table_description": "An organization that uploaded a photo's bytes: it may cite"
                " the photo as evidence.",
            },
            bases=["Model"],
        ),
        ops.RunSQL(HOLDERS, reverse_sql=""),
    ]
