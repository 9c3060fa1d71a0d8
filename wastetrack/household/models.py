"""Household waste sorting: pickups at collection points and their sorting-quality checks."""

from decimal import Decimal
from typing import TYPE_CHECKING

from tortoise import fields

from wastetrack.core.records import IdempotentRecord

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.batches.models import Batch
    from wastetrack.registry.models import Organization, Site


class Pickup(IdempotentRecord):
    """A collector's pickup of one class at a collection point; it became a batch."""

    site_id: int
    site: fields.ForeignKeyRelation["Site"] = fields.ForeignKeyField(
        "wastetrack.Site", related_name="pickups", on_delete=fields.RESTRICT
    )
    region_path = fields.CharField(max_length=255, db_index=True)
    batch_id: int
    batch: fields.ForeignKeyRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="pickups", on_delete=fields.RESTRICT
    )
    picked_up_at = fields.DatetimeField(db_index=True)
    quality_checked = fields.BooleanField(default=False)
    quality_passed = fields.BooleanField(null=True)
    contamination_share: Decimal | None = fields.DecimalField(
        max_digits=4, decimal_places=3, null=True
    )
    photo_sha256 = fields.CharField(max_length=64, null=True)
    recorded_by_id: int
    recorded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="pickups", on_delete=fields.RESTRICT
    )
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="pickups", on_delete=fields.RESTRICT
    )
    """The collector's organization when the pickup was recorded (the batch's custodian)."""

    class Meta:
        table = "pickup"

    def recorded_for(self) -> int:
        return self.organization_id
