"""Fishing ports: berths, port calls, waste deliveries, clean-ups, float replacement, sea areas."""

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from wastetrack.core.records import IdempotentRecord

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.batches.models import Batch
    from wastetrack.catalog.models import WasteCategory
    from wastetrack.registry.models import Organization, Region, Vessel


class FishingPort(Model):
    """What a fishing-port organization adds to the registry."""

    id = fields.IntField(primary_key=True)
    organization_id: int
    organization: fields.OneToOneRelation["Organization"] = fields.OneToOneField(
        "wastetrack.Organization", related_name="fishing_port", on_delete=fields.CASCADE
    )
    grade = fields.CharField(max_length=16)
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    reception_facility = fields.BooleanField(default=False)
    listed = fields.BooleanField(default=True)

    class Meta:
        table = "fishing_port"


class Berth(Model):
    """A berth with a fixed QR code that crews scan when they deliver waste."""

    id = fields.IntField(primary_key=True)
    port_id: int
    port: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="berths", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=64)
    code = fields.CharField(max_length=16, unique=True)
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    geofence_m = fields.IntField(default=300)

    class Meta:
        table = "berth"
        unique_together = (("port", "name"),)


class PortCall(Model):
    id = fields.IntField(primary_key=True)
    vessel_id: int
    vessel: fields.ForeignKeyRelation["Vessel"] = fields.ForeignKeyField(
        "wastetrack.Vessel", related_name="port_calls", on_delete=fields.RESTRICT
    )
    port_id: int
    port: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="port_calls", on_delete=fields.RESTRICT
    )
    arrived_at = fields.DatetimeField()
    departed_at = fields.DatetimeField(null=True)
    days_at_sea = fields.IntField()
    crew = fields.IntField()
    fishing_area = fields.CharField(max_length=32, null=True)
    # Advance waste notification: [{category, to_deliver_m3, storage_capacity_m3, retained_m3}]
    notification: list[dict[str, Any]] = fields.JSONField(default=list)
    recorded_by_id: int
    recorded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="port_calls", on_delete=fields.RESTRICT
    )

    class Meta:
        table = "port_call"


class Delivery(IdempotentRecord):
    """What one vessel handed over at one berth; each line became a batch."""

    receipt_number = fields.CharField(max_length=32, unique=True)
    vessel_id: int
    vessel: fields.ForeignKeyRelation["Vessel"] = fields.ForeignKeyField(
        "wastetrack.Vessel", related_name="deliveries", on_delete=fields.RESTRICT
    )
    port_id: int
    port: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="deliveries", on_delete=fields.RESTRICT
    )
    # The vessel's owner when it delivered (none if it had none): who reads the receipt, and
    # whose name it bears, even after the vessel changes hands.
    owner_id: int | None
    owner: fields.ForeignKeyNullableRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization",
        related_name="owned_deliveries",
        null=True,
        on_delete=fields.RESTRICT,
    )
    berth_id: int
    berth: fields.ForeignKeyRelation["Berth"] = fields.ForeignKeyField(
        "wastetrack.Berth", related_name="deliveries", on_delete=fields.RESTRICT
    )
    port_call_id: int | None
    port_call: fields.ForeignKeyNullableRelation["PortCall"] = fields.ForeignKeyField(
        "wastetrack.PortCall", related_name="deliveries", null=True, on_delete=fields.RESTRICT
    )
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField()
    recorded_at = fields.DatetimeField()
    # The port signed for it: one of its operators recorded it. A delivery the vessel's crew
    # recorded is the vessel's declaration, which the port has not signed; its lines are
    # accepted only as receipts decide them. Kept as it was when recorded.
    signed_by_port = fields.BooleanField(default=False, db_default=False)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    distance_m = fields.FloatField(null=True)
    flags: list[str] = fields.JSONField(default=list)
    recorded_by_id: int
    recorded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="deliveries", on_delete=fields.RESTRICT
    )
    lines: fields.ReverseRelation["DeliveryLine"]

    class Meta:
        table = "delivery"

    def recorded_for(self) -> int | None:
        """The port when one of its operators recorded it, else the vessel's owner (its crew)."""
        return self.port_id if self.signed_by_port else self.owner_id


class DeliveryLine(Model):
    id = fields.IntField(primary_key=True)
    delivery_id: int
    delivery: fields.ForeignKeyRelation[Delivery] = fields.ForeignKeyField(
        "wastetrack.Delivery", related_name="lines", on_delete=fields.CASCADE
    )
    category_id: str
    category: fields.ForeignKeyRelation["WasteCategory"] = fields.ForeignKeyField(
        "wastetrack.WasteCategory", related_name="delivery_lines", on_delete=fields.RESTRICT
    )
    volume_m3 = fields.DecimalField(max_digits=10, decimal_places=3, null=True)
    mass_kg = fields.DecimalField(max_digits=12, decimal_places=3, null=True)
    mass_derived = fields.BooleanField(default=False)
    batch_id: int
    batch: fields.ForeignKeyRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="delivery_lines", on_delete=fields.RESTRICT
    )

    class Meta:
        table = "delivery_line"


class CleanUp(IdempotentRecord):
    """A beach or sea-surface clean-up (净滩行动) and what it picked up."""

    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="cleanups", on_delete=fields.RESTRICT
    )
    region_id: int
    region: fields.ForeignKeyRelation["Region"] = fields.ForeignKeyField(
        "wastetrack.Region", related_name="cleanups", on_delete=fields.RESTRICT
    )
    area_name = fields.CharField(max_length=128)
    setting = fields.CharField(max_length=16)
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField()
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    participants = fields.IntField(null=True)
    item_counts: dict[str, int] = fields.JSONField(default=dict)
    total_weight_kg = fields.DecimalField(max_digits=10, decimal_places=3)
    photos: list[str] = fields.JSONField(default=list)
    batch_id: int
    batch: fields.ForeignKeyRelation["Batch"] = fields.ForeignKeyField(
        "wastetrack.Batch", related_name="cleanups", on_delete=fields.RESTRICT
    )
    recorded_by_id: int
    recorded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="cleanups", on_delete=fields.RESTRICT
    )

    class Meta:
        table = "cleanup"

    def recorded_for(self) -> int:
        return self.organization_id


class FloatReplacement(Model):
    """Aquaculture floats (浮球) replaced: foam ones out, compliant ones in."""

    id = fields.IntField(primary_key=True)
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="float_replacements", on_delete=fields.RESTRICT
    )
    region_id: int
    region: fields.ForeignKeyRelation["Region"] = fields.ForeignKeyField(
        "wastetrack.Region", related_name="float_replacements", on_delete=fields.RESTRICT
    )
    replaced_on = fields.DateField()
    foam_floats_removed = fields.IntField()
    new_floats_installed = fields.IntField()
    new_float_type = fields.CharField(max_length=64)
    recorded_by_id: int
    recorded_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="float_replacements", on_delete=fields.RESTRICT
    )
    client_event_id = fields.UUIDField(unique=True)

    class Meta:
        table = "float_replacement"


class SeaArea(Model):
    """A named sea area (e.g. a zero-waste sea area, 无废航区) as a polygon of lon/lat points."""

    code = fields.CharField(max_length=32, primary_key=True)
    name_zh = fields.CharField(max_length=64)
    name_en = fields.CharField(max_length=96)
    zero_waste = fields.BooleanField(default=True)
    polygon: list[list[float]] = fields.JSONField()
    source = fields.CharField(max_length=255)
    edition = fields.CharField(max_length=32)

    class Meta:
        table = "sea_area"
