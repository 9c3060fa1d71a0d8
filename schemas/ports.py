"""Fishing ports: berths, port calls, deliveries, receipts, clean-ups and their metrics."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from schemas.base import Boolean, Id, Integer, Moment, Ratio, Schema, Text
from wastetrack.core.commands import Latitude, Longitude
from wastetrack.ports.commands import (
    CleanUpCommand,
    DeliveryCommand,
    FloatReplacementCommand,
    NotificationLineCommand,
)


class FishingPortCreate(Schema):
    grade: Text = Field(min_length=1, max_length=16, description="e.g. 中心渔港, 一级, 二级, 三级")
    latitude: Latitude
    longitude: Longitude
    reception_facility: Boolean = False
    listed: Boolean = Field(True, description="on the city's list of managed fishing ports")


class FishingPortRead(FishingPortCreate):
    organization_id: int


class BerthCreate(Schema):
    name: Text = Field(min_length=1, max_length=64)
    latitude: Latitude
    longitude: Longitude
    geofence_m: Integer | None = Field(None, ge=10, le=5000)


class BerthRead(Schema):
    id: int
    port_id: int
    name: str
    code: str
    qr_url: str
    latitude: float
    longitude: float
    geofence_m: int


class PortCallCreate(Schema):
    vessel_id: Id
    arrived_at: Moment
    days_at_sea: Integer = Field(ge=0, le=400)
    crew: Integer = Field(ge=1, le=500)
    fishing_area: Text | None = Field(None, max_length=32)
    notification: list[NotificationLineCommand] = Field(default_factory=list, max_length=40)


class PortCallClose(Schema):
    departed_at: Moment


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


class DeliveryCreate(DeliveryCommand):
    """A vessel's delivery at a berth, recorded by the port's operator (or sent in a sync with
    kind `delivery`): one batch per line, a signed receipt for the vessel."""


class DeliveryLineRead(Schema):
    """A line as its batch stands after corrections."""

    category: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool
    batch_code: str
    corrected: bool = Field(description="the line's batch was corrected since it was recorded")
    acceptance: Literal["pending", "accepted", "partially_accepted", "rejected"] = Field(
        description="where the line stands with the reception facility, as its batch stands"
        " now: pending (declared by the vessel, no receipt decided yet), accepted,"
        " partially_accepted (a refused part remains) or rejected (its latest receipt)"
    )


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
    recorded_by: Literal["port", "vessel"] = Field(
        description="port: the port recorded the delivery and signed for it; vessel: the"
        " crew's declaration, which the port has not signed"
    )
    lines: list[DeliveryLineRead]


class CleanUpCreate(CleanUpCommand):
    """A beach or sea-surface clean-up (or a sync entry with kind `cleanup`): its litter enters
    the custody chain as one batch in the team's hands."""


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


class FloatReplacementCreate(FloatReplacementCommand):
    """Aquaculture floats replaced; a resend with the same client_event_id is not counted
    twice."""


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
    estimated_kg: Decimal = Field(
        description="kg of the group's parts whose mass is estimated from the catalog (the"
        " category's density or unit mass, not weighed): in a group counted in kg, the"
        " estimated part of `delivered`; in one counted in m³, of the masses that share its"
        " volume between fates"
    )
    collection_treatment_rate: Ratio


class PortMetric(Schema):
    port_id: int
    port_name: str
    listed: bool = Field(description="under 名录 management: counted in the headline")
    port_calls: int
    deliveries: int
    flagged_deliveries: int
    groups: list[PortGroupMetric]


class PortHeadline(Ratio):
    """渔港污水和垃圾收集处置率: the lower of the listed ports' garbage and sewage rates, with
    that group's numerator, denominator and unit, over the period."""

    group: str = Field(
        description="the group the headline comes from: the weaker one; while a group has no"
        " expectation (denominator 0, no rate), that group"
    )
    date_from: date
    date_to: date


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
