"""Hazardous-waste transfer manifests."""

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from schemas.base import Moment, Schema
from wastetrack.manifests.commands import (
    CancelCommand,
    DecisionCommand,
    LegSignCommand,
    ManifestCommand,
    RevisionCommand,
)


class ManifestCreate(ManifestCommand):
    """A producer's draft manifest: one trip of one waste type, its batches, the receiver and
    the carriers' legs in order."""


class LegSign(LegSignCommand):
    """A carrier's signature on its leg at handover, with the time and place."""


class Arrival(Schema):
    arrived_at: Moment


class Decision(DecisionCommand):
    """The receiver's decision, signing its section: accepted (with the method), partially
    accepted or rejected (with the reason), the quantity received, perhaps each batch's weight
    as weighed (`weights_kg`), and what it found different."""


class RevisionCreate(RevisionCommand):
    """A correction proposed to a signed manifest; every other party must approve it."""


class Cancellation(CancelCommand):
    """Cancelling a manifest before it arrives: its producer while no carrier has signed, the
    region's manager until the arrival."""


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
    decision_due_assumed: list[int] | None = Field(
        description="years whose working days the deadline counted Monday to Friday, the official"
        " calendar lacking them; computed again once an operator enters them"
    )
    decision: str | None
    received_quantity_kg: Decimal | None
    method_id: str | None
    decision_reason: str | None
    receiver_signed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    legs: list[LegRead]
    discrepancies: list[DiscrepancyRead]
    revisions: list[RevisionRead]
