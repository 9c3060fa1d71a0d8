"""A site lies in its organization's region or below it, and is read and audited under its own
region: the one its household pickups count under."""

import asyncio

import httpx

from tests.factories import World
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, RegionLevel, Site


def _site(world: World, org: str, region: str | int | None) -> dict[str, object]:
    region_id = world.regions[region].id if isinstance(region, str) else region
    return {
        "organization_id": world.orgs[org].id,
        "name": "3号投放点",
        "region_id": region_id,
        "latitude": 37.16,
        "longitude": 122.48,
    }


async def test_a_site_outside_its_organization_s_region_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.headers("admin")
    other_city = await registry.create_region(code="371002", name="环翠区", level=RegionLevel.city)
    for org, region in [
        ("community", other_city.id),  # another city
        ("community", "other_town"),  # another town of the city
        ("community", "town"),  # the community's parent: above it, not in it
        ("other_clinic", "village"),
    ]:
        response = await client.post("/admin/v1/sites", headers=h, json=_site(world, org, region))
        assert (response.status_code, response.json().get("field")) == (422, "region_id"), (
            org,
            region,
            response.text,
        )
    # Its own region, one below it, or none (its own) are fine.
    for org, region in [("community", "village"), ("carrier", "other_town"), ("clinic", None)]:
        response = await client.post("/admin/v1/sites", headers=h, json=_site(world, org, region))
        assert response.status_code == 201, response.text


async def test_a_site_is_listed_and_audited_under_its_own_region(
    client: httpx.AsyncClient, world: World
) -> None:
    """The carrier is registered at city level; its depot in 石岛 is 石岛's: that town's
    manager reads it and its audit entry (its pickups count there), 崖头's does not."""
    made = await client.post(
        "/admin/v1/sites",
        headers=world.headers("admin"),
        json=_site(world, "carrier", "other_town"),
    )
    assert made.status_code == 201, made.text
    site = made.json()["id"]
    listed = await client.get("/admin/v1/sites", headers=world.headers("town_manager"))
    assert site in [s["id"] for s in listed.json()], listed.text
    entries = await client.get(
        "/m/v1/audit", headers=world.headers("town_manager"), params={"subject_type": "site"}
    )
    assert entries.status_code == 200, entries.text
    assert [e["action"] for e in entries.json()["entries"] if e["subject_id"] == str(site)] == [
        "site.created"
    ]
    # The city's manager reads it too.
    own = await client.get("/admin/v1/sites", headers=world.headers("manager"))
    assert site in [s["id"] for s in own.json()]


async def test_an_organization_cannot_move_away_from_its_sites(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.headers("admin")
    made = await client.post("/admin/v1/sites", headers=h, json=_site(world, "carrier", "town"))
    assert made.status_code == 201, made.text
    moved = await client.patch(
        f"/admin/v1/organizations/{world.orgs['carrier'].id}",
        headers=h,
        json={"region_id": world.regions["other_town"].id},
    )
    assert (moved.status_code, moved.json()["field"]) == (422, "region_id"), moved.text
    assert str(made.json()["id"]) in moved.json()["detail"]
    # Down to the site's own town is fine: the site still lies in it.
    down = await client.patch(
        f"/admin/v1/organizations/{world.orgs['carrier'].id}",
        headers=h,
        json={"region_id": world.regions["town"].id},
    )
    assert down.status_code == 200, down.text


async def test_a_site_added_while_its_organization_moves_never_lies_outside_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """The move checks the sites and the site checks the region, each on the organization's
    locked row: at the same time, one of them waits and is refused (422 naming region_id),
    never both recorded with the site in 崖头 and the organization in 石岛."""
    h = world.headers("admin")
    for attempt in range(4):
        org = await registry.create_organization(
            name=f"运输{attempt}", kind=OrganizationKind.carrier, region_id=world.regions["city"].id
        )
        world.orgs["mover"] = org
        move, site = await asyncio.gather(
            client.patch(
                f"/admin/v1/organizations/{org.id}",
                headers=h,
                json={"region_id": world.regions["other_town"].id},
            ),
            client.post("/admin/v1/sites", headers=h, json=_site(world, "mover", "town")),
        )
        statuses = sorted([move.status_code, site.status_code])
        assert statuses in ([200, 422], [201, 422]), (move.text, site.text)
    for placed in await Site.all().prefetch_related("region", "organization__region"):
        assert placed.region.path.startswith(placed.organization.region.path)
