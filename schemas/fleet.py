"""A carrier's vehicles and drivers, its vehicles' GPS positions, and a batch's trajectory."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from schemas.base import Day, Id, Moment, Schema, Text
from schemas.events import Latitude, Longitude

Capacity = Field(gt=0, le=100_000, max_digits=10, decimal_places=1)


class VehicleCreate(Schema):
    """A vehicle of a carrier's fleet; an admin names the carrier, a carrier's user registers
    its own."""

    plate: Text = Field(
        min_length=7, max_length=16, description="鲁K12345, or 鲁KD12345 for new-energy vehicles"
    )
    permit_number: Text = Field(min_length=1, max_length=64, description="道路运输证号")
    hazardous_licence_number: Text | None = Field(
        None, min_length=1, max_length=64, description="道路危险货物运输许可证号"
    )
    hazardous_licence_expires: Day | None = None
    capacity_kg: Decimal = Capacity
    driver_id: Id | None = None
    organization_id: Id | None = Field(None, description="admins: the carrier; default yours")


class VehicleUpdate(Schema):
    """The fields to change; the plate stays."""

    permit_number: Text | None = Field(None, min_length=1, max_length=64)
    hazardous_licence_number: Text | None = Field(None, min_length=1, max_length=64)
    hazardous_licence_expires: Day | None = None
    capacity_kg: Decimal | None = Field(None, gt=0, le=100_000, max_digits=10, decimal_places=1)
    driver_id: Id | None = None


class VehicleRead(Schema):
    id: int
    organization_id: int
    plate: str
    permit_number: str
    hazardous_licence_number: str | None
    hazardous_licence_expires: date | None
    capacity_kg: Decimal
    driver_id: int | None
    created_at: datetime
    retired_at: datetime | None


class DriverCreate(Schema):
    name: Text = Field(min_length=1, max_length=64)
    licence_number: Text = Field(min_length=1, max_length=32, description="驾驶证号")
    qualification_number: Text | None = Field(
        None, min_length=1, max_length=64, description="危险货物道路运输从业资格证号"
    )
    qualification_expires: Day | None = None
    phone: Text | None = Field(None, pattern=r"^\+?[0-9 -]{5,32}$", max_length=32)
    organization_id: Id | None = Field(None, description="admins: the carrier; default yours")


class DriverRead(Schema):
    id: int
    organization_id: int
    name: str
    licence_number: str
    qualification_number: str | None
    qualification_expires: date | None
    phone: str | None
    created_at: datetime
    retired_at: datetime | None


class PositionCreate(Schema):
    time: Moment
    latitude: Latitude
    longitude: Longitude


class PositionBatch(Schema):
    """GPS fixes a phone buffered, oldest first or not; a fix already stored is skipped."""

    positions: list[PositionCreate] = Field(min_length=1, max_length=1000)


class PositionsStored(Schema):
    received: int
    stored: int = Field(description="new fixes; the others were stored by an earlier call")


class LineString(Schema):
    type: Literal["LineString"] = "LineString"
    coordinates: list[tuple[float, float]] = Field(description="[longitude, latitude] pairs")


class Trajectory(Schema):
    """A GeoJSON Feature: the batch's path in its carriers' vehicles (null geometry when fewer
    than two positions were reported)."""

    type: Literal["Feature"] = "Feature"
    geometry: LineString | None
    properties: dict[str, Any]
