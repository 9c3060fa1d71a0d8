"""An API key's role fits its organization's kind, by the map user creation reads
(wastetrack.registry.roles)."""

import httpx
import pytest

from tests.factories import World


@pytest.mark.parametrize(
    ("org", "role", "status"),
    [
        ("clinic", "manager", 422),  # a clinic's key would read and correct its region
        ("carrier", "facility_operator", 422),
        ("bureau", "generator", 422),
        ("bureau", "manager", 201),
        ("clinic", None, 201),  # its staff's role: generator
    ],
)
async def test_a_key_acts_only_in_a_role_its_organization_holds(
    client: httpx.AsyncClient, world: World, org: str, role: str | None, status: int
) -> None:
    body: dict[str, object] = {
        "name": "weighbridge",
        "scopes": ["read"],
        "organization_id": world.orgs[org].id,
    }
    if role is not None:
        body["role"] = role
    response = await client.post("/m/v1/api-keys", headers=world.headers("admin"), json=body)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["field"] == "role"
