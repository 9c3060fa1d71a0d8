"""A carrier's fleet over HTTP: vehicles and drivers registered, validated, changed, retired;
only the carrier's own users (and admins) manage it, managers read their region's."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from tests.factories import World, make_user
from wastetrack.auth.models import Role
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.timefmt import local_limit
from wastetrack.fleet.plates import plate_for_carriage
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

VEHICLE = {
    "plate": "鲁k·12345",
    "permit_number": "鲁交运管许可威字371082000001",
    "capacity_kg": "2000",
}


async def register(client: httpx.AsyncClient, world: World, who: str = "carrier", **fields) -> dict:
    response = await client.post(
        "/m/v1/vehicles", json={**VEHICLE, **fields}, headers=world.headers(who)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_carrier_registers_a_vehicle_under_its_normalized_plate(
    client: httpx.AsyncClient, world: World
) -> None:
    created = await register(
        client,
        world,
        hazardous_licence_number="鲁交危许字371000001",
        hazardous_licence_expires="2030-12-31",
    )
    assert created["plate"] == "鲁K12345"
    assert created["organization_id"] == world.orgs["carrier"].id
    for who in ("carrier", "manager", "auditor", "admin"):
        listed = (await client.get("/m/v1/vehicles", headers=world.headers(who))).json()
        assert [v["plate"] for v in listed] == ["鲁K12345"], who
    # The other town's manager reads only its own region: the carrier is the city's.
    listed = (await client.get("/m/v1/vehicles", headers=world.headers("town_manager"))).json()
    assert listed == []


@pytest.mark.parametrize(
    "plate", ["ABC12345", "鲁I12345", "鲁K1234", "鲁K1234567", "鲁KD1234X", "鲁K12 34O"]
)
async def test_a_plate_not_of_the_national_form_is_refused(
    client: httpx.AsyncClient, world: World, plate: str
) -> None:
    response = await client.post(
        "/m/v1/vehicles", json={**VEHICLE, "plate": plate}, headers=world.headers("carrier")
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "plate"


@pytest.mark.parametrize("plate", ["鲁KD12345", "鲁K12345F", "京AF0236"])
async def test_new_energy_plates_have_six_characters(
    client: httpx.AsyncClient, world: World, plate: str
) -> None:
    assert (await register(client, world, plate=plate))["plate"] == plate


async def test_a_plate_is_registered_once(client: httpx.AsyncClient, world: World) -> None:
    await register(client, world)
    response = await client.post(
        "/m/v1/vehicles", json={**VEHICLE, "plate": "鲁K 12345"}, headers=world.headers("carrier")
    )
    assert response.status_code == 409
    assert response.json()["field"] == "plate"


async def test_licence_number_and_expiry_go_together(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/m/v1/vehicles",
        json={**VEHICLE, "hazardous_licence_number": "鲁交危许字371000001"},
        headers=world.headers("carrier"),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "hazardous_licence_expires"
    response = await client.post(
        "/m/v1/vehicles",
        json={**VEHICLE, "hazardous_licence_expires": "2030-01-01"},
        headers=world.headers("carrier"),
    )
    assert (response.status_code, response.json()["field"]) == (422, "hazardous_licence_number")


async def test_removing_half_a_licence_names_the_half_removed(
    client: httpx.AsyncClient, world: World
) -> None:
    plate = (
        await register(
            client,
            world,
            hazardous_licence_number="鲁交危许字371000001",
            hazardous_licence_expires="2030-01-01",
        )
    )["plate"]
    headers = world.headers("carrier")
    response = await client.patch(
        f"/m/v1/vehicles/{plate}",
        json={"hazardous_licence_number": None},
        headers=headers,
    )
    assert (response.status_code, response.json()["field"]) == (422, "hazardous_licence_number")
    response = await client.patch(
        f"/m/v1/vehicles/{plate}",
        json={"hazardous_licence_number": None, "hazardous_licence_expires": None},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json()["hazardous_licence_number"] is None


async def test_admin_registers_for_a_named_carrier_only(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post("/m/v1/vehicles", json=VEHICLE, headers=world.headers("admin"))
    assert (response.status_code, response.json()["field"]) == (422, "organization_id")
    response = await client.post(
        "/m/v1/vehicles",
        json={**VEHICLE, "organization_id": world.orgs["facility"].id},
        headers=world.headers("admin"),
    )
    assert (response.status_code, response.json()["field"]) == (422, "organization_id")
    created = await register(client, world, "admin", organization_id=world.orgs["carrier"].id)
    assert created["organization_id"] == world.orgs["carrier"].id


async def test_a_carrier_cannot_touch_another_carriers_fleet(
    client: httpx.AsyncClient, world: World
) -> None:
    await register(client, world)
    rival = await registry.create_organization(
        name="威海危运公司", kind=OrganizationKind.carrier, region_id=world.regions["city"].id
    )
    await make_user(world, "rival", Role.carrier, rival)
    response = await client.post(
        "/m/v1/vehicles",
        json={**VEHICLE, "plate": "鲁K54321", "organization_id": world.orgs["carrier"].id},
        headers=world.headers("rival"),
    )
    assert (response.status_code, response.json()["field"]) == (403, "organization_id")
    response = await client.patch(
        "/m/v1/vehicles/鲁K12345", json={"capacity_kg": "1"}, headers=world.headers("rival")
    )
    assert response.status_code == 404
    assert (await client.get("/m/v1/vehicles", headers=world.headers("rival"))).json() == []


async def test_a_vehicle_is_changed_then_retired_and_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    driver = await client.post(
        "/m/v1/drivers",
        json={"name": "王师傅", "licence_number": "371082198001010011", "phone": "13800000000"},
        headers=world.headers("carrier"),
    )
    assert driver.status_code == 201, driver.text
    await register(client, world)
    headers = world.headers("carrier")
    changed = await client.patch(
        "/m/v1/vehicles/鲁K12345",
        json={"capacity_kg": "3500", "driver_id": driver.json()["id"]},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert Decimal(changed.json()["capacity_kg"]) == 3500
    assert changed.json()["driver_id"] == driver.json()["id"]
    removed = await client.patch(
        "/m/v1/vehicles/鲁K12345", json={"permit_number": None}, headers=headers
    )
    assert (removed.status_code, removed.json()["field"]) == (422, "permit_number")
    retired = await client.delete("/m/v1/vehicles/鲁K12345", headers=headers)
    assert retired.status_code == 200 and retired.json()["retired_at"] is not None
    assert (await client.get("/m/v1/vehicles", headers=headers)).json() == []
    kept = await client.get("/m/v1/vehicles?include_retired=true", headers=headers)
    assert [v["plate"] for v in kept.json()] == ["鲁K12345"]
    again = await client.patch(
        "/m/v1/vehicles/鲁K12345", json={"capacity_kg": "1"}, headers=headers
    )
    assert again.status_code == 409
    assert (await client.delete("/m/v1/vehicles/鲁K12345", headers=headers)).status_code == 409


async def test_drivers_are_registered_listed_and_retired(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.headers("carrier")
    half = await client.post(
        "/m/v1/drivers",
        json={"name": "李师傅", "licence_number": "3710", "qualification_number": "3710000001"},
        headers=headers,
    )
    assert (half.status_code, half.json()["field"]) == (422, "qualification_expires")
    other_half = await client.post(
        "/m/v1/drivers",
        json={"name": "李师傅", "licence_number": "3710", "qualification_expires": "2029-06-30"},
        headers=headers,
    )
    assert (other_half.status_code, other_half.json()["field"]) == (422, "qualification_number")
    created = await client.post(
        "/m/v1/drivers",
        json={
            "name": "李师傅",
            "licence_number": "371082198001010022",
            "qualification_number": "371000000001",
            "qualification_expires": "2029-06-30",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    listed = (await client.get("/m/v1/drivers", headers=world.headers("manager"))).json()
    assert [d["name"] for d in listed] == ["李师傅"]
    gone = await client.delete(f"/m/v1/drivers/{created.json()['id']}", headers=headers)
    assert gone.status_code == 200
    assert (await client.get("/m/v1/drivers", headers=headers)).json() == []


async def test_a_retired_driver_is_no_vehicles_driver(
    client: httpx.AsyncClient, world: World
) -> None:
    """Its vehicles have no driver from then on, in the list and the audit log; assigning it
    again is refused naming driver_id."""
    headers = world.headers("carrier")
    plate = (await register(client, world))["plate"]
    driver = await client.post(
        "/m/v1/drivers", json={"name": "王师傅", "licence_number": "3711"}, headers=headers
    )
    assert driver.status_code == 201, driver.text
    driver_id = driver.json()["id"]
    assigned = await client.patch(
        f"/m/v1/vehicles/{plate}", json={"driver_id": driver_id}, headers=headers
    )
    assert (assigned.status_code, assigned.json()["driver_id"]) == (200, driver_id), assigned.text
    assert (await client.delete(f"/m/v1/drivers/{driver_id}", headers=headers)).status_code == 200
    (vehicle,) = [
        v
        for v in (await client.get("/m/v1/vehicles", headers=headers)).json()
        if v["plate"] == plate
    ]
    assert vehicle["driver_id"] is None
    again = await client.patch(
        f"/m/v1/vehicles/{plate}", json={"driver_id": driver_id}, headers=headers
    )
    assert (again.status_code, again.json()["field"]) == (422, "driver_id")
    audit = await client.get(
        "/m/v1/audit", params={"subject_type": "vehicle"}, headers=world.headers("manager")
    )
    assert audit.status_code == 200, audit.text
    assert any(
        e["action"] == "vehicle.updated"
        and e["after"]["driver_id"] is None
        and e["before"]["driver_id"] == driver_id
        for e in audit.json()["entries"]
    )


async def test_a_retired_vehicle_is_refused_naming_its_retirement_on_the_city_clock(
    client: httpx.AsyncClient, world: World
) -> None:
    """A carriage in a vehicle retired before it printed the carriage's moment in whatever
    offset the phone sent, with microseconds (dates review); the refusal names when the
    vehicle was retired, the city's time to the second."""
    await register(client, world)
    retired = await client.delete("/m/v1/vehicles/鲁K12345", headers=world.headers("carrier"))
    assert retired.status_code == 200, retired.text
    retired_at = datetime.fromisoformat(retired.json()["retired_at"])
    with pytest.raises(ValidationFailed) as refused:
        await plate_for_carriage(
            organization_id=world.orgs["carrier"].id,
            plate="鲁K12345",
            rule=None,
            at=(retired_at + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-5))),
            timezone="Asia/Shanghai",
        )
    limit = local_limit(retired_at, "Asia/Shanghai", earliest=False)
    assert f"retired at {limit}, city time" in refused.value.detail
