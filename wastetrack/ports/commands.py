"""What the ports accept: a port call's advance waste notification, a vessel's delivery at a
berth, a clean-up and a float replacement, each checked field by field when it is made."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, model_validator

from wastetrack.core.commands import (
    Command,
    Day,
    Id,
    Integer,
    Latitude,
    Located,
    Longitude,
    MapKey,
    Moment,
    Sha256,
    Text,
    rule_error,
)

Volume = Annotated[Decimal, Field(ge=0, le=10_000, max_digits=10, decimal_places=3)]
Mass = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=12, decimal_places=3)]


class NotificationLineCommand(Command):
    """One category of an advance waste notification."""

    category: Text = Field(max_length=64)
    to_deliver_m3: Volume
    storage_capacity_m3: Volume | None = None
    retained_m3: Volume | None = None


class DeliveryLineCommand(Command):
    """A category handed over: by catalog key, or by MARPOL Annex V letter and scheme version."""

    category: Text | None = Field(None, max_length=64)
    # Read upper-case, as Annex V writes it: `a` and `A` are one category (one content digest).
    annex_v: Annotated[Text, Field(pattern=r"^[A-Ka-k]$"), AfterValidator(str.upper)] | None = None
    scheme_version: Literal["2013", "2018"] | None = None
    volume_m3: Volume | None = None
    mass_kg: Mass | None = None

    @model_validator(mode="after")
    def _one_way_to_name_it(self) -> "DeliveryLineCommand":
        if (self.category is None) == (self.annex_v is None):
            raise rule_error("category", "give either category or annex_v (with scheme_version)")
        if self.annex_v is not None and self.scheme_version is None:
            raise rule_error("scheme_version", "annex_v needs scheme_version (2013 or 2018)")
        # A scheme version beside a catalog key would be kept nowhere and checked against
        # nothing: a line that says two things is refused, not read as one of them.
        if self.category is not None and self.scheme_version is not None:
            raise rule_error(
                "scheme_version", "scheme_version goes with annex_v; a category names itself"
            )
        if not (self.volume_m3 or self.mass_kg):
            raise rule_error("volume_m3", "a line needs a positive volume_m3 or mass_kg")
        return self


def _check_in_order(started_at: datetime, ended_at: datetime) -> None:
    """A delivery's or a clean-up's end is not before its start."""
    if ended_at < started_at:
        raise rule_error("ended_at", "ended_at precedes started_at")


class DeliveryCommand(Located):
    """What a vessel hands over at a berth, recorded by the port's operator; `kind` tells it
    apart in an offline sync."""

    SCANNED_FIELDS: ClassVar[tuple[str, ...]] = ("berth",)

    client_event_id: UUID
    kind: Literal["delivery"] = "delivery"
    berth: Text = Field(min_length=1, max_length=512, description="scanned berth QR or its code")
    vessel_id: Id
    port_call_id: Id | None = None
    started_at: Moment
    ended_at: Moment
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    lines: list[DeliveryLineCommand] = Field(min_length=1, max_length=40)

    @model_validator(mode="after")
    def _times_in_order(self) -> "DeliveryCommand":
        _check_in_order(self.started_at, self.ended_at)
        return self


class CleanUpCommand(Command):
    """A beach or sea-surface clean-up: the litter counted by item and weighed in all; `kind`
    tells it apart in an offline sync."""

    client_event_id: UUID
    kind: Literal["cleanup"] = "cleanup"
    region_id: Id
    area_name: Text = Field(min_length=1, max_length=128)
    setting: Literal["beach", "sea_surface"]
    started_at: Moment
    ended_at: Moment
    latitude: Latitude
    longitude: Longitude
    participants: Integer | None = Field(None, ge=1, le=10_000)
    item_counts: dict[MapKey, Annotated[Integer, Field(ge=0, le=10_000_000)]] = Field(max_length=40)
    total_weight_kg: Mass = Field(gt=0)
    photos: list[Sha256] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _times_in_order(self) -> "CleanUpCommand":
        _check_in_order(self.started_at, self.ended_at)
        return self


class FloatReplacementCommand(Command):
    """Aquaculture foam floats taken out and the new floats put in their place (浮球整治)."""

    client_event_id: UUID
    region_id: Id
    replaced_on: Day
    foam_floats_removed: Integer = Field(ge=0, le=10_000_000)
    new_floats_installed: Integer = Field(ge=0, le=10_000_000)
    new_float_type: Text = Field(min_length=1, max_length=64)
