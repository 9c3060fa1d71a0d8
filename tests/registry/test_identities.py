"""Global identities: regions by administrative-division code, organizations by unified social
credit code (GB 32100-2015) — the validators, the service and API refusals, and the database
CHECKs of migration 0025."""

import importlib

import asyncpg
import httpx
import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from tests.factories import World
from wastetrack.core import db
from wastetrack.core.errors import ValidationFailed
from wastetrack.registry import identities
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, RegionLevel

# Public business-licence codes and the standard's own worked example (see identities.py).
VALID_CREDIT_CODES = [
    "91350100M000100Y43",  # GB 32100-2015 校验码计算方法实例, with its correct check character
    "914403001922038216",  # 华为技术有限公司
    "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司: X is the organization code's check
    "91110000600037341L",  # python-stdnum's example
    "92371000MA3MXH0E3W",  # 个体工商户 (9 2) registered in Weihai 371000
    "N2371082MA3C7K2P3R",  # shaped like a village collective (N 农业, 2 村级) in Rongcheng
    "12100000400000413X",  # a public institution registered nationally (100000)
]


@pytest.mark.parametrize("code", VALID_CREDIT_CODES)
def test_real_world_credit_codes_are_accepted(code: str) -> None:
    assert identities.normalize_credit_code(code) == code


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("9144030071526726xg", "9144030071526726XG"),
        (" 91 350100 M000100Y4-3 ", "91350100M000100Y43"),
    ],
)
def test_credit_codes_are_normalized_to_upper_case_without_separators(
    typed: str, stored: str
) -> None:
    assert identities.normalize_credit_code(typed) == stored


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("9144030071526726X", "18 characters"),  # too short
        ("9144030071526726XGG", "18 characters"),  # too long
        ("91350100M000100Y4Z", "alphabet"),  # Z is not used (the standard's own example)
        ("91350100M000I00Y43", "alphabet"),  # I
        ("91350100M000O00Y43", "alphabet"),  # O
        ("91350100M000S00Y43", "alphabet"),  # S
        ("91350100M000V00Y43", "alphabet"),  # V
        ("913501A0M000100Y43", "6-digit division code"),  # a letter among characters 3–8
        ("91990000600037341B", "division code"),  # 99 is no province (check character right)
        ("91110000600037342P", "organization code"),  # GB 11714 check wrong, GB 32100 right
        ("914403001922038217", "character 18"),  # wrong check character
        ("9144030071526726XH", "character 18"),
    ],
)
def test_invalid_credit_codes_are_refused_naming_the_rule(code: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        identities.normalize_credit_code(code)
    assert refused.value.field == "credit_code"
    assert rule in refused.value.detail


def test_check_character_follows_the_standards_worked_example() -> None:
    # GB 32100-2015: weights 3^(i-1) mod 31, weighted sum 1640, 31 - 1640 mod 31 = 3.
    assert identities.CREDIT_WEIGHTS == (
        1,
        3,
        9,
        27,
        19,
        26,
        16,
        17,
        20,
        29,
        25,
        13,
        8,
        24,
        10,
        30,
        28,
    )
    assert identities.credit_check_character("91350100M000100Y4") == "3"
    assert identities.organization_check_character("71526726") == "X"


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("371082", "city", None),  # 荣成市
        ("441900", "city", None),  # 东莞市, a prefecture-level city without counties
        ("110105", "city", None),  # 北京市朝阳区
        ("371082001", "town", "371082"),  # 崖头街道
        ("371082102", "town", "371082"),  # 俚岛镇
        ("371082102001", "village", "371082102"),
    ],
)
def test_region_codes_that_fit_their_level_and_parent(
    code: str, level: str, parent: str | None
) -> None:
    assert identities.check_region_code(code, level=level, parent_code=parent) == code


@pytest.mark.parametrize(
    ("code", "level", "parent", "rule"),
    [
        ("37108", "city", None, "6 digits"),
        ("3710820", "city", None, "6 digits"),
        ("37108A", "city", None, "6 digits"),
        ("３７１０８２", "city", None, "6 digits"),  # full-width digits
        ("991082", "city", None, "province code"),
        ("370000", "city", None, "province's code"),
        ("371082001", "city", None, "6 digits"),
        ("371082", "town", "371082", "9 digits"),
        ("371083001", "town", "371082", "extends its parent's"),
        ("371082000", "town", "371082", "000"),
        ("371082001001", "town", "371082", "9 digits"),
        ("371082101001", "village", "371082001", "extends its parent's"),
        ("371082001000", "village", "371082001", "000"),
        ("3710820010011", "village", "371082001", "12 digits"),
    ],
)
def test_region_codes_are_refused_naming_code_and_the_rule(
    code: str, level: str, parent: str | None, rule: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        identities.check_region_code(code, level=level, parent_code=parent)
    assert refused.value.field == "code"
    assert rule in refused.value.detail


async def test_a_village_code_must_extend_its_towns_over_http(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/admin/v1/regions",
        headers=world.headers("admin"),
        json={
            "code": "371082101001",  # extends 石岛管理区, not 崖头街道
            "name": "错村",
            "level": "village",
            "parent_id": world.regions["town"].id,
        },
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "code"
    assert "371082001" in response.json()["detail"]


async def test_an_invalid_credit_code_is_refused_over_http(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/admin/v1/organizations",
        headers=world.headers("admin"),
        json={
            "name": "某运输公司",
            "kind": "carrier",
            "region_id": world.regions["city"].id,
            "credit_code": "914403001922038217",
        },
    )
    assert response.status_code == 422
    assert response.json()["field"] == "credit_code"
    assert "character 18" in response.json()["detail"]


async def test_credit_code_is_stored_upper_case_and_the_region_code_returned(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.headers("admin")
    created = await client.post(
        "/admin/v1/organizations",
        headers=h,
        json={
            "name": "荣成再生资源公司",
            "kind": "carrier",
            "region_id": world.regions["town"].id,
            "credit_code": "9144030071526726xg",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["credit_code"] == "9144030071526726XG"
    assert created.json()["region_code"] == "371082001"
    again = await client.post(
        "/admin/v1/organizations",
        headers=h,
        json={
            "name": "重复",
            "kind": "carrier",
            "region_id": world.regions["city"].id,
            "credit_code": "9144030071526726XG",
        },
    )
    assert again.status_code == 409 and again.json()["field"] == "credit_code"
    moved = await client.patch(
        f"/admin/v1/organizations/{created.json()['id']}",
        headers=h,
        json={"region_id": world.regions["other_town"].id, "credit_code": "91110000600037341l"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["region_code"] == "371082101"
    assert moved.json()["credit_code"] == "91110000600037341L"
    bad = await client.patch(
        f"/admin/v1/organizations/{created.json()['id']}",
        headers=h,
        json={"credit_code": "91110000600037341X"},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "credit_code"
    found = await client.get(
        "/admin/v1/organizations", headers=h, params={"credit_code": "91110000-600037341l"}
    )
    assert [o["id"] for o in found.json()] == [created.json()["id"]], found.text
    typo = await client.get("/admin/v1/organizations", headers=h, params={"credit_code": "x"})
    assert typo.status_code == 422 and typo.json()["field"] == "credit_code"


async def test_organizations_are_found_by_credit_code(world: World) -> None:
    org = await registry.create_organization(
        name="华为", kind=OrganizationKind.enterprise, region_id=world.regions["city"].id,
        credit_code="914403001922038216",
    )  # fmt: skip
    found, more = await registry.list_organizations(
        principal=world.principals["admin"], credit_code="914403001922038216"
    )
    assert [o.id for o in found] == [org.id] and more is None
    with pytest.raises(ValidationFailed):
        await registry.list_organizations(principal=world.principals["admin"], credit_code="x")


async def test_a_region_under_another_citys_code_is_refused_by_the_service(world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await registry.create_region(
            code="371002001", name="环翠区某街道", level=RegionLevel.town,
            parent_id=world.regions["city"].id,
        )  # fmt: skip
    assert refused.value.field == "code"


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "INSERT INTO region (code, name, level, path) VALUES ('T001', 'x', 'town', '/')",
            "region_code_format",
        ),
        (
            "INSERT INTO region (code, name, level, path) VALUES ('371082001', 'x', 'city', '/')",
            "region_code_format",
        ),
        (
            "INSERT INTO organization (name, kind, region_id, credit_code, created_at)"
            " SELECT 'x', 'carrier', id, '9144030071526726xg', now() FROM region LIMIT 1",
            "organization_credit_code_format",
        ),
        (
            "INSERT INTO organization (name, kind, region_id, credit_code, created_at)"
            " SELECT 'x', 'carrier', id, '91350100M000100Y4Z', now() FROM region LIMIT 1",
            "organization_credit_code_format",
        ),
    ],
)
async def test_database_checks_refuse_bad_codes_written_with_raw_sql(
    world: World, sql: str, constraint: str
) -> None:
    with pytest.raises(IntegrityError, match=constraint):
        await connections.get("default").execute_query(sql)


# --- the migration on a database that already holds rows ---------------------------------------

MIGRATION = importlib.import_module("migrations.0025_global_identities").Migration


class _Editor:
    """What 0025's operations need of a schema editor: run SQL, here on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def _run_sql(self, sql: str) -> None:
        await self.conn.execute(sql)


async def test_migration_keeps_old_rows_and_guards_new_ones(database_url: str) -> None:
    """0025's own operations, replayed in a rolled-back transaction on a database whose rows
    predate them: an old bad region is kept (the CHECK guards new rows but stays NOT VALID),
    an old lower-case credit code is normalized (that CHECK is validated)."""
    conn = await asyncpg.connect(**db.credentials_from_url(database_url))
    try:
        async with conn.transaction():
            await conn.execute(
                "ALTER TABLE region DROP CONSTRAINT region_code_format;"
                "ALTER TABLE region DROP CONSTRAINT region_path_format;"  # 0055's, after this
                "ALTER TABLE organization DROP CONSTRAINT organization_credit_code_format;"
                "INSERT INTO region (code, name, level, path) VALUES ('R-OLD', 'old', 'city', '/');"
                "INSERT INTO organization (name, kind, region_id, credit_code, created_at)"
                " SELECT 'old', 'carrier', id, ' 9144030071526726xg ', now() FROM region"
            )
            for operation in MIGRATION.operations:
                await operation.database_forward("wastetrack", None, None, _Editor(conn))
            validated = dict(
                await conn.fetch(
                    "SELECT conname, convalidated FROM pg_constraint WHERE conname IN"
                    " ('region_code_format', 'organization_credit_code_format')"
                )
            )
            stored = await conn.fetchval("SELECT credit_code FROM organization WHERE name = 'old'")
            refused = False
            try:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO region (code, name, level, path)"
                        " VALUES ('R-NEW', 'n', 'city', '/')"
                    )
            except asyncpg.CheckViolationError:
                refused = True
            raise _RollBack
    except _RollBack:
        pass
    finally:
        await conn.close()
    assert validated == {"region_code_format": False, "organization_credit_code_format": True}
    assert stored == "9144030071526726XG"
    assert refused


class _RollBack(Exception):
    pass


@pytest.mark.parametrize(
    ("own", "kind"),
    [
        ("001", "community"),
        ("199", "community"),
        ("200", "village"),
        ("399", "village"),
        ("400", None),
        ("999", None),
    ],
)
def test_a_village_level_code_tells_a_community_from_a_village(own: str, kind: str | None) -> None:
    assert identities.settlement_kind(f"371082001{own}") == kind
