"""The audit log: one entry per registry, user, licence and API key change, written with the
change (or not at all), readable by managers (their region), auditors and admins."""

import asyncio
import csv
import io
import json
from datetime import datetime, timedelta

import asyncpg
import httpx
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from tests.factories import CITY_TODAY, World
from wastetrack.audit import service as audit
from wastetrack.audit.models import AuditEntry
from wastetrack.auth import service as auth
from wastetrack.changes import paging
from wastetrack.changes.models import START, Position
from wastetrack.changes.paging import encode_cursor
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind


async def entries(client: httpx.AsyncClient, world: World, who: str = "auditor", **params: object):  # type: ignore[no-untyped-def]
    response = await client.get("/m/v1/audit", headers=world.headers(who), params=params)
    assert response.status_code == 200, response.text
    return response.json()["entries"]


@pytest.fixture
async def baseline(world: World) -> str:
    """The cursor after the last entry written while building the world: each test reads what
    follows it."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT txid::text AS txid, id FROM audit_entry ORDER BY txid DESC, id DESC LIMIT 1"
    )
    last = Position(txid=int(rows[0]["txid"]), id=rows[0]["id"]) if rows else START
    return encode_cursor(last)


async def test_an_organization_update_is_recorded_with_before_after_actor_and_request(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    org = world.orgs["clinic"]
    response = await client.patch(
        f"/admin/v1/organizations/{org.id}",
        headers={**world.headers("admin"), "X-Request-ID": "audit-test-1." + "x" * 51},
        json={"name": "北山社区卫生服务站", "bed_count": 8},
    )
    assert response.status_code == 200, response.text
    [entry] = await entries(client, world, subject_type="organization", after=baseline)
    assert entry["action"] == "organization.updated"
    assert entry["subject_id"] == str(org.id) and entry["organization_id"] == org.id
    assert entry["before"]["name"] == "北山社区卫生室" and entry["before"]["bed_count"] == 6
    assert entry["after"]["name"] == "北山社区卫生服务站" and entry["after"]["bed_count"] == 8
    assert entry["actor_user_id"] == world.users["admin"].id
    # The client's id as it holds it, of any length the service takes (64 characters here).
    assert entry["request_id"] == response.headers["X-Request-ID"] == "audit-test-1." + "x" * 51


async def test_the_world_s_registry_was_audited_as_it_was_built(world: World) -> None:
    actions = set(await AuditEntry.all().values_list("action", flat=True))
    assert {"region.created", "organization.created", "licence.created"} <= actions


async def test_a_new_user_is_recorded_without_the_password_hash(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    response = await client.post(
        "/admin/v1/users",
        headers=world.headers("admin"),
        json={
            "username": "new_nurse",
            "password": "a-long-password",
            "role": "generator",
            "organization_id": world.orgs["clinic"].id,
        },
    )
    assert response.status_code == 201, response.text
    [entry] = await entries(client, world, subject_type="user", after=baseline)
    assert entry["action"] == "user.created" and entry["after"]["username"] == "new_nurse"
    assert "password_hash" not in entry["after"]
    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM audit_entry WHERE after::text LIKE '%argon2%'"
        " OR after::text LIKE '%a-long-password%'"
    )
    assert rows[0]["n"] == 0


async def test_deactivating_a_user_is_recorded(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    await auth.deactivate_user(user_id=world.users["collector"].id)
    [entry] = await entries(client, world, subject_type="user", after=baseline)
    assert entry["action"] == "user.deactivated"
    assert entry["before"]["is_active"] is True and entry["after"]["is_active"] is False
    assert entry["actor_user_id"] is None  # the CLI and jobs act as nobody in particular


async def test_licence_changes_are_recorded_as_created_then_updated(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    url = f"/admin/v1/organizations/{world.orgs['facility'].id}/licences"
    for methods in (["D10"], ["D10", "D9"]):
        body = {"category_key": "med.sharps", "method_codes": methods}
        response = await client.post(url, headers=world.headers("admin"), json=body)
        assert response.status_code == 201, response.text
    created, updated = await entries(client, world, subject_type="licence", after=baseline)
    assert created["action"] == "licence.created" and created["before"] is None
    assert updated["action"] == "licence.updated"
    assert updated["before"]["method_codes"] == ["D10"]
    assert updated["after"]["method_codes"] == ["D10", "D9"]


async def test_issuing_and_revoking_a_key_is_recorded_without_its_secret(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    issued = await client.post(
        "/m/v1/api-keys",
        headers=world.headers("admin"),
        json={"name": "BI", "scopes": ["read"], "organization_id": world.orgs["bureau"].id},
    )
    key = issued.json()
    await client.delete(f"/m/v1/api-keys/{key['id']}", headers=world.headers("admin"))
    found = await entries(client, world, subject_type="api_key", after=baseline)
    assert [e["action"] for e in found] == ["api_key.issued", "api_key.revoked"]
    assert found[1]["before"]["revoked_at"] is None and found[1]["after"]["revoked_at"]
    assert all(e["actor_user_id"] == world.users["admin"].id for e in found)
    text = str(found)
    assert key["key"] not in text and "secret_hash" not in text


async def test_a_failed_change_writes_no_entry(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    org = world.orgs["carrier"]
    response = await client.patch(
        f"/admin/v1/organizations/{org.id}", headers=world.headers("admin"), json={"bed_count": 3}
    )
    assert response.status_code == 422
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await registry.create_organization(
                name="回滚测试", kind=OrganizationKind.carrier, region_id=world.regions["city"].id
            )
            raise RuntimeError("a later step of the same request fails")
    assert await entries(client, world, who="admin", after=baseline) == []


async def test_the_log_refuses_edits(world: World) -> None:
    conn = connections.get("default")
    for sql in ("UPDATE audit_entry SET action = 'x'", "DELETE FROM audit_entry"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute_query(sql)


@pytest.mark.parametrize(
    ("who", "status"), [("clinic", 403), ("carrier", 403), ("manager", 200), ("auditor", 200)]
)
async def test_managers_and_auditors_read_the_log_clinics_do_not(
    client: httpx.AsyncClient, world: World, who: str, status: int
) -> None:
    for path in ("/m/v1/audit", "/m/v1/audit.csv"):
        response = await client.get(path, headers=world.headers(who))
        assert response.status_code == status, (path, response.text)


async def test_a_manager_reads_the_entries_of_their_region_only(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    for key in ("clinic", "other_clinic"):
        org = world.orgs[key]
        await client.patch(
            f"/admin/v1/organizations/{org.id}",
            headers=world.headers("admin"),
            json={"contact_phone": "0631-7000000"},
        )
    town = await entries(client, world, who="town_manager", after=baseline)
    assert [e["organization_id"] for e in town] == [world.orgs["other_clinic"].id]
    city = await entries(client, world, who="manager", after=baseline)
    assert {e["organization_id"] for e in city} == {
        world.orgs["clinic"].id,
        world.orgs["other_clinic"].id,
    }


async def test_pages_follow_each_other_and_the_csv_holds_the_same_entries(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await client.get("/m/v1/audit", headers=world.headers("admin"), params={"limit": 2})
    second = await client.get(
        "/m/v1/audit",
        headers=world.headers("admin"),
        params={"limit": 2, "after": first.json()["next"]},
    )
    ids = [e["id"] for e in first.json()["entries"] + second.json()["entries"]]
    assert ids == sorted(ids) and len(set(ids)) == 4
    exported = await client.get("/m/v1/audit.csv", headers=world.headers("admin"))
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows[:4]] == ids
    assert rows[0]["action"] == "region.created"


async def test_region_and_port_changes_are_recorded(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    admin = world.headers("admin")
    village = world.regions["village"].id
    sorting = await client.put(
        f"/admin/v1/regions/{village}/sorting",
        headers=admin,
        json={"sorted_collection_since": "2026-03-01"},
    )
    assert sorting.status_code == 200, sorting.text
    berth = await client.post(
        f"/admin/v1/ports/{world.orgs['port'].id}/berths",
        headers=admin,
        json={"name": "一号泊位", "latitude": 36.9, "longitude": 122.4},
    )
    assert berth.status_code == 201, berth.text
    region, added = await entries(client, world, who="admin", after=baseline)
    assert region["action"] == "region.updated"
    assert region["before"]["sorted_collection_since"] is None
    assert region["after"]["sorted_collection_since"] == "2026-03-01"
    assert added["action"] == "berth.created" and added["after"]["name"] == "一号泊位"


async def _held_open(name: str, region_id: int) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """An organization created (and its entry written) in a transaction left open until the
    event returned is set; the task ends once it has committed."""
    written, release = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        async with in_transaction():
            await registry.create_organization(
                name=name, kind=OrganizationKind.carrier, region_id=region_id
            )
            written.set()
            await asyncio.wait_for(release.wait(), timeout=10)

    task = asyncio.create_task(slow())
    await asyncio.wait_for(written.wait(), timeout=10)
    return release, task


async def test_an_entry_committed_late_is_not_skipped_by_a_poller(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    """Entry ids are given as entries are written, mid-transaction: a poller that read a later
    entry of a transaction that committed first must still get the earlier one, once its
    transaction commits."""
    city = world.regions["city"].id
    release, task = await _held_open("先写后交", city)
    async with in_transaction():
        await registry.create_organization(
            name="后写先交", kind=OrganizationKind.carrier, region_id=city
        )
    params = {"subject_type": "organization", "after": baseline}
    while_open = await client.get("/m/v1/audit", headers=world.headers("admin"), params=params)
    assert while_open.json() == {"entries": [], "next": baseline}
    # A file has no cursor: held back, the committed entry is announced by a link to the next
    # file (a file without one holds every entry committed so far).
    held = await client.get("/m/v1/audit.csv", headers=world.headers("admin"), params=params)
    assert held.content.decode("utf-8-sig").count("\n") == 1  # the header alone
    next_file = held.headers["link"].removeprefix("<").removesuffix('>; rel="next"')

    release.set()
    await task
    params["after"] = while_open.json()["next"]
    found = await entries(client, world, "admin", **params)
    assert [e["after"]["name"] for e in found] == ["先写后交", "后写先交"]
    rest = await client.get(next_file, headers=world.headers("admin"))
    rows = list(csv.DictReader(io.StringIO(rest.content.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in found]
    assert "link" not in rest.headers


async def test_the_csv_gives_the_city_s_clock_and_links_to_the_next_file_when_more_remain(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = await entries(client, world, "admin", limit=500)
    assert len(listed) > 4
    monkeypatch.setattr(audit, "MAX_EXPORT", 3)
    rows: list[dict[str, str]] = []
    files, url = 0, "/m/v1/audit.csv"
    while url:
        exported = await client.get(url, headers=world.headers("admin"))
        assert exported.status_code == 200, exported.text
        got = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert len(got) <= 3
        rows, files = rows + got, files + 1
        link = exported.headers.get("link")
        url = link.removeprefix("<").removesuffix('>; rel="next"') if link else ""
    assert files == -(-len(listed) // 3)
    assert [int(r["id"]) for r in rows] == [e["id"] for e in listed]
    for row, entry in zip(rows, listed, strict=True):
        at = datetime.fromisoformat(row["at"])
        assert at.utcoffset() == timedelta(hours=8)  # Asia/Shanghai
        assert at == datetime.fromisoformat(entry["at"])
    # Exactly as many as a file holds: no link to an empty file.
    monkeypatch.setattr(audit, "MAX_EXPORT", len(listed))
    whole = await client.get("/m/v1/audit.csv", headers=world.headers("admin"))
    assert "link" not in whole.headers
    assert whole.content.decode("utf-8-sig").count("\n") == len(listed) + 1


async def test_the_csv_continues_from_a_cursor_with_its_filters(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await client.get(
        "/m/v1/audit",
        headers=world.headers("admin"),
        params={"subject_type": "organization", "limit": 1},
    )
    rest = await entries(
        client, world, "admin", subject_type="organization", after=first.json()["next"]
    )
    exported = await client.get(
        "/m/v1/audit.csv",
        headers=world.headers("admin"),
        params={"subject_type": "organization", "after": first.json()["next"]},
    )
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in rest] and rows


@pytest.mark.parametrize("path", ["/m/v1/audit", "/m/v1/audit.csv"])
async def test_an_after_that_is_not_a_cursor_is_refused_naming_after(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    for forged in ("not-a-cursor", "15.3", "-15"):
        response = await client.get(path, headers=world.headers("admin"), params={"after": forged})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "after"


async def test_an_entry_id_saved_before_cursors_continues_from_that_entry(
    client: httpx.AsyncClient, world: World
) -> None:
    """A poller that saved an integer `next` before the pages followed transactions reads on
    from that entry: none after it skipped (entries written since, in transactions of their
    own, all follow it; those before cursors came, in transaction 0, those after the id). An
    id beyond the last entry written before was never such a `next`: read as one, it replayed
    the whole log since; it is refused naming `after`."""
    for day in (1, 2):  # two entries as written before cursors came (migration 0038's default)
        await connections.get("default").execute_query(
            "INSERT INTO audit_entry (at, action, subject_type, subject_id, region_path, txid)"
            " VALUES (now(), 'region.updated', 'region', $1, '', '0'::xid8)",
            [f"legacy-{day}"],
        )
    everything = await entries(client, world, "admin")
    old = [e for e in everything if e["subject_id"].startswith("legacy-")]
    assert [e["subject_id"] for e in old] == ["legacy-1", "legacy-2"]
    after = await entries(client, world, "admin", after=str(old[0]["id"]))
    assert {e["id"] for e in everything if e["id"] != old[0]["id"]} <= {e["id"] for e in after}
    assert old[0]["id"] not in {e["id"] for e in after}
    for never in (old[1]["id"] + 1, 10**12):
        refused = await client.get(
            "/m/v1/audit", headers=world.headers("admin"), params={"after": str(never)}
        )
        assert (refused.status_code, refused.json()["field"]) == (422, "after"), never


async def test_the_figures_a_manager_enters_are_recorded(
    client: httpx.AsyncClient, world: World, baseline: str
) -> None:
    """A zero-waste cell registered, its assessment and an indicator's value each move a figure
    the city is judged on: each is in the log with who entered it, read by the region's
    auditor."""
    manager = world.headers("manager")
    made = await client.post(
        "/m/v1/cells",
        headers=manager,
        json={
            "cell_type": "community",
            "name": "东山社区",
            "region_id": world.regions["village"].id,
        },
    )
    assert made.status_code == 201, made.text
    cell_id = made.json()["id"]
    entered = {
        "reduction_measures": {"value": "95", "evidence": "现场检查记录"},
        "publicity": {"value": "90", "evidence": "宣传活动照片"},
    }
    assessed = await client.post(
        f"/m/v1/cells/{cell_id}/assessments",
        headers=manager,
        json={"level": "county", "assessed_on": CITY_TODAY.isoformat(), "entered": entered},
    )
    assert assessed.status_code == 201, assessed.text
    value = await client.post(
        "/m/v1/indicators/straw_utilization/values",
        headers=manager,
        json={"value": "96.5", "period_end": "2025-12-31", "source_note": "市农业农村局年报"},
    )
    assert value.status_code == 201, value.text
    found = await entries(client, world, after=baseline)
    by_action = {e["action"]: e for e in found}
    cell = by_action["cell.registered"]
    assert (cell["subject_type"], cell["subject_id"]) == ("cell", str(cell_id))
    assert cell["after"]["name"] == "东山社区" and cell["before"] is None
    assert cell["actor_user_id"] == world.users["manager"].id
    assessment = by_action["cell_assessment.created"]
    assert assessment["subject_id"] == str(assessed.json()["id"])
    assert assessment["after"]["scores"]["publicity"]["value"] == "90.00"
    indicator = by_action["indicator_value.entered"]
    assert indicator["subject_type"] == "indicator_value"
    assert (indicator["after"]["value"], indicator["after"]["source_note"]) == (
        "96.50",
        "市农业农村局年报",
    )
    assert indicator["actor_user_id"] == world.users["manager"].id


@pytest.mark.parametrize("case", ["full file", "ends before the check"])
async def test_an_audit_file_links_on_while_committed_entries_are_held_back(
    client: httpx.AsyncClient,
    world: World,
    baseline: str,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """A file that fills up exactly while an entry is held back, or one read just before the
    transaction holding it back ends, still links on: neither holds every entry committed."""
    city = world.regions["city"].id
    if case == "full file":
        monkeypatch.setattr(audit, "MAX_EXPORT", 2)
        for name in ("一", "二"):
            await registry.create_organization(
                name=name, kind=OrganizationKind.carrier, region_id=city
            )
    release, task = await _held_open("先写后交", city)
    await registry.create_organization(
        name="后写先交", kind=OrganizationKind.carrier, region_id=city
    )
    if case == "ends before the check":
        looked = paging.committed_after

        async def after_it_ends(**given: object) -> bool:
            release.set()
            await task
            return await looked(**given)  # type: ignore[arg-type]

        monkeypatch.setattr(paging, "committed_after", after_it_ends)
    params = {"subject_type": "organization", "after": baseline}
    try:
        got = await client.get("/m/v1/audit.csv", headers=world.headers("admin"), params=params)
    finally:
        release.set()
        await task
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert len(rows) == (2 if case == "full file" else 0)
    url = got.headers["link"].removeprefix("<").removesuffix('>; rel="next"')
    rest = await client.get(url, headers=world.headers("admin"))
    names = [
        json.loads(r["after"])["name"]
        for r in csv.DictReader(io.StringIO(rest.content.decode("utf-8-sig")))
    ]
    assert names == ["先写后交", "后写先交"]
