"""Regions, organizations, sites, licences and vessels."""

from datetime import date
from decimal import Decimal

from pydantic import AliasPath, Field, model_validator

from schemas.base import Day, Id, Integer, Key, Schema, Text, rule_error
from wastetrack.core.commands import Latitude, Longitude
from wastetrack.registry.models import OrganizationKind, RegionLevel


class RegionCreate(Schema):
    code: Text = Field(
        min_length=1,
        max_length=32,
        description="administrative-division code, extending the parent's: a city or county"
        " 6 digits (GB/T 2260), a town 9, a village 12 (统计用区划代码)",
    )
    name: Text = Field(min_length=1, max_length=64)
    level: RegionLevel
    parent_id: Id | None = None


class RegionRead(Schema):
    id: int
    code: str
    name: str
    level: RegionLevel
    parent_id: int | None
    path: str
    sorted_collection_since: date | None


CREDIT_CODE = (
    "unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters with its check"
    " character; stored upper case without spaces or hyphens"
)


class OrganizationCreate(Schema):
    name: Text = Field(min_length=1, max_length=128)
    kind: OrganizationKind
    region_id: Id
    credit_code: Text | None = Field(None, max_length=32, description=CREDIT_CODE)
    bed_count: Integer | None = Field(None, ge=0, le=100_000)
    contact_phone: Text | None = Field(None, max_length=32)


class OrganizationUpdate(Schema):
    name: Text | None = Field(None, min_length=1, max_length=128)
    region_id: Id | None = None
    credit_code: Text | None = Field(None, max_length=32, description=CREDIT_CODE)
    bed_count: Integer | None = Field(None, ge=0, le=100_000)
    contact_phone: Text | None = Field(None, max_length=32)

    @model_validator(mode="after")
    def _required_stay_set(self) -> "OrganizationUpdate":
        # Left out, a field keeps its value; sent as null, only one that may be empty clears.
        for name in ("name", "region_id"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise rule_error(name, f"{name} cannot be null: leave it out to keep it")
        return self


class OrganizationRead(Schema):
    id: int
    name: str
    kind: OrganizationKind
    region_id: int
    region_code: str = Field(
        validation_alias=AliasPath("region", "code"),
        description="the region's administrative-division code: its identity across instances",
    )
    credit_code: str | None
    bed_count: int | None
    contact_phone: str | None


class SiteCreate(Schema):
    organization_id: Id
    name: Text = Field(min_length=1, max_length=128)
    region_id: Id | None = None
    latitude: Latitude
    longitude: Longitude


class SiteRead(Schema):
    id: int
    organization_id: int
    name: str
    region_id: int
    latitude: float
    longitude: float
    code: str | None = Field(description="the site's fixed QR plate code")


class LicenceCreate(Schema):
    """A licence, or a new version of one: the version before ends the day before it starts."""

    category_key: Text = Field(min_length=1, max_length=64)
    method_codes: list[Text] = Field(min_length=1, max_length=40)
    permit_number: Text | None = Field(None, max_length=64)
    valid_from: Day | None = Field(
        None,
        description="its first valid day; default: today in the city. A day already past needs"
        " a reason, and no version starts before a later one's start",
    )
    valid_until: Day | None = Field(None, description="its last valid day; default: none")
    reason: Text | None = Field(
        None, max_length=500, description="why it starts on a day already past (audited)"
    )


class LicenceRead(Schema):
    id: int
    organization_id: int
    category_key: str
    method_codes: list[str]
    permit_number: str | None
    valid_from: date | None = Field(
        description="its first valid day; null (licences registered before versions): since always"
    )
    valid_until: date | None


class VesselCreate(Schema):
    name: Text = Field(min_length=1, max_length=128)
    registration_number: Text = Field(min_length=1, max_length=64)
    # ASCII digits: \d takes full-width and other digits too.
    imo_number: Text | None = Field(None, pattern=r"^[0-9]{7}$")
    mmsi: Text | None = Field(None, pattern=r"^[0-9]{9}$")
    gross_tonnage: Decimal = Field(gt=0, le=1_000_000, max_digits=10, decimal_places=2)
    vessel_type: Text = Field("fishing", max_length=32)
    home_port_id: Id
    owner_id: Id | None = None


class VesselRead(Schema):
    id: int
    name: str
    registration_number: str
    imo_number: str | None
    mmsi: str | None
    gross_tonnage: Decimal
    vessel_type: str
    home_port_id: int
    owner_id: int | None


class ServiceAgreementCreate(Schema):
    """A carrier or collector (provider) serving a client organization for some streams."""

    provider_organization_id: Id
    client_organization_id: Id
    streams: list[Key] = Field(min_length=1, max_length=10)
    valid_from: Day
    valid_to: Day | None = None


class ServiceAgreementEnd(Schema):
    valid_to: Day = Field(
        description="the agreement's last valid day: today in the city or later, and not"
        " before it began"
    )


class ServiceAgreementRead(Schema):
    id: int
    provider_organization_id: int = Field(validation_alias="provider_id")
    client_organization_id: int = Field(validation_alias="client_id")
    streams: list[str]
    valid_from: date
    valid_to: date | None
