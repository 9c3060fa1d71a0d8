"""Refresh-token families: a reused token ends its whole login; deactivation ends them all."""

from datetime import UTC, datetime, timedelta

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


async def past_the_grace(token: str) -> None:
    """As if the token had been rotated longer ago than a lost answer may be retried in."""
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    rotated = datetime.now(UTC) - auth.REFRESH_REUSE_GRACE - timedelta(seconds=1)
    assert await RefreshToken.filter(jti=jti).update(revoked_at=rotated) == 1


async def test_reusing_a_rotated_refresh_token_revokes_its_whole_family(
    client: httpx.AsyncClient, world: World
) -> None:
    stolen = (await login(client, "clinic"))["refresh_token"]
    other_phone = (await login(client, "clinic"))["refresh_token"]
    successor = (await refresh(client, stolen)).json()["refresh_token"]
    await past_the_grace(stolen)
    replay = await refresh(client, stolen)
    assert replay.status_code == 401
    assert "reused" in replay.json()["detail"]
    assert (await refresh(client, successor)).status_code == 401
    # Another login of the same user is another family and keeps working.
    assert (await refresh(client, other_phone)).status_code == 200


async def test_an_answer_lost_on_the_way_may_be_asked_again_while_the_login_lives(
    client: httpx.AsyncClient, world: World
) -> None:
    """The server rotated the token but the phone never got the answer (2G), or two tabs
    refreshed at once: within the grace the rotated token is exchanged again, in the same
    family, and the first answer's tokens keep working. Once the login has ended (log-out),
    the grace saves nothing: it is a reuse."""
    first = (await login(client, "clinic"))["refresh_token"]
    lost = (await refresh(client, first)).json()["refresh_token"]
    again = await refresh(client, first)
    assert again.status_code == 200, again.text
    family = jwt.decode(first, options={"verify_signature": False})["jti"]
    family = (await RefreshToken.get(jti=family)).family
    for token in (lost, again.json()["refresh_token"]):
        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        assert (await RefreshToken.get(jti=jti)).family == family
    assert (await refresh(client, lost)).status_code == 200
    ended = await client.post("/m/v1/auth/logout", json={"refresh_token": first})
    assert ended.status_code in (200, 204), ended.text
    replay = await refresh(client, first)
    assert replay.status_code == 401 and "reused" in replay.json()["detail"], replay.text


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


async def test_logging_out_ends_this_login_only(client: httpx.AsyncClient, world: World) -> None:
    """The phone's log-out ends its login (every token of the family, a thief's copy too);
    another phone of the same user keeps working; an unknown token is no error."""
    this_phone = (await login(client, "clinic"))["refresh_token"]
    copied = this_phone
    other_phone = (await login(client, "clinic"))["refresh_token"]
    out = await client.post("/m/v1/auth/logout", json={"refresh_token": this_phone})
    assert (out.status_code, out.headers["cache-control"]) == (204, "no-store")
    assert (await refresh(client, copied)).status_code == 401
    assert (await refresh(client, other_phone)).status_code == 200
    again = await client.post("/m/v1/auth/logout", json={"refresh_token": "not.a.token"})
    assert again.status_code == 204


async def test_an_admin_ends_a_lost_phones_logins_or_deactivates_a_user(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier = world.users["carrier"].id
    phones = [(await login(client, "carrier"))["refresh_token"] for _ in range(2)]
    url = f"/admin/v1/users/{carrier}"
    refused = await client.post(f"{url}/sessions/revoke", headers=world.headers("manager"))
    assert refused.status_code == 403
    revoked = await client.post(f"{url}/sessions/revoke", headers=world.headers("admin"))
    # The two phones' logins, and the one the test world made for the carrier.
    assert (revoked.status_code, revoked.json()) == (200, {"revoked": 3}), revoked.text
    for token in phones:
        assert (await refresh(client, token)).status_code == 401
    # The account stays: the user logs in again on a new phone.
    new_phone = (await login(client, "carrier"))["refresh_token"]
    entries = await client.get(
        "/m/v1/audit", params={"subject_type": "user"}, headers=world.headers("admin")
    )
    assert "user.sessions_revoked" in [e["action"] for e in entries.json()["entries"]]
    # Deactivated, the user can neither refresh nor log in.
    gone = await client.post(f"{url}/deactivate", headers=world.headers("admin"))
    assert (gone.status_code, gone.json()["is_active"]) == (200, False), gone.text
    assert (await refresh(client, new_phone)).status_code == 401
    again = await client.post(
        "/m/v1/auth/token", data={"username": "carrier", "password": PASSWORD}
    )
    assert again.status_code == 401
    missing = await client.post("/admin/v1/users/999999/deactivate", headers=world.headers("admin"))
    assert (missing.status_code, missing.json()["field"]) == (404, "user_id")
