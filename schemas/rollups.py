"""The cohort figures of the custody log: utilization and mass balance (docs/metrics.md §3-5)."""

from datetime import date
from decimal import Decimal

from pydantic import Field

from schemas.base import Ratio, Schema


class CohortFiguresRead(Schema):
    """One cohort's figures: its batches and mass, the mass by fate and by treatment mode, and
    the rates that follow."""

    batches: int
    batches_without_mass: int = Field(
        description="batches of no known mass (items or m³ without a unit mass or density, never"
        " weighed): in no mass, numerator or denominator"
    )
    generated_kg: Decimal
    estimated_share: Ratio
    fates: dict[str, Ratio] = Field(description="the mass of each fate, as a share of the whole")
    treated_kg: dict[str, Decimal] = Field(description="kg treated, by treatment mode")
    harmless_treatment_rate: Ratio
    utilization_rate: Ratio


class _Stream(Schema):
    stream: str


class _Category(_Stream):
    category: str


# The row's names lead its figures: pydantic takes the fields of the last base first.
class StreamFiguresRead(CohortFiguresRead, _Stream):
    pass


class CategoryFiguresRead(CohortFiguresRead, _Category):
    pass


class UtilizationRead(Schema):
    date_from: date
    date_to: date
    categories: list[CategoryFiguresRead]
    streams: list[StreamFiguresRead]


class CategoryBalanceRead(Schema):
    stream: str
    category: str
    declared_kg: Decimal
    weighed_kg: Decimal
    difference_kg: Decimal
    weighed_over_declared: Ratio


class MassBalanceRead(Schema):
    date_from: date
    date_to: date
    categories: list[CategoryBalanceRead]
