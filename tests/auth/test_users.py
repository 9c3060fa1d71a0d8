"""A user's role fits its organization's kind, and administrators cannot lock everyone out."""

import asyncio
import base64
import json

import httpx
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from tests.factories import PASSWORD, World, make_user
from wastetrack.audit.models import AuditEntry
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role, User
from wastetrack.core.errors import ValidationFailed
from wastetrack.registry import roles
from wastetrack.registry.models import OrganizationKind


def test_every_kind_has_its_roles_and_only_authorities_oversee() -> None:
    assert set(roles.ROLES_BY_KIND) == set(OrganizationKind)
    overseers = {Role.manager, Role.auditor, Role.admin}
    assert roles.kinds_for(frozenset(overseers)) == {OrganizationKind.authority}
    assert roles.default_role(OrganizationKind.authority) == Role.auditor
    assert roles.default_role(OrganizationKind.village_clinic) == Role.generator


async def _create(
    client: httpx.AsyncClient, world: World, role: str, org: str, username: str | None = None
) -> httpx.Response:
    return await client.post(
        "/admin/v1/users",
        headers=world.headers("admin"),
        json={
            "username": username or f"new_{role}_{org}",
            "password": PASSWORD,
            "role": role,
            "organization_id": world.orgs[org].id,
        },
    )


@pytest.mark.parametrize(
    ("role", "org"),
    [
        ("manager", "clinic"),  # a clinic's manager would read and correct its region
        ("auditor", "community"),
        ("admin", "carrier"),
        ("facility_operator", "carrier"),
        ("carrier", "facility"),
        ("collector", "clinic"),
        ("generator", "bureau"),
        ("port_operator", "community"),
    ],
)
async def test_a_role_the_organization_does_not_hold_is_refused(
    client: httpx.AsyncClient, world: World, role: str, org: str
) -> None:
    response = await _create(client, world, role, org)
    assert (response.status_code, response.json()["field"]) == (422, "role"), response.text
    assert not await User.exists(username=f"new_{role}_{org}")


@pytest.mark.parametrize(
    ("role", "org"),
    [
        ("manager", "bureau"),
        ("auditor", "town_office"),
        ("generator", "clinic"),
        ("collector", "community"),
        ("carrier", "carrier"),
        ("facility_operator", "facility"),
        ("port_operator", "port"),
    ],
)
async def test_a_role_the_organization_holds_is_created(
    client: httpx.AsyncClient, world: World, role: str, org: str
) -> None:
    response = await _create(client, world, role, org)
    assert response.status_code == 201, response.text


async def test_the_service_refuses_a_misfit_role_on_any_path(world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await auth.create_user(
            username="village_boss",
            password=PASSWORD,
            role=Role.manager,
            organization_id=world.orgs["clinic"].id,
        )
    assert refused.value.field == "role"


async def test_an_administrator_does_not_deactivate_themselves(
    client: httpx.AsyncClient, world: World
) -> None:
    await make_user(world, "second_admin", Role.admin, world.orgs["bureau"])
    admin = world.users["admin"]
    response = await client.post(
        f"/admin/v1/users/{admin.id}/deactivate", headers=world.headers("admin")
    )
    assert (response.status_code, response.json()["field"]) == (409, "user_id"), response.text
    assert str(admin.id) in response.json()["detail"]
    assert (await User.get(id=admin.id)).is_active


async def test_the_last_active_administrator_stays(client: httpx.AsyncClient, world: World) -> None:
    second = await make_user(world, "second_admin", Role.admin, world.orgs["bureau"])
    admin = world.users["admin"]
    # Two administrators: one may deactivate the other …
    done = await client.post(
        f"/admin/v1/users/{second.id}/deactivate", headers=world.headers("admin")
    )
    assert done.status_code == 200, done.text
    # … and once one is left, nobody deactivates it through the API (its token still works
    # for minutes after its deactivation, so the second one tries).
    last = await client.post(
        f"/admin/v1/users/{admin.id}/deactivate", headers=world.headers("second_admin")
    )
    assert (last.status_code, last.json()["field"]) == (409, "user_id"), last.text
    assert str(admin.id) in last.json()["detail"]
    assert (await User.get(id=admin.id)).is_active
    # Other users are deactivated as before.
    other = await client.post(
        f"/admin/v1/users/{world.users['collector'].id}/deactivate",
        headers=world.headers("admin"),
    )
    assert other.status_code == 200, other.text


async def test_the_command_line_may_deactivate_the_last_administrator(world: World) -> None:
    """The operator at the machine (the demo's published administrator before serving beyond
    loopback) can always create another with `wastetrack user create`."""
    user = await auth.deactivate_user(user_id=world.users["admin"].id)
    assert not user.is_active


async def test_a_user_deactivated_again_is_audited_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """Deactivated twice in a row and twice at once: one change, one audit entry (the audit
    records changes; the second request changes nothing; first written by an independent
    review)."""
    for who in ("collector", "carrier"):
        url = f"/admin/v1/users/{world.users[who].id}/deactivate"
        if who == "collector":
            answers = [await client.post(url, headers=world.headers("admin")) for _ in range(2)]
        else:
            answers = list(
                await asyncio.gather(
                    *(client.post(url, headers=world.headers("admin")) for _ in range(2))
                )
            )
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert all(a.json()["is_active"] is False for a in answers)
    entries = await AuditEntry.filter(action="user.deactivated").values_list(
        "subject_id", flat=True
    )
    assert sorted(entries) == sorted(str(world.users[who].id) for who in ("collector", "carrier"))


async def test_two_of_three_administrators_deactivate_each_other_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """With a third administrator left, both deactivations stand (no deadlock between their
    locks, no 409 for a request that breaks no rule)."""
    second = await make_user(world, "second_admin", Role.admin, world.orgs["bureau"])
    await make_user(world, "third_admin", Role.admin, world.orgs["bureau"])
    admin = world.users["admin"]
    answers = await asyncio.gather(
        client.post(f"/admin/v1/users/{second.id}/deactivate", headers=world.headers("admin")),
        client.post(
            f"/admin/v1/users/{admin.id}/deactivate", headers=world.headers("second_admin")
        ),
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert not (await User.get(id=admin.id)).is_active
    assert not (await User.get(id=second.id)).is_active


async def test_usernames_one_with_the_case_folded_are_one_account_even_created_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """The rule is the login back-off's own, the case folded, and two creations at once take
    turns (diff review of 607b37e: both were made). A username is ASCII (the contract's own
    pattern, which `Text` had replaced): `сlinic` with a Cyrillic с reads as `clinic` (diff
    review of 697ef62: it was made)."""
    for look_alike in ("\u0441linic", "straße", "ｃlinic"):
        refused = await _create(client, world, "generator", "other_clinic", look_alike)
        assert (refused.status_code, refused.json()["field"]) == (422, "username"), refused.text
    assert (await _create(client, world, "generator", "other_clinic", "Road")).status_code == 201
    refused = await _create(client, world, "generator", "other_clinic", "ROAD")
    assert (refused.status_code, refused.json()["field"]) == (409, "username"), refused.text
    answers = await asyncio.gather(
        _create(client, world, "generator", "other_clinic", "Racer"),
        _create(client, world, "generator", "other_clinic", "racer"),
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    assert await User.filter(username__in=["Racer", "racer", "ROAD"]).count() == 1


async def test_a_username_differing_from_one_taken_only_in_case_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """`Clinic` beside `clinic` would read as the same user in every list and audit entry, and
    share its login back-off (keyed case-folded): one account a name, whatever its case
    (security review)."""
    response = await _create(client, world, "generator", "other_clinic", "Clinic")
    assert (response.status_code, response.json()["field"]) == (409, "username"), response.text
    assert "as 'clinic'" in response.json()["detail"]
    assert not await User.filter(username="Clinic").exists()


async def test_a_username_logs_in_whatever_its_case(
    client: httpx.AsyncClient, world: World
) -> None:
    """Creation and the back-off fold a username's case; the login read it as written, so
    `Clinic` typed on a phone that capitalises was refused as a wrong password. It names the
    one account folded alike; of two made before creation folded (one a name, written so),
    each logs in as written and a third spelling names neither."""

    async def logged_in_as(username: str) -> str | None:
        answer = await client.post(
            "/m/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        if answer.status_code != 200:
            assert answer.status_code == 401, answer.text
            return None
        payload = answer.json()["access_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["name"])

    assert await logged_in_as("CLINIC") == "clinic"
    assert await logged_in_as("Clinic") == "clinic"
    organization = world.orgs["clinic"].id
    for twin in ("Twin", "twin"):  # as an installation of before stop 69 may hold them
        await User.create(
            username=twin,
            password_hash=auth.hash_password(PASSWORD),
            role=Role.generator,
            organization_id=organization,
        )
    assert (await logged_in_as("Twin"), await logged_in_as("twin")) == ("Twin", "twin")
    assert await logged_in_as("TWIN") is None
    assert await auth.find_account("TWIN") is None
    # A deactivated twin's own name names it, refused, never the other twin (diff review: the
    # login and `labels issue --manager Twin` took `twin`).
    await auth.deactivate_user(user_id=(await User.get(username="Twin")).id)
    assert await logged_in_as("Twin") is None
    assert await auth.find_account("Twin", active=True) is None
    assert await logged_in_as("twin") == "twin"
    # Folded as creation folds it (Python's casefold, not PostgreSQL's upper): a legacy
    # `Straße`, which makes `strasse` taken, logs in as `strasse` (diff review).
    await User.create(
        username="Straße",
        password_hash=auth.hash_password(PASSWORD),
        role=Role.generator,
        organization_id=organization,
    )
    assert await logged_in_as("strasse") == "Straße"


async def test_a_name_no_account_has_is_looked_for_by_index_not_among_every_username(
    world: World,
) -> None:
    """A refused login for a name no account has read every username and folded each in
    Python, a name an account has was found by its index: with a city's accounts, the time of
    a refusal told which names are accounts (security review). Looked for by migration 0067's
    indexes, it reads the rows that may fold to the name (here none) among 20,000."""
    conn = connections.get("default")
    await conn.execute_query(
        "INSERT INTO app_user (username, password_hash, full_name, role, organization_id,"
        " is_active, created_at) SELECT 'user_' || g, $1, '', 'generator', $2, true, now()"
        " FROM generate_series(1, 20000) g",
        [world.users["clinic"].password_hash, world.orgs["clinic"].id],
    )
    await conn.execute_query("ANALYZE app_user")
    async with in_transaction() as tx:
        await tx.execute_query("SET LOCAL enable_seqscan = off")
        (row,) = await tx.execute_query_dict(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {auth._ALIKE}", [auth.account_name("nobody_7")]
        )
        await tx.rollback()
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read = 0.0
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Relation Name") == "app_user":
            read += (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get(
                "Actual Loops", 1
            )
        nodes += node.get("Plans", [])
    assert read <= 2, read
    assert await auth.find_account("USER_7") is not None
    assert await auth.find_account("nobody_7") is None
