"""What a transfer manifest accepts (危险废物转移管理办法): the producer's draft with its
carriers' legs, a leg's signature at handover, the receiver's decision and a proposed revision,
each checked field by field when it is made; and the custody steps it records itself."""

import hmac
from decimal import Decimal
from typing import Annotated, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import ConfigDict, Field, model_validator, with_config
from typing_extensions import TypedDict

from wastetrack.core import keys
from wastetrack.core.commands import (
    Command,
    Hazards,
    Id,
    MapKey,
    Moment,
    Reason,
    Scanned,
    Text,
    rule_error,
)
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.rules import REFUSAL_NEEDS_REASON, REFUSING, Outcome

# The declaration's fields, as the draft states them and a revision changes them (the columns'
# lengths and precision).
WasteName = Annotated[Text, Field(min_length=1, max_length=128)]
DeclaredHazards = Annotated[Hazards, Field(min_length=1)]
PhysicalForm = Annotated[Text, Field(min_length=1, max_length=32, description="e.g. 液态, 固态")]
Packaging = Annotated[Text, Field(min_length=1, max_length=64, description="e.g. 200L铁桶×4")]
Quantity = Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=12, decimal_places=3)]
EmergencyMeasures = Annotated[Text, Field(min_length=1, max_length=2000)]
MAX_BATCHES = 200
"""The most batches one manifest lists (one vehicle trip)."""
# A batch's weighing on its receipt, as the receiver states it: a custody event's `weight_kg`
# (its bound and precision), and above zero, as waste received is something.
BatchWeight = Annotated[Decimal, Field(gt=0, le=100_000, max_digits=12, decimal_places=3)]


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
    hazard: DeclaredHazards
    physical_form: PhysicalForm
    packaging: Packaging
    quantity_kg: Quantity
    emergency_measures: EmergencyMeasures
    batches: list[Scanned] = Field(
        min_length=1,
        max_length=MAX_BATCHES,
        description="batch codes, QR URLs or HJ 1276 数字识别码",
    )
    receiver_organization_id: Id
    legs: list[LegCommand] = Field(min_length=1, max_length=5)


class LegSignCommand(Command):
    """A carrier's signature on its leg: when and where it took the waste over."""

    handover_at: Moment
    handover_place: Text = Field(min_length=1, max_length=128)


class FoundCommand(Command):
    """What the receiver found, where it differs from the declaration."""

    waste_name: WasteName | None = None
    hazard: DeclaredHazards | None = None
    physical_form: PhysicalForm | None = None
    packaging: Packaging | None = None


class DecisionCommand(Command):
    """The receiver's decision: accepted in whole or part (with the method) or rejected (with
    the reason), the quantity received, perhaps as weighed batch by batch, and what differed
    from the declaration."""

    decision: Literal["accepted", "partially_accepted", "rejected"]
    received_quantity_kg: Decimal = Field(ge=0, le=1_000_000, max_digits=12, decimal_places=3)
    weights_kg: dict[MapKey, BatchWeight] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BATCHES,
        description="accepted in whole or part: each batch's weighing (batch code: kg), one for"
        " every batch of the manifest, adding up to received_quantity_kg; each batch's receipt"
        " is weighed as stated. Default: received_quantity_kg shared by the batches' declared"
        " masses, which a batch of no known mass beside others has not",
    )
    method: Text | None = Field(None, max_length=8, description="利用/处置方式 (R/D code)")
    # Recorded on each batch's receipt too, so no longer than a custody event's reason.
    reason: Text | None = Field(None, max_length=1000)
    found: FoundCommand = Field(default_factory=FoundCommand)

    @model_validator(mode="after")
    def _complete(self) -> "DecisionCommand":
        if self.decision != "rejected" and self.method is None:
            raise rule_error("method", "method is required when waste is accepted")
        if self.decision == "rejected" and self.method is not None:
            # Kept, it would say the refused waste was treated so.
            raise rule_error("method", "a rejection treats nothing: send no method")
        if Outcome(self.decision) in REFUSING and not self.reason:
            raise rule_error("reason", REFUSAL_NEEDS_REASON)
        if self.decision != "rejected" and self.received_quantity_kg == 0:
            # Each receipt would be weighed at nothing, and a partial acceptance would refuse
            # every batch whole: waste received weighs something, and none received is a
            # rejection.
            raise rule_error(
                "received_quantity_kg",
                "waste accepted in whole or part weighs more than 0 kg: reject it instead",
            )
        if self.weights_kg is not None:
            # Sent on a rejection, they would be dropped unseen: its receipts weigh nothing.
            if self.decision == "rejected":
                raise rule_error("weights_kg", "a rejection weighs no batch: send no weights_kg")
            stated = sum(self.weights_kg.values(), Decimal(0))
            if stated != self.received_quantity_kg:
                raise rule_error(
                    "weights_kg",
                    f"the batches' weights add up to {stated} kg, not to the"
                    f" received_quantity_kg {self.received_quantity_kg}",
                )
        if self.decision == "rejected" and self.received_quantity_kg != 0:
            # Kept, the manifest, its PDF and its public page would say waste was received
            # that no receipt weighs, and the discrepancy of its quantity would go unrecorded.
            raise rule_error(
                "received_quantity_kg",
                "a rejection receives nothing: its received_quantity_kg is 0",
            )
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
    reason: Reason

    @model_validator(mode="after")
    def _a_change(self) -> "RevisionCommand":
        if not self.changes:
            raise rule_error("changes", "name at least one change")
        return self


class CancelCommand(Command):
    """Cancelling a manifest before it arrives (作废), with the reason the parties and the
    authority read on it."""

    reason: Reason


class ManifestStep(EventCommand):
    """A custody step a manifest's signature or decision records for one of its batches
    (`manifests.chain`), never made from a request: while the manifest is open, its batches go
    in transit, are stored and are received by these alone (`custody.transitions`)."""


# The names of the steps a manifest records, as their ids (`step_id`) spell them.
HANDOVER_STEP = "handover"
RECEIVED_STEP = "received"


def handover_step(seq: int) -> str:
    """The name of the step that hands the batches over to leg `seq`'s carrier: the producer's
    (`HANDOVER_STEP`) for the first leg, the previous carrier's for a later one."""
    return HANDOVER_STEP if seq == 1 else f"handover-{seq}"


def transit_step(seq: int) -> str:
    """The name of the step that puts the batches in transit on leg `seq`."""
    return "transit" if seq == 1 else f"transit-{seq}"


def _step_name(number: str, step: str, code: str) -> str:
    return f"manifest:{number}:{step}:{code}"


def step_id(*, number: str, step: str, code: str, secret: str) -> UUID:
    """The client id of a manifest's step for one batch: the same for the same manifest, step
    and batch, so a repeated step is applied once; keyed by the server's secret, so that no
    party can compute it from the manifest's number and the batch's label and record an event
    of its own under it first."""
    key = keys.ring(secret).manifest_step
    mac = hmac.digest(key, _step_name(number, step, code).encode(), "sha256")
    # Version 4: as random as a phone's id, to whoever lacks the key.
    return UUID(bytes=mac[:16], version=4)


def recorded_step_ids(*, number: str, step: str, code: str, secret: str) -> tuple[UUID, UUID]:
    """The ids a manifest's step may be recorded under: its keyed id, and the plain uuid5 of
    the steps recorded before ids were keyed."""
    legacy = uuid5(NAMESPACE_URL, _step_name(number, step, code))
    return step_id(number=number, step=step, code=code, secret=secret), legacy
