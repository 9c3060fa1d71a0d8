"""What pesticide-packaging take-back accepts: a farmer's return, a shop's sale and a point's
consignment to treatment, each checked field by field when it is made."""

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from wastetrack.core.commands import (
    Command,
    Day,
    Id,
    Integer,
    Moment,
    Reason,
    Text,
    rule_error,
)
from wastetrack.core.errors import ValidationFailed

# ASCII digits only: \d takes full-width and other digits too, and 13８... would hash to a
# second identity of the same farmer.
Phone = Field(None, pattern=r"^1[0-9]{10}$", description="mainland mobile number")
IdNumber = Field(None, description="resident ID number")

# GB 11643-1999 公民身份号码: a 6-digit address code, the 8-digit birth date, a 3-digit sequence
# and a check character over the first 17 (ISO 7064 MOD 11-2: digit i weighs 2^(17-i) mod 11,
# the sum mod 11 indexes ID_CHECK). The standard's example: 11010519491231002X.
ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
ID_CHECK = "10X98765432"


def born_on(number: str) -> date:
    """The birth date a resident ID number carries (digits 7-14); ValueError if it is no day."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def _resident_id(number: str) -> str:
    """A resident ID number whose birth date is a day and whose check character holds: one
    digit mistyped would credit a farmer who does not exist, whose balance no one looks up.
    Read with its check character upper-case, as GB 11643 writes it: `x` and `X` are one
    number (one farmer, one content digest)."""
    number = number.upper()
    try:
        born_on(number)
    except ValueError:
        raise PydanticCustomError(
            "id_number_birth_date", "digits 7-14 of a resident ID number are a birth date"
        ) from None
    if (
        ID_CHECK[sum(int(d) * w for d, w in zip(number, ID_WEIGHTS, strict=False)) % 11]
        != number[17]
    ):
        raise PydanticCustomError(
            "id_number_check",
            "the check character does not hold over the first 17 digits: a digit is mistyped",
        )
    return number


ResidentId = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{17}[0-9Xx]$"), AfterValidator(_resident_id)
]


class FarmerIdentity(Command):
    """A farmer needs no account: a phone number or ID number, kept only as a keyed hash."""

    PERSONAL_FIELDS = ("farmer_phone", "farmer_id_number")

    farmer_phone: Text | None = Phone
    farmer_id_number: ResidentId | None = IdNumber

    @model_validator(mode="after")
    def _one_identity(self) -> "FarmerIdentity":
        if (self.farmer_phone is None) == (self.farmer_id_number is None):
            raise rule_error("farmer_phone", "give farmer_phone or farmer_id_number")
        return self

    def check_born_by(self, day: date) -> None:
        """An ID number whose birth date is after `day` (the city's day of the return, or its
        today) names no one yet: its check character holds, but a digit of the date is
        mistyped. A 422 naming the field, as the check character's own refusal."""
        if self.farmer_id_number is None or born_on(self.farmer_id_number) <= day:
            return
        detail = f"the birth date is after {day.isoformat()}: a digit of it is mistyped"
        raise ValidationFailed(
            f"farmer_id_number: {detail}",
            field="farmer_id_number",
            errors=[
                {"field": "farmer_id_number", "rule": "id_number_birth_date", "detail": detail}
            ],
        )


class PackagingLineCommand(Command):
    """Containers of one material handed back: counted, weighed, or both."""

    material: Text = Field(max_length=64, description="an agri_packaging category, e.g. agri.drum")
    count: Integer = Field(ge=0, le=100_000)
    weight_kg: Decimal | None = Field(None, ge=0, le=100_000, max_digits=10, decimal_places=3)

    @model_validator(mode="after")
    def _something(self) -> "PackagingLineCommand":
        if not self.count and not self.weight_kg:
            raise rule_error("count", "a line needs a count or a weight")
        return self


class ReturnCommand(FarmerIdentity):
    """A farmer's containers returned at a shop or recovery point; `kind` tells it apart in an
    offline sync."""

    client_event_id: UUID
    kind: Literal["return"] = "return"
    returned_at: Moment
    lines: list[PackagingLineCommand] = Field(min_length=1, max_length=20)


class SaleCommand(Command):
    """Packages of one material a shop sold on a day: what the recovery rate is measured
    against."""

    client_event_id: UUID
    sold_on: Day
    material: Text = Field(max_length=64)
    count: Integer = Field(gt=0, le=1_000_000)


class CancelCommand(Command):
    """Cancelling a sale or a return entered wrong (作废), with the reason the audit log
    keeps."""

    reason: Reason


class ConsignmentLineCommand(Command):
    """Packaging of one material sent on: it becomes one batch."""

    material: Text = Field(max_length=64)
    count: Integer = Field(ge=0, le=1_000_000)
    weight_kg: Decimal = Field(gt=0, le=100_000, max_digits=10, decimal_places=3)


class ConsignmentCommand(Command):
    """Packaging a point sends on to treatment at a destination organization."""

    client_event_id: UUID
    destination_organization_id: Id
    sent_at: Moment
    lines: list[ConsignmentLineCommand] = Field(min_length=1, max_length=20)
