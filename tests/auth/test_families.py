"""Refresh-token families: a reused token ends its whole login; deactivation ends them all."""

import httpx
import jwt
from tortoise import connections

from tests.factories import PASSWORD, World
from wastetrack.auth import service as auth
from wastetrack.auth.models import RefreshToken


async def login(client: httpx.AsyncClient, username: str) -> dict:
    response = await client.post(
        "/m/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/m/v1/auth/refresh", json={"refresh_token": token})


async def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(
    client: httpx.AsyncClient, world: World
) -> None:
    stolen = (await login(client, "clinic"))["refresh_token"]
    other_phone = (await login(client, "clinic"))["refresh_token"]
    successor = (await refresh(client, stolen)).json()["refresh_token"]
    replay = await refresh(client, stolen)
    assert replay.status_code == 401
    assert "reused" in replay.json()["detail"]
    assert (await refresh(client, successor)).status_code == 401
    # Another login of the same user is another family and keeps working.
    assert (await refresh(client, other_phone)).status_code == 200


async def test_a_refresh_continues_the_family_of_the_token_it_replaces(
    client: httpx.AsyncClient, world: World
) -> None:
    first = (await login(client, "clinic"))["refresh_token"]
    second = (await refresh(client, first)).json()["refresh_token"]
    assert (await refresh(client, second)).status_code == 200
    jti = jwt.decode(first, options={"verify_signature": False})["jti"]
    family = (await RefreshToken.get(jti=jti)).family
    assert await RefreshToken.filter(family=family).count() == 3


async def test_deactivating_a_user_revokes_their_refresh_tokens_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    tokens = [(await login(client, "carrier"))["refresh_token"] for _ in range(2)]
    await auth.deactivate_user(user_id=world.users["carrier"].id)
    assert await RefreshToken.filter(user=world.users["carrier"], revoked_at=None).count() == 0
    for token in tokens:
        assert (await refresh(client, token)).status_code == 401


async def test_deactivation_by_any_path_revokes_refresh_tokens(
    client: httpx.AsyncClient, world: World
) -> None:
    await login(client, "facility")
    await login(client, "clinic")
    await connections.get("default").execute_query(
        "UPDATE app_user SET is_active = false WHERE username = $1", ["facility"]
    )
    assert await RefreshToken.filter(user=world.users["facility"], revoked_at=None).count() == 0
    assert await RefreshToken.filter(user=world.users["clinic"], revoked_at=None).exists()
