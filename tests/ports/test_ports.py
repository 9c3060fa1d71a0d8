"""Fishing ports: a port call with deliveries, its receipt, the waste reaching treatment,
clean-ups, and the port metrics with their counts."""

import asyncio
import importlib
import io
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pypdf
import pytest
import zxingcpp
from PIL import Image
from tortoise import connections

from tests.custody.helpers import post_event
from tests.factories import (
    CITY_TODAY,
    CITY_ZONE,
    NOW,
    World,
    event,
    forged,
    make_user,
    typed,
)
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.core import cityday
from wastetrack.ports.models import CleanUp, Delivery, FloatReplacement, PortCall
from wastetrack.registry import service as registry
from wastetrack.registry import vessels
from wastetrack.registry.models import OrganizationKind, Vessel

BERTH = (36.8930, 122.4280)


@dataclass
class Harbour:
    berth_url: str
    berth_id: int
    small: Vessel
    large: Vessel
    other_berth_url: str


@pytest.fixture
async def harbour(client: httpx.AsyncClient, world: World) -> Harbour:
    admin = world.headers("admin")
    port = world.orgs["port"]
    other = await registry.create_organization(
        name="龙眼港", kind=OrganizationKind.fishing_port, region_id=world.regions["other_town"].id
    )
    owner = await registry.create_organization(
        name="荣成某渔业公司",
        kind=OrganizationKind.vessel_owner,
        region_id=world.regions["other_town"].id,
    )
    plant = await registry.create_organization(
        name="焚烧发电厂",
        kind=OrganizationKind.treatment_facility,
        region_id=world.regions["city"].id,
    )
    world.orgs.update({"owner": owner, "plant": plant, "other_port": other})
    await registry.add_licence(
        organization_id=plant.id, category_key="marine.marpol", method_codes=["R1", "D10"]
    )
    await make_user(world, "crew", Role.generator, owner)
    await make_user(world, "plant", Role.facility_operator, plant)
    for org, lat in ((port, BERTH[0]), (other, 37.10)):
        response = await client.put(
            f"/admin/v1/ports/{org.id}",
            headers=admin,
            json={
                "grade": "中心渔港",
                "latitude": lat,
                "longitude": BERTH[1],
                "reception_facility": org is port,
            },
        )
        assert response.status_code == 200, response.text
    berth = (
        await client.post(
            f"/admin/v1/ports/{port.id}/berths",
            headers=admin,
            json={"name": "3号泊位", "latitude": BERTH[0], "longitude": BERTH[1]},
        )
    ).json()
    other_berth = (
        await client.post(
            f"/admin/v1/ports/{other.id}/berths",
            headers=admin,
            json={"name": "1号泊位", "latitude": 37.10, "longitude": BERTH[1]},
        )
    ).json()
    small = await vessels.create_vessel(
        name="鲁荣渔55021",
        registration_number="371082200001",
        gross_tonnage=Decimal(98),
        home_port_id=port.id,
        owner_id=owner.id,
    )
    large = await vessels.create_vessel(
        name="鲁荣渔58836",
        registration_number="371082200002",
        gross_tonnage=Decimal(455),
        home_port_id=port.id,
        owner_id=owner.id,
        imo_number="9876543",
    )
    return Harbour(berth["qr_url"], berth["id"], small, large, other_berth["qr_url"])


# Five hours before the stories end: possibly the city's previous day, which the metrics'
# periods below include.
ARRIVED_AT = NOW - timedelta(hours=5)


async def arrive(client: httpx.AsyncClient, world: World, vessel: Vessel, **extra: object) -> dict:
    response = await client.post(
        "/m/v1/port-calls",
        headers=world.headers("port"),
        json={
            "vessel_id": vessel.id,
            "arrived_at": ARRIVED_AT.isoformat(),
            "days_at_sea": 10,
            "crew": 8,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def delivery(harbour: Harbour, vessel: Vessel, *lines: dict, **extra: object) -> dict:
    return {
        "client_event_id": str(uuid.uuid4()),
        "berth": harbour.berth_url,
        "vessel_id": vessel.id,
        "started_at": (NOW - timedelta(hours=3)).isoformat(),
        "ended_at": (NOW - timedelta(hours=2, minutes=30)).isoformat(),
        "latitude": BERTH[0] + 0.0005,
        "longitude": BERTH[1],
        "lines": list(lines) or [{"annex_v": "A", "scheme_version": "2018", "volume_m3": "0.5"}],
        **extra,
    }


async def deliver(
    client: httpx.AsyncClient, world: World, body: dict, who: str = "port"
) -> httpx.Response:
    return await client.post("/m/v1/deliveries", json=body, headers=world.headers(who))


async def test_a_notification_in_exponent_form_is_kept_in_plain_figures(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A vessel's advance notification keeps `1E+1` m³ as 10, as the port's screen shows it."""
    call = await arrive(
        client,
        world,
        harbour.small,
        notification=[
            {"category": "marpol2018.A", "to_deliver_m3": "5E-1", "storage_capacity_m3": "1E+1"}
        ],
    )
    (line,) = call["notification"]
    assert (line["to_deliver_m3"], line["storage_capacity_m3"]) == ("0.5", "10"), line
    # Kept before in exponent form: migration 0064 writes it plainly, the rest as it was.
    await PortCall.filter(id=call["id"]).update(
        notification=[{**line, "storage_capacity_m3": "1E+1", "retained_m3": "0E-3"}]
    )
    await connections.get("default").execute_script(
        importlib.import_module("migrations.0064_kept_lines_in_plain_figures").PLAIN
    )
    kept = (await PortCall.get(id=call["id"])).notification
    assert kept == [{**line, "storage_capacity_m3": "10", "retained_m3": "0.000"}], kept


async def test_port_call_delivery_reaches_treatment_and_counts(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(
        client,
        world,
        harbour.small,
        fishing_area="shidao_se",
        notification=[
            {"category": "marpol2018.A", "to_deliver_m3": "0.5", "storage_capacity_m3": "2"}
        ],
    )
    response = await deliver(
        client,
        world,
        delivery(
            harbour,
            harbour.small,
            {"annex_v": "A", "scheme_version": "2018", "volume_m3": "0.5"},
            {"category": "marine.sewage", "volume_m3": "1.2"},
            {"category": "pfw.plastic.nets", "mass_kg": "30"},
        ),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["flags"] == []
    plastics, sewage, nets = body["lines"]
    assert (plastics["mass_kg"], plastics["mass_derived"]) == ("25.000", True)
    assert sewage["mass_kg"] == "1200.000"
    assert nets["mass_derived"] is False
    batch = await Batch.get(code=plastics["batch_code"])
    assert (batch.state, batch.holder_id) == ("collected", world.orgs["port"].id)
    # Not weighed, the plastics are a batch in m³: the metrics estimate their mass, marked so.
    assert (batch.unit, batch.quantity) == ("m3", Decimal("0.5"))
    assert batch.producer_id == world.orgs["owner"].id
    for step in (
        event(
            "in_transit",
            plastics["batch_code"],
            minutes=5,
            destination_organization_id=world.orgs["plant"].id,
        ),
    ):
        assert (await post_event(client, world, "port", step)).status_code == 201
    for step in (
        event("received", plastics["batch_code"], minutes=30, outcome="accepted", weight_kg="24"),
        event("treated", plastics["batch_code"], minutes=35, method="R1"),
    ):
        assert (await post_event(client, world, "plant", step)).status_code == 201
    day = CITY_TODAY
    metrics = (
        await client.get(
            "/m/v1/metrics/ports",
            headers=world.headers("manager"),
            params={"date_from": (day - timedelta(days=1)).isoformat(), "date_to": day.isoformat()},
        )
    ).json()
    port = next(p for p in metrics["ports"] if p["port_id"] == world.orgs["port"].id)
    garbage = next(g for g in port["groups"] if g["group"] == "garbage")
    assert garbage["expected"] == "120.0"  # 8 crew × 10 days × 1.5 kg
    # One mass per batch: the plastics weighed 24 kg on receipt supersede the 25 kg derived
    # from their volume.
    assert garbage["delivered"] == "24.000"
    rate = garbage["collection_treatment_rate"]
    assert (rate["numerator"], rate["denominator"], rate["rate"], rate["unit"]) == (
        "24.000",
        "120.0",
        "0.2000",
        "kg",
    )
    assert "may exceed 100 %" in rate["definition"]["formula"]
    # The headline 污水和垃圾收集处置率 is the weaker half: no sewage was treated.
    headline = metrics["listed_ports"]["headline"]
    assert (headline["group"], headline["rate"]) == ("sewage", "0.0000")
    sewage_metric = next(g for g in port["groups"] if g["group"] == "sewage")
    assert sewage_metric["delivered"] == "1.200"
    assert sewage_metric["treated"] == "0.000"
    assert metrics["reception_facility_share"]["numerator"] == "1"
    assert metrics["reception_facility_share"]["denominator"] == "2"
    areas = (
        await client.get(
            "/m/v1/metrics/sea-areas",
            headers=world.headers("manager"),
            params={"date_from": day.isoformat(), "date_to": day.isoformat()},
        )
    ).json()["areas"]
    shidao = next(a for a in areas if a["code"] == "shidao_se")
    assert (shidao["vessels"], shidao["vessels_with_deliveries"]) == (2, 1)


async def test_a_delivery_at_a_port_without_its_position_counts_in_its_sea_area(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """The sea-area share counts vessels with a delivery "as the port figures count it": at
    every fishing port of the region, also one whose grade and position were never recorded
    (its berths may be, and it receives); only a home port's own area needs its position."""
    bare = await registry.create_organization(
        name="桃园渔港", kind=OrganizationKind.fishing_port, region_id=world.orgs["port"].region_id
    )
    await make_user(world, "bare_port", Role.port_operator, bare)
    berth = await client.post(
        f"/admin/v1/ports/{bare.id}/berths",
        headers=world.headers("admin"),
        json={"name": "1号泊位", "latitude": BERTH[0], "longitude": BERTH[1]},
    )
    assert berth.status_code == 201, berth.text
    at_bare = delivery(harbour, harbour.small, berth=berth.json()["qr_url"])
    assert (await deliver(client, world, at_bare, who="bare_port")).status_code == 201
    since = {"date_from": (CITY_TODAY - timedelta(days=1)).isoformat()}
    params = {**since, "date_to": CITY_TODAY.isoformat()}
    ports = await client.get("/m/v1/metrics/ports", headers=world.headers("manager"), params=params)
    assert sum(p["deliveries"] for p in ports.json()["ports"]) == 1
    areas = await client.get(
        "/m/v1/metrics/sea-areas", headers=world.headers("manager"), params=params
    )
    shidao = next(a for a in areas.json()["areas"] if a["code"] == "shidao_se")
    assert (shidao["vessels"], shidao["vessels_with_deliveries"]) == (2, 1)


async def test_port_figures_count_a_line_as_its_batch_after_corrections(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """8 m³ of sewage typed for 0.8: corrected on the line's batch, the port's figures count
    0.8 m³ delivered."""
    await arrive(client, world, harbour.small)
    response = await deliver(
        client,
        world,
        delivery(harbour, harbour.small, {"category": "marine.sewage", "volume_m3": "8"}),
    )
    assert response.status_code == 201, response.text
    code = response.json()["lines"][0]["batch_code"]
    history = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("port"))
    fix = event("corrected", code, minutes=1, corrects=history.json()[0]["id"], quantity="0.8")
    assert (await post_event(client, world, "port", fix)).status_code == 201, fix
    metrics = (
        await client.get(
            "/m/v1/metrics/ports",
            headers=world.headers("manager"),
            params={
                "date_from": (CITY_TODAY - timedelta(days=1)).isoformat(),
                "date_to": CITY_TODAY.isoformat(),
            },
        )
    ).json()
    port = next(p for p in metrics["ports"] if p["port_id"] == world.orgs["port"].id)
    sewage = next(g for g in port["groups"] if g["group"] == "sewage")
    assert sewage["delivered"] == "0.800"
    # The delivery, its receipt and the receipt's public check say what the figures count.
    made = response.json()
    read = await client.get(f"/m/v1/deliveries/{made['id']}", headers=world.headers("port"))
    (line,) = read.json()["lines"]
    assert (line["volume_m3"], line["mass_kg"], line["corrected"]) == ("0.800", "800.000", True)
    assert line["mass_derived"] is True
    pdf = await client.get(
        f"/m/v1/deliveries/{made['id']}/receipt.pdf", headers=world.headers("port")
    )
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "0.800" in text and "8.000" not in text
    assert "corrected since the delivery" in text
    public = await client.get(
        made["receipt_url"].removeprefix("http://testserver"),
        headers={"Accept": "application/json"},
    )
    (shown,) = public.json()["lines"]
    assert (shown["volume_m3"], shown["mass_derived"], shown["corrected"]) == ("0.800", True, True)


async def test_a_delivery_outside_any_phones_clock_is_refused_naming_its_end(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    tomorrow = (NOW + timedelta(days=1)).isoformat()
    for field, times in (
        ("started_at", {"started_at": "1950-01-01T00:00:00+08:00"}),
        ("ended_at", {"ended_at": tomorrow}),
    ):
        refused = await deliver(client, world, delivery(harbour, harbour.small, **times))
        assert (refused.status_code, refused.json()["field"]) == (422, field), refused.text


async def test_sewage_is_expected_only_from_vessels_under_400_gt(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.large)
    metrics = (
        await client.get(
            "/m/v1/metrics/ports",
            headers=world.headers("manager"),
            params={
                "date_from": ARRIVED_AT.astimezone(CITY_ZONE).date().isoformat(),
                "date_to": CITY_TODAY.isoformat(),
            },
        )
    ).json()
    port = next(p for p in metrics["ports"] if p["port_id"] == world.orgs["port"].id)
    expected = {g["group"]: g["expected"] for g in port["groups"]}
    assert expected == {"garbage": "120.0", "sewage": "0"}


async def test_receipt_carries_the_imo_fields_and_a_qr_back_to_the_record(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.large)
    made = (await deliver(client, world, delivery(harbour, harbour.large))).json()
    pdf = await client.get(
        f"/m/v1/deliveries/{made['id']}/receipt.pdf", headers=world.headers("crew")
    )
    assert pdf.headers["content-type"] == "application/pdf"
    page = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0]
    text = page.extract_text()
    for field in ("鲁荣渔58836", "9876543", "455", made["receipt_number"], "石岛渔港"):
        assert field in text, field
    (picture,) = page.images
    (url,) = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(picture.data)))]
    assert url == made["receipt_url"]
    public = await client.get(url.removeprefix("http://testserver"))
    assert "鲁荣渔58836" in public.text
    forgery = await client.get(forged(url.removeprefix("http://testserver")))
    assert forgery.status_code == 404
    listed = (
        await client.get(
            "/m/v1/deliveries",
            params={"vessel_id": harbour.large.id},
            headers=world.headers("crew"),
        )
    ).json()
    assert [d["receipt_number"] for d in listed] == [made["receipt_number"]]


async def test_delivery_without_a_port_call_is_kept_but_flagged(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    response = await deliver(client, world, delivery(harbour, harbour.small))
    assert response.status_code == 201
    assert response.json()["flags"] == ["no_open_port_call"]


async def test_a_receipt_number_carries_the_citys_day_whatever_offset_the_phone_sends(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    started = NOW - timedelta(hours=3)
    city = started.astimezone(CITY_ZONE)
    # An offset that puts the phone's own clock on another calendar day than the city's.
    offset = timedelta(hours=-10) if city.hour < 18 else timedelta(hours=14)
    sent = started.astimezone(timezone(offset))
    assert sent.date() != city.date()
    response = await deliver(
        client, world, delivery(harbour, harbour.small, started_at=sent.isoformat())
    )
    assert response.status_code == 201, response.text
    number = response.json()["receipt_number"]  # WR, the port, the day, the delivery's id
    assert number[-14:-6] == f"{city:%Y%m%d}"


async def test_delivery_far_from_the_berth_is_flagged(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.small)
    body = delivery(harbour, harbour.small, latitude=BERTH[0] + 0.05)
    response = await deliver(client, world, body)
    assert response.json()["flags"] == ["outside_geofence"]
    assert response.json()["distance_m"] > 5000


async def test_delivery_refusals_name_the_field(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    cases = [
        (delivery(harbour, harbour.small, vessel_id=999_999), 404, "vessel_id"),
        (
            delivery(harbour, harbour.small, {"category": "marine.sewage", "volume_m3": "-1"}),
            422,
            "lines[0].volume_m3",
        ),
        # Sewage counts in m³: a line weighed in kg alone would count as nothing.
        (
            delivery(harbour, harbour.small, {"category": "marine.sewage", "mass_kg": "900"}),
            422,
            "lines[0].volume_m3",
        ),
        (
            delivery(
                harbour, harbour.small, {"annex_v": "K", "scheme_version": "2013", "volume_m3": "1"}
            ),
            422,
            "lines[0].annex_v",
        ),
        (
            delivery(harbour, harbour.small, {"category": "med.sharps", "mass_kg": "1"}),
            422,
            "lines[0].category",
        ),
        (delivery(harbour, harbour.small, berth=harbour.other_berth_url), 403, "berth"),
        (delivery(harbour, harbour.small, berth=forged(harbour.berth_url)), 404, "berth"),
    ]
    for body, status, field in cases:
        response = await deliver(client, world, body)
        assert response.status_code == status, (field, response.text)
        assert response.json()["field"] == field, response.json()
    assert await Delivery.all().count() == 0
    assert await Batch.all().count() == 0


async def test_crew_delivery_hands_the_waste_to_the_port(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.small)
    response = await deliver(client, world, delivery(harbour, harbour.small), who="crew")
    assert response.status_code == 201, response.text
    batch = await Batch.get(code=response.json()["lines"][0]["batch_code"])
    assert (batch.state, batch.holder_id) == ("handed_over", world.orgs["port"].id)
    stranger = await deliver(client, world, delivery(harbour, harbour.small), who="clinic")
    assert stranger.status_code == 403


async def test_a_refused_delivery_names_the_vessel_not_theirs_or_the_role_that_never_records(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A crew (role generator) records its own company's vessels: naming another owner's
    vessel is refused on `vessel_id`, as its role may record deliveries. A role that never
    records one (a carrier) is refused on `role`, whatever the vessel."""
    rival = await registry.create_organization(
        name="另一渔业公司",
        kind=OrganizationKind.vessel_owner,
        region_id=world.regions["other_town"].id,
    )
    await make_user(world, "rival_crew", Role.generator, rival)
    await arrive(client, world, harbour.small)
    for who, field in (("rival_crew", "vessel_id"), ("carrier", "role")):
        refused = await deliver(client, world, delivery(harbour, harbour.small), who=who)
        assert (refused.status_code, refused.json()["field"]) == (403, field), refused.text
    assert await Delivery.all().count() == 0
    assert await Batch.all().count() == 0


async def test_deliveries_and_cleanups_sync_exactly_once(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    body = delivery(harbour, harbour.small)
    entries = [
        {**body, "kind": "delivery"},
        {**body, "kind": "delivery"},
        {**delivery(harbour, harbour.small, vessel_id=999_999), "kind": "delivery"},
    ]
    answer = (
        await client.post("/m/v1/sync", json={"events": entries}, headers=world.headers("port"))
    ).json()
    assert [r["status"] for r in answer["results"]] == ["applied", "duplicate", "rejected"]
    # The resend's answer keeps the flags: the phone whose first answer was lost learns them.
    assert answer["results"][0]["flags"] == answer["results"][1]["flags"] == ["no_open_port_call"]
    assert answer["results"][2]["error"]["field"] == "vessel_id"
    changed = {**body, "kind": "delivery", "ended_at": NOW.isoformat()}
    again = (
        await client.post("/m/v1/sync", json={"events": [changed]}, headers=world.headers("port"))
    ).json()
    assert again["results"][0]["status"] == "conflict"
    # The vessel's crew sending the port's record id: a conflict that shows nothing of it.
    taken = (
        await client.post("/m/v1/sync", json={"events": entries[:1]}, headers=world.headers("crew"))
    ).json()["results"][0]
    assert (taken["status"], taken["error"]["field"]) == ("conflict", "client_event_id")
    assert (taken.get("record_id"), taken.get("flags")) == (None, None), taken
    assert await Delivery.all().count() == 1
    assert await Batch.all().count() == 1


async def test_two_arrivals_of_one_vessel_sent_at_once_open_one_call(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    body = {
        "vessel_id": harbour.small.id,
        "arrived_at": NOW.isoformat(),
        "days_at_sea": 1,
        "crew": 3,
    }
    answers = await asyncio.gather(
        *(
            client.post("/m/v1/port-calls", headers=world.headers("port"), json=body)
            for _ in range(2)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409]


async def test_a_departure_and_an_arrival_elsewhere_sent_at_once_end_the_call_once(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """The port records the vessel's departure while another port records its arrival, which
    ends the same call: one of them ends it, the other is refused, and the vessel's calls never
    overlap (a departure after the arrival elsewhere would)."""
    other = await registry.create_organization(
        name="俚岛渔港",
        kind=OrganizationKind.fishing_port,
        region_id=world.orgs["port"].region_id,
    )
    await make_user(world, "other_port", Role.port_operator, other)
    for vessel in (harbour.small, harbour.large):
        call = await arrive(client, world, vessel)
        departure = client.post(
            f"/m/v1/port-calls/{call['id']}/departure",
            headers=world.headers("port"),
            json={"departed_at": (ARRIVED_AT + timedelta(hours=2)).isoformat()},
        )
        elsewhere = client.post(
            "/m/v1/port-calls",
            headers=world.headers("other_port"),
            json={
                "vessel_id": vessel.id,
                "arrived_at": (ARRIVED_AT + timedelta(hours=1)).isoformat(),
                "days_at_sea": 1,
                "crew": 3,
            },
        )
        answers = await asyncio.gather(departure, elsewhere)
        assert sorted(a.status_code < 300 for a in answers) == [False, True], [
            a.text for a in answers
        ]
        calls = await PortCall.filter(vessel_id=vessel.id).order_by("arrived_at")
        for earlier, later in itertools.pairwise(calls):
            assert earlier.departed_at is not None and earlier.departed_at <= later.arrived_at


async def test_open_port_calls_are_one_per_vessel(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    call = await arrive(client, world, harbour.small)
    again = await client.post(
        "/m/v1/port-calls",
        headers=world.headers("port"),
        json={
            "vessel_id": harbour.small.id,
            "arrived_at": NOW.isoformat(),
            "days_at_sea": 1,
            "crew": 3,
        },
    )
    assert again.status_code == 409
    unknown_area = await client.post(
        "/m/v1/port-calls",
        headers=world.headers("port"),
        json={
            "vessel_id": harbour.large.id,
            "arrived_at": NOW.isoformat(),
            "days_at_sea": 1,
            "crew": 3,
            "fishing_area": "atlantis",
        },
    )
    assert unknown_area.json()["field"] == "fishing_area"
    tomorrow = (NOW + timedelta(days=1)).isoformat()
    ahead = await client.post(
        f"/m/v1/port-calls/{call['id']}/departure",
        headers=world.headers("port"),
        json={"departed_at": tomorrow},
    )
    assert (ahead.status_code, ahead.json()["field"]) == (422, "departed_at")
    early = await client.post(
        "/m/v1/port-calls",
        headers=world.headers("port"),
        json={"vessel_id": harbour.large.id, "arrived_at": tomorrow, "days_at_sea": 1, "crew": 3},
    )
    assert (early.status_code, early.json()["field"]) == (422, "arrived_at")
    closed = await client.post(
        f"/m/v1/port-calls/{call['id']}/departure",
        headers=world.headers("port"),
        json={"departed_at": NOW.isoformat()},
    )
    assert closed.json()["departed_at"] is not None
    by_clinic = await client.post(
        "/m/v1/port-calls",
        headers=world.headers("clinic"),
        json={
            "vessel_id": harbour.small.id,
            "arrived_at": NOW.isoformat(),
            "days_at_sea": 1,
            "crew": 3,
        },
    )
    assert by_clinic.status_code == 403


async def test_a_call_ends_no_earlier_than_a_delivery_it_covers(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """Recorded departure first, a delivery after it is flagged (and naming the call is
    refused); recorded the other way round, the same facts ended the call before the delivery
    it covers, which kept naming it unflagged. A departure, or an arrival elsewhere that ends
    the call, is refused before a delivery the call covers began (within the clock skew it is
    taken), and the call stays open."""
    await make_user(world, "other_port", Role.port_operator, world.orgs["other_port"])
    open_calls = {"open_only": "true"}
    for vessel in (harbour.small, harbour.large):
        call = await arrive(client, world, vessel)
        made = await deliver(client, world, delivery(harbour, vessel))  # began at NOW - 3 h
        assert made.json()["port_call_id"] == call["id"], made.text
        early = (NOW - timedelta(hours=4)).isoformat()
        if vessel is harbour.small:
            refused = await client.post(
                f"/m/v1/port-calls/{call['id']}/departure",
                headers=world.headers("port"),
                json={"departed_at": early},
            )
            field = "departed_at"
        else:
            refused = await client.post(
                "/m/v1/port-calls",
                headers=world.headers("other_port"),
                json={"vessel_id": vessel.id, "arrived_at": early, "days_at_sea": 1, "crew": 3},
            )
            field = "arrived_at"
        assert (refused.status_code, refused.json()["field"]) == (409, field), refused.text
        calls = await client.get(
            "/m/v1/port-calls", headers=world.headers("port"), params=open_calls
        )
        assert call["id"] in [c["id"] for c in calls.json()]
    skewed = (NOW - timedelta(hours=3, minutes=5)).isoformat()
    departed = await client.post(
        f"/m/v1/port-calls/{call['id']}/departure",
        headers=world.headers("port"),
        json={"departed_at": skewed},
    )
    assert departed.status_code == 200, departed.text


async def test_an_arrival_at_another_port_ends_the_call_left_open_there(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A port that never closes a vessel's call cannot keep it from arriving elsewhere; calls
    of one vessel never overlap."""
    other = await registry.create_organization(
        name="俚岛渔港",
        kind=OrganizationKind.fishing_port,
        region_id=world.orgs["port"].region_id,
    )
    await make_user(world, "other_port", Role.port_operator, other)
    first = await arrive(client, world, harbour.small)
    later = ARRIVED_AT + timedelta(hours=3)
    body = {"vessel_id": harbour.small.id, "days_at_sea": 1, "crew": 3}
    there = await client.post(
        "/m/v1/port-calls",
        headers=world.headers("other_port"),
        json={**body, "arrived_at": later.isoformat()},
    )
    assert there.status_code == 201, there.text
    ended = await client.get("/m/v1/port-calls", headers=world.headers("port"))
    (call,) = [c for c in ended.json() if c["id"] == first["id"]]
    assert datetime.fromisoformat(call["departed_at"]) == later
    overlapping = await client.post(
        "/m/v1/port-calls",
        headers=world.headers("port"),
        json={**body, "arrived_at": (ARRIVED_AT + timedelta(hours=1)).isoformat()},
    )
    assert (overlapping.status_code, overlapping.json()["field"]) == (409, "arrived_at")
    # Calls are entered in order: an earlier one entered late would overlap the later ones.
    earlier = {**body, "arrived_at": (ARRIVED_AT - timedelta(days=3)).isoformat()}
    late_entry = await client.post("/m/v1/port-calls", headers=world.headers("port"), json=earlier)
    assert (late_entry.status_code, late_entry.json()["field"]) == (409, "arrived_at")
    # Before the call open at its own port too: its time is wrong, closing that call would not
    # let it in; after the open call's start, that call is what stands in the way.
    for hours, field in ((2, "arrived_at"), (4, "vessel_id")):
        again = {**body, "arrived_at": (ARRIVED_AT + timedelta(hours=hours)).isoformat()}
        refused = await client.post(
            "/m/v1/port-calls", headers=world.headers("other_port"), json=again
        )
        assert (refused.status_code, refused.json()["field"]) == (409, field)


def cleanup(world: World, **extra: object) -> dict:
    return {
        "client_event_id": str(uuid.uuid4()),
        "region_id": world.regions["other_town"].id,
        "area_name": "石岛湾沙滩",
        "setting": "beach",
        "started_at": (NOW - timedelta(hours=4)).isoformat(),
        "ended_at": (NOW - timedelta(hours=2)).isoformat(),
        "latitude": 36.88,
        "longitude": 122.44,
        "participants": 25,
        "item_counts": {"floats": 42, "ropes": 17, "bottles": 120, "foam": 60},
        "total_weight_kg": "86.5",
        **extra,
    }


async def test_cleanup_enters_the_custody_chain(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    response = await client.post(
        "/m/v1/cleanups", json=cleanup(world), headers=world.headers("port")
    )
    assert response.status_code == 201, response.text
    batch = await Batch.get(code=response.json()["batch_code"])
    assert (batch.category_id, batch.state, batch.quantity) == (
        "marine.beach_litter",
        "collected",
        Decimal("86.5"),
    )
    unknown = await client.post(
        "/m/v1/cleanups",
        json=cleanup(world, item_counts={"kelp": 3}),
        headers=world.headers("port"),
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "item_counts.kelp"
    # A key with whitespace around it is refused, not stripped onto another (120 bottles were
    # silently replaced by 5).
    padded = await client.post(
        "/m/v1/cleanups",
        json=cleanup(world, item_counts={"bottles": 120, " bottles": 5}),
        headers=world.headers("port"),
    )
    assert (padded.status_code, padded.json()["field"]) == (422, "item_counts. bottles")
    assert padded.json()["errors"][0]["rule"] == "key_padded"
    # A value under a key spelled as pydantic's mark of a refused key is still named by it.
    marked = await client.post(
        "/m/v1/cleanups",
        json=cleanup(world, item_counts={"[key]": -1}),
        headers=world.headers("port"),
    )
    assert (marked.status_code, marked.json()["field"]) == (422, "item_counts.[key]")
    by_clinic = await client.post(
        "/m/v1/cleanups", json=cleanup(world), headers=world.headers("clinic")
    )
    assert by_clinic.status_code == 403
    synced = (
        await client.post(
            "/m/v1/sync",
            headers=world.headers("collector"),
            json={"events": [{**cleanup(world), "kind": "cleanup"}]},
        )
    ).json()
    assert synced["applied"] == 1
    [result] = synced["results"]
    made = await CleanUp.get(id=result["record_id"]).prefetch_related("batch")
    assert result["batch_code"] == made.batch.code


async def test_a_clean_up_resent_written_otherwise_is_a_duplicate(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """Its content is its values: a mapping's members in another order, a latitude of -0.0
    for 0.0, an instant in another offset are the same clean-up, posted or synced again."""
    body = cleanup(world, latitude=0.0)
    first = await client.post("/m/v1/cleanups", json=body, headers=world.headers("port"))
    assert first.status_code == 201, first.text
    moment = datetime.fromisoformat(body["started_at"])
    otherwise = {
        **body,
        "item_counts": dict(reversed(body["item_counts"].items())),
        "latitude": -0.0,
        "started_at": moment.astimezone(timezone(timedelta(hours=-10))).isoformat(),
    }
    again = await client.post("/m/v1/cleanups", json=otherwise, headers=world.headers("port"))
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"]), again.text
    synced = await client.post(
        "/m/v1/sync",
        headers=world.headers("port"),
        json={"events": [{**otherwise, "kind": "cleanup"}]},
    )
    assert synced.json()["results"][0]["status"] == "duplicate", synced.text


async def test_a_delivery_resent_with_its_annex_letter_in_the_other_case_is_a_duplicate(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """`annex_v` takes `a` or `A`, one category (kept as marpol2018.A either way): the same
    delivery resent with the letter in the other case is answered as its resend, not a 409."""
    await arrive(client, world, harbour.small)
    line = {"annex_v": "a", "scheme_version": "2018", "mass_kg": "30"}
    body = delivery(harbour, harbour.small, line)
    first = await deliver(client, world, body)
    assert first.status_code == 201, first.text
    again = await deliver(client, world, {**body, "lines": [{**line, "annex_v": "A"}]})
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"]), again.text
    assert await Delivery.all().count() == 1


async def test_a_delivery_resent_naming_its_berth_by_the_typed_code_is_a_duplicate(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """`berth` is the scanned berth QR or its code: resent naming the berth the other way, a
    delivery is its resend (docs/custody.md: content is values, not how they are written)."""
    await arrive(client, world, harbour.small)
    body = delivery(harbour, harbour.small)
    first = await deliver(client, world, body)
    assert first.status_code == 201, first.text
    again = await deliver(client, world, {**body, "berth": typed(harbour.berth_url)})
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"]), again.text
    synced = await client.post(
        "/m/v1/sync",
        headers=world.headers("port"),
        json={"events": [{**body, "berth": typed(harbour.berth_url), "kind": "delivery"}]},
    )
    assert synced.json()["results"][0]["status"] == "duplicate", synced.text
    assert await Delivery.all().count() == 1


async def test_a_delivery_or_clean_up_that_ends_before_it_starts_is_refused_naming_its_end(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """One rule for both, on their commands: posted or in an offline sync, the refusal names
    `ended_at` and nothing is kept."""
    backwards = {
        "started_at": (NOW - timedelta(hours=1)).isoformat(),
        "ended_at": (NOW - timedelta(hours=2)).isoformat(),
    }
    refused = await deliver(client, world, delivery(harbour, harbour.small, **backwards))
    assert (refused.status_code, refused.json()["field"]) == (422, "ended_at"), refused.text
    posted = await client.post(
        "/m/v1/cleanups", json=cleanup(world, **backwards), headers=world.headers("port")
    )
    assert (posted.status_code, posted.json()["field"]) == (422, "ended_at"), posted.text
    synced = await client.post(
        "/m/v1/sync",
        headers=world.headers("collector"),
        json={"events": [{**cleanup(world, **backwards), "kind": "cleanup"}]},
    )
    (result,) = synced.json()["results"]
    assert (result["status"], result["error"]["field"]) == ("rejected", "ended_at"), synced.text
    assert await Batch.all().count() == 0


def float_replacement(world: World, region: str = "other_town", **extra: object) -> dict:
    return {
        "client_event_id": str(uuid.uuid4()),
        "region_id": world.regions[region].id,
        "replaced_on": CITY_TODAY.isoformat(),
        "foam_floats_removed": 1200,
        "new_floats_installed": 1150,
        "new_float_type": "环保型塑料浮球",
        **extra,
    }


async def test_float_replacement_is_recorded_once(client: httpx.AsyncClient, world: World) -> None:
    body = float_replacement(world)
    for status in (201, 200):  # the resend is answered with the one kept
        response = await client.post(
            "/m/v1/float-replacements", json=body, headers=world.headers("port")
        )
        assert response.status_code == status
    changed = await client.post(
        "/m/v1/float-replacements",
        json={**body, "foam_floats_removed": 1500},
        headers=world.headers("port"),
    )
    assert (changed.status_code, changed.json()["field"]) == (409, "client_event_id")
    listed = (await client.get("/m/v1/float-replacements", headers=world.headers("manager"))).json()
    assert [r["foam_floats_removed"] for r in listed] == [1200]


async def test_a_manager_records_floats_in_its_own_area_only(
    client: httpx.AsyncClient, world: World
) -> None:
    """石岛's manager naming 崖头's village gets what a region that does not exist gets (a 404
    naming region_id), and 崖头's lists hold nothing of 石岛's; inside its own area it records."""
    town_manager = world.headers("town_manager")
    for region_id in (world.regions["village"].id, 999999):
        refused = await client.post(
            "/m/v1/float-replacements",
            json={**float_replacement(world), "region_id": region_id},
            headers=town_manager,
        )
        assert (refused.status_code, refused.json()) == (
            404,
            {**refused.json(), "field": "region_id", "detail": f"no region {region_id}"},
        )
    own = await client.post(
        "/m/v1/float-replacements", json=float_replacement(world), headers=town_manager
    )
    assert own.status_code == 201, own.text
    village = await registry.create_organization(
        name="北山社区居委会",
        kind=OrganizationKind.authority,
        region_id=world.regions["village"].id,
    )
    await make_user(world, "village_manager", Role.manager, village)
    listed = await client.get("/m/v1/float-replacements", headers=world.headers("village_manager"))
    assert listed.json() == []


@pytest.mark.parametrize(
    "replaced_on", ["the_citys_tomorrow", "1999-12-31"], ids=["the_citys_tomorrow", "before_2000"]
)
async def test_a_float_replacement_on_a_day_not_come_or_before_2000_is_refused(
    client: httpx.AsyncClient, world: World, replaced_on: str
) -> None:
    """A count dated ahead would fall in a period that has not come: refused by the city's
    today (whatever the phone's zone), naming the field, and nothing is kept."""
    if replaced_on == "the_citys_tomorrow":
        # The city's real tomorrow when the test runs (not when the suite was collected: a run
        # may cross the city's midnight); CITY_TODAY is the day before in the first hours.
        replaced_on = (cityday.today(CITY_ZONE) + timedelta(days=1)).isoformat()
    refused = await client.post(
        "/m/v1/float-replacements",
        json=float_replacement(world, replaced_on=replaced_on),
        headers=world.headers("port"),
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "replaced_on"), refused.text
    listed = await client.get("/m/v1/float-replacements", headers=world.headers("manager"))
    assert listed.json() == []


async def test_berth_plate_decodes_to_the_berth(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    code = harbour.berth_url.rsplit("/", 1)[1].split(".")[0]
    png = await client.get(f"/m/v1/berths/{code}/label.png", headers=world.headers("port"))
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))]
    assert decoded == [harbour.berth_url]


async def test_a_plate_never_prints_a_name_cut_short(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A berth's name (up to 64 characters) printed on its 50 x 30 mm plate past the colour
    band, white on white, and a site's (up to 128) past the label's edge: 泊位 荣成市…第三作业区北
    names another berth or none. A name too long to print whole even at the smallest size is
    refused naming `name` (rename the berth or site); a short one prints as before."""
    berth = "荣成市石岛镇石岛渔港东港区第三作业区北侧冷藏加工码头三号泊位"
    made = await client.post(
        f"/admin/v1/ports/{world.orgs['port'].id}/berths",
        headers=world.headers("admin"),
        json={"name": berth, "latitude": 36.88, "longitude": 122.43},
    )
    assert made.status_code == 201, made.text
    code = made.json()["qr_url"].rsplit("/", 1)[1].split(".")[0]
    plate = await client.get(f"/m/v1/berths/{code}/label.png", headers=world.headers("port"))
    assert (plate.status_code, plate.json()["field"]) == (422, "name"), plate.text
    site = await client.post(
        "/admin/v1/sites",
        headers=world.headers("admin"),
        json={
            "organization_id": world.orgs["community"].id,
            "name": "荣成市宁津街道东墩社区居民委员会第三网格"
            + "北山路十八号院内东侧生活垃圾分类投放点",
            "latitude": 37.165,
            "longitude": 122.487,
        },
    )
    assert site.status_code == 201, site.text
    plate = await client.get(
        f"/m/v1/sites/{site.json()['code']}/label.png", headers=world.headers("manager")
    )
    assert (plate.status_code, plate.json()["field"]) == (422, "name"), plate.text
    short = harbour.berth_url.rsplit("/", 1)[1].split(".")[0]
    printed = await client.get(f"/m/v1/berths/{short}/label.png", headers=world.headers("port"))
    assert printed.status_code == 200


async def test_scanning_a_berth_plate_offers_a_delivery(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    operator = (
        await client.get(
            "/m/v1/scan", params={"qr": harbour.berth_url}, headers=world.headers("port")
        )
    ).json()
    assert (operator["kind"], operator["actions"]) == ("berth", ["delivery"])
    assert operator["berth"]["name"] == "3号泊位"
    clinic = (
        await client.get(
            "/m/v1/scan", params={"qr": harbour.berth_url}, headers=world.headers("clinic")
        )
    ).json()
    assert clinic["actions"] == []
    forgery = await client.get(
        "/m/v1/scan", params={"qr": forged(harbour.berth_url)}, headers=world.headers("port")
    )
    assert forgery.status_code == 404


async def test_port_records_are_read_by_the_parties_they_name_and_their_region(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.small)
    response = await deliver(client, world, delivery(harbour, harbour.small))
    assert response.status_code == 201, response.text
    readers = ["port", "crew", "town_manager", "manager", "auditor", "admin", "clinic", "plant"]
    seen = {}
    for who in readers:
        deliveries = await client.get("/m/v1/deliveries", headers=world.headers(who))
        calls = await client.get("/m/v1/port-calls", headers=world.headers(who))
        seen[who] = (len(deliveries.json()), len(calls.json()))
    assert seen == {
        "port": (1, 1),
        # the vessel's owner reads its deliveries; port calls belong to the port
        "crew": (1, 0),
        "town_manager": (1, 1),
        "manager": (1, 1),
        "auditor": (1, 1),
        "admin": (1, 1),
        "clinic": (0, 0),
        "plant": (0, 0),
    }


async def test_a_vessel_sold_on_leaves_its_deliveries_with_the_owner_it_delivered_for(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A receipt is the owner's of the day it was made: when the vessel changes hands the new
    owner reads none of the old one's (a 404, as a delivery that does not exist), the old
    owner keeps reading its own, and the receipt still bears the old owner's name. Deliveries
    recorded before the owner was kept get it from their batches' producer (migration 0045)."""
    await arrive(client, world, harbour.small)
    made = await deliver(client, world, delivery(harbour, harbour.small))
    assert made.status_code == 201, made.text
    delivery_id = made.json()["id"]
    buyer = await registry.create_organization(
        name="荣成远洋渔业公司",
        kind=OrganizationKind.vessel_owner,
        region_id=world.regions["town"].id,
    )
    await make_user(world, "buyer", Role.generator, buyer)
    await Vessel.filter(id=harbour.small.id).update(owner_id=buyer.id)
    read = {
        who: (await client.get(f"/m/v1/deliveries/{delivery_id}", headers=world.headers(who)))
        for who in ("crew", "buyer")
    }
    assert (read["crew"].status_code, read["buyer"].status_code) == (200, 404)
    assert len((await client.get("/m/v1/deliveries", headers=world.headers("buyer"))).json()) == 0
    receipt = await client.get(
        f"/m/v1/deliveries/{delivery_id}/receipt.pdf", headers=world.headers("crew")
    )
    text = "".join(
        page.extract_text() for page in pypdf.PdfReader(io.BytesIO(receipt.content)).pages
    )
    assert world.orgs["owner"].name in text and buyer.name not in text
    # The backfill finds the owner of a delivery recorded before 0045 from its batches.
    await Delivery.filter(id=delivery_id).update(owner_id=None)
    await connections.get("default").execute_script(
        importlib.import_module("migrations.0045_delivery_owner").BACKFILL
    )
    assert (await Delivery.get(id=delivery_id)).owner_id == world.orgs["owner"].id


async def test_a_region_reader_still_reads_its_own_records_outside_its_region(
    client: httpx.AsyncClient, world: World
) -> None:
    # Recorded by its organization in the other town (before a manager's record was held to
    # its area; an organization's own users still may name any region).
    body = float_replacement(world, region="town")
    await FloatReplacement.create(
        **body,
        organization_id=world.orgs["town_office"].id,
        recorded_by_id=world.users["town_manager"].id,
    )
    counts = {
        who: len((await client.get("/m/v1/float-replacements", headers=world.headers(who))).json())
        for who in ("town_manager", "manager", "port", "clinic")
    }
    # town_manager's region is the other town, but the record names its organization
    assert counts == {"town_manager": 1, "manager": 1, "port": 0, "clinic": 0}


async def test_a_named_port_call_must_cover_the_delivery(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A call that ended before the discharge began is not its call, named or not: naming it
    would dodge the no_open_port_call flag."""
    call = await arrive(client, world, harbour.small)
    departed = await client.post(
        f"/m/v1/port-calls/{call['id']}/departure",
        headers=world.headers("port"),
        json={"departed_at": (NOW - timedelta(hours=4)).isoformat()},
    )
    assert departed.status_code == 200, departed.text
    named = await deliver(client, world, delivery(harbour, harbour.small, port_call_id=call["id"]))
    assert (named.status_code, named.json()["field"]) == (422, "port_call_id"), named.text
    unnamed = await deliver(client, world, delivery(harbour, harbour.small))
    assert unnamed.status_code == 201, unnamed.text
    assert unnamed.json()["flags"] == ["no_open_port_call"]
    # A crew phone five minutes behind the port's: within the skew two clocks may differ by.
    behind = NOW - timedelta(hours=2, minutes=25)  # the delivery ended at NOW - 2 h 30 min
    late_call = await arrive(client, world, harbour.large, arrived_at=behind.isoformat())
    skewed = delivery(harbour, harbour.large, port_call_id=late_call["id"])
    covered = await deliver(client, world, skewed)
    assert covered.status_code == 201, covered.text
    assert "no_open_port_call" not in covered.json()["flags"]
