"""Registers (台账) of an organization: incoming, outgoing, inventory, medical handovers."""

from datetime import date, datetime
from decimal import Decimal

from pydantic import Field

from schemas.base import Schema


class PartyRead(Schema):
    id: int
    name: str


class RecorderRead(Schema):
    """The user who recorded a step for one side of a handover."""

    username: str
    full_name: str


class RegisterBatch(Schema):
    code: str
    stream: str
    category: str
    category_name: str
    waste_code: str | None
    identifier: str | None = None  # the HJ 1276-2022 数字识别码 of hazardous waste
    quantity: Decimal
    unit: str
    mass_kg: Decimal | None
    estimated: bool
    site_id: int | None


class IncomingRead(RegisterBatch):
    """入库: a batch that came into the organization's custody."""

    time: datetime
    how: str
    from_organization: PartyRead | None
    carrier: PartyRead | None


class OutgoingRead(RegisterBatch):
    """出库: a batch that left the organization's custody."""

    time: datetime
    how: str
    to_organization: PartyRead | None
    into: str | None
    carrier: PartyRead | None
    fate: str | None
    treatment_mode: str | None


class InventoryBatchRead(RegisterBatch):
    """库存: a batch held at the end of the period."""

    since: datetime
    producer: PartyRead | None
    storage_days: int
    storage_limit_hours: int | None
    overdue: bool


class Count(Schema):
    batches: int
    kg: Decimal
    without_mass: int = Field(
        description="of `batches`, those whose mass is not known (items of a category without"
        " a unit mass, not weighed): `kg` leaves them out"
    )


class BalanceRead(Schema):
    """Per waste category: opening + incoming - outgoing = closing."""

    category: str
    category_name: str
    opening: Count
    incoming: Count
    outgoing: Count
    closing: Count


class InventoryRead(Schema):
    as_of: datetime
    batches: list[InventoryBatchRead]
    balance: list[BalanceRead]


class MedicalHandoverRead(RegisterBatch):
    """医疗废物交接登记: one handover of a medical-waste batch between two organizations."""

    time: datetime
    local_time: str
    source: PartyRead | None
    handed_by_organization: PartyRead
    handed_by: RecorderRead | None
    received_by_organization: PartyRead
    received_by: RecorderRead | None
    how: str
    carrier: PartyRead | None
    treatment_mode: str | None
    fate: str | None
    destination: PartyRead | None
    keep_until: date
    direction: str
