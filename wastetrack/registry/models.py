"""Registry: regions, organizations, their sites, licences and vessels."""

from enum import StrEnum

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from wastetrack.core import regions
from wastetrack.registry import identities


class RegionLevel(StrEnum):
    city = "city"
    town = "town"
    village = "village"


class OrganizationKind(StrEnum):
    collection_point = "collection_point"
    community = "community"
    clinic = "clinic"
    village_clinic = "village_clinic"
    township_hospital = "township_hospital"
    hospital = "hospital"
    enterprise = "enterprise"
    agri_input_shop = "agri_input_shop"
    recovery_point = "recovery_point"
    fishing_port = "fishing_port"
    vessel_owner = "vessel_owner"
    carrier = "carrier"
    treatment_facility = "treatment_facility"
    authority = "authority"


# Medical institutions (医疗卫生机构): they register their bed count; those with 19 beds or fewer
# are the plan's small institutions.
MEDICAL_KINDS = frozenset(
    {
        OrganizationKind.clinic,
        OrganizationKind.village_clinic,
        OrganizationKind.township_hospital,
        OrganizationKind.hospital,
    }
)


class Region(Model):
    id = fields.IntField(primary_key=True)
    parent_id: int | None
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    level = fields.CharEnumField(RegionLevel, max_length=16)
    parent: fields.ForeignKeyNullableRelation["Region"] = fields.ForeignKeyField(
        "wastetrack.Region", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    # Materialized path "/1/4/17/": the ids from the city down, written with the region under
    # its parent (a region never moves), so a subtree is the records whose path names its root
    # at the root's depth (wastetrack.core.regions).
    path = fields.CharField(max_length=255, db_index=True)
    # Since when the community or village has sorted household-waste collection (分类收集).
    sorted_collection_since = fields.DateField(null=True)

    class Meta:
        table = "region"
        # The format by level; that a child's code extends its parent's is the service's rule.
        constraints = (
            CheckConstraint(check=identities.region_code_check_sql(), name="region_code_format"),
            CheckConstraint(check=regions.path_check_sql(), name="region_path_format"),
        )


class Organization(Model):
    id = fields.IntField(primary_key=True)
    region_id: int
    name = fields.CharField(max_length=128)
    kind = fields.CharEnumField(OrganizationKind, max_length=32)
    region: fields.ForeignKeyRelation[Region] = fields.ForeignKeyField(
        "wastetrack.Region", related_name="organizations", on_delete=fields.RESTRICT
    )
    credit_code = fields.CharField(max_length=32, null=True, unique=True)
    bed_count = fields.IntField(null=True)
    contact_phone = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organization"
        # Length and alphabet; the check characters are verified by the service.
        constraints = (
            CheckConstraint(
                check=f"credit_code ~ '{identities.CREDIT_PATTERN}'",
                name="organization_credit_code_format",
            ),
        )


class Site(Model):
    id = fields.IntField(primary_key=True)
    organization_id: int
    region_id: int
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="sites", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=128)
    region: fields.ForeignKeyRelation[Region] = fields.ForeignKeyField(
        "wastetrack.Region", related_name="sites", on_delete=fields.RESTRICT
    )
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    # The fixed QR plate of the site (e.g. a 投放点 collection point).
    code = fields.CharField(max_length=16, unique=True, null=True)

    class Meta:
        table = "site"


class FacilityLicence(Model):
    """One version of a treatment facility's permit for one category (and its
    sub-categories): it covers the days valid_from…valid_until, both included. A change is a
    new row, the version before ending the day before it starts, so every version stays; on a
    day the facility may use the methods of every version covering the category or a parent
    of it (wastetrack.registry.service.licence_covering). A valid_from of NULL (rows older
    than migration 0042) means "since always", a valid_until of NULL "until further notice"."""

    id = fields.IntField(primary_key=True)
    organization_id: int
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="licences", on_delete=fields.CASCADE
    )
    category_key = fields.CharField(max_length=64)
    method_codes: list[str] = fields.JSONField(default=list)
    permit_number = fields.CharField(max_length=64, null=True)
    valid_from = fields.DateField(null=True)
    valid_until = fields.DateField(null=True)

    class Meta:
        table = "facility_licence"
        indexes = (("organization_id", "category_key"),)


class Vessel(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128)
    registration_number = fields.CharField(max_length=64, unique=True)
    imo_number = fields.CharField(max_length=16, null=True)
    mmsi = fields.CharField(max_length=16, null=True)
    home_port_id: int
    owner_id: int | None
    gross_tonnage = fields.DecimalField(max_digits=10, decimal_places=2)
    vessel_type = fields.CharField(max_length=32, default="fishing")
    flag_state = fields.CharField(max_length=3, default="CHN")
    crew = fields.IntField(null=True)
    home_port: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="home_vessels", on_delete=fields.RESTRICT
    )
    owner: fields.ForeignKeyNullableRelation[Organization] = fields.ForeignKeyField(
        "wastetrack.Organization",
        related_name="owned_vessels",
        null=True,
        on_delete=fields.RESTRICT,
    )

    class Meta:
        table = "vessel"


class ServiceAgreement(Model):
    """A carrier or collector serving a client organization (收运服务协议): it may tag the client's
    waste of the named streams while the agreement is valid."""

    id = fields.IntField(primary_key=True)
    provider_id: int
    client_id: int
    provider: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="agreements_as_provider", on_delete=fields.CASCADE
    )
    client: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="agreements_as_client", on_delete=fields.CASCADE
    )
    streams: list[str] = fields.JSONField(default=list)
    valid_from = fields.DateField()
    valid_to = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "service_agreement"
        indexes = (("provider_id", "client_id"),)
