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
