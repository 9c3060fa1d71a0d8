"""What household sorting accepts: a collector's pickup at a scanned collection point, with
the sorting-quality check of what was put out, checked field by field when it is made."""

from decimal import Decimal
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from wastetrack.core.commands import (
    Boolean,
    Command,
    Latitude,
    Located,
    Longitude,
    Moment,
    Sha256,
    Text,
)


class QualityCheckCommand(Command):
    """The collector's sorting-quality check (分类质量) of what was put out."""

    passed: Boolean
    contamination_share: Decimal = Field(
        ge=0, le=1, max_digits=4, decimal_places=3, description="share of wrongly sorted material"
    )
    photo_sha256: Sha256 | None = None


class PickupCommand(Located):
    """One class picked up at a collection point; `kind` tells it apart in an offline sync."""

    SCANNED_FIELDS: ClassVar[tuple[str, ...]] = ("site",)

    client_event_id: UUID
    kind: Literal["pickup"] = "pickup"
    site: Text = Field(min_length=1, max_length=512, description="scanned collection-point QR")
    category: Text = Field(max_length=64, description="a GB/T 19095-2019 class or sub-class")
    weight_kg: Decimal = Field(gt=0, le=100_000, max_digits=12, decimal_places=3)
    device_time: Moment
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    quality: QualityCheckCommand | None = None
