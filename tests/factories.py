"""Small factories: a region tree, the organizations every stream needs, and their users."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher

from wastetrack.auth import service as auth
from wastetrack.auth.models import Role, User
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind, RegionLevel

PASSWORD = "correct-horse-battery"
CITY_ZONE = ZoneInfo("Asia/Shanghai")


def _clock() -> tuple[date, datetime]:
    """The tests' day in the city and the instant their stories end (their "now"): the real
    now, except in the first three hours of a city day, when the stories end a minute before
    that midnight instead — so that a story of a few hours, told backwards from its end, never
    straddles two city days, whenever the suite runs. Always in UTC: a phone's times sent from
    it carry the same offset at any hour."""
    now = datetime.now(UTC)
    day = (now.astimezone(CITY_ZONE) - timedelta(hours=3)).date()
    midnight = datetime.combine(day + timedelta(days=1), time(), CITY_ZONE)
    return day, min(now, (midnight - timedelta(minutes=1)).astimezone(UTC))


CITY_TODAY, NOW = _clock()
_HASH = PasswordHasher().hash(PASSWORD)


@dataclass
class World:
    settings: Settings
    orgs: dict[str, Organization] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    regions: dict[str, Any] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def make_user(world: World, name: str, role: Role, org: Organization) -> User:
    user = await User.create(username=name, password_hash=_HASH, role=role, organization=org)
    world.users[name] = user
    world.principals[name] = await auth.principal_for(user)
    tokens = await auth.issue_tokens(user=user, settings=world.settings)
    world.tokens[name] = str(tokens["access_token"])
    return user


async def build_world(settings: Settings) -> World:
    """Rongcheng with two towns, and one organization and user for each part of a chain."""
    world = World(settings=settings)
    city = await registry.create_region(code="371082", name="荣成市", level=RegionLevel.city)
    town = await registry.create_region(
        code="371082001", name="崖头街道", level=RegionLevel.town, parent_id=city.id
    )
    other_town = await registry.create_region(
        code="371082101", name="石岛管理区", level=RegionLevel.town, parent_id=city.id
    )
    village = await registry.create_region(
        code="371082001001", name="北山社区", level=RegionLevel.village, parent_id=town.id
    )
    world.regions = {"city": city, "town": town, "other_town": other_town, "village": village}
    specs = [
        ("clinic", "北山社区卫生室", OrganizationKind.clinic, village, {"bed_count": 6}),
        ("other_clinic", "石岛卫生院", OrganizationKind.clinic, other_town, {"bed_count": 19}),
        ("community", "北山社区", OrganizationKind.community, village, {}),
        ("carrier", "荣成医废转运有限公司", OrganizationKind.carrier, city, {}),
        ("facility", "荣成医疗废物处置中心", OrganizationKind.treatment_facility, city, {}),
        ("unlicensed", "某再生资源公司", OrganizationKind.treatment_facility, city, {}),
        ("port", "石岛渔港", OrganizationKind.fishing_port, other_town, {}),
        ("bureau", "荣成市生态环境局", OrganizationKind.authority, city, {}),
        ("town_office", "石岛管理区环保所", OrganizationKind.authority, other_town, {}),
    ]
    for key, name, kind, region, extra in specs:
        world.orgs[key] = await registry.create_organization(
            name=name, kind=kind, region_id=region.id, **extra
        )
    # The city's organizations were registered long before the tests' stories (a figure of a
    # past period counts the institutions registered by its end).
    await Organization.filter(id__in=[o.id for o in world.orgs.values()]).update(
        created_at=NOW - timedelta(days=1000)
    )
    await registry.add_licence(
        organization_id=world.orgs["facility"].id,
        category_key="med.hw01",
        method_codes=["D9", "D10", "D15"],
    )
    await registry.add_licence(
        organization_id=world.orgs["unlicensed"].id,
        category_key="hh.recyclable",
        method_codes=["R3", "R4"],
    )
    for name, role, org in [
        ("clinic", Role.generator, "clinic"),
        ("other_clinic", Role.generator, "other_clinic"),
        ("collector", Role.collector, "community"),
        ("carrier", Role.carrier, "carrier"),
        ("facility", Role.facility_operator, "facility"),
        ("unlicensed", Role.facility_operator, "unlicensed"),
        ("port", Role.port_operator, "port"),
        ("manager", Role.manager, "bureau"),
        ("town_manager", Role.manager, "town_office"),
        ("auditor", Role.auditor, "bureau"),
        ("admin", Role.admin, "bureau"),
    ]:
        await make_user(world, name, role, world.orgs[org])
    return world


def event(event_type: str, batch: str | None = None, *, minutes: int = 0, **fields: Any) -> dict:
    """An event body as a phone would send it."""
    when = NOW - timedelta(hours=2) + timedelta(minutes=minutes)
    body = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "device_time": when.isoformat(),
        **fields,
    }
    if batch is not None:
        body["batch"] = batch
    return body


def medical_bag(**fields: Any) -> dict:
    """A tagged event for a bag of infectious waste."""
    values = {"stream": "medical", "category": "med.infectious", "quantity": "3.5", "unit": "kg"}
    return event("tagged", minutes=0, **{**values, **fields})


def typed(url: str) -> str:
    """The code a signed QR URL carries as a user types it from the plate or label: lower
    case, with a hyphen."""
    code = url.rsplit("/", 1)[1].split(".")[0]
    return f"{code[:4]}-{code[4:]}".lower()


def forged(url: str) -> str:
    """The same URL with its last character changed: a signature that does not match."""
    return url[:-1] + ("A" if url[-1] != "A" else "B")
