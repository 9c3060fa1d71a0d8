"""A custody event as the domain accepts it: one command per step in a batch's custody."""

from collections.abc import Callable
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from pydantic import Field, model_validator

from wastetrack.batches.models import Unit
from wastetrack.core.commands import (
    Boolean,
    Hazards,
    Id,
    Latitude,
    Located,
    Longitude,
    Moment,
    Scanned,
    Sha256,
    Text,
    rule_error,
)
from wastetrack.custody.rules import (
    SPECS,
    EventType,
    Outcome,
    fields_of,
    foreign_field_rule,
    required_rule,
)
from wastetrack.fleet.plates import compact_plate

QUANTITY_BOUND = 1_000_000
"""The bound of a quantity in a request's contract; what one batch plausibly holds, per unit,
is the tagging's rule (`batches.tagging.MAX_QUANTITY`)."""


class EventCommand(Located):
    """One step in a batch's custody, as recorded on the phone (or made by the domain for a
    record that brings waste into the chain, or a manifest's leg)."""

    LATE_FIELDS: ClassVar[tuple[str, ...]] = (
        "refused_kg",
        "producer_pin",
        "vehicle_plate",
        "aggregated",
    )
    UNORDERED_FIELDS: ClassVar[tuple[str, ...]] = ("hazard", "children")
    SCANNED_FIELDS: ClassVar[tuple[str, ...]] = ("batch", "children")
    READ_FIELDS: ClassVar[dict[str, Callable[[str], str]]] = {"vehicle_plate": compact_plate}

    client_event_id: UUID = Field(description="made by the phone; a resend is applied once")
    event_type: EventType
    batch: Scanned | None = Field(
        None,
        description="scanned QR URL, typed code or HJ 1276 数字识别码; for `tagged`, the"
        " label to bind (none: a new code)",
    )
    device_time: Moment = Field(description="when it happened, by the phone's clock")
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    weight_kg: Decimal | None = Field(None, ge=0, le=100_000, max_digits=12, decimal_places=3)
    photo_sha256: Sha256 | None = None
    note: Text | None = Field(None, max_length=1000)
    # tagged
    stream: Text | None = Field(None, max_length=32)
    category: Text | None = Field(None, max_length=64)
    waste_code: Text | None = Field(None, max_length=16)
    hazard: Hazards | None = Field(
        None, description="hazard characteristics, each once; default: the category's"
    )
    quantity: Decimal | None = Field(None, gt=0, le=QUANTITY_BOUND, max_digits=12, decimal_places=3)
    unit: Unit | None = None
    producer_organization_id: Id | None = None
    origin_site_id: Id | None = None
    carrier_organization_id: Id | None = None
    # tagged, in_transit
    destination_organization_id: Id | None = None
    # handed_over
    to_organization_id: Id | None = None
    # collected: from the producer's hands, by another party
    producer_pin: str | None = Field(
        None,
        pattern=r"^[0-9]{6}$",  # ASCII digits: \d takes full-width and other digits too
        description="the producer's one-time PIN (from its printed list), confirming that it"
        " handed the waste over; required where the stream's rule says so",
    )
    # collected, in_transit, handed_over to a carrier
    vehicle_plate: Text | None = Field(
        None,
        max_length=16,
        description="the carrier's vehicle (鲁K12345); required for the streams whose rule"
        " `vehicle_required` says so once the carrier has registered its fleet",
    )
    # received, cancelled, corrected
    outcome: Outcome | None = None
    reason: Text | None = Field(
        None, min_length=1, max_length=1000, description="a blank reason is no reason: refused"
    )
    refused_kg: Decimal | None = Field(
        None,
        gt=0,
        le=100_000,
        max_digits=12,
        decimal_places=3,
        description="received, partially_accepted: the mass refused, which leaves as a"
        " remainder batch of its own; default: the declared kg (for batches counted in units or"
        " m³, the catalog's estimate) minus weight_kg — required where the batch declares no"
        " known mass (items of a category without a unit mass)",
    )
    # treated
    method: Text | None = Field(None, max_length=8)
    # aggregated
    children: list[Scanned] | None = Field(None, min_length=1, max_length=500)
    # corrected
    corrects: UUID | None = None
    event_time: Moment | None = Field(
        None, description="corrected: the corrected event's true time (of a `tagged` event)"
    )
    aggregated: Boolean | None = Field(
        None,
        description="corrected: `false` undoes the aggregation a child's own `aggregated` event"
        " recorded (the batch was never in that container)",
    )

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> "EventCommand":
        for name in SPECS[self.event_type].required:
            if getattr(self, name) is None:
                raise rule_error(name, required_rule(self.event_type, name))
        # A field the type has no use for is refused, never silently dropped (a correction
        # naming a handover's receiver would otherwise be accepted, changing nothing). Only
        # fields set count: a client may send nulls for the fields it does not use.
        allowed = fields_of(self.event_type)
        for name in type(self).model_fields:
            if name not in allowed and getattr(self, name) is not None:
                raise rule_error(name, foreign_field_rule(self.event_type, name))
        if self.refused_kg is not None and not (
            self.event_type == EventType.received and self.outcome == Outcome.partially_accepted
        ):
            raise rule_error(
                "refused_kg",
                "refused_kg is stated only on a received event with outcome partially_accepted",
            )
        return self
