"""Hazardous-waste transfer manifests (危险废物电子转移联单, 部令第23号): one vehicle trip, one
waste type; the producer's (移出人), carriers' (承运人) and receiver's (接受人) sections, each
locked by its party's signature; revisions instead of edits; discrepancies on receipt."""

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.catalog.models import TreatmentMethod, WasteCategory
    from wastetrack.registry.models import Organization


# The state of a manifest cancelled before it arrived (作废; see manifests.cancelling).
CANCELLED = "cancelled"

# The Chinese names of a manifest's states and decisions (a decision names the state it
# leaves), read by every page and document that shows them to a person.
STATE_LABELS = {
    "draft": "草稿",
    "submitted": "已提交",
    "arrived": "已运抵",
    "accepted": "已接收",
    "partially_accepted": "部分接收",
    "rejected": "已拒收",
    CANCELLED: "已作废",
}


def state_label(state: str) -> str:
    """The Chinese name of a manifest's state or decision (the key itself if unknown)."""
    if state.startswith("in_transit_leg_"):
        return f"运输中（第 {state.rsplit('_', 1)[1]} 段）"
    return STATE_LABELS.get(state, state)


class ManifestSerial(Model):
    """The last serial used per year and area, for the 14-digit manifest number."""

    key = fields.CharField(max_length=16, primary_key=True)
    last_serial = fields.IntField(default=0)

    class Meta:
        table = "manifest_serial"


class Manifest(Model):
    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=14, unique=True)
    state = fields.CharField(max_length=24, db_index=True)
    # 移出人 section
    producer_id: int
    producer: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="manifests_out", on_delete=fields.RESTRICT
    )
    region_path = fields.CharField(max_length=255, db_index=True)
    category_id: str
    category: fields.ForeignKeyRelation["WasteCategory"] = fields.ForeignKeyField(
        "wastetrack.WasteCategory", related_name="manifests", on_delete=fields.RESTRICT
    )
    waste_code = fields.CharField(max_length=16)
    waste_name = fields.CharField(max_length=128)
    hazard: list[str] = fields.JSONField()
    physical_form = fields.CharField(max_length=32)
    packaging = fields.CharField(max_length=64)
    quantity_kg: Decimal = fields.DecimalField(max_digits=12, decimal_places=3)
    emergency_measures = fields.TextField()
    batch_codes: list[str] = fields.JSONField()
    producer_signed_by_id: int | None
    producer_signed_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User",
        related_name="manifest_producer_signatures",
        null=True,
        on_delete=fields.RESTRICT,
    )
    producer_signed_at = fields.DatetimeField(null=True)
    # 接受人 section
    receiver_id: int
    receiver: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="manifests_in", on_delete=fields.RESTRICT
    )
    arrived_at = fields.DatetimeField(null=True)
    decision_due_at = fields.DatetimeField(null=True)
    # Years whose working days the deadline assumed Monday to Friday, no official calendar
    # holding them yet; such a deadline is computed again each alert round until none is.
    decision_due_assumed: list[int] | None = fields.JSONField(null=True)
    decision = fields.CharField(max_length=24, null=True)
    received_quantity_kg: Decimal | None = fields.DecimalField(
        max_digits=12, decimal_places=3, null=True
    )
    method_id: str | None
    method: fields.ForeignKeyNullableRelation["TreatmentMethod"] = fields.ForeignKeyField(
        "wastetrack.TreatmentMethod",
        related_name="manifests",
        null=True,
        on_delete=fields.RESTRICT,
    )
    decision_reason: str | None = fields.TextField(null=True)
    receiver_signed_by_id: int | None
    receiver_signed_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User",
        related_name="manifest_receiver_signatures",
        null=True,
        on_delete=fields.RESTRICT,
    )
    receiver_signed_at = fields.DatetimeField(null=True)
    created_by_id: int
    created_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="manifests_created", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    # 作废: withdrawn before it arrived (see manifests.cancelling); its signed steps stay in the
    # custody chain, its unsigned sections are never signed.
    cancelled_at = fields.DatetimeField(null=True)
    cancelled_by_id: int | None
    cancelled_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User",
        related_name="manifests_cancelled",
        null=True,
        on_delete=fields.RESTRICT,
    )
    cancel_reason: str | None = fields.TextField(null=True)
    legs: fields.ReverseRelation["ManifestLeg"]
    discrepancies: fields.ReverseRelation["ManifestDiscrepancy"]
    revisions: fields.ReverseRelation["ManifestRevision"]

    class Meta:
        table = "manifest"


class ManifestLeg(Model):
    """One carrier's leg (联运: several, in order), locked by the carrier's signature."""

    id = fields.IntField(primary_key=True)
    manifest_id: int
    manifest: fields.ForeignKeyRelation[Manifest] = fields.ForeignKeyField(
        "wastetrack.Manifest", related_name="legs", on_delete=fields.RESTRICT
    )
    seq = fields.IntField()
    carrier_id: int
    carrier: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="manifest_legs", on_delete=fields.RESTRICT
    )
    vehicle_plate = fields.CharField(max_length=16)
    permit_number = fields.CharField(max_length=64)
    handover_at = fields.DatetimeField(null=True)
    handover_place = fields.CharField(max_length=128, null=True)
    signed_by_id: int | None
    signed_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User",
        related_name="manifest_leg_signatures",
        null=True,
        on_delete=fields.RESTRICT,
    )
    signed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "manifest_leg"
        unique_together = (("manifest", "seq"),)


class ManifestDiscrepancy(Model):
    """A mismatch found on receipt, for the producer and the authority to see."""

    id = fields.IntField(primary_key=True)
    manifest_id: int
    manifest: fields.ForeignKeyRelation[Manifest] = fields.ForeignKeyField(
        "wastetrack.Manifest", related_name="discrepancies", on_delete=fields.RESTRICT
    )
    field = fields.CharField(max_length=32)
    declared = fields.CharField(max_length=128)
    found = fields.CharField(max_length=128)
    recorded_at = fields.DatetimeField()

    class Meta:
        table = "manifest_discrepancy"


class ManifestRevision(Model):
    """A correction one party proposes and every other party must approve; the manifest keeps
    its history, nothing is deleted."""

    id = fields.IntField(primary_key=True)
    manifest_id: int
    manifest: fields.ForeignKeyRelation[Manifest] = fields.ForeignKeyField(
        "wastetrack.Manifest", related_name="revisions", on_delete=fields.RESTRICT
    )
    proposed_by_id: int
    proposed_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="manifest_revisions", on_delete=fields.RESTRICT
    )
    proposer_organization_id = fields.IntField()
    changes: dict[str, Any] = fields.JSONField()
    previous: dict[str, Any] = fields.JSONField(default=dict)
    reason = fields.TextField()
    state = fields.CharField(max_length=16, default="pending")
    approvals: list[int] = fields.JSONField(default=list)
    created_at = fields.DatetimeField()
    decided_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "manifest_revision"
