"""Hazardous-waste transfer manifests."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import Code, Id, Schema, Text, rule_error
from schemas.events import Hazard

Quantity = Field(gt=0, le=1_000_000, max_digits=12, decimal_places=3)


class LegCreate(Schema):
    carrier_organization_id: Id
    vehicle_plate: Text = Field(min_length=5, max_length=16)
    permit_number: Text = Field(min_length=1, max_length=64)


class ManifestCreate(Schema):
    """The 移出人 section, the receiver and the carriers' legs in order."""

    category: Text = Field(max_length=64, description="the HW category, e.g. hw.08")
    waste_code: Text = Field(max_length=16)
    waste_name: Text = Field(min_length=1, max_length=128)
    hazard: list[Hazard] = Field(min_length=1, max_length=5)
    physical_form: Text = Field(min_length=1, max_length=32, description="e.g. 液态, 固态")
    packaging: Text = Field(min_length=1, max_length=64, description="e.g. 200L铁桶×4")
    quantity_kg: Decimal = Quantity
    emergency_measures: Text = Field(min_length=1, max_length=2000)
    batches: list[Code] = Field(min_length=1, max_length=200, description="batch codes or QR URLs")
    receiver_organization_id: Id
    legs: list[LegCreate] = Field(min_length=1, max_length=5)


class LegSign(Schema):
    handover_at: AwareDatetime
    handover_place: Text = Field(min_length=1, max_length=128)


class Arrival(Schema):
    arrived_at: AwareDatetime


class Found(Schema):
    """What the receiver found, where it differs from the declaration."""

    waste_name: Text | None = Field(None, max_length=128)
    hazard: list[Hazard] | None = Field(None, max_length=5)
    physical_form: Text | None = Field(None, max_length=32)
    packaging: Text | None = Field(None, max_length=64)


class Decision(Schema):
    decision: Literal["accepted", "partially_accepted", "rejected"]
    received_quantity_kg: Decimal = Field(ge=0, le=1_000_000, max_digits=12, decimal_places=3)
    method: Text | None = Field(None, max_length=8, description="利用/处置方式 (R/D code)")
    reason: Text | None = Field(None, max_length=2000)
    found: Found = Field(default_factory=Found)

    @model_validator(mode="after")
    def _complete(self) -> "Decision":
        if self.decision != "rejected" and self.method is None:
            raise rule_error("method", "method is required when waste is accepted")
        if self.decision != "accepted" and not self.reason:
            raise rule_error("reason", "reason is required when waste is refused in whole or part")
        return self


class RevisionCreate(Schema):
    changes: dict[
        Literal["waste_name", "physical_form", "packaging", "quantity_kg", "emergency_measures"],
        Annotated[Text, Field(max_length=2000)],
    ] = Field(min_length=1)
    reason: Text = Field(min_length=1, max_length=2000)


class LegRead(Schema):
    seq: int
    carrier_id: int
    vehicle_plate: str
    permit_number: str
    handover_at: datetime | None
    handover_place: str | None
    signed_by_id: int | None
    signed_at: datetime | None


class DiscrepancyRead(Schema):
    field: str
    declared: str
    found: str
    recorded_at: datetime


class RevisionRead(Schema):
    id: int
    proposer_organization_id: int
    changes: dict[str, str]
    previous: dict[str, str]
    reason: str
    state: str
    approvals: list[int]
    created_at: datetime
    decided_at: datetime | None


class ManifestRead(Schema):
    id: int
    number: str
    state: str
    producer_id: int
    category_id: str
    waste_code: str
    waste_name: str
    hazard: list[str]
    physical_form: str
    packaging: str
    quantity_kg: Decimal
    emergency_measures: str
    batch_codes: list[str]
    producer_signed_at: datetime | None
    receiver_id: int
    arrived_at: datetime | None
    decision_due_at: datetime | None
    decision: str | None
    received_quantity_kg: Decimal | None
    method_id: str | None
    decision_reason: str | None
    receiver_signed_at: datetime | None
    legs: list[LegRead]
    discrepancies: list[DiscrepancyRead]
    revisions: list[RevisionRead]
