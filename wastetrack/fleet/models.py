"""A carrier's vehicles (with the 道路危险货物运输许可 they hold), its drivers, and the GPS
positions its vehicles report."""

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.registry.models import Organization


class Vehicle(Model):
    """One vehicle of a carrier; retired instead of deleted, so the chain's plates stay known."""

    id = fields.IntField(primary_key=True)
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="vehicles", on_delete=fields.RESTRICT
    )
    # Normalized: upper-case, no spaces or separators (鲁K12345, 鲁KD12345 new-energy).
    plate = fields.CharField(max_length=16, unique=True)
    # 道路运输证 number.
    permit_number = fields.CharField(max_length=64)
    # 道路危险货物运输许可: needed to carry hazardous waste, on the day of carriage.
    hazardous_licence_number = fields.CharField(max_length=64, null=True)
    hazardous_licence_expires: date | None = fields.DateField(null=True)
    capacity_kg: Decimal = fields.DecimalField(max_digits=10, decimal_places=1)
    driver_id: int | None
    driver: fields.ForeignKeyNullableRelation["Driver"] = fields.ForeignKeyField(
        "wastetrack.Driver", related_name="vehicles", null=True, on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    retired_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "vehicle"


class Driver(Model):
    """A carrier's driver and the dangerous-goods qualification (从业资格证) held."""

    id = fields.IntField(primary_key=True)
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="drivers", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=64)
    licence_number = fields.CharField(max_length=32)
    qualification_number = fields.CharField(max_length=64, null=True)
    qualification_expires: date | None = fields.DateField(null=True)
    phone = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    retired_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "driver"


class VehiclePosition(Model):
    """One GPS fix of a vehicle; a resent fix (same vehicle and time) is stored once."""

    id = fields.BigIntField(primary_key=True)
    vehicle_id: int
    vehicle: fields.ForeignKeyRelation[Vehicle] = fields.ForeignKeyField(
        "wastetrack.Vehicle", related_name="positions", on_delete=fields.RESTRICT
    )
    time = fields.DatetimeField()
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    received_at = fields.DatetimeField()

    class Meta:
        table = "vehicle_position"
        unique_together = (("vehicle", "time"),)
