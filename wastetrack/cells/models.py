"""Zero-waste cells (无废细胞): places assessed against their type's criteria."""

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.registry.models import Organization, Region


class Cell(Model):
    id = fields.IntField(primary_key=True)
    cell_type = fields.CharField(max_length=32)
    name = fields.CharField(max_length=128)
    region_id: int
    region: fields.ForeignKeyRelation["Region"] = fields.ForeignKeyField(
        "wastetrack.Region", related_name="cells", on_delete=fields.RESTRICT
    )
    region_path = fields.CharField(max_length=255, db_index=True)
    organization_id: int | None
    organization: fields.ForeignKeyNullableRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="cells", null=True, on_delete=fields.RESTRICT
    )

    class Meta:
        table = "zero_waste_cell"
        # A place is registered once: a region holds one cell of a type by a name (trimmed).
        unique_together = (("region", "cell_type", "name"),)


class CellAssessment(Model):
    """One assessment at one level (county initial → city → province recognition)."""

    id = fields.IntField(primary_key=True)
    cell_id: int
    cell: fields.ForeignKeyRelation[Cell] = fields.ForeignKeyField(
        "wastetrack.Cell", related_name="assessments", on_delete=fields.RESTRICT
    )
    level = fields.CharField(max_length=16)
    assessed_on = fields.DateField()
    expires_on = fields.DateField()
    scores: dict[str, Any] = fields.JSONField()
    total: Decimal = fields.DecimalField(max_digits=6, decimal_places=2)
    tier = fields.CharField(max_length=16)
    assessor_id: int
    assessor: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="cell_assessments", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "cell_assessment"
