"""Refresh-token families: a reused token ends its whole login; deactivation ends them all."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
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
    """The server rotated the token but the phone never got the answer (2G): within the grace
    the rotated token is exchanged again, in the same family, and the successor it never got
    is revoked — a login keeps one live token, so a copy of that answer someone kept is
    caught at its next refresh, and ends the login. Once the login has ended (log-out), the
    grace saves nothing."""
    first = (await login(client, "clinic"))["refresh_token"]
    lost = (await refresh(client, first)).json()["refresh_token"]
    again = await refresh(client, first)
    assert again.status_code == 200, again.text
    family = (await RefreshToken.get(jti=jti_of(first))).family
    assert (await RefreshToken.get(jti=jti_of(again.json()["refresh_token"]))).family == family
    live = await RefreshToken.filter(family=family, revoked_at=None).values_list("jti", flat=True)
    assert [str(j) for j in live] == [jti_of(again.json()["refresh_token"])]
    # The lost answer's token, used later by whoever kept it: a reuse, the login ends.
    await past_the_grace(lost)
    caught = await refresh(client, lost)
    assert caught.status_code == 401 and "reused" in caught.json()["detail"], caught.text
    assert (await refresh(client, again.json()["refresh_token"])).status_code == 401
    # A new login, logged out: a rotated token of it finds nothing to revive.
    second = (await login(client, "clinic"))["refresh_token"]
    assert (await refresh(client, second)).status_code == 200
    ended = await client.post("/m/v1/auth/logout", json={"refresh_token": second})
    assert ended.status_code in (200, 204), ended.text
    replay = await refresh(client, second)
    assert replay.status_code == 401 and "reused" in replay.json()["detail"], replay.text


def jti_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


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
    for junk in ("not.a.token", "x"):  # no token of ours, however short: not an error
        again = await client.post("/m/v1/auth/logout", json={"refresh_token": junk})
        assert again.status_code == 204, again.text


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


async def test_a_log_out_waits_for_a_refresh_under_way_and_revokes_its_token(
    client: httpx.AsyncClient, world: World, database_url: str
) -> None:
    """Refreshes, log-outs and revocations of one user take turns: a log-out that could not see
    the token a refresh under way is about to commit would leave that token live, the login
    revived. Held by another session, the user's turn keeps the log-out waiting."""
    token = (await login(client, "clinic"))["refresh_token"]
    other = await asyncpg.connect(database_url)
    try:
        await other.execute(
            "SELECT pg_advisory_lock($1, $2)", auth.LOGIN_LOCK_KEY, world.users["clinic"].id
        )
        ending = asyncio.ensure_future(
            client.post("/m/v1/auth/logout", json={"refresh_token": token})
        )
        await asyncio.sleep(0.5)
        assert not ending.done()
    finally:
        await other.close()  # its session, and the lock, end
    assert (await asyncio.wait_for(ending, timeout=30)).status_code in (200, 204)
    assert (await refresh(client, token)).status_code == 401
