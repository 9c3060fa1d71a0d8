"""Pesticide packaging take-back: returns with credit points, sales, consignments, ledger."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import Id, Ratio, Schema, Text, rule_error

Phone = Field(None, pattern=r"^1\d{10}$", description="mainland mobile number")
IdNumber = Field(None, pattern=r"^\d{17}[\dXx]$", description="resident ID number")


class FarmerIdentity(Schema):
    """A farmer needs no account: a phone number or ID number, kept only as a keyed hash."""

    farmer_phone: Text | None = Phone
    farmer_id_number: Text | None = IdNumber

    @model_validator(mode="after")
    def _one_identity(self) -> "FarmerIdentity":
        if (self.farmer_phone is None) == (self.farmer_id_number is None):
            raise rule_error("farmer_phone", "give farmer_phone or farmer_id_number")
        return self


class PackagingLine(Schema):
    material: Text = Field(max_length=64, description="an agri_packaging category, e.g. agri.drum")
    count: int = Field(ge=0, le=100_000)
    weight_kg: Decimal | None = Field(None, ge=0, le=100_000, max_digits=10, decimal_places=3)

    @model_validator(mode="after")
    def _something(self) -> "PackagingLine":
        if not self.count and not self.weight_kg:
            raise rule_error("count", "a line needs a count or a weight")
        return self


class ReturnCreate(FarmerIdentity):
    client_event_id: UUID
    kind: Literal["return"] = "return"
    returned_at: AwareDatetime
    lines: list[PackagingLine] = Field(min_length=1, max_length=20)


class ReturnRead(Schema):
    id: int
    point_id: int
    farmer: str
    returned_at: datetime
    lines: list[dict[str, Any]]
    points: Decimal
    balance: Decimal


class CreditRead(Schema):
    farmer: str
    points: Decimal
    returns: int


class SaleCreate(Schema):
    client_event_id: UUID
    sold_on: date
    material: Text = Field(max_length=64)
    count: int = Field(gt=0, le=1_000_000)


class SaleRead(Schema):
    id: int
    shop_id: int
    sold_on: date
    material: str
    count: int


class ConsignmentLine(Schema):
    material: Text = Field(max_length=64)
    count: int = Field(ge=0, le=1_000_000)
    weight_kg: Decimal = Field(gt=0, le=100_000, max_digits=10, decimal_places=3)


class ConsignmentCreate(Schema):
    client_event_id: UUID
    destination_organization_id: Id
    sent_at: AwareDatetime
    lines: list[ConsignmentLine] = Field(min_length=1, max_length=20)


class ConsignmentRead(Schema):
    id: int
    point_id: int
    destination_id: int
    sent_at: datetime
    lines: list[dict[str, Any]]


class MaterialRecovery(Schema):
    material: str
    sold: int
    returned: int
    recovery_rate: Ratio


class PesticideMetricsRead(Schema):
    date_from: date
    date_to: date
    timezone: str
    recovery_rate: Ratio
    materials: list[MaterialRecovery]
