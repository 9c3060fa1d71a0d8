"""Bad input is refused with a 422 naming the field and its rule, never a 500, and writes
nothing: values a route's own contract let through but a command the domain makes from it
refuses, digits that are not ASCII, a plate with a NUL, text with a control character a
spreadsheet cannot hold, a tonnage its column cannot hold; and
an answer holding a secret is never kept for an Idempotency-Key's resend."""

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from mobile_api.bodies import JsonRoute
from tests.custody.helpers import tag_bag
from tests.factories import CITY_TODAY, NOW, PASSWORD, World, medical_bag
from tests.household.test_sorting import pickup, point_url
from tests.pesticide.test_take_back import a_return, points
from tests.ports.test_ports import Harbour, delivery, harbour
from wastetrack.audit.models import AuditEntry
from wastetrack.batches.models import Batch, Unit
from wastetrack.core import db
from wastetrack.core.errors import ValidationFailed
from wastetrack.custody import intake
from wastetrack.household.models import Pickup
from wastetrack.indicators.models import IndicatorValue
from wastetrack.pesticide.models import PackagingReturn
from wastetrack.ports.models import Delivery
from wastetrack.registry.models import Vessel
from wastetrack.sync import service as sync_service

__all__ = ["harbour", "point_url", "points"]  # fixtures used here


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field, response.json()


async def sync(client: httpx.AsyncClient, world: World, who: str, entries: list) -> dict:
    response = await client.post("/m/v1/sync", json={"events": entries}, headers=world.headers(who))
    assert response.status_code == 200, response.text
    answer: dict = response.json()
    return answer


# ---- latitude and longitude go together, wherever a place is given -------------------------


async def test_a_batch_with_latitude_alone_is_refused_naming_longitude(
    client: httpx.AsyncClient, world: World
) -> None:
    body = medical_bag(latitude=37.2)
    body.pop("event_type")
    response = await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))
    assert_refused(response, "longitude")
    assert await Batch.all().count() == 0


async def test_a_pickup_with_latitude_alone_is_refused_alone_and_in_a_sync(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    alone = await client.post(
        "/m/v1/pickups", json=pickup(point_url, latitude=37.2), headers=world.headers("collector")
    )
    assert_refused(alone, "longitude")
    entries = [
        {**pickup(point_url, latitude=37.2), "kind": "pickup"},
        {**pickup(point_url), "kind": "pickup"},
    ]
    results = (await sync(client, world, "collector", entries))["results"]
    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["error"]["field"] == "longitude"
    assert await Pickup.all().count() == 1


async def test_a_record_refused_past_its_command_refuses_that_record_not_the_sync(
    client: httpx.AsyncClient, world: World, point_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever model a record's recorder makes and fails to make, the sync answers that
    record rejected, naming the field, and applies the others."""
    record_pickup = sync_service._recorders["pickup"]

    class Inner(BaseModel):
        weight_kg: Decimal = Field(le=10)

    async def strict(**kwargs: Any) -> intake.RecordResult:
        Inner(weight_kg=kwargs["submission"].weight_kg)
        return await record_pickup(**kwargs)

    monkeypatch.setitem(sync_service._recorders, "pickup", strict)
    entries = [
        {**pickup(point_url, weight_kg="42.5"), "kind": "pickup"},
        {**pickup(point_url, weight_kg="4.5"), "kind": "pickup"},
    ]
    results = (await sync(client, world, "collector", entries))["results"]
    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["error"] == {
        "code": "validation_failed",
        "field": "weight_kg",
        "detail": "weight_kg: Input should be less than or equal to 10",
    }
    assert await Pickup.all().count() == 1


# ---- a delivery line's amount, weighed kg or else m³, is one a batch can hold ----------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"annex_v": "A", "scheme_version": "2018", "volume_m3": "1", "mass_kg": "0"}, "mass_kg"),
        # 200 t weighed: within the request's bound, more than one batch plausibly holds.
        ({"annex_v": "J", "scheme_version": "2018", "mass_kg": "200000"}, "mass_kg"),
    ],
)
async def test_a_delivery_line_whose_mass_no_batch_holds_is_refused_naming_it(
    client: httpx.AsyncClient, world: World, harbour: Harbour, line: dict, field: str
) -> None:
    good = {"annex_v": "A", "scheme_version": "2018", "volume_m3": "0.5"}
    body = delivery(harbour, harbour.small, good, line)
    response = await client.post("/m/v1/deliveries", json=body, headers=world.headers("port"))
    assert_refused(response, f"lines[1].{field}")
    # In an offline sync the line refuses its own delivery, and the others are applied.
    entries = [
        {**delivery(harbour, harbour.small, line), "kind": "delivery"},
        {**delivery(harbour, harbour.small, good), "kind": "delivery"},
    ]
    results = (await sync(client, world, "port", entries))["results"]
    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["error"]["field"] == f"lines[0].{field}"
    assert await Delivery.all().count() == 1
    assert await Batch.all().count() == 1


async def test_an_event_the_domain_makes_from_a_record_refuses_as_the_record(
    world: World,
) -> None:
    """A value a record's own checks let through but its custody event refuses is the record's
    refusal (ValidationFailed, naming the line's field), never a pydantic error, a 500."""
    with pytest.raises(ValidationFailed) as refused:
        await intake.take_in(
            principal=world.principals["collector"],
            record_id=uuid.uuid4(),
            when=NOW - timedelta(hours=1),
            secret=world.settings.secret_key,
            stream="household",
            lines=[
                intake.IntakeLine("hh.food.household", Decimal(1), Unit.KG),
                intake.IntakeLine("hh.food.household", Decimal(0), Unit.KG),
            ],
            producer_id=world.orgs["community"].id,
            handover_to=None,
            latitude=None,
            longitude=None,
        )
    assert refused.value.field == "lines[1].quantity"
    assert refused.value.detail.startswith("lines[1].quantity: ")
    assert await Batch.all().count() == 0


# ---- digits are ASCII digits -----------------------------------------------------------------

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


async def test_a_farmer_number_in_full_width_digits_is_refused(
    client: httpx.AsyncClient, points: World
) -> None:
    for field, number in (
        ("farmer_phone", "13812345678"),
        ("farmer_id_number", "371082198001011234"),  # its check character is 4: valid
    ):
        body = {**a_return(farmer_phone=None), field: number.translate(FULL_WIDTH)}
        response = await client.post(
            "/m/v1/pesticide/returns", json=body, headers=points.headers("shop")
        )
        assert_refused(response, field)
    assert await PackagingReturn.all().count() == 0


async def test_an_amount_in_full_width_digits_is_the_number_it_writes(
    client: httpx.AsyncClient, world: World
) -> None:
    """Amounts are decimals, read as the number they write in any digits (an identifier is
    not: above); the stored quantity is that number."""
    bag = medical_bag(quantity="3.5".translate(FULL_WIDTH))
    response = await client.post("/m/v1/events", json=bag, headers=world.headers("clinic"))
    assert response.status_code == 201, response.text
    assert (await Batch.get()).quantity == Decimal("3.5")


async def test_vessel_numbers_and_tonnage_are_what_their_columns_hold(
    client: httpx.AsyncClient, world: World
) -> None:
    vessel = {
        "name": "鲁荣渔50001",
        "registration_number": "371082200009",
        "gross_tonnage": "98",
        "home_port_id": world.orgs["port"].id,
    }
    for field, value in (
        ("imo_number", "9876543".translate(FULL_WIDTH)),
        ("mmsi", "412345678".translate(FULL_WIDTH)),
        ("gross_tonnage", "1E-20000"),
        ("gross_tonnage", "0.001"),
    ):
        response = await client.post(
            "/admin/v1/vessels", json={**vessel, field: value}, headers=world.headers("admin")
        )
        assert_refused(response, field)
    assert await Vessel.all().count() == 0
    kept = await client.post(
        "/admin/v1/vessels",
        json={**vessel, "gross_tonnage": "98.25", "imo_number": "9876543"},
        headers=world.headers("admin"),
    )
    assert kept.status_code == 201, kept.text
    assert Decimal(kept.json()["gross_tonnage"]) == Decimal("98.25")


# ---- a plate in a path -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_a_plate_with_a_nul_is_refused_naming_plate(
    client: httpx.AsyncClient, world: World, method: str
) -> None:
    body = {"capacity_kg": "1"} if method == "PATCH" else None  # a retirement takes no body
    response = await client.request(
        method, "/m/v1/vehicles/%00", json=body, headers=world.headers("carrier")
    )
    assert_refused(response, "plate")


async def test_a_plate_or_code_ending_in_an_encoded_slash_names_no_other_record(
    client: httpx.AsyncClient, world: World
) -> None:
    """ "%2F" is decoded before routing: a path ending in it was redirected (307) to the record
    without the slash, and a client following the redirect retired a vehicle it did not name.
    A path is answered as written or is a 404."""
    carrier = world.headers("carrier")
    made = await client.post(
        "/m/v1/vehicles",
        json={"plate": "鲁K12345", "permit_number": "鲁交运危 001", "capacity_kg": "1000"},
        headers=carrier,
    )
    assert made.status_code == 201, made.text
    for method, path in (
        ("DELETE", "/m/v1/vehicles/鲁K12345%2F"),
        ("PATCH", "/m/v1/vehicles/鲁K12345%2F"),
        ("GET", "/m/v1/batches/ABC%2F"),
        ("GET", "/m/v1/batches/"),
    ):
        response = await client.request(
            method,
            path,
            json={"capacity_kg": "1"} if method == "PATCH" else None,
            headers=carrier,
            follow_redirects=True,
        )
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
    vehicles = (await client.get("/m/v1/vehicles", headers=carrier)).json()
    assert [(v["plate"], Decimal(v["capacity_kg"]), v.get("retired_at")) for v in vehicles] == [
        ("鲁K12345", 1000, None)
    ]


# ---- control characters in text ---------------------------------------------------------------


async def _note(client: httpx.AsyncClient, world: World, note: str) -> httpx.Response:
    return await client.post(
        "/m/v1/indicators/straw_utilization/values",
        json={
            "value": "50",
            "period_end": (CITY_TODAY - timedelta(days=1)).isoformat(),
            "source_note": note,
        },
        headers=world.headers("manager"),
    )


@pytest.mark.parametrize(
    "note",
    [
        *("县\x01农业局", "县\x08农业局", "县\x0b农业局", "县\x0c农业局", "县\x1f农业局"),
        *("县\x7f农业局", "县\x85农业局", "县\x9b农业局"),  # DEL, NEL and another C1 control
        *("县\ufffe农业局", "县\uffff农业局"),  # noncharacters: no XML (so no XLSX) holds them
    ],
)
async def test_a_control_character_in_text_is_refused_naming_the_field(
    client: httpx.AsyncClient, world: World, note: str
) -> None:
    """A spreadsheet holds no control character but tab and line breaks: text with one would
    make every XLSX download of its row fail."""
    assert_refused(await _note(client, world, note), "source_note")
    assert await IndicatorValue.all().count() == 0


async def test_an_unknown_key_is_named_even_when_it_is_empty(
    client: httpx.AsyncClient, world: World
) -> None:
    """An unknown key is refused naming it; the empty key too, as JSON writes it (a null
    field would read as a refusal of the whole body)."""
    bag = medical_bag()
    for key, field in (("colour", "colour"), ("", '""')):
        response = await client.post(
            "/m/v1/events", json={**bag, key: 1}, headers=world.headers("clinic")
        )
        assert_refused(response, field)
        assert response.json()["errors"][0]["rule"] == "extra_forbidden"
    sync_answer = await sync(client, world, "clinic", [{**bag, "": 1}])
    assert sync_answer["results"][0]["error"]["field"] == '""', sync_answer
    assert await Batch.all().count() == 0


async def test_a_member_sent_twice_in_one_object_is_refused_naming_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """The parser kept the last of a member sent twice: a bag written `"quantity": "3.5"` and
    again `"quantity": "350"` was recorded as 350 kg. Refused, named where it lies, on a single
    post and inside a sync; a body opening with UTF-8's byte order mark is still read."""
    bag = medical_bag()
    twice = json.dumps(bag, ensure_ascii=False)[:-1] + ', "quantity": "350"}'
    headers = {**world.headers("clinic"), "content-type": "application/json"}
    for path, body, field in (
        ("/m/v1/events", twice, "quantity"),
        ("/m/v1/sync", '{"events": [' + twice + "]}", "events[0].quantity"),
        ("/m/v1/sync", '{"events": [], "events": [' + twice + "]}", "events"),
    ):
        response = await client.post(path, content=body.encode(), headers=headers)
        assert_refused(response, field)
        assert response.json()["errors"][0]["rule"] == "repeated"
    assert await Batch.all().count() == 0
    marked = "\ufeff" + json.dumps(bag, ensure_ascii=False)
    response = await client.post("/m/v1/events", content=marked.encode(), headers=headers)
    assert response.status_code == 201, response.text


async def test_a_member_sent_twice_after_a_number_or_null_is_named(
    client: httpx.AsyncClient, world: World
) -> None:
    """The search for a repeat's path took every value for a container: one behind a number,
    `null` or `true` (a bag's GPS position, a photo not taken) was FastAPI's bare 400 naming
    nothing. Found in one walk over the body's objects and arrays; a deeply nested body is
    named all the way down."""
    headers = {**world.headers("clinic"), "content-type": "application/json"}
    placed = json.dumps(medical_bag(latitude=37.2, longitude=121.4))
    twice = json.dumps(medical_bag(), ensure_ascii=False)[:-1] + ', "quantity": "350"}'
    bare = json.dumps({**medical_bag(), "photo_id": None, "gps_fix": True})[:-1]
    nested = "[" * 300 + '{"a": 1, "a": 2}' + "]" * 300
    for path, body, field in (
        ("/m/v1/sync", '{"events": [' + placed + ", " + twice + "]}", "events[1].quantity"),
        ("/m/v1/events", bare + ', "extra": {"x": 1, "x": 2}}', "extra.x"),
        ("/m/v1/events", '{"extra": ' + nested + "}", "extra" + "[0]" * 300 + ".a"),
    ):
        response = await client.post(path, content=body.encode(), headers=headers)
        assert_refused(response, field)
        assert response.json()["errors"][0]["rule"] == "repeated"
    assert await Batch.all().count() == 0


async def test_a_form_field_sent_twice_is_refused_naming_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """A form keeps the last of a field sent twice: `username=nobody&username=clinic` logged
    in as the clinic (RFC 6749 §3.1: a parameter is sent once), on the API and the pages. A
    list field still comes many times (tests/dashboard/test_alerts_page.py)."""
    for path, body, field in (
        ("/m/v1/auth/token", f"username=nobody&username=clinic&password={PASSWORD}", "username"),
        ("/m/v1/auth/token", f"username=clinic&password=guess&password={PASSWORD}", "password"),
        ("/dashboard/login", f"username=nobody&username=manager&password={PASSWORD}", "username"),
    ):
        response = await client.post(
            path,
            content=body.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert_refused(response, field)
        assert response.json()["errors"][0]["rule"] == "repeated"


def test_every_route_reads_its_json_body_strictly(app: FastAPI) -> None:
    """One reader of JSON bodies: a router made otherwise would take a member sent twice."""
    routes: list[APIRoute] = []
    routers = [app.router]
    while routers:
        for route in routers.pop().routes:
            if isinstance(route, APIRoute):
                routes.append(route)
            elif hasattr(route, "original_router"):  # an included router, as it is served
                routers.append(route.original_router)
    assert len(routes) > 100
    assert [r.path for r in routes if not isinstance(r, JsonRoute)] == []


async def test_a_query_parameter_the_operation_does_not_take_is_refused_naming_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """A misspelt filter was dropped: the sorting rate of one village's manager asked with
    `regoin_id` came back for the whole area. Refused as an unknown key of a body is, on a
    read and on a write (which writes nothing); the parameters an operation takes, from its
    dependencies too (a period, a page), still pass."""
    manager = world.headers("manager")
    read = await client.get(
        "/m/v1/metrics/sorting", params={"regoin_id": world.regions["town"].id}, headers=manager
    )
    assert_refused(read, "regoin_id")
    assert read.json()["errors"][0]["rule"] == "extra_forbidden"
    wrote = await client.post(
        "/m/v1/events", params={"dry_run": "1"}, json=medical_bag(), headers=world.headers("clinic")
    )
    assert_refused(wrote, "dry_run")
    assert await Batch.all().count() == 0
    taken = {"date_from": str(CITY_TODAY), "region_id": world.regions["town"].id, "format": "json"}
    assert (await client.get("/m/v1/metrics/sorting", params=taken, headers=manager)).is_success
    paged = await client.get("/m/v1/batches", params={"limit": 5, "cursor": ""}, headers=manager)
    assert paged.status_code == 200, paged.text
    # A page takes what its link carries: a chat app adds its own to a scanned label's link.
    label = (await tag_bag(client, world))["qr_url"]
    shared = {"from": "singlemessage", "isappinstalled": "0"}
    assert (await client.get(httpx.URL(label).path, params=shared)).status_code == 200


async def test_a_query_parameter_taken_once_and_sent_twice_is_refused_naming_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """The framework reads the last of a repeated parameter: `region_id=town&region_id=city`
    would be answered for the city alone, and `format=csv&format=xlsx` as a spreadsheet."""
    manager = world.headers("manager")
    towns = [("region_id", world.regions["town"].id), ("region_id", world.regions["city"].id)]
    for path, query in (
        ("/m/v1/metrics/sorting", towns),
        ("/m/v1/metrics/sorting", [("format", "csv"), ("format", "xlsx")]),
        ("/m/v1/batches", [("limit", 1), ("limit", 1)]),
    ):
        response = await client.get(path, params=query, headers=manager)
        assert_refused(response, query[0][0])
        assert response.json()["errors"][0]["rule"] == "repeated"
    # Each once, any order, passes.
    once = [("format", "json"), ("region_id", world.regions["town"].id)]
    assert (await client.get("/m/v1/metrics/sorting", params=once, headers=manager)).is_success


async def test_a_query_parameter_whose_bytes_are_no_utf8_is_refused_naming_it(
    client: httpx.AsyncClient, world: World, restore_calendar: None
) -> None:
    """The framework reads bytes that are no UTF-8 in a query (a lone surrogate's `%ED%A0%80`,
    an overlong `%C0%AF`) as U+FFFD: a calendar load ran, and kept `���` as its reason in the
    audit log. Refused naming the parameter, nothing done; a page still ignores what a link
    adds that it does not take."""
    admin = world.headers("admin")
    year = CITY_TODAY.year
    for raw in ("%ED%A0%80", "%C0%AF", "ok%FF"):
        loaded = await client.post(
            f"/admin/v1/calendar/load?year={year}&reason={raw}", headers=admin
        )
        assert_refused(loaded, "reason")
        assert loaded.json()["errors"][0]["rule"] == "string_unicode"
        listed = await client.get(f"/m/v1/batches?cursor={raw}", headers=world.headers("manager"))
        assert_refused(listed, "cursor")
    assert not await AuditEntry.filter(action="calendar.loaded").exists()
    named = await client.post(
        f"/admin/v1/calendar/load?year={year}&reason=%E8%A1%A5", headers=admin
    )
    assert named.status_code == 200, named.text
    label = (await tag_bag(client, world))["qr_url"]
    assert (await client.get(httpx.URL(label).path + "?from=%C0%AF")).status_code == 200


async def test_tabs_and_line_breaks_stay_allowed_in_text(
    client: httpx.AsyncClient, world: World
) -> None:
    note = "县农业局\t统计\r\n第二行\n第三行"
    response = await _note(client, world, note)
    assert response.status_code == 201, response.text
    assert (await IndicatorValue.get()).source_note == note


# ---- secrets are not kept for an Idempotency-Key's resend ----------------------------------


async def _kept_body(key: str) -> list[dict]:
    rows: list[dict] = await db.pool().execute_query_dict(
        "SELECT body FROM idempotency_key WHERE key = $1", [key]
    )
    return rows


async def test_a_pin_list_or_label_sheet_is_given_once_and_not_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    clinic = world.orgs["clinic"].id
    for key, path, body in (
        ("pins-1", f"/m/v1/organizations/{clinic}/pins", None),
        ("labels-1", "/m/v1/labels", {"organization_id": clinic, "stream": "medical", "count": 1}),
    ):
        headers = {**world.headers("manager"), "Idempotency-Key": key}
        issued = await client.post(path, json=body, headers=headers)
        assert issued.status_code == 201, issued.text
        assert issued.headers["cache-control"] == "no-store"
        assert await _kept_body(key) == [{"body": None}]
        again = await client.post(path, json=body, headers=headers)
        assert (again.status_code, again.json()["code"]) == (409, "answer_not_kept")


async def test_tokens_are_given_once_and_not_kept(client: httpx.AsyncClient, world: World) -> None:
    # Credentials sent along own no key on a route that takes no sender: nothing is kept.
    login = await client.post(
        "/m/v1/auth/token",
        data={"username": "clinic", "password": PASSWORD},
        headers={**world.headers("clinic"), "Idempotency-Key": "token-1"},
    )
    assert login.status_code == 200, login.text
    assert login.headers["cache-control"] == "no-store"
    assert await _kept_body("token-1") == []
    refreshed = await client.post(
        "/m/v1/auth/refresh",
        json={"refresh_token": login.json()["refresh_token"]},
        headers={**world.headers("clinic"), "Idempotency-Key": "refresh-1"},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["cache-control"] == "no-store"
    assert await _kept_body("refresh-1") == []


@pytest.mark.parametrize("key", ["body", "query", "path", "form"])
async def test_an_unknown_key_named_like_where_a_value_comes_from_is_named(
    client: httpx.AsyncClient, world: World, key: str
) -> None:
    """FastAPI puts where a value came from (body, query, path) first in an error's location:
    only that first part is where; a key of the body named so is the key, refused by name as any
    unknown key, posted alone or in a sync (field null would say the whole body is at fault)."""
    response = await client.post(
        "/m/v1/events", json={**medical_bag(), key: 1}, headers=world.headers("clinic")
    )
    assert (response.status_code, response.json()["field"]) == (422, key), response.text
    synced = await client.post(
        "/m/v1/sync", json={"events": [{**medical_bag(), key: 1}]}, headers=world.headers("clinic")
    )
    assert synced.json()["results"][0]["error"]["field"] == key, synced.text
    assert await Batch.all().count() == 0


async def test_a_route_of_no_body_refuses_one_with_members(
    client: httpx.AsyncClient, world: World
) -> None:
    """A JSON object sent to a route that takes no body was read by no one: a retirement sent
    `{"reason": …}`, or a producer's signature `{"seq": 2}`, went through as if the client had
    asked nothing. Refused naming the first member, nothing done; `{}` asks nothing."""
    headers = world.headers("carrier")
    driver = await client.post(
        "/m/v1/drivers", json={"name": "赵师傅", "licence_number": "3712"}, headers=headers
    )
    assert driver.status_code == 201, driver.text
    path = f"/m/v1/drivers/{driver.json()['id']}"
    refused = await client.request("DELETE", path, json={"reason": "离职"}, headers=headers)
    assert (refused.status_code, refused.json()["field"]) == (422, "reason"), refused.text
    assert refused.json()["errors"][0]["rule"] == "extra_forbidden"
    # The empty key is named as JSON writes it, as a route with a body names it.
    typed = {**headers, "Content-Type": "application/json"}
    empty = await client.request("DELETE", path, content=b'{"": 1}', headers=typed)
    assert (empty.status_code, empty.json()["field"]) == (422, '""'), empty.text
    listed = (await client.get("/m/v1/drivers", headers=headers)).json()
    assert driver.json()["id"] in [d["id"] for d in listed]
    assert (await client.request("DELETE", path, json={}, headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body", "status", "field", "rule"),
    [
        # Not JSON, as a route with a body refuses it (a 500 before: the route parsed it alone).
        ("application/json", '{"reason": "离职"'.encode(), 422, None, "json_invalid"),
        ("application/json", b'{"reason": "\xff"}', 422, None, "json_invalid"),
        ("application/json", b'{"reason": "a", "reason": "b"}', 422, "reason", "repeated"),
        ("application/json", b"[" * 100_000, 422, None, "json_invalid"),
        # Half a surrogate pair escaped: JSON's syntax, no Unicode (its answer was a 500).
        ("application/json", b'{"\\ud800": 1}', 422, None, "json_invalid"),
        ("application/json", b'{"\\udc00": 1, "\\udc00": 2}', 422, None, "json_invalid"),
        # JSON under another media type (curl -d's form type, text, none), as a route with a
        # body refuses it (it was carried out, the body unread).
        ("application/x-www-form-urlencoded", '{"reason": "离职"}'.encode(), 415, None, None),
        ("text/plain", b'{"reason": "x"}', 415, None, None),
        ("text/plain", b'{"reason": "a", "reason": "b"}', 415, None, None),
        ("text/plain", '{"reason": "离职"}'.encode("utf-16"), 415, None, None),
        (None, b'{"reason": "x"}', 415, None, None),
        # JSON declared in a set other than UTF-8, as a route with a body refuses it.
        ("application/json; charset=utf-16", '{"reason": "x"}'.encode("utf-16"), 415, None, None),
    ],
    ids=[
        "cut_short",
        "not_utf8",
        "repeated",
        "too_deep",
        "lone_surrogate",
        "lone_surrogate_repeated",
        "form",
        "text",
        "text_repeated",
        "text_utf16",
        "no_type",
        "json_utf16",
    ],
)
async def test_a_route_of_no_body_refuses_a_body_as_a_route_with_one_does(
    app: FastAPI,
    world: World,
    content_type: str | None,
    body: bytes,
    status: int,
    field: str | None,
    rule: str | None,
) -> None:
    """A route that takes no body read a JSON-typed body alone, so what FastAPI refuses for a
    route with a body (no JSON, a member twice) was a 500; and under another media type it read
    nothing, so `{"reason": …}` sent as curl -d sends it retired the driver. Both are refused
    as a route with a body refuses them, nothing done; a form body that is no JSON asks
    nothing (the dashboard's posts)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = world.headers("carrier")
        driver = await client.post(
            "/m/v1/drivers", json={"name": "赵师傅", "licence_number": "3712"}, headers=headers
        )
        path = f"/m/v1/drivers/{driver.json()['id']}"
        typed = headers if content_type is None else {**headers, "Content-Type": content_type}
        refused = await client.request("DELETE", path, content=body, headers=typed)
        problem = refused.json()
        assert refused.status_code == status, refused.text
        if status == 415:
            assert problem["field"] == "Content-Type", problem
        else:
            assert (problem["field"], problem["errors"][0]["rule"]) == (field, rule), problem
        listed = (await client.get("/m/v1/drivers", headers=headers)).json()
        assert driver.json()["id"] in [d["id"] for d in listed]
        form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        done = await client.request("DELETE", path, content=b"a=b", headers=form)
        assert done.status_code == 200, done.text


# Parameters whose text is opaque to the contract: a page's cursor and a feed's position (read
# by their own decoders, refused naming them), a public page's token (a documented 404), and a
# label's volume (a number read as a decimal).
OPAQUE_PARAMETERS = {"cursor", "after", "token", "volume_l"}


def test_every_text_parameter_refuses_control_characters_in_the_contract(app: FastAPI) -> None:
    """docs/security.md: no string takes NUL or another control character. A vehicle's `plate`
    in the path and an organization's `credit_code` in the query were plain strings (no
    pattern in the document, a NUL looked up); every text parameter carries one."""
    bare = []
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                texts = [
                    s
                    for s in (schema, *schema.get("anyOf", []))
                    if s.get("type") == "string" and "enum" not in s and "format" not in s
                ]
                if parameter["name"] in OPAQUE_PARAMETERS or all("pattern" in s for s in texts):
                    continue
                bare.append(f"{method.upper()} {path} {parameter['name']}")
    assert bare == []


async def test_a_plate_in_the_path_with_a_control_character_is_refused_naming_it(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.headers("carrier")
    answer = await client.delete("/m/v1/vehicles/%E9%B2%81K%0012345", headers=headers)
    assert (answer.status_code, answer.json()["field"]) == (422, "plate"), answer.text


async def test_half_a_surrogate_pair_anywhere_in_a_body_is_a_named_json_invalid(
    app: FastAPI, world: World
) -> None:
    """`\\ud800` is JSON's syntax and no Unicode text (RFC 8259 §8.2; I-JSON forbids it): a
    key of it sent twice was a 500, the refusal naming it unable to be written (contracts
    review). In a key or a value, the body is refused whole, nothing written; a pair escaped
    (an emoji as Python's json writes it) is text."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {"Content-Type": "application/json", **world.headers("clinic")}
        for path, body in (
            ("/m/v1/batches", b'{"\\ud800": 1, "\\ud800": 2}'),
            ("/m/v1/sync", b'{"events": [{"\\ud800": {"a": 1, "a": 2}}]}'),
            ("/m/v1/sync", b'{"events": [{"note": "\\udfff"}]}'),
            ("/m/v1/alerts/refresh", b'{"\\ud800": 1}'),
        ):
            for sent in (headers, {"Content-Type": "application/json"}):
                refused = await client.post(path, content=body, headers=sent)
                assert refused.status_code == 422, (path, refused.text)
                assert refused.headers["content-type"] == "application/problem+json"
                problem = refused.json()
                assert (problem["field"], problem["errors"][0]["rule"]) == (None, "json_invalid")
                assert "surrogate" in problem["detail"], problem
        assert await Batch.all().count() == 0
        pair = medical_bag(note="\U0001f600")
        taken = await client.post(
            "/m/v1/events",
            content=json.dumps(pair).encode(),  # ensure_ascii: the emoji as \\ud83d\\ude00
            headers=headers,
        )
        assert taken.status_code == 201, taken.text
