"""Batches (one tagged unit of waste) and the QR label codes that identify them."""

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.catalog.models import WasteCategory, WasteStream
    from wastetrack.registry.models import Organization, Site


class Unit(StrEnum):
    # Upper-case names: a member called `count` would shadow str.count.
    KG = "kg"
    COUNT = "count"
    M3 = "m3"


class Label(Model):
    """A QR code, pre-printed on label stock or made with its batch; bound at most once."""

    code = fields.CharField(max_length=16, primary_key=True)
    organization_id: int
    stream_id: str
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="labels", on_delete=fields.RESTRICT
    )
    stream: fields.ForeignKeyRelation["WasteStream"] = fields.ForeignKeyField(
        "wastetrack.WasteStream", related_name="labels", on_delete=fields.RESTRICT
    )
    issued_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="issued_labels", null=True, on_delete=fields.SET_NULL
    )
    issued_at = fields.DatetimeField(auto_now_add=True)
    bound_at = fields.DatetimeField(null=True)

    class Meta:
        table = "label"

    @property
    def pre_printed(self) -> bool:
        """Printed on label stock before its batch was tagged, not made with it (a label made
        by its tagging is issued and bound by the same call, at the same moment)."""
        return self.bound_at is None or self.issued_at < self.bound_at


class Batch(Model):
    id = fields.IntField(primary_key=True)
    stream_id: str
    category_id: str
    producer_id: int
    origin_site_id: int | None
    holder_id: int
    carrier_id: int | None
    destination_id: int | None
    parent_id: int | None
    split_from_id: int | None
    code = fields.CharField(max_length=16, unique=True)
    # The HJ 1276-2022 数字识别码 of a hazardous-waste batch (wastetrack.batches.identifiers).
    identifier = fields.CharField(max_length=37, null=True, unique=True)
    stream: fields.ForeignKeyRelation["WasteStream"] = fields.ForeignKeyField(
        "wastetrack.WasteStream", related_name="batches", on_delete=fields.RESTRICT
    )
    category: fields.ForeignKeyRelation["WasteCategory"] = fields.ForeignKeyField(
        "wastetrack.WasteCategory", related_name="batches", on_delete=fields.RESTRICT
    )
    waste_code = fields.CharField(max_length=16, null=True)
    hazard: list[str] | None = fields.JSONField(null=True)
    producer: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="produced_batches", on_delete=fields.RESTRICT
    )
    origin_site: fields.ForeignKeyNullableRelation["Site"] = fields.ForeignKeyField(
        "wastetrack.Site", related_name="batches", null=True, on_delete=fields.RESTRICT
    )
    # The producer's region path, copied so a manager's subtree filter needs no join.
    region_path = fields.CharField(max_length=255, db_index=True)
    quantity = fields.DecimalField(max_digits=12, decimal_places=3)
    unit = fields.CharEnumField(Unit, max_length=8)
    state = fields.CharField(max_length=24, db_index=True)
    holder: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="held_batches", on_delete=fields.RESTRICT
    )
    carrier: fields.ForeignKeyNullableRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization",
        related_name="carried_batches",
        null=True,
        on_delete=fields.RESTRICT,
    )
    destination: fields.ForeignKeyNullableRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization",
        related_name="destined_batches",
        null=True,
        on_delete=fields.RESTRICT,
    )
    parent: fields.ForeignKeyNullableRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    # The batch a partial acceptance split this remainder from (the refused part).
    split_from: fields.ForeignKeyNullableRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="remainders", null=True, on_delete=fields.RESTRICT
    )
    tagged_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_seq = fields.IntField(default=0)
    last_hash = fields.CharField(max_length=64, default="")
    last_device_time = fields.DatetimeField(null=True)

    class Meta:
        table = "batch"


class IdentifierSequence(Model):
    """The last HJ 1276 sequence number issued per unit, waste code and day.

    Tagging upserts the row (and so locks it until commit): concurrent taggings take turns."""

    prefix = fields.CharField(max_length=34, primary_key=True)
    last_number = fields.IntField()

    class Meta:
        table = "identifier_sequence"
