"""Logging in, refreshing, throttling, and what a refusal does not say."""

import httpx

from tests.auth.test_families import past_the_grace
from tests.factories import PASSWORD, World
from wastetrack.auth.models import RefreshToken


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/m/v1/auth/token", data={"username": username, "password": password})


async def test_password_login_issues_both_tokens(client: httpx.AsyncClient, world: World) -> None:
    response = await login(client, "clinic", PASSWORD)
    assert response.status_code == 200
    tokens = response.json()
    assert tokens["token_type"] == "bearer"
    me = await client.get(
        "/m/v1/batches", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200


async def test_the_forms_other_fields_are_text_as_any_input(
    client: httpx.AsyncClient, world: World
) -> None:
    """scope, client_id and client_secret are unused, yet a control character in one is a
    422 naming it, and no login is issued (they were taken as any string)."""
    before = await RefreshToken.all().count()
    for field in ("scope", "client_id", "client_secret"):
        form = {"username": "clinic", "password": PASSWORD, field: "a\x00b"}
        refused = await client.post("/m/v1/auth/token", data=form)
        assert (refused.status_code, refused.json()["field"]) == (422, field), refused.text
    assert await RefreshToken.all().count() == before


async def test_refusal_does_not_reveal_whether_the_user_exists(
    client: httpx.AsyncClient, world: World
) -> None:
    wrong_password = await login(client, "clinic", "not-the-password")
    no_such_user = await login(client, "nobody", "not-the-password")
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json()["detail"] == no_such_user.json()["detail"]


async def test_repeated_failures_are_throttled(client: httpx.AsyncClient, world: World) -> None:
    for _ in range(world.settings.login_max_failures):
        assert (await login(client, "carrier", "wrong-password")).status_code == 401
    locked = await login(client, "carrier", PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    for _ in range(world.settings.login_max_failures):
        await login(client, "ghost", "wrong-password")
    assert (await login(client, "ghost", "wrong-password")).status_code == 429


async def test_refresh_token_rotates_and_works_once(
    client: httpx.AsyncClient, world: World
) -> None:
    tokens = (await login(client, "clinic", PASSWORD)).json()
    fresh = await client.post("/m/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200
    await past_the_grace(tokens["refresh_token"])
    replay = await client.post(
        "/m/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert replay.status_code == 401


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/m/v1/auth/refresh", json={"refresh_token": world.tokens["clinic"]}
    )
    assert response.status_code == 401


async def test_requests_without_a_valid_token_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    assert (await client.get("/m/v1/batches")).status_code == 401
    forged = await client.get("/m/v1/batches", headers={"Authorization": "Bearer abc.def.ghi"})
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
