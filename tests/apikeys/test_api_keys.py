"""API keys over HTTP: issued once, stored as a keyed hash, scoped, touched at most once a
minute, revocable; keys never manage keys."""

import hashlib
import hmac

import httpx
import pytest
from tortoise import connections

from mobile_api.app import create_app
from tests.factories import World, make_user, medical_bag
from tests.security.test_authorization_matrix import ANYONE, EXPECTED, concrete, route_table
from wastetrack.apikeys.scopes import WRITES, Scope
from wastetrack.audit.models import AuditEntry
from wastetrack.auth.models import Role, User
from wastetrack.core import keys
from wastetrack.core.settings import Settings
from wastetrack.custody.models import CustodyEvent


async def issue(
    client: httpx.AsyncClient, world: World, scopes: list[str], org: str = "clinic", **extra: object
) -> dict:
    response = await client.post(
        "/m/v1/api-keys",
        headers=world.headers("admin"),
        json={"name": "weighbridge", "scopes": scopes, "organization_id": world.orgs[org].id}
        | extra,
    )
    assert response.status_code == 201, response.text
    return response.json()


def bearer(key: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def _row(key_id: int) -> dict:
    rows = await connections.get("default").execute_query_dict(
        "SELECT row_to_json(k)::text AS text, k.secret_hash, k.last_used_at"
        " FROM api_key k WHERE id = $1",
        [key_id],
    )
    return rows[0]


async def test_a_key_is_shown_once_and_stored_only_as_a_keyed_hash(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await issue(client, world, ["read"])
    token = key["key"]
    assert token.startswith(f"wt_{key['prefix']}_")
    row = await _row(key["id"])
    secret = token.rsplit("_", 1)[1] if token.count("_") == 2 else token[len(key["prefix"]) + 4 :]
    assert token not in row["text"] and secret not in row["text"]
    expected = hmac.new(
        keys.ring(world.settings.secret_key).key(keys.API_KEY), token.encode(), hashlib.sha256
    ).hexdigest()
    assert row["secret_hash"] == expected
    listed = (await client.get("/m/v1/api-keys", headers=world.headers("admin"))).json()
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0] and token not in str(listed)
    assert listed[0]["created_by_username"] == "admin" and listed[0]["role"] == "generator"


async def test_a_read_key_reads_but_may_not_record_events(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await issue(client, world, ["read"])
    assert (await client.get("/m/v1/batches", headers=bearer(key))).status_code == 200
    refused = await client.post("/m/v1/events", headers=bearer(key), json=medical_bag())
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["field"] == "scope" and "'events'" in refused.json()["detail"]


async def test_an_events_key_records_as_its_service_user_and_notes_its_use(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await issue(client, world, ["events"])
    assert (await _row(key["id"]))["last_used_at"] is None
    recorded = await client.post("/m/v1/events", headers=bearer(key), json=medical_bag())
    assert recorded.status_code == 201, recorded.text
    event = await CustodyEvent.get().prefetch_related("actor")
    assert event.actor.username == f"apikey.{key['prefix']}"
    assert event.actor.organization_id == world.orgs["clinic"].id
    assert (await _row(key["id"]))["last_used_at"] is not None
    manifest = await client.post("/m/v1/manifests", headers=bearer(key), json={})
    assert manifest.status_code == 403 and "'manifests'" in manifest.json()["detail"]


async def test_a_manifests_key_reaches_the_manifest_routes(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await issue(client, world, ["manifests"])
    response = await client.post("/m/v1/manifests", headers=bearer(key), json={})
    assert response.status_code == 422  # past authentication and scope: the body is empty


async def test_last_use_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await issue(client, world, ["read"])
    await client.get("/m/v1/batches", headers=bearer(key))
    first = (await _row(key["id"]))["last_used_at"]
    await client.get("/m/v1/batches", headers=bearer(key))
    assert (await _row(key["id"]))["last_used_at"] == first
    await connections.get("default").execute_query(
        "UPDATE api_key SET last_used_at = last_used_at - interval '61 seconds' WHERE id = $1",
        [key["id"]],
    )
    await client.get("/m/v1/batches", headers=bearer(key))
    assert (await _row(key["id"]))["last_used_at"] > first


async def test_a_revoked_or_unknown_key_is_refused(client: httpx.AsyncClient, world: World) -> None:
    key = await issue(client, world, ["read", "events"])
    assert (await client.get("/m/v1/batches", headers=bearer(key))).status_code == 200
    forged = key["key"][:-1] + ("A" if key["key"][-1] != "A" else "B")
    for token in (forged, "wt_000000000000_" + "x" * 43, "wt_nonsense"):
        response = await client.get("/m/v1/batches", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
    revoked = await client.delete(f"/m/v1/api-keys/{key['id']}", headers=world.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    response = await client.get("/m/v1/batches", headers=bearer(key))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


async def test_deactivating_a_keys_service_user_revokes_the_key(
    client: httpx.AsyncClient, world: World
) -> None:
    """The key was refused but listed live (`revoked_at` null): it is revoked, as DELETE
    leaves it, and audited so."""
    key = await issue(client, world, ["read"])
    (service_user,) = await User.filter(username__startswith="apikey.").values_list("id", flat=True)
    admin = world.headers("admin")
    done = await client.post(f"/admin/v1/users/{service_user}/deactivate", headers=admin)
    assert done.status_code == 200, done.text
    assert (await client.get("/m/v1/batches", headers=bearer(key))).status_code == 401
    listed = {k["id"]: k for k in (await client.get("/m/v1/api-keys", headers=admin)).json()}
    assert listed[key["id"]]["revoked_at"] is not None
    assert await AuditEntry.filter(action="api_key.revoked").count() == 1
    # A key an older release left live beside its deactivated user is revoked by deactivating
    # the user again.
    left = await issue(client, world, ["read"])
    user = await User.get(username__startswith="apikey.", is_active=True)
    await User.filter(id=user.id).update(is_active=False)
    again = await client.post(f"/admin/v1/users/{user.id}/deactivate", headers=admin)
    assert again.status_code == 200, again.text
    listed = {k["id"]: k for k in (await client.get("/m/v1/api-keys", headers=admin)).json()}
    assert listed[left["id"]]["revoked_at"] is not None


async def test_a_key_outlives_the_administrator_who_issued_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """docs/security.md: a key belongs to its organization (an integration does not stop when a
    person leaves); it works until revoked, and the list still names who issued it."""
    key = await issue(client, world, ["read"])
    await make_user(world, "second_admin", Role.admin, world.orgs["bureau"])
    issuer = world.users["admin"].id
    done = await client.post(
        f"/admin/v1/users/{issuer}/deactivate", headers=world.headers("second_admin")
    )
    assert done.status_code == 200, done.text
    assert (await client.get("/m/v1/batches", headers=bearer(key))).status_code == 200
    listed = (await client.get("/m/v1/api-keys", headers=world.headers("second_admin"))).json()
    assert [(k["created_by_username"], k["revoked_at"]) for k in listed] == [("admin", None)]
    revoked = await client.delete(
        f"/m/v1/api-keys/{key['id']}", headers=world.headers("second_admin")
    )
    assert revoked.status_code == 200, revoked.text
    assert (await client.get("/m/v1/batches", headers=bearer(key))).status_code == 401


async def test_a_revoked_key_gets_no_kept_answer_for_a_resend(
    client: httpx.AsyncClient, world: World
) -> None:
    """An Idempotency-Key's kept answer goes only to credentials the route would accept: the
    key revoked after its first request is refused on the resend too, and nothing is written."""
    key = await issue(client, world, ["events"])
    body = medical_bag()
    body.pop("event_type")
    headers = bearer(key) | {"Idempotency-Key": "weighbridge-1"}
    first = await client.post("/m/v1/batches", headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = await client.post("/m/v1/batches", headers=headers, json=body)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    revoked = await client.delete(f"/m/v1/api-keys/{key['id']}", headers=world.headers("admin"))
    assert revoked.status_code == 200, revoked.text
    refused = await client.post("/m/v1/batches", headers=headers, json=body)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"], refused.text
    assert "idempotent-replayed" not in refused.headers
    assert await CustodyEvent.all().count() == 1


async def test_keys_cannot_issue_keys(client: httpx.AsyncClient, world: World) -> None:
    key = await issue(client, world, ["read", "events", "manifests"], org="bureau", role="manager")
    response = await client.post(
        "/m/v1/api-keys", headers=bearer(key), json={"name": "x", "scopes": ["read"]}
    )
    assert response.status_code == 403 and response.json()["field"] == "scope"


async def test_no_key_acts_as_an_administrator(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/m/v1/api-keys",
        headers=world.headers("admin"),
        json={"name": "x", "scopes": ["read"], "role": "admin"},
    )
    assert response.status_code == 422 and response.json()["field"] == "role"


def test_every_scoped_write_is_a_route_of_the_app(app) -> None:  # type: ignore[no-untyped-def]
    assert not set(WRITES) - route_table(app)


async def test_a_key_with_every_scope_writes_only_where_a_scope_opens_the_route(
    app,  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient,
    world: World,
) -> None:
    key = await issue(client, world, [s.value for s in Scope], org="carrier")
    writes = sorted(
        (m, p)
        for m, p in route_table(app)
        if m not in ("GET", "HEAD") and p.startswith("/m/") and EXPECTED.get((m, p)) != ANYONE
    )
    assert len(writes) > len(WRITES)
    for method, path in writes:
        response = await client.request(method, concrete(path), headers=bearer(key), json={})
        if (method, path) in WRITES:
            assert response.status_code not in (401, 403), (method, path, response.text)
        else:
            assert response.status_code in (401, 403), (method, path, response.status_code)


@pytest.mark.parametrize("who", ["clinic", "manager", "auditor"])
async def test_only_admins_manage_keys(client: httpx.AsyncClient, world: World, who: str) -> None:
    response = await client.post(
        "/m/v1/api-keys", headers=world.headers(who), json={"name": "x", "scopes": ["read"]}
    )
    assert response.status_code == 403


async def _limited_client(settings: Settings, **limits: object) -> httpx.AsyncClient:
    app = create_app(
        settings.model_copy(update={"trust_proxy": True, **limits}), manage_database=False
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_requests_are_limited_per_key(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    first, second = await issue(client, world, ["read"]), await issue(client, world, ["read"])
    async with await _limited_client(settings, rate_limit_api_key="3/minute") as limited:
        statuses = [
            (await limited.get("/m/v1/batches", headers=bearer(first))).status_code
            for _ in range(3)
        ]
        refused = await limited.get("/m/v1/batches", headers=bearer(first))
        other = await limited.get("/m/v1/batches", headers=bearer(second))
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert other.status_code == 200  # each key has its own count


async def test_a_resend_answered_from_a_kept_answer_counts_against_the_key(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """A key that used up its requests is refused a replay too (429 with Retry-After): a
    resend is a request of the key's, whatever answers it."""
    key = await issue(client, world, ["events"])
    body = medical_bag()
    body.pop("event_type")
    once = bearer(key) | {"Idempotency-Key": "weighbridge-7"}
    async with await _limited_client(settings, rate_limit_api_key="2/minute") as limited:
        assert (await limited.post("/m/v1/batches", headers=once, json=body)).status_code == 201
        replayed = await limited.post("/m/v1/batches", headers=once, json=body)
        refused = await limited.post("/m/v1/batches", headers=once, json=body)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert (refused.status_code, refused.json()["code"]) == (429, "too_many_requests")
    assert 0 < int(refused.headers["Retry-After"]) <= 60


async def test_failed_keys_are_limited_per_client_address(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    key = await issue(client, world, ["read"])
    wrong = {"Authorization": "Bearer wt_0123456789ab_" + "A" * 43}
    async with await _limited_client(settings, rate_limit_api_key_failures="3/hour") as limited:

        async def status(headers: dict[str, str], address: str) -> int:
            response = await limited.get(
                "/m/v1/batches", headers={**headers, "X-Forwarded-For": address}
            )
            return response.status_code

        guesses = [await status(wrong, "203.0.113.5") for _ in range(3)]
        # The address has used up its failures: a wrong key waits, a right one works.
        more = await status(wrong, "203.0.113.5")
        after = await status(bearer(key), "203.0.113.5")
        elsewhere = await status(wrong, "203.0.113.6")
    assert guesses == [401, 401, 401]
    assert (more, after, elsewhere) == (429, 200, 401)


async def test_a_bureaus_manifest_key_may_cancel_a_manifest(
    client: httpx.AsyncClient, world: World
) -> None:
    """Cancelling (作废) is one of the manifest actions the `manifests` scope opens: a manager's
    key with it reaches the rule (here: no such manifest), one without it is refused on its
    scope."""
    url = "/m/v1/manifests/999999/cancel"
    body = {"reason": "录入错误"}
    keyed = await issue(client, world, ["manifests"], org="bureau", role="manager")
    refused = await client.post(url, headers=bearer(keyed), json=body)
    assert (refused.status_code, refused.json()["field"]) == (404, "manifest_id"), refused.text
    reader = await issue(client, world, ["read"], org="bureau", role="manager")
    refused = await client.post(url, headers=bearer(reader), json=body)
    assert (refused.status_code, refused.json()["field"]) == (403, "scope"), refused.text
