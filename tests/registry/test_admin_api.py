"""The registry through the admin API."""

import json

import httpx
import pytest

from tests.factories import World
from wastetrack.registry.models import Region


async def test_admin_builds_a_region_tree_with_an_organization_and_user(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.headers("admin")
    town = await client.post(
        "/admin/v1/regions",
        headers=h,
        json={
            "code": "371082102",
            "name": "俚岛镇",
            "level": "town",
            "parent_id": world.regions["city"].id,
        },
    )
    assert town.status_code == 201
    assert town.json()["path"] == f"/{world.regions['city'].id}/{town.json()['id']}/"
    village = await client.post(
        "/admin/v1/regions",
        headers=h,
        json={
            "code": "371082102001",
            "name": "烟墩角村",
            "level": "village",
            "parent_id": town.json()["id"],
        },
    )
    shop = await client.post(
        "/admin/v1/organizations",
        headers=h,
        json={"name": "俚岛农资店", "kind": "agri_input_shop", "region_id": village.json()["id"]},
    )
    assert shop.status_code == 201
    user = await client.post(
        "/admin/v1/users",
        headers=h,
        json={
            "username": "lidao_shop",
            # Taken as typed, spaces and all, as the login form takes it.
            "password": " a-long-password ",
            "role": "generator",
            "organization_id": shop.json()["id"],
        },
    )
    assert user.status_code == 201
    login = await client.post(
        "/m/v1/auth/token", data={"username": "lidao_shop", "password": " a-long-password "}
    )
    assert login.status_code == 200


async def test_region_levels_must_nest(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/admin/v1/regions",
        headers=world.headers("admin"),
        json={"code": "X1", "name": "x", "level": "village", "parent_id": world.regions["city"].id},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "level"
    # An unknown parent is named as the request names it.
    orphan = {"code": "371082001999", "name": "x", "level": "village", "parent_id": 999999}
    unknown = await client.post("/admin/v1/regions", headers=world.headers("admin"), json=orphan)
    assert (unknown.status_code, unknown.json()["field"]) == (404, "parent_id"), unknown.text


async def test_beds_belong_to_clinics_and_hospitals(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/admin/v1/organizations",
        headers=world.headers("admin"),
        json={
            "name": "x",
            "kind": "carrier",
            "region_id": world.regions["city"].id,
            "bed_count": 3,
        },
    )
    assert response.status_code == 422
    assert response.json()["field"] == "bed_count"
    patched = await client.patch(
        f"/admin/v1/organizations/{world.orgs['clinic'].id}",
        headers=world.headers("admin"),
        json={"bed_count": 12},
    )
    assert patched.json()["bed_count"] == 12
    # A name or a region is never emptied: null is refused naming it, and nothing changes.
    for field in ("name", "region_id"):
        nulled = await client.patch(
            f"/admin/v1/organizations/{world.orgs['clinic'].id}",
            headers=world.headers("admin"),
            json={field: None},
        )
        assert (nulled.status_code, nulled.json()["field"]) == (422, field), nulled.text


async def test_licences_name_known_categories_and_methods(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"/admin/v1/organizations/{world.orgs['facility'].id}/licences"
    bad = await client.post(
        url, headers=world.headers("admin"), json={"category_key": "hw.08", "method_codes": ["R99"]}
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "method_codes"
    not_facility = await client.post(
        f"/admin/v1/organizations/{world.orgs['carrier'].id}/licences",
        headers=world.headers("admin"),
        json={"category_key": "hw.08", "method_codes": ["R9"]},
    )
    assert not_facility.status_code == 422
    ok = await client.post(
        url,
        headers=world.headers("admin"),
        json={"category_key": "hw.08", "method_codes": ["R9"], "permit_number": "鲁危证 001"},
    )
    assert ok.status_code == 201
    listed = await client.get(url, headers=world.headers("manager"))
    assert {lic["category_key"] for lic in listed.json()} == {"med.hw01", "hw.08"}


async def test_vessel_registration_rules(client: httpx.AsyncClient, world: World) -> None:
    h = world.headers("admin")
    body = {
        "name": "鲁荣渔 56789",
        "registration_number": "370000-2019-001",
        "gross_tonnage": "120",
        "home_port_id": world.orgs["port"].id,
        "mmsi": "412345678",
    }
    assert (await client.post("/admin/v1/vessels", headers=h, json=body)).status_code == 201
    assert (await client.post("/admin/v1/vessels", headers=h, json=body)).status_code == 409
    wrong_port = {**body, "registration_number": "B", "home_port_id": world.orgs["clinic"].id}
    response = await client.post("/admin/v1/vessels", headers=h, json=wrong_port)
    assert response.json()["field"] == "home_port_id"
    bad_imo = {**body, "registration_number": "C", "imo_number": "12"}
    assert (await client.post("/admin/v1/vessels", headers=h, json=bad_imo)).json()[
        "field"
    ] == "imo_number"


async def test_only_admins_change_the_registry(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/admin/v1/organizations",
        headers=world.headers("manager"),
        json={"name": "x", "kind": "carrier", "region_id": world.regions["city"].id},
    )
    assert response.status_code == 403
    assert (
        await client.get("/admin/v1/organizations", headers=world.headers("clinic"))
    ).status_code == 403


async def test_town_manager_lists_only_their_subtree(
    client: httpx.AsyncClient, world: World
) -> None:
    orgs = (
        await client.get("/admin/v1/organizations", headers=world.headers("town_manager"))
    ).json()
    assert {o["name"] for o in orgs} == {"石岛卫生院", "石岛渔港", "石岛管理区环保所"}


async def test_malformed_json_names_the_problem(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/admin/v1/regions",
        headers={**world.headers("admin"), "content-type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["rule"] == "json_invalid"
    # The body as a whole is at fault, not a field named after the parser's position.
    assert problem["field"] is None and problem["errors"][0]["field"] is None
    assert problem["detail"].startswith("the body is not valid JSON: Expecting property name")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"name": "\xff"}', "the body is not valid JSON: its bytes are not UTF-8"),
        # Python's parser reads these, guessing from the first bytes; JSON between systems
        # is UTF-8 (RFC 8259 §8.1).
        ('{"name": "俚岛镇"}'.encode("utf-16"), "the body is not valid JSON: its bytes are not"),
        ('{"name": "俚岛镇"}'.encode("utf-32"), "the body is not valid JSON: its bytes are not"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not valid JSON: it nests arrays"),
        (b'{"parent_id": ' + b"9" * 5000 + b"}", "the body is not valid JSON: it holds a number"),
    ],
    ids=["not-utf8", "utf16", "utf32", "too-deep", "too-long-a-number"],
)
async def test_a_body_the_parser_cannot_read_is_refused_as_json_invalid(
    client: httpx.AsyncClient, world: World, body: bytes, why: str
) -> None:
    # FastAPI answers these with a bare 400 "error parsing the body"; they are the same fault
    # as a syntax error and get the same answer, naming the rule.
    response = await client.post(
        "/admin/v1/regions",
        headers={**world.headers("admin"), "content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert problem["field"] is None
    assert [(e["field"], e["rule"]) for e in problem["errors"]] == [(None, "json_invalid")]
    assert problem["detail"].startswith(why)


@pytest.mark.parametrize("body", [b"", b"null", b"[]"])
async def test_a_body_that_is_no_object_is_refused_naming_no_field(
    client: httpx.AsyncClient, world: World, body: bytes
) -> None:
    response = await client.post(
        "/admin/v1/regions",
        headers={**world.headers("admin"), "content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] is None and problem["errors"][0]["field"] is None
    assert not problem["detail"].startswith(":")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/xml",
        # JSON is UTF-8 (RFC 8259 §8.1): a body declared in another set was read as UTF-8
        # all the same (a 422 json_invalid for UTF-16, Latin-1's `Ã©` read as `é`).
        "application/json; charset=latin-1",
        'application/json; charset="UTF-16"',
    ],
)
async def test_a_json_body_under_another_media_type_names_the_content_type(
    client: httpx.AsyncClient, world: World, content_type: str | None
) -> None:
    """FastAPI reads a body as JSON only under a JSON media type; `curl -d` sends a form's. The
    header is the fault, and the answer names it rather than the body. UTF-8 named in any
    case is taken."""
    body = json.dumps(
        {
            "code": "371082102",
            "name": "俚岛镇",
            "level": "town",
            "parent_id": world.regions["city"].id,
        }
    ).encode()
    headers = world.headers("admin")
    if content_type is not None:
        headers["content-type"] = content_type
    response = await client.post("/admin/v1/regions", headers=headers, content=body)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["field"]) == ("unsupported_media_type", "Content-Type")
    assert [(e["field"], e["rule"]) for e in problem["errors"]] == [("Content-Type", "media_type")]
    assert not await Region.exists(code="371082102")
    headers["content-type"] = "application/json; charset=UTF-8"
    taken = await client.post("/admin/v1/regions", headers=headers, content=body)
    assert taken.status_code == 201, taken.text
