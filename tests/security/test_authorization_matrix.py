"""Who may call what: every route of the app (walked from `app.routes`, so a new route cannot
slip past) × every role, and reads and tagging across own organization / another
organization / another region."""

import re
from datetime import date, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.conftest import restore_pinned_calendar
from tests.factories import CITY_TODAY, World, make_user, medical_bag
from wastetrack.auth.models import Role
from wastetrack.batches.models import Label
from wastetrack.core import cityday, codes
from wastetrack.registry import service as registry
from wastetrack.registry import vessels
from wastetrack.registry.models import OrganizationKind, Vessel

ROLES = (
    "anonymous",
    "clinic",
    "collector",
    "carrier",
    "facility",
    "port",
    "manager",
    "auditor",
    "admin",
)


def route_table(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, however its routers are nested."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list) -> None:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:
                for context in contexts():
                    found.update((m, context.path) for m in context.methods)
            elif isinstance(route, APIRoute) or hasattr(route, "methods"):
                found.update((m, route.path) for m in (route.methods or ()))
            elif hasattr(route, "routes") and not route.path.startswith("/static"):
                walk(route.routes)

    walk(list(app.routes))
    return {(m, p) for m, p in found if m != "HEAD"}


def concrete(path: str) -> str:
    """A path with its parameters filled: ids that exist nowhere, codes that name nothing."""
    path = re.sub(r"\{(\w*_id|seq)\}", "999999", path)
    path = path.replace("{extension}", "csv").replace("{answer}", "approve")
    path = path.replace("{day}", "2026-01-05")
    return re.sub(r"\{\w+\}", "NOSUCHCODE", path)


async def call(client: httpx.AsyncClient, world: World, role: str, method: str, path: str) -> int:
    headers = world.headers(role) if role != "anonymous" else {}
    response = await client.request(method, concrete(path), headers=headers, json={})
    if response.status_code == 401:
        # RFC 9110 §15.5.2: a 401 names the scheme that would get in.
        assert response.headers.get("www-authenticate") == 'Bearer realm="wastetrack"', path
    return response.status_code


ANYONE = frozenset(ROLES)
USERS = ANYONE - {"anonymous"}
MANAGERS = frozenset({"manager", "admin"})
OVERSIGHT = frozenset({"manager", "auditor", "admin"})
ADMIN = frozenset({"admin"})
FLEET = frozenset({"carrier", "admin"})
FLEET_READERS = frozenset({"carrier", "manager", "auditor", "admin"})
# Cookie sessions: managers, auditors and admins read the dashboard, managers and admins act on
# it; others go to the login page (303) or are refused (403).
DASHBOARD = "dashboard"
DASHBOARD_ACTION = "dashboard action"
DASHBOARD_ROLES = {DASHBOARD: OVERSIGHT, DASHBOARD_ACTION: MANAGERS}

# Who gets past authentication and authorization, per route (an empty or dummy request: the
# status then says only whether the gate opened). A route missing here fails the test.
EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/admin/v1/calendar"): MANAGERS,
    ("POST", "/admin/v1/calendar/load"): ADMIN,
    ("GET", "/admin/v1/calendar/{day}"): MANAGERS,
    ("PUT", "/admin/v1/calendar/{day}"): ADMIN,
    ("GET", "/admin/v1/organizations"): MANAGERS,
    ("POST", "/admin/v1/organizations"): ADMIN,
    ("PATCH", "/admin/v1/organizations/{organization_id}"): ADMIN,
    ("GET", "/admin/v1/organizations/{organization_id}/licences"): MANAGERS,
    ("POST", "/admin/v1/organizations/{organization_id}/licences"): ADMIN,
    ("PUT", "/admin/v1/ports/{port_id}"): ADMIN,
    ("POST", "/admin/v1/ports/{port_id}/berths"): ADMIN,
    ("GET", "/admin/v1/regions"): MANAGERS,
    ("POST", "/admin/v1/regions"): ADMIN,
    ("PUT", "/admin/v1/regions/{region_id}/sorting"): ADMIN,
    ("GET", "/admin/v1/service-agreements"): USERS,
    ("POST", "/admin/v1/service-agreements"): ADMIN,
    ("POST", "/admin/v1/service-agreements/{agreement_id}/end"): ADMIN,
    ("GET", "/admin/v1/sites"): MANAGERS,
    ("POST", "/admin/v1/sites"): ADMIN,
    ("GET", "/admin/v1/users"): MANAGERS,
    ("POST", "/admin/v1/users"): ADMIN,
    ("POST", "/admin/v1/users/{user_id}/deactivate"): ADMIN,
    ("POST", "/admin/v1/users/{user_id}/sessions/revoke"): ADMIN,
    ("GET", "/admin/v1/vessels"): USERS,
    ("POST", "/admin/v1/vessels"): ADMIN,
    ("GET", "/dashboard"): DASHBOARD,
    ("GET", "/dashboard/alerts"): DASHBOARD,
    ("POST", "/dashboard/alerts/ack"): DASHBOARD,  # the form is read before the role: 422
    ("POST", "/dashboard/alerts/{alert_id}/ack"): DASHBOARD_ACTION,
    ("GET", "/dashboard/batches"): DASHBOARD,
    ("GET", "/dashboard/login"): ANYONE,
    ("POST", "/dashboard/login"): ANYONE,
    ("POST", "/dashboard/logout"): ANYONE,
    ("GET", "/docs"): ANYONE,
    ("GET", "/openapi.json"): ANYONE,
    ("GET", "/healthz"): ANYONE,
    ("GET", "/app"): ANYONE,
    ("GET", "/app/"): ANYONE,
    ("GET", "/app/labels.json"): ANYONE,
    ("GET", "/app/manifest.webmanifest"): ANYONE,
    ("GET", "/app/sw.js"): ANYONE,
    ("GET", "/readyz"): ANYONE,
    ("GET", "/metrics"): ANYONE,
    ("POST", "/m/v1/auth/logout"): ANYONE,
    ("POST", "/m/v1/auth/refresh"): ANYONE,
    ("POST", "/m/v1/auth/token"): ANYONE,
    ("POST", "/p/v1/credits"): ANYONE,
    ("GET", "/p/v1/checkpoints/key"): ANYONE,
    ("GET", "/q/{token:printed}"): ANYONE,
    ("GET", "/r/{token:printed}"): ANYONE,
    ("GET", "/t/{token:printed}"): ANYONE,
    ("GET", "/m/v1/alerts"): USERS,
    ("GET", "/m/v1/api-keys"): ADMIN,
    ("POST", "/m/v1/api-keys"): ADMIN,
    ("DELETE", "/m/v1/api-keys/{key_id}"): ADMIN,
    ("GET", "/m/v1/audit"): OVERSIGHT,
    ("GET", "/m/v1/audit.csv"): OVERSIGHT,
    ("POST", "/m/v1/alerts/refresh"): MANAGERS,
    ("POST", "/m/v1/alerts/{alert_id}/ack"): MANAGERS,
    ("GET", "/m/v1/batches"): USERS,
    ("POST", "/m/v1/batches"): USERS,
    ("GET", "/m/v1/batches/{code}"): USERS,
    ("GET", "/m/v1/batches/{code}/epcis.jsonld"): USERS,
    ("GET", "/m/v1/batches/{code}/events"): USERS,
    ("GET", "/m/v1/batches/{code}/fate"): USERS,
    ("GET", "/m/v1/batches/{code}/label.png"): USERS,
    ("GET", "/m/v1/batches/{code}/trajectory"): USERS,
    ("GET", "/m/v1/batches/{code}/verify"): USERS,
    ("GET", "/m/v1/berths/{code}/label.png"): USERS,
    ("GET", "/m/v1/catalog/categories"): USERS,
    ("GET", "/m/v1/catalog/methods"): USERS,
    ("GET", "/m/v1/catalog/streams"): USERS,
    ("GET", "/m/v1/changes"): USERS,
    ("GET", "/m/v1/cell-types"): USERS,
    ("GET", "/m/v1/cells"): MANAGERS,
    ("POST", "/m/v1/cells"): MANAGERS,
    ("POST", "/m/v1/cells/{cell_id}/assessments"): MANAGERS,
    ("GET", "/m/v1/cells/{cell_id}/assessments"): MANAGERS,
    ("GET", "/m/v1/checkpoints"): OVERSIGHT,
    ("GET", "/m/v1/checkpoints/proof"): OVERSIGHT,
    ("GET", "/m/v1/cleanups"): USERS,
    ("POST", "/m/v1/cleanups"): USERS,
    ("GET", "/m/v1/deliveries"): USERS,
    ("GET", "/m/v1/drivers"): FLEET_READERS,
    ("POST", "/m/v1/drivers"): FLEET,
    ("DELETE", "/m/v1/drivers/{driver_id}"): FLEET,
    ("POST", "/m/v1/deliveries"): USERS,
    ("GET", "/m/v1/deliveries/{delivery_id}"): USERS,
    ("GET", "/m/v1/deliveries/{delivery_id}/receipt.pdf"): USERS,
    ("POST", "/m/v1/events"): USERS,
    ("GET", "/m/v1/float-replacements"): USERS,
    ("POST", "/m/v1/float-replacements"): USERS,
    ("GET", "/m/v1/indicators"): MANAGERS,
    ("POST", "/m/v1/indicators/{code}/values"): MANAGERS,
    ("POST", "/m/v1/labels"): MANAGERS,
    ("GET", "/m/v1/manifests"): USERS,
    ("POST", "/m/v1/manifests"): USERS,
    ("GET", "/m/v1/manifests/{manifest_id}"): USERS,
    ("POST", "/m/v1/manifests/{manifest_id}/arrival"): USERS,
    ("POST", "/m/v1/manifests/{manifest_id}/cancel"): USERS,
    ("POST", "/m/v1/manifests/{manifest_id}/decision"): USERS,
    ("POST", "/m/v1/manifests/{manifest_id}/legs/{seq}/sign"): USERS,
    ("GET", "/m/v1/manifests/{manifest_id}/manifest.pdf"): USERS,
    ("POST", "/m/v1/manifests/{manifest_id}/revisions"): USERS,
    ("POST", "/m/v1/manifests/{manifest_id}/revisions/{revision_id}/{answer}"): USERS,
    ("POST", "/m/v1/manifests/{manifest_id}/sign"): USERS,
    ("POST", "/m/v1/manifests/sign"): USERS,
    # The producer's own user or a manager: never a carrier, who would confirm for itself.
    ("POST", "/m/v1/organizations/{organization_id}/pins"): MANAGERS | {"clinic"},
    ("GET", "/m/v1/metrics/cells"): MANAGERS,
    ("GET", "/m/v1/metrics/mass-balance"): MANAGERS,
    ("GET", "/m/v1/metrics/medical-coverage"): MANAGERS,
    ("GET", "/m/v1/metrics/pesticide"): MANAGERS,
    ("GET", "/m/v1/metrics/ports"): MANAGERS,
    ("GET", "/m/v1/metrics/sea-areas"): MANAGERS,
    ("GET", "/m/v1/metrics/sorting"): MANAGERS,
    ("GET", "/m/v1/metrics/utilization"): MANAGERS,
    ("POST", "/m/v1/pesticide/consignments"): USERS,
    ("GET", "/m/v1/pesticide/ledger.{extension}"): USERS,
    ("POST", "/m/v1/pesticide/returns"): USERS,
    ("POST", "/m/v1/pesticide/returns/{return_id}/cancel"): USERS,
    ("POST", "/m/v1/pesticide/sales"): USERS,
    ("POST", "/m/v1/pesticide/sales/{sale_id}/cancel"): USERS,
    ("POST", "/m/v1/photos"): USERS,
    ("POST", "/m/v1/pickups"): USERS,
    ("GET", "/m/v1/registers/incoming"): USERS,
    ("GET", "/m/v1/registers/inventory"): USERS,
    ("GET", "/m/v1/registers/medical-handover"): USERS,
    ("GET", "/m/v1/registers/outgoing"): USERS,
    ("GET", "/m/v1/port-calls"): USERS,
    ("POST", "/m/v1/port-calls"): USERS,
    ("POST", "/m/v1/port-calls/{port_call_id}/departure"): USERS,
    ("GET", "/m/v1/ports/{port_id}/berths"): USERS,
    ("GET", "/m/v1/scan"): USERS,
    ("GET", "/m/v1/sea-areas"): USERS,
    ("GET", "/m/v1/sites/{code}/label.png"): USERS,
    ("POST", "/m/v1/sync"): USERS,
    ("GET", "/m/v1/vehicles"): FLEET_READERS,
    ("POST", "/m/v1/vehicles"): FLEET,
    ("PATCH", "/m/v1/vehicles/{plate}"): FLEET,
    ("DELETE", "/m/v1/vehicles/{plate}"): FLEET,
    ("POST", "/m/v1/vehicles/{plate}/positions"): frozenset({"carrier"}),
    ("GET", "/m/v1/webhooks"): MANAGERS,
    ("POST", "/m/v1/webhooks"): MANAGERS,
    ("DELETE", "/m/v1/webhooks/{webhook_id}"): MANAGERS,
    ("GET", "/m/v1/webhooks/{webhook_id}"): MANAGERS,
    ("GET", "/m/v1/webhooks/{webhook_id}/deliveries"): MANAGERS,
    ("POST", "/m/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"): MANAGERS,
    ("POST", "/m/v1/webhooks/{webhook_id}/enable"): MANAGERS,
}


def test_every_route_has_an_expectation(app) -> None:  # type: ignore[no-untyped-def]
    routes = route_table(app)
    missing = sorted(routes - EXPECTED.keys())
    assert not missing, f"routes without an entry in EXPECTED: {missing}"
    stale = sorted(EXPECTED.keys() - routes)
    assert not stale, f"EXPECTED names routes the app no longer has: {stale}"


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED, key=lambda mp: (mp[1], mp[0])))
async def test_role_gate(client: httpx.AsyncClient, world: World, method: str, path: str) -> None:
    try:
        await _check_role_gate(client, world, method, path)
    finally:
        if path.startswith("/admin/v1/calendar"):
            # Loading and setting days change reference data that other tests read.
            await restore_pinned_calendar()


async def _check_role_gate(client: httpx.AsyncClient, world: World, method: str, path: str) -> None:
    allowed = EXPECTED[(method, path)]
    seen: dict[str, int] = {}
    for role in ROLES:
        if isinstance(allowed, str):
            client.cookies.clear()
            if role != "anonymous":
                client.cookies.set("wt_session", world.tokens[role])
            response = await client.request(method, concrete(path), follow_redirects=False)
            passed = response.status_code not in (303, 403)
            seen[role] = response.status_code
            assert passed == (role in DASHBOARD_ROLES[allowed]), (role, seen)
            continue
        status = await call(client, world, role, method, path)
        seen[role] = status
        if role in allowed:
            assert status not in (401, 403, 429), (role, seen)
        else:
            assert status == (401 if role == "anonymous" else 403), (role, seen)


# ---- own organization / another organization / another region -----------------------------


@pytest.fixture
async def harbour(world: World) -> dict[str, int]:
    """A second port in the city's other town, with a berth and a vessel of its own, and a
    manager of the first town (崖头) — a region the port is not in."""
    other_port = await registry.create_organization(
        name="龙眼港", kind=OrganizationKind.fishing_port, region_id=world.regions["town"].id
    )
    owner = await registry.create_organization(
        name="某渔业公司", kind=OrganizationKind.vessel_owner, region_id=world.regions["town"].id
    )
    vessel = await vessels.create_vessel(
        name="鲁荣渔1号",
        registration_number="LRY-0001",
        gross_tonnage=120,
        home_port_id=other_port.id,
        owner_id=owner.id,
    )
    office = await registry.create_organization(
        name="崖头街道环保所", kind=OrganizationKind.authority, region_id=world.regions["town"].id
    )
    await make_user(world, "yatou_manager", Role.manager, office)
    return {"other_port": other_port.id, "owner": owner.id, "vessel": vessel.id}


@pytest.mark.parametrize(
    ("who", "port", "expected"),
    [
        ("port", "port", 200),  # its own port
        ("port", "other_port", 404),  # another organization
        ("carrier", "port", 404),
        ("town_manager", "port", 200),  # the port lies in the manager's town
        ("yatou_manager", "port", 404),  # another region
        ("manager", "other_port", 200),  # the city's manager
        ("admin", "other_port", 200),
    ],
)
async def test_berths_with_their_qr_urls_are_read_within_scope(
    client: httpx.AsyncClient,
    world: World,
    harbour: dict[str, int],
    who: str,
    port: str,
    expected: int,
) -> None:
    port_id = world.orgs["port"].id if port == "port" else harbour[port]
    response = await client.get(f"/m/v1/ports/{port_id}/berths", headers=world.headers(who))
    assert response.status_code == expected, response.text


@pytest.mark.parametrize(
    ("who", "expected"),
    [("manager", 200), ("town_manager", 404), ("admin", 200)],
)
async def test_licences_are_read_within_the_region(
    client: httpx.AsyncClient, world: World, who: str, expected: int
) -> None:
    facility = world.orgs["facility"].id  # registered at city level, outside 石岛's subtree
    response = await client.get(
        f"/admin/v1/organizations/{facility}/licences", headers=world.headers(who)
    )
    assert response.status_code == expected, response.text


@pytest.mark.parametrize(
    ("who", "sees", "hidden"),
    [
        ("town_manager", {"port", "other_clinic", "town_office"}, {"clinic", "facility"}),
        ("manager", {"port", "clinic", "facility", "other_clinic"}, set()),
        ("admin", {"port", "clinic", "facility", "other_clinic"}, set()),
    ],
)
async def test_organizations_are_listed_within_the_region(
    client: httpx.AsyncClient, world: World, who: str, sees: set[str], hidden: set[str]
) -> None:
    response = await client.get("/admin/v1/organizations", headers=world.headers(who))
    ids = {org["id"] for org in response.json()}
    assert {world.orgs[k].id for k in sees} <= ids
    assert not {world.orgs[k].id for k in hidden} & ids


async def test_a_port_operator_finds_any_vessel_by_registration_number_only(
    client: httpx.AsyncClient, world: World, harbour: dict[str, int]
) -> None:
    headers = world.headers("port")
    assert (await client.get("/admin/v1/vessels", headers=headers)).json() == []
    found = await client.get(
        "/admin/v1/vessels", params={"registration_number": "LRY-0001"}, headers=headers
    )
    assert [v["id"] for v in found.json()] == [harbour["vessel"]]
    carrier = await client.get(
        "/admin/v1/vessels",
        params={"registration_number": "LRY-0001"},
        headers=world.headers("carrier"),
    )
    assert carrier.json() == []
    yatou = await client.get("/admin/v1/vessels", headers=world.headers("yatou_manager"))
    assert [v["id"] for v in yatou.json()] == [harbour["vessel"]]


async def _tag(client: httpx.AsyncClient, world: World, who: str, **fields: object) -> int:
    response = await client.post(
        "/m/v1/events", headers=world.headers(who), json=medical_bag(**fields)
    )
    return response.status_code


async def _agreement(
    client: httpx.AsyncClient,
    world: World,
    provider: str,
    client_org: str,
    streams: list[str],
    valid_to: date | None = None,
    valid_from: date = CITY_TODAY - timedelta(days=30),
) -> None:
    response = await client.post(
        "/admin/v1/service-agreements",
        headers=world.headers("admin"),
        json={
            "provider_organization_id": world.orgs[provider].id,
            "client_organization_id": world.orgs[client_org].id,
            "streams": streams,
            "valid_from": valid_from.isoformat(),
            "valid_to": valid_to.isoformat() if valid_to else None,
        },
    )
    assert response.status_code == 201, response.text


async def test_nobody_tags_for_another_organization_without_a_relationship(
    client: httpx.AsyncClient, world: World
) -> None:
    clinic = world.orgs["clinic"].id
    for who in ("carrier", "collector", "port", "other_clinic"):
        assert await _tag(client, world, who, producer_organization_id=clinic) == 403, who
    assert await _tag(client, world, "clinic", producer_organization_id=clinic) == 201


async def test_a_service_agreement_lets_its_provider_tag_for_its_client(
    client: httpx.AsyncClient, world: World
) -> None:
    clinic = world.orgs["clinic"].id
    await _agreement(client, world, "carrier", "clinic", ["household"])
    assert await _tag(client, world, "carrier", producer_organization_id=clinic) == 403
    await _agreement(
        client, world, "carrier", "clinic", ["medical"], valid_to=CITY_TODAY - timedelta(days=1)
    )
    assert await _tag(client, world, "carrier", producer_organization_id=clinic) == 403
    await _agreement(client, world, "carrier", "clinic", ["medical"], valid_from=CITY_TODAY)
    assert await _tag(client, world, "carrier", producer_organization_id=clinic) == 201
    other = world.orgs["other_clinic"].id
    assert await _tag(client, world, "carrier", producer_organization_id=other) == 403


@pytest.mark.parametrize(
    ("city_time", "offset_hours", "valid_from", "valid_to", "status"),
    [
        # 00:30 in the city is still yesterday at −10:00: the agreement that starts today holds.
        (timedelta(minutes=30), -10, CITY_TODAY, None, 201),
        # 23:30 yesterday in the city is already today at +14:00: an agreement whose last
        # day was yesterday holds…
        (
            timedelta(minutes=-30),
            14,
            CITY_TODAY - timedelta(days=30),
            CITY_TODAY - timedelta(days=1),
            201,
        ),
        # …and the agreement that starts today does not.
        (timedelta(minutes=-30), 14, CITY_TODAY, None, 403),
    ],
)
async def test_an_agreements_days_are_the_citys_whatever_offset_the_phone_sends(
    client: httpx.AsyncClient,
    world: World,
    city_time: timedelta,
    offset_hours: int,
    valid_from: date,
    valid_to: date | None,
    status: int,
) -> None:
    clinic = world.orgs["clinic"].id
    await _agreement(
        client, world, "carrier", "clinic", ["medical"], valid_from=valid_from, valid_to=valid_to
    )
    moment = cityday.day_start(CITY_TODAY, world.settings.timezone) + city_time
    sent = moment.astimezone(timezone(timedelta(hours=offset_hours)))
    assert sent.date() != cityday.local_date(moment, world.settings.timezone)
    assert (
        await _tag(
            client,
            world,
            "carrier",
            producer_organization_id=clinic,
            device_time=sent.isoformat(),
        )
        == status
    )


async def test_label_stock_issued_to_the_producer_lets_a_carrier_tag_for_it(
    client: httpx.AsyncClient, world: World
) -> None:
    code = codes.new_code()
    await Label.create(code=code, organization=world.orgs["clinic"], stream_id="medical")
    clinic = world.orgs["clinic"].id
    assert await _tag(client, world, "carrier", batch=code, producer_organization_id=clinic) == 201
    other = codes.new_code()
    await Label.create(code=other, organization=world.orgs["other_clinic"], stream_id="medical")
    assert await _tag(client, world, "carrier", batch=other, producer_organization_id=clinic) == 404
    # Another carrier's stock is its own loads': no one else tags on it, nor finds it scanning.
    rival = await registry.create_organization(
        name="另一运输公司", kind=OrganizationKind.carrier, region_id=world.regions["city"].id
    )
    load = codes.new_code()
    await Label.create(code=load, organization=rival, stream_id="medical")
    assert (
        await _tag(client, world, "carrier", batch=load, producer_organization_id=rival.id) == 403
    )
    scanned = await client.get("/m/v1/scan", params={"qr": load}, headers=world.headers("carrier"))
    assert scanned.status_code == 404, scanned.text


async def test_a_port_tags_for_a_registered_vessel_owner_only(
    client: httpx.AsyncClient, world: World, harbour: dict[str, int]
) -> None:
    marine = {"stream": "marine", "category": "marpol2018.A", "unit": "m3", "quantity": "0.5"}
    owner = harbour["owner"]
    assert await _tag(client, world, "port", producer_organization_id=owner, **marine) == 201
    clinic = world.orgs["clinic"].id
    assert await _tag(client, world, "port", producer_organization_id=clinic, **marine) == 403
    # Ship waste only: a vessel owner's other waste is not the port's to tag; and a clinic is
    # no vessel's owner (it would be a producer every port could tag for).
    assert await _tag(client, world, "port", producer_organization_id=owner) == 403
    boat = {
        "name": "卫生室小艇",
        "registration_number": "LRY-0002",
        "gross_tonnage": "3",
        "home_port_id": harbour["other_port"],
        "owner_id": clinic,
    }
    refused = await client.post("/admin/v1/vessels", headers=world.headers("admin"), json=boat)
    assert (refused.status_code, refused.json()["field"]) == (422, "owner_id"), refused.text
    assert not await Vessel.exists(registration_number="LRY-0002")
    assert await _tag(client, world, "port", producer_organization_id=clinic, **marine) == 403


async def test_head_and_options_open_no_gate(client: httpx.AsyncClient) -> None:
    """The matrix lists the methods the routes declare. HEAD answers as GET does, gate and
    all (405 where GET is), with no body; OPTIONS (no CORS here) is 405 everywhere. So neither
    is a way past a gate the matrix checks."""
    for path in sorted({p for _, p in EXPECTED}):
        client.cookies.clear()
        head = await client.head(concrete(path), follow_redirects=False)
        get = await client.get(concrete(path), follow_redirects=False)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        options = await client.options(concrete(path), follow_redirects=False)
        assert options.status_code == 405, path
