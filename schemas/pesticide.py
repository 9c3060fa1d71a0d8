"""Pesticide packaging take-back: returns with credit points, sales, consignments, ledger."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from schemas.base import Ratio, Schema
from wastetrack.pesticide.commands import (
    CancelCommand,
    ConsignmentCommand,
    ReturnCommand,
    SaleCommand,
)

# A credit query's body is the farmer's identity exactly as the domain takes it.
from wastetrack.pesticide.commands import FarmerIdentity as FarmerIdentity


class ReturnCreate(ReturnCommand):
    """A farmer's containers returned at a shop or recovery point (or sent in a sync with kind
    `return`): counts and weights per material, credit points awarded."""


class ReturnRead(Schema):
    id: int
    point_id: int
    farmer: str
    returned_at: datetime
    lines: list[dict[str, Any]]
    points: Decimal
    balance: Decimal
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


class CreditRead(Schema):
    farmer: str
    points: Decimal
    returns: int


class SaleCreate(SaleCommand):
    """Packages a shop sold: the estimate of what farmers should bring back."""


class Cancellation(CancelCommand):
    """Cancelling a sale or a return entered wrong (作废): it counts in no figure; record the
    right one anew."""


class SaleRead(Schema):
    id: int
    shop_id: int
    sold_on: date
    material: str
    count: int
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


class ConsignmentCreate(ConsignmentCommand):
    """Packaging a point sends on to treatment: one batch per material, tagged for its
    destination, waiting for a carrier."""


class ConsignmentRead(Schema):
    id: int
    point_id: int
    destination_id: int
    sent_at: datetime
    lines: list[dict[str, Any]]


class KgRecovery(Schema):
    recovery_rate: Ratio | None = Field(
        description="kg returned ÷ kg sold: a return line's weighed kg, else its count × the"
        " material's unit mass; sold items × unit mass"
    )
    returned_estimated_kg: Decimal | None = Field(
        description="of the kg returned, lines counted and not weighed (count × unit mass)"
    )
    omitted: str | None = Field(
        description="why there is no kg rate: a material sold, or counted back and not weighed,"
        " has no unit mass in the catalog"
    )


class Recovery(Schema):
    sold: int
    returned: int
    returned_uncounted_kg: Decimal = Field(
        description="returned weighed and not counted: outside the rate, which counts"
        " containers; in the kg rate"
    )
    recovery_rate: Ratio
    kg: KgRecovery


class MaterialRecovery(Recovery):
    material: str


class ShopFigures(Recovery):
    """A shop's figures, a row of the shops' file."""

    organization_id: int
    name: str
    town_id: int = Field(description="the region of the shop's town")


class ShopRecovery(ShopFigures):
    materials: list[MaterialRecovery]


class TownFigures(Recovery):
    """A town's shops' sales against the returns at its shops and recovery points, a row of
    the towns' file."""

    region_id: int
    name: str
    level: str = Field(description="town; city for shops and points registered at the city")
    partial: bool = Field(
        description="the figures cover only the part of the town inside the region asked for"
        " (?region_id= a village)"
    )
    shops: int
    points: int


class TownRecovery(TownFigures):
    materials: list[MaterialRecovery]


class PesticideMetricsRead(Schema):
    date_from: date
    date_to: date
    timezone: str
    sold: int
    returned: int
    returned_uncounted_kg: Decimal = Field(
        description="returned weighed and not counted: outside the rate, which counts"
        " containers; in the kg rate"
    )
    recovery_rate: Ratio
    kg: KgRecovery
    materials: list[MaterialRecovery]
    by_shop: list[ShopRecovery]
    by_town: list[TownRecovery]
