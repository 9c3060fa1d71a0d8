"""Household waste sorting: pickups at collection points and their sorting-quality checks."""

from decimal import Decimal
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from wastetrack.core.records import IdempotentRecord

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.batches.models import Batch
    from wastetrack.registry.models import Organization, Region, Site


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


class SortedCollectionEnded(Model):
    """A period of a community's or village's sorted collection that has ended.

    It ran from `since` to the day before `until`. The period running now is the region's
    `sorted_collection_since`; ending it moves it here, so the days it covered keep counting in
    coverage as of them."""

    id = fields.IntField(primary_key=True)
    region_id: int
    region: fields.ForeignKeyRelation["Region"] = fields.ForeignKeyField(
        "wastetrack.Region", related_name="sorted_collection_ended", on_delete=fields.RESTRICT
    )
    since = fields.DateField()
    until = fields.DateField()
    recorded_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sorted_collection_ended"
        constraints = (CheckConstraint(check="until > since", name="sorted_collection_ends_after"),)
