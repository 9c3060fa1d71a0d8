"""Household waste sorting: pickups at collection points, quality checks, coverage."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from schemas.base import Ratio, Schema, Text
from schemas.events import Latitude, Longitude, Sha256


class QualityCheck(Schema):
    """The collector's sorting-quality check (分类质量) of what was put out."""

    passed: bool
    contamination_share: Decimal = Field(
        ge=0, le=1, max_digits=4, decimal_places=3, description="share of wrongly sorted material"
    )
    photo_sha256: Sha256 | None = None


class PickupCreate(Schema):
    client_event_id: UUID
    kind: Literal["pickup"] = "pickup"
    site: Text = Field(min_length=1, max_length=512, description="scanned collection-point QR")
    category: Text = Field(max_length=64, description="a GB/T 19095-2019 class or sub-class")
    weight_kg: Decimal = Field(gt=0, le=100_000, max_digits=12, decimal_places=3)
    device_time: AwareDatetime
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    quality: QualityCheck | None = None


class PickupRead(Schema):
    id: int
    site_id: int
    batch_code: str
    picked_up_at: datetime
    quality_checked: bool
    quality_passed: bool | None
    contamination_share: Decimal | None


class RegionSorting(Schema):
    sorted_collection_since: date | None = Field(
        description="since when the community or village has sorted collection; null: none"
    )


class TownSorting(Schema):
    region_id: int
    name: str
    coverage: Ratio
    accuracy: Ratio


class SortingMetricsRead(Schema):
    date_from: date
    date_to: date
    timezone: str
    coverage: Ratio
    accuracy: Ratio
    towns: list[TownSorting]
