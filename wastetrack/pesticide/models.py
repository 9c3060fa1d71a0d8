"""Pesticide packaging take-back (农药包装废弃物回收): farmers, returns, sales, consignments."""

from decimal import Decimal
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from wastetrack.core.records import IdempotentRecord

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.registry.models import Organization


class Farmer(Model):
    """A farmer with no account, known by a keyed hash of a phone or ID number."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64, unique=True)
    masked = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "farmer"


class PackagingReturn(IdempotentRecord):
    point_id: int
    point: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="packaging_returns", on_delete=fields.RESTRICT
    )
    farmer_id: int
    farmer: fields.ForeignKeyRelation[Farmer] = fields.ForeignKeyField(
        "wastetrack.Farmer", related_name="returns", on_delete=fields.RESTRICT
    )
    returned_at = fields.DatetimeField(db_index=True)
    # [{material, count, weight_kg}]
    lines: list[dict[str, str | int]] = fields.JSONField()
    points: Decimal = fields.DecimalField(max_digits=10, decimal_places=1)
    recorded_by_id: int
    recorded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="packaging_returns", on_delete=fields.RESTRICT
    )
    # 作废, as a sale is: a return entered wrong is cancelled by its point, with a reason, and
    # counts in no figure and no farmer's balance; the right one is recorded anew.
    cancelled_at = fields.DatetimeField(null=True)
    cancelled_by_id: int | None
    cancelled_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User",
        related_name="packaging_returns_cancelled",
        null=True,
        on_delete=fields.RESTRICT,
    )
    cancel_reason: str | None = fields.TextField(null=True)

    class Meta:
        table = "packaging_return"

    def recorded_for(self) -> int:
        return self.point_id


class PackageSale(Model):
    """Pesticide packages a shop sold: what take-back is measured against."""

    id = fields.IntField(primary_key=True)
    shop_id: int
    shop: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="package_sales", on_delete=fields.RESTRICT
    )
    sold_on = fields.DateField(db_index=True)
    material = fields.CharField(max_length=64)
    count = fields.IntField()
    client_event_id = fields.UUIDField(unique=True)
    # 作废: a sale entered wrong is cancelled by its shop, with a reason, and counts in no
    # figure; the right one is recorded anew. The row stays, as the audit log's entry does.
    cancelled_at = fields.DatetimeField(null=True)
    cancelled_by_id: int | None
    cancelled_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User",
        related_name="package_sales_cancelled",
        null=True,
        on_delete=fields.RESTRICT,
    )
    cancel_reason: str | None = fields.TextField(null=True)

    class Meta:
        table = "package_sale"


class Consignment(IdempotentRecord):
    """Packaging a point sends on to treatment; each material became a batch."""

    point_id: int
    point: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="consignments", on_delete=fields.RESTRICT
    )
    destination_id: int
    destination: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization",
        related_name="received_consignments",
        on_delete=fields.RESTRICT,
    )
    sent_at = fields.DatetimeField(db_index=True)
    # [{material, count, weight_kg, batch_code}]
    lines: list[dict[str, str | int]] = fields.JSONField()
    recorded_by_id: int
    recorded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="consignments", on_delete=fields.RESTRICT
    )

    class Meta:
        table = "consignment"

    def recorded_for(self) -> int:
        return self.point_id
