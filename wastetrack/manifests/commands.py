"""What a transfer manifest accepts (危险废物转移管理办法): the producer's draft with its
carriers' legs, a leg's signature at handover, the receiver's decision and a proposed revision,
each checked field by field when it is made."""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator, with_config
from typing_extensions import TypedDict

from wastetrack.core.commands import Code, Command, Hazard, Id, Moment, Text, rule_error

# The declaration's fields, as the draft states them and a revision changes them (the columns'
# lengths and precision).
WasteName = Annotated[Text, Field(min_length=1, max_length=128)]
PhysicalForm = Annotated[Text, Field(min_length=1, max_length=32, description="e.g. 液态, 固态")]
Packaging = Annotated[Text, Field(min_length=1, max_length=64, description="e.g. 200L铁桶×4")]
Quantity = Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=12, decimal_places=3)]
EmergencyMeasures = Annotated[Text, Field(min_length=1, max_length=2000)]


class LegCommand(Command):
    """One carrier's leg of the trip: the carrier, its vehicle and its transport permit."""

    carrier_organization_id: Id
    vehicle_plate: Text = Field(min_length=5, max_length=16)
    permit_number: Text = Field(min_length=1, max_length=64)


class ManifestCommand(Command):
    """The 移出人 section, the receiver and the carriers' legs in order."""

    category: Text = Field(max_length=64, description="the HW category, e.g. hw.08")
    waste_code: Text = Field(max_length=16)
    waste_name: WasteName
    hazard: list[Hazard] = Field(min_length=1, max_length=5)
    physical_form: PhysicalForm
    packaging: Packaging
    quantity_kg: Quantity
    emergency_measures: EmergencyMeasures
    batches: list[Code] = Field(min_length=1, max_length=200, description="batch codes or QR URLs")
    receiver_organization_id: Id
    legs: list[LegCommand] = Field(min_length=1, max_length=5)


class LegSignCommand(Command):
    """A carrier's signature on its leg: when and where it took the waste over."""

    handover_at: Moment
    handover_place: Text = Field(min_length=1, max_length=128)


class FoundCommand(Command):
    """What the receiver found, where it differs from the declaration."""

    waste_name: Text | None = Field(None, max_length=128)
    hazard: list[Hazard] | None = Field(None, max_length=5)
    physical_form: Text | None = Field(None, max_length=32)
    packaging: Text | None = Field(None, max_length=64)


class DecisionCommand(Command):
    """The receiver's decision: accepted in whole or part (with the method) or rejected (with
    the reason), the quantity received and what differed from the declaration."""

    decision: Literal["accepted", "partially_accepted", "rejected"]
    received_quantity_kg: Decimal = Field(ge=0, le=1_000_000, max_digits=12, decimal_places=3)
    method: Text | None = Field(None, max_length=8, description="利用/处置方式 (R/D code)")
    reason: Text | None = Field(None, max_length=2000)
    found: FoundCommand = Field(default_factory=FoundCommand)

    @model_validator(mode="after")
    def _complete(self) -> "DecisionCommand":
        if self.decision != "rejected" and self.method is None:
            raise rule_error("method", "method is required when waste is accepted")
        if self.decision != "accepted" and not self.reason:
            raise rule_error("reason", "reason is required when waste is refused in whole or part")
        return self


@with_config(
    ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"minProperties": 1})
)
class RevisionChanges(TypedDict, total=False):
    """The declaration's fields a revision may change (one at least), each checked as the draft
    checks it."""

    waste_name: WasteName
    physical_form: PhysicalForm
    packaging: Packaging
    quantity_kg: Quantity
    emergency_measures: EmergencyMeasures


class RevisionCommand(Command):
    """A correction to a signed manifest's declaration, with the reason for it: each change is
    a value the manifest could have been drafted with, so one every party approves applies."""

    changes: RevisionChanges
    reason: Text = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _a_change(self) -> "RevisionCommand":
        if not self.changes:
            raise rule_error("changes", "name at least one change")
        return self
