"""Fishing ports: berths, port calls, deliveries, receipts, clean-ups and their metrics."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import Definition, Id, Key, Ratio, Schema, Text, rule_error
from schemas.events import Latitude, Longitude, Sha256

Volume = Annotated[Decimal, Field(ge=0, le=10_000, max_digits=10, decimal_places=3)]
Mass = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=12, decimal_places=3)]


class FishingPortCreate(Schema):
    grade: Text = Field(min_length=1, max_length=16, description="e.g. 中心渔港, 一级, 二级, 三级")
    latitude: Latitude
    longitude: Longitude
    reception_facility: bool = False
    listed: bool = Field(True, description="on the city's list of managed fishing ports")


class FishingPortRead(FishingPortCreate):
    organization_id: int


class BerthCreate(Schema):
    name: Text = Field(min_length=1, max_length=64)
    latitude: Latitude
    longitude: Longitude
    geofence_m: int | None = Field(None, ge=10, le=5000)


class BerthRead(Schema):
    id: int
    port_id: int
    name: str
    code: str
    qr_url: str
    latitude: float
    longitude: float
    geofence_m: int


class NotificationLine(Schema):
    """One category of an advance waste notification."""

    category: Text = Field(max_length=64)
    to_deliver_m3: Volume
    storage_capacity_m3: Volume | None = None
    retained_m3: Volume | None = None


class PortCallCreate(Schema):
    vessel_id: Id
    arrived_at: AwareDatetime
    days_at_sea: int = Field(ge=0, le=400)
    crew: int = Field(ge=1, le=500)
    fishing_area: Text | None = Field(None, max_length=32)
    notification: list[NotificationLine] = Field(default_factory=list, max_length=40)


class PortCallClose(Schema):
    departed_at: AwareDatetime


class PortCallRead(Schema):
    id: int
    vessel_id: int
    port_id: int
    arrived_at: datetime
    departed_at: datetime | None
    days_at_sea: int
    crew: int
    fishing_area: str | None
    notification: list[dict[str, Any]]


class DeliveryLineCreate(Schema):
    """A category handed over: by catalog key, or by MARPOL Annex V letter and scheme version."""

    category: Text | None = Field(None, max_length=64)
    annex_v: Text | None = Field(None, pattern=r"^[A-Ka-k]$")
    scheme_version: Literal["2013", "2018"] | None = None
    volume_m3: Volume | None = None
    mass_kg: Mass | None = None

    @model_validator(mode="after")
    def _one_way_to_name_it(self) -> "DeliveryLineCreate":
        if (self.category is None) == (self.annex_v is None):
            raise rule_error("category", "give either category or annex_v (with scheme_version)")
        if self.annex_v is not None and self.scheme_version is None:
            raise rule_error("scheme_version", "annex_v needs scheme_version (2013 or 2018)")
        if not (self.volume_m3 or self.mass_kg):
            raise rule_error("volume_m3", "a line needs a positive volume_m3 or mass_kg")
        return self


class DeliveryCreate(Schema):
    client_event_id: UUID
    kind: Literal["delivery"] = "delivery"
    berth: Text = Field(min_length=1, max_length=512, description="scanned berth QR or its code")
    vessel_id: Id
    port_call_id: Id | None = None
    started_at: AwareDatetime
    ended_at: AwareDatetime
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    lines: list[DeliveryLineCreate] = Field(min_length=1, max_length=40)

    @model_validator(mode="after")
    def _times_in_order(self) -> "DeliveryCreate":
        if self.ended_at < self.started_at:
            raise rule_error("ended_at", "ended_at precedes started_at")
        if (self.latitude is None) != (self.longitude is None):
            raise rule_error("longitude", "latitude and longitude go together")
        return self


class DeliveryLineRead(Schema):
    category: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool
    batch_code: str


class DeliveryRead(Schema):
    id: int
    receipt_number: str
    receipt_url: str
    vessel_id: int
    port_id: int
    berth_id: int
    port_call_id: int | None
    started_at: datetime
    ended_at: datetime
    distance_m: float | None
    flags: list[str]
    lines: list[DeliveryLineRead]


class CleanUpCreate(Schema):
    client_event_id: UUID
    kind: Literal["cleanup"] = "cleanup"
    region_id: Id
    area_name: Text = Field(min_length=1, max_length=128)
    setting: Literal["beach", "sea_surface"]
    started_at: AwareDatetime
    ended_at: AwareDatetime
    latitude: Latitude
    longitude: Longitude
    participants: int | None = Field(None, ge=1, le=10_000)
    item_counts: dict[Key, Annotated[int, Field(ge=0, le=10_000_000)]] = Field(max_length=40)
    total_weight_kg: Mass = Field(gt=0)
    photos: list[Sha256] = Field(default_factory=list, max_length=20)


class CleanUpRead(Schema):
    id: int
    organization_id: int
    region_id: int
    area_name: str
    setting: str
    started_at: datetime
    ended_at: datetime
    latitude: float
    longitude: float
    participants: int | None
    item_counts: dict[str, int]
    total_weight_kg: Decimal
    photos: list[str]
    batch_code: str


class FloatReplacementCreate(Schema):
    client_event_id: UUID
    region_id: Id
    replaced_on: date
    foam_floats_removed: int = Field(ge=0, le=10_000_000)
    new_floats_installed: int = Field(ge=0, le=10_000_000)
    new_float_type: Text = Field(min_length=1, max_length=64)


class FloatReplacementRead(Schema):
    id: int
    organization_id: int
    region_id: int
    replaced_on: date
    foam_floats_removed: int
    new_floats_installed: int
    new_float_type: str


class SeaAreaRead(Schema):
    code: str
    name_zh: str
    name_en: str
    zero_waste: bool
    polygon: list[list[float]]
    source: str


class PortGroupMetric(Schema):
    group: str
    name_zh: str
    expected: Decimal
    delivered: Decimal
    treated: Decimal
    collection_treatment_rate: Ratio


class PortMetric(Schema):
    port_id: int
    port_name: str
    listed: bool = Field(description="under 名录 management: counted in the headline")
    port_calls: int
    deliveries: int
    flagged_deliveries: int
    groups: list[PortGroupMetric]


class PortHeadline(Schema):
    rate: Decimal | None
    group: str | None = Field(description="the weaker half the headline comes from")
    definition: Definition


class ListedPortsMetric(Schema):
    groups: list[PortGroupMetric]
    headline: PortHeadline


class PortMetricsRead(Schema):
    date_from: date
    date_to: date
    timezone: str
    ports: list[PortMetric]
    listed_ports: ListedPortsMetric
    reception_facility_share: Ratio


class SeaAreaMetric(Schema):
    code: str
    name_zh: str
    vessels: int
    vessels_with_deliveries: int
    share: Ratio


class SeaAreaMetricsRead(Schema):
    date_from: date
    date_to: date
    timezone: str
    areas: list[SeaAreaMetric]
