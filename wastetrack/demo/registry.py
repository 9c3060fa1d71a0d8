"""The demo's registry: the city's regions, its organizations with their sites, licences and
vessels, and the demo users."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core.principal import Principal
from wastetrack.demo.scenario import SCENARIO
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind, Region, RegionLevel
from wastetrack.registry.vessels import create_vessel

CITY = SCENARIO["city"]
CITY_CODE: str = CITY["code"]
TOWNS: list[str] = CITY["towns"]
VILLAGES: dict[str, list[str]] = CITY["villages"]
USERS: dict[str, dict[str, Any]] = SCENARIO["users"]
# demo role: (username, role, organization key); DEMO_USERS are the logins the demo prints.
DEMO_USERS = {
    name: (user["username"], Role(user["role"]), user["organization"])
    for name, user in USERS.items()
    if user.get("login")
}
EXTRA_USERS = {
    name: (user["username"], Role(user["role"]), user["organization"])
    for name, user in USERS.items()
    if not user.get("login")
}
PASSWORDS: dict[str, str] = {
    name: user["password"] for name, user in USERS.items() if "password" in user
}


def password_of(name: str) -> str:
    """The password the demo gives the account of this name (printed here, so public)."""
    return PASSWORDS.get(name, f"demo-{name}-2025")


async def load_registry(echo: Callable[[str], Any]) -> dict[str, Organization]:
    """Regions, organizations, sites, licences and vessels; the organizations by key."""
    regions = await _regions(echo)
    orgs = {}
    for spec in SCENARIO["organizations"]:
        orgs[spec["key"]] = await registry.create_organization(
            name=spec["name"],
            kind=OrganizationKind(spec["kind"]),
            region_id=regions[spec["region"]].id,
            **spec.get("extra", {}),
        )
    for site in SCENARIO["sites"]:
        org = orgs[site["organization"]]
        await registry.create_site(
            organization_id=org.id,
            name=org.name,
            region_id=None,
            latitude=site["latitude"],
            longitude=site["longitude"],
        )
    for licence in SCENARIO["licences"]:
        await registry.add_licence(
            organization_id=orgs[licence["organization"]].id,
            category_key=licence["category"],
            method_codes=licence["methods"],
            permit_number=f"鲁环许-{licence['organization']}",
        )
    vessels = SCENARIO["vessels"]
    for number, vessel in enumerate(vessels["fleet"], start=1):
        await create_vessel(
            name=vessel["name"],
            registration_number=f"{vessels['registration_prefix']}{number:04d}",
            gross_tonnage=Decimal(vessel["gross_tonnage"]),
            home_port_id=orgs[vessels["home_port"]].id,
            owner_id=orgs[vessels["owner"]].id,
        )
    return orgs


async def _regions(echo: Callable[[str], Any]) -> dict[str, Region]:
    """The city, its towns and their villages and communities, by name; codes follow the
    order in the data file, a community's from 001 and a village's (村) from 200, as the
    statistical division codes number them (`identities.settlement_kind`)."""
    city = await registry.create_region(code=CITY_CODE, name=CITY["name"], level=RegionLevel.city)
    towns: dict[str, Region] = {}
    villages: dict[str, Region] = {}
    for index, name in enumerate(TOWNS, start=1):
        towns[name] = await registry.create_region(
            code=f"{CITY_CODE}{index:03d}", name=name, level=RegionLevel.town, parent_id=city.id
        )
        numbered = {"community": 0, "village": 199}
        for village in VILLAGES.get(name, []):
            kind = "village" if village.endswith("村") else "community"
            numbered[kind] += 1
            villages[village] = await registry.create_region(
                code=f"{CITY_CODE}{index:03d}{numbered[kind]:03d}",
                name=village,
                level=RegionLevel.village,
                parent_id=towns[name].id,
            )
    echo(f"regions: 1 city, {len(towns)} towns, {len(villages)} villages/communities")
    return {city.name: city, **towns, **villages}


async def load_users(orgs: dict[str, Organization]) -> dict[str, Principal]:
    """The demo users; their principals by demo role."""
    principals = {}
    for role_name, (username, role, org_key) in {**DEMO_USERS, **EXTRA_USERS}.items():
        password = password_of(role_name)
        user = await auth.create_user(
            username=username, password=password, role=role, organization_id=orgs[org_key].id
        )
        principals[role_name] = await auth.principal_for(user)
    return principals
