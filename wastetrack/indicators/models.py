"""The plan's indicators with their 2020 baseline and 2025 target, and values entered for them."""

from decimal import Decimal
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User


class Indicator(Model):
    code = fields.CharField(max_length=64, primary_key=True)
    name_zh = fields.CharField(max_length=128)
    name_en = fields.CharField(max_length=128)
    unit = fields.CharField(max_length=8)
    baseline: Decimal | None = fields.DecimalField(max_digits=8, decimal_places=2, null=True)
    target: Decimal | None = fields.DecimalField(max_digits=8, decimal_places=2, null=True)
    target_text = fields.CharField(max_length=64, null=True)
    direction = fields.CharField(max_length=16)
    computed_by = fields.CharField(max_length=32, null=True)
    section = fields.CharField(max_length=128)
    source = fields.CharField(max_length=255)

    class Meta:
        table = "indicator"


class IndicatorValue(Model):
    """A value entered where the tracker holds no data, with its source and author."""

    id = fields.IntField(primary_key=True)
    indicator_id: str
    indicator: fields.ForeignKeyRelation[Indicator] = fields.ForeignKeyField(
        "wastetrack.Indicator", related_name="values", on_delete=fields.RESTRICT
    )
    period_end = fields.DateField()
    value: Decimal = fields.DecimalField(max_digits=8, decimal_places=2)
    source_note = fields.CharField(max_length=255)
    entered_by_id: int
    entered_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="indicator_values", on_delete=fields.RESTRICT
    )
    entered_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "indicator_value"
