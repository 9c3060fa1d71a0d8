"""Evidence photos, stored once by content hash."""

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.registry.models import Organization


class Photo(Model):
    sha256 = fields.CharField(max_length=64, primary_key=True)
    content_type = fields.CharField(max_length=32)
    size_bytes = fields.IntField()
    width = fields.IntField()
    height = fields.IntField()
    uploaded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="photos", on_delete=fields.RESTRICT
    )
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="photos", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "photo"


class PhotoHolder(Model):
    """An organization that uploaded a photo's bytes: it may cite the photo as evidence.

    The bytes are stored once (`Photo`, with whoever sent them first); each organization that
    sent them holds them. A hash seen on another's record is no evidence of one's own."""

    id = fields.IntField(primary_key=True)
    photo: fields.ForeignKeyRelation[Photo] = fields.ForeignKeyField(
        "wastetrack.Photo", related_name="holders", on_delete=fields.CASCADE
    )
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="photos_held", on_delete=fields.RESTRICT
    )
    first_uploaded_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "photo_holder"
        unique_together = (("photo", "organization"),)
