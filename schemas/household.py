"""Household waste sorting: pickups at collection points, quality checks, coverage."""

from datetime import date, datetime
from decimal import Decimal

from pydantic import Field

from schemas.base import Day, Ratio, Schema
from schemas.registry import RegionRead
from wastetrack.household.commands import PickupCommand


class PickupCreate(PickupCommand):
    """A collector's pickup at a scanned collection point (or sent in a sync with kind
    `pickup`): the load becomes a batch in the collector's hands, with its quality check."""


class PickupRead(Schema):
    id: int
    site_id: int
    batch_code: str
    picked_up_at: datetime
    quality_checked: bool
    quality_passed: bool | None
    contamination_share: Decimal | None


class RegionSorting(Schema):
    sorted_collection_since: Day | None = Field(
        description="since when the community or village has sorted collection (for the period"
        " running now, a correction of its start); null: it has none, from `ended_on` on"
    )
    ended_on: Day | None = Field(
        None,
        description="with sorted_collection_since null: the first day without sorted collection"
        " (today when left out, never a day to come); the days before it keep counting",
    )


class SortedPeriod(Schema):
    since: date
    until: date = Field(description="the first day without sorted collection")


class RegionSortingRead(RegionRead):
    sorted_collection_ended: list[SortedPeriod] = Field(
        description="the periods of sorted collection that have ended, oldest first"
    )


class Coverage(Schema):
    coverage: Ratio
    urban_coverage: Ratio
    rural_coverage: Ratio
    unclassified: int = Field(
        description="communities and villages whose code says neither (统计用区划代码: 001–199"
        " a community, 200–399 a village): counted apart, in no coverage"
    )


class TownSorting(Coverage):
    region_id: int
    name: str
    partial: bool = Field(
        description="the figures cover only the part of the town inside the region asked for"
        " (?region_id= a village)"
    )
    accuracy: Ratio


class OutsideTownsSorting(Coverage):
    region_id: None = Field(default=None, description="always null: no one region")
    name: str = Field(description="镇街以外: what lies in the area but in no town")
    accuracy: Ratio


class SortingMetricsRead(Coverage):
    date_from: date
    date_to: date
    timezone: str
    accuracy: Ratio
    towns: list[TownSorting]
    outside_towns: OutsideTownsSorting = Field(
        description="what lies in the area but in no town (a village or collection point of"
        " the city's own region; nothing for an area inside a town): with the towns it adds"
        " up to the area's figures"
    )
