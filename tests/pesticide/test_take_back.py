"""Pesticide packaging take-back: returns with credits, sales, consignments, ledger, recovery."""

import asyncio
import hashlib
import importlib
import io
import json
import uuid
from csv import DictReader
from datetime import date, timedelta, timezone
from decimal import Decimal

import httpx
import openpyxl
import pytest
from tortoise import connections

from tests.factories import CITY_TODAY, CITY_ZONE, NOW, World, make_user
from wastetrack.audit.models import AuditEntry
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.core import cityday
from wastetrack.pesticide.commands import ReturnCommand
from wastetrack.pesticide.models import Consignment, Farmer, PackageSale, PackagingReturn
from wastetrack.pesticide.service import CREDIT_RULES
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

PHONE = "13812345678"


@pytest.fixture
async def points(world: World) -> World:
    shop = await registry.create_organization(
        name="俚岛镇农资经营部",
        kind=OrganizationKind.agri_input_shop,
        region_id=world.regions["village"].id,
    )
    station = await registry.create_organization(
        name="俚岛镇回收站",
        kind=OrganizationKind.recovery_point,
        region_id=world.regions["village"].id,
    )
    world.orgs.update({"shop": shop, "station": station})
    await make_user(world, "shop", Role.generator, shop)
    await make_user(world, "station", Role.collector, station)
    return world


def a_return(**extra: object) -> dict:
    return {
        "client_event_id": str(uuid.uuid4()),
        "farmer_phone": PHONE,
        "returned_at": (NOW - timedelta(hours=1)).isoformat(),
        "lines": [
            {"material": "agri.plastic_bottle", "count": 12, "weight_kg": "0.6"},
            {"material": "agri.drum", "count": 1},
        ],
        **extra,
    }


def a_sale(material: str = "agri.plastic_bottle", count: int = 100) -> dict:
    """Packages the shop sold today, under a new client_event_id."""
    return {
        "client_event_id": str(uuid.uuid4()),
        "sold_on": CITY_TODAY.isoformat(),
        "material": material,
        "count": count,
    }


BOTTLES_AND_DRUMS = (
    {"material": "agri.plastic_bottle", "count": 240, "weight_kg": "12.5"},
    {"material": "agri.drum", "count": 6, "weight_kg": "9"},
)


async def send(
    client: httpx.AsyncClient, world: World, *lines: dict, who: str = "station", **extra: object
) -> httpx.Response:
    """A consignment from the point to the unlicensed treatment site, sent three hours ago."""
    body = {
        "client_event_id": str(uuid.uuid4()),
        "destination_organization_id": world.orgs["unlicensed"].id,
        "sent_at": (NOW - timedelta(hours=3)).isoformat(),
        "lines": list(lines),
        **extra,
    }
    return await post(client, world, body, who=who, path="/m/v1/pesticide/consignments")


async def post(
    client: httpx.AsyncClient,
    world: World,
    body: dict,
    who: str = "shop",
    path: str = "/m/v1/pesticide/returns",
) -> httpx.Response:
    return await client.post(path, json=body, headers=world.headers(who))


async def test_return_awards_points_and_keeps_no_phone_number(
    client: httpx.AsyncClient, points: World
) -> None:
    body = a_return()
    first = await post(client, points, body)
    assert first.status_code == 201, first.text
    assert (first.json()["points"], first.json()["balance"]) == ("17.0", "17.0")
    assert first.json()["farmer"] == "138****5678"
    assert (await post(client, points, body)).status_code == 200
    second = await post(client, points, a_return(), who="station")
    assert second.json()["balance"] == "34.0"
    farmer = await Farmer.get()
    assert PHONE not in (farmer.key, farmer.masked)
    lookup = await client.post("/p/v1/credits", json={"farmer_phone": PHONE})
    assert lookup.json() == {"farmer": "138****5678", "points": "34.0", "returns": 2}
    stranger = await client.post("/p/v1/credits", json={"farmer_phone": "13900000000"})
    assert stranger.json()["points"] == "0.0"
    tomorrow = (NOW + timedelta(days=1)).isoformat()
    ahead = await post(client, points, a_return(returned_at=tomorrow))
    assert (ahead.status_code, ahead.json()["field"]) == (422, "returned_at")


async def test_a_resident_id_number_must_hold_its_check_and_birth_date(
    client: httpx.AsyncClient, points: World
) -> None:
    """GB 11643-1999's check character catches a mistyped digit: one taken as typed credited a
    farmer who does not exist, whose balance no one looks up. A birth date that is no day is
    refused too; the standard's own example is taken, its x in either case."""
    for number, rule in (
        ("110105194912310021", "id_number_check"),  # 11010519491231002X, its X mistyped
        ("110105194913310024", "id_number_birth_date"),  # born in month 13
    ):
        response = await post(client, points, a_return(farmer_phone=None, farmer_id_number=number))
        assert (response.status_code, response.json()["field"]) == (422, "farmer_id_number")
        assert response.json()["errors"][0]["rule"] == rule
        credits = await client.post("/p/v1/credits", json={"farmer_id_number": number})
        assert (credits.status_code, credits.json()["field"]) == (422, "farmer_id_number")
    assert await PackagingReturn.all().count() == 0
    for number in ("11010519491231002X", "11010519491231002x"):
        response = await post(client, points, a_return(farmer_phone=None, farmer_id_number=number))
        assert response.status_code == 201, response.text
    # One number either way: one farmer, and a resend with the other case is the same record
    # (it was a conflict: the content digest read the x as sent).
    assert await Farmer.all().count() == 1
    first = a_return(farmer_phone=None, farmer_id_number="11010519491231002X")
    assert (await post(client, points, first)).status_code == 201
    resent = {**first, "farmer_id_number": "11010519491231002x"}
    assert (await post(client, points, resent)).status_code == 200


def an_id_number(born: date) -> str:
    """A resident ID number of Rongcheng (371082) born on `born`, its check character right."""
    body = f"371082{born:%Y%m%d}123"
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


async def test_an_id_number_born_after_the_return_names_no_one(
    client: httpx.AsyncClient, points: World
) -> None:
    """A birth date after the city's day of the return (its check character right: a digit of
    the date mistyped) names no farmer yet: a 422 naming `farmer_id_number`, alone or in a
    sync, and nothing written. The day is the city's whatever offset the phone sent: a
    return at 23:30 in Rongcheng sent as New York time is still that day, and a farmer born
    on it is taken."""
    returned = cityday.day_start(CITY_TODAY, CITY_ZONE) - timedelta(minutes=30)
    day = returned.astimezone(CITY_ZONE).date()
    sent = returned.astimezone(timezone(timedelta(hours=-5))).isoformat()
    late = a_return(farmer_phone=None, farmer_id_number=an_id_number(day + timedelta(days=1)))
    late["returned_at"] = sent
    refused = await post(client, points, late)
    assert (refused.status_code, refused.json()["field"]) == (422, "farmer_id_number")
    assert refused.json()["errors"][0]["rule"] == "id_number_birth_date"
    synced = await client.post(
        "/m/v1/sync",
        json={"events": [{**late, "kind": "return"}]},
        headers=points.headers("station"),
    )
    assert synced.json()["results"][0]["status"] == "rejected", synced.text
    assert synced.json()["results"][0]["error"]["field"] == "farmer_id_number"
    lookup = await client.post(
        "/p/v1/credits", json={"farmer_id_number": an_id_number(date(2099, 1, 1))}
    )
    assert (lookup.status_code, lookup.json()["field"]) == (422, "farmer_id_number")
    assert await PackagingReturn.all().count() == 0
    assert await Farmer.all().count() == 0
    born = a_return(farmer_phone=None, farmer_id_number=an_id_number(day))
    born["returned_at"] = sent
    assert (await post(client, points, born)).status_code == 201


async def test_return_refusals_name_the_field(client: httpx.AsyncClient, points: World) -> None:
    cases = [
        (
            a_return(lines=[{"material": "agri.unknown", "count": 3}]),
            "shop",
            422,
            "lines[0].material",
        ),
        (a_return(lines=[{"material": "agri.drum", "count": -2}]), "shop", 422, "lines[0].count"),
        (a_return(farmer_phone="12345"), "shop", 422, "farmer_phone"),
        (a_return(farmer_id_number="37108219800101123X"), "shop", 422, None),
        (a_return(), "clinic", 403, "role"),
    ]
    for body, who, status, field in cases:
        response = await post(client, points, body, who)
        assert response.status_code == status, (field, response.text)
        if field:
            assert response.json()["field"] == field
    assert await PackagingReturn.all().count() == 0


async def test_consignment_sends_a_batch_per_material_to_treatment(
    client: httpx.AsyncClient, points: World
) -> None:
    sent_once = str(uuid.uuid4())
    response = await send(client, points, *BOTTLES_AND_DRUMS, client_event_id=sent_once)
    assert response.status_code == 201, response.text
    codes = [line["batch_code"] for line in response.json()["lines"]]
    for batch in await Batch.filter(code__in=codes):
        assert (batch.state, batch.stream_id) == ("tagged", "agri_packaging")
        assert (batch.producer_id, batch.destination_id) == (
            points.orgs["station"].id,
            points.orgs["unlicensed"].id,
        )
    # Resent from a phone's queue: answered with the consignment made, no batch twice.
    resent = await send(client, points, *BOTTLES_AND_DRUMS, client_event_id=sent_once)
    assert (resent.status_code, resent.json()) == (200, response.json())
    assert await Batch.all().count() == len(codes) == 2


async def test_a_consignment_to_an_organization_that_treats_no_waste_is_refused_naming_it(
    client: httpx.AsyncClient, points: World
) -> None:
    """Custody lets only a treatment facility receive waste: a consignment sent to a clinic
    would never arrive. A 422 naming the destination, and nothing written."""
    line = {"material": "agri.drum", "count": 3, "weight_kg": "4.5"}
    answer = await send(client, points, line, destination_organization_id=points.orgs["clinic"].id)
    assert (answer.status_code, answer.json()["field"]) == (422, "destination_organization_id")
    assert "not a treatment facility" in answer.json()["detail"], answer.text
    assert await Consignment.all().count() == 0
    assert await Batch.all().count() == 0


@pytest.mark.parametrize(
    "sent_at",
    [(NOW + timedelta(days=1)).isoformat(), "1999-12-31T08:00:00+08:00", "1999-12-31T15:59:59Z"],
    ids=["tomorrow", "before_2000", "the_citys_last_second_of_1999"],
)
async def test_a_consignment_sent_at_an_implausible_time_is_refused_naming_sent_at(
    client: httpx.AsyncClient, points: World, sent_at: str
) -> None:
    """The request has no device_time: its refusal names the field the request has."""
    refused = await send(client, points, BOTTLES_AND_DRUMS[1], sent_at=sent_at)
    assert (refused.status_code, refused.json()["field"]) == (422, "sent_at"), refused.text
    assert await Batch.all().count() == 0


@pytest.mark.parametrize("sent_at", ["1999-12-31T16:00:00Z", "2000-01-01T07:59:00+08:00"])
async def test_a_consignment_sent_on_the_citys_first_day_of_2000_is_taken(
    client: httpx.AsyncClient, points: World, sent_at: str
) -> None:
    """The floor of a reported time is 1 January 2000 on the city's clock, whatever the
    offset sent (its first eight hours are still 1999 in UTC)."""
    sent = await send(client, points, BOTTLES_AND_DRUMS[1], sent_at=sent_at)
    assert sent.status_code == 201, sent.text


async def test_ledger_exports_and_recovery_rate(
    client: httpx.AsyncClient, points: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await post(client, points, a_return())
    sale = a_sale()
    assert (await post(client, points, sale, path="/m/v1/pesticide/sales")).status_code == 201
    assert (await post(client, points, sale, path="/m/v1/pesticide/sales")).status_code == 200
    # The city's real tomorrow: CITY_TODAY is the day before in the city's first hours.
    for day in ((cityday.today(CITY_ZONE) + timedelta(days=1)).isoformat(), "1999-12-31"):
        odd = {**sale, "client_event_id": str(uuid.uuid4()), "sold_on": day}
        refused = await post(client, points, odd, path="/m/v1/pesticide/sales")
        assert (refused.status_code, refused.json()["field"]) == (422, "sold_on"), day
    by_station = await post(
        client,
        points,
        {**sale, "client_event_id": str(uuid.uuid4())},
        who="station",
        path="/m/v1/pesticide/sales",
    )
    assert by_station.status_code == 403
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
    # The ledger shows the points the return was awarded, whatever the rules say since.
    monkeypatch.setitem(CREDIT_RULES, "points_per_item", {})
    csv = await client.get("/m/v1/pesticide/ledger.csv", params=day, headers=points.headers("shop"))
    text = csv.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("日期 date,类型 kind")
    assert [line.rsplit(",", 1)[1] for line in text.splitlines()[1:]] == ["17.0", ""]
    assert "138****5678" in text and PHONE not in text
    assert len(text.splitlines()) == 3
    xlsx = await client.get(
        "/m/v1/pesticide/ledger.xlsx", params=day, headers=points.headers("shop")
    )
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet.max_row == 3
    metrics = (
        await client.get("/m/v1/metrics/pesticide", params=day, headers=points.headers("manager"))
    ).json()
    bottles = next(m for m in metrics["materials"] if m["material"] == "agri.plastic_bottle")
    assert (bottles["sold"], bottles["returned"]) == (100, 12)
    assert bottles["recovery_rate"]["rate"] == "0.1200"
    # Drums brought back weighed and not counted: beside the rate, not lost.
    weighed = a_return(lines=[{"material": "agri.drum", "count": 0, "weight_kg": "12"}])
    assert (await post(client, points, weighed)).status_code == 201
    metrics = (
        await client.get("/m/v1/metrics/pesticide", params=day, headers=points.headers("manager"))
    ).json()
    drums = next(m for m in metrics["materials"] if m["material"] == "agri.drum")
    assert (drums["returned"], Decimal(drums["returned_uncounted_kg"])) == (1, 12)


async def test_a_line_weighed_0_kg_is_unweighed_in_the_ledger_as_in_the_figures(
    client: httpx.AsyncClient, points: World
) -> None:
    """A weight of 0 is no weighing (a line needs a count or a weight): the figures take the
    line's mass from its count, so the ledger leaves its weight empty rather than write 0 kg
    beside two drums."""
    zero = a_return(lines=[{"material": "agri.drum", "count": 2, "weight_kg": "0"}])
    assert (await post(client, points, zero)).status_code == 201
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
    csv = await client.get("/m/v1/pesticide/ledger.csv", params=day, headers=points.headers("shop"))
    (row,) = list(DictReader(io.StringIO(csv.content.decode("utf-8-sig"))))
    assert (row["数量 count"], row["重量 weight_kg"]) == ("2", ""), row
    metrics = (
        await client.get("/m/v1/metrics/pesticide", params=day, headers=points.headers("manager"))
    ).json()
    drums = next(m for m in metrics["materials"] if m["material"] == "agri.drum")
    assert (drums["returned"], Decimal(drums["returned_uncounted_kg"])) == (2, 0)


async def test_a_weight_sent_in_exponent_form_is_kept_and_shown_in_plain_figures(
    client: httpx.AsyncClient, points: World
) -> None:
    """`1E+1` and `2.5e0` are 10 and 2.5 kg: a return's lines keep them as the ledger, its
    files and the phone show them, never in exponent form."""
    sent = a_return(
        lines=[
            {"material": "agri.drum", "count": 1, "weight_kg": "1E+1"},
            {"material": "agri.plastic_bottle", "count": 3, "weight_kg": "2.5e0"},
        ]
    )
    assert (await post(client, points, sent)).status_code == 201
    kept = await PackagingReturn.get(client_event_id=sent["client_event_id"])
    assert [line["weight_kg"] for line in kept.lines] == ["10", "2.5"]
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
    csv = await client.get("/m/v1/pesticide/ledger.csv", params=day, headers=points.headers("shop"))
    rows = list(DictReader(io.StringIO(csv.content.decode("utf-8-sig"))))
    assert [row["重量 weight_kg"] for row in rows] == ["10", "2.5"]
    # Kept before in exponent form (the command's JSON): migration 0064 writes it plainly.
    before = [{**kept.lines[0], "weight_kg": "1E+1"}, {**kept.lines[1], "weight_kg": "2.5e0"}]
    await PackagingReturn.filter(id=kept.id).update(lines=before)
    await connections.get("default").execute_script(
        importlib.import_module("migrations.0064_kept_lines_in_plain_figures").PLAIN
    )
    assert (await PackagingReturn.get(id=kept.id)).lines == kept.lines


async def test_returns_sync_offline_exactly_once(client: httpx.AsyncClient, points: World) -> None:
    body = {**a_return(), "kind": "return"}
    answer = (
        await client.post(
            "/m/v1/sync", json={"events": [body, body]}, headers=points.headers("station")
        )
    ).json()
    assert [r["status"] for r in answer["results"]] == ["applied", "duplicate"]


async def test_admin_narrowed_to_a_town_counts_only_its_points(
    client: httpx.AsyncClient, points: World
) -> None:
    """?region_id= narrows an admin as it narrows a manager: the recovery metric and the plan
    indicator read only the town's shops and points."""
    away = await registry.create_organization(
        name="石岛农资店",
        kind=OrganizationKind.agri_input_shop,
        region_id=points.regions["other_town"].id,
    )
    await make_user(points, "away_shop", Role.generator, away)
    for who, count in (("shop", 100), ("away_shop", 50)):
        sale = a_sale(count=count)
        assert (await post(client, points, sale, who, "/m/v1/pesticide/sales")).status_code == 201
        assert (await post(client, points, a_return(), who)).status_code == 201
    admin = points.headers("admin")
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
    town = {"region_id": points.regions["town"].id}

    async def returned_of_sold(params: dict) -> tuple[str, str]:
        answer = await client.get("/m/v1/metrics/pesticide", params=params, headers=admin)
        rate = answer.json()["recovery_rate"]
        return rate["numerator"], rate["denominator"]

    assert await returned_of_sold(day) == ("26", "150")
    assert await returned_of_sold({**day, **town}) == ("13", "100")
    indicators = (await client.get("/m/v1/indicators", params=town, headers=admin)).json()
    recovery = next(
        i for i in indicators["indicators"] if i["code"] == "pesticide_packaging_recovery"
    )
    assert (recovery["actual"]["numerator"], recovery["actual"]["denominator"]) == ("13", "100")


async def test_a_sale_id_resent_by_another_shop_or_with_other_content_is_a_conflict(
    client: httpx.AsyncClient, points: World
) -> None:
    """A sale is kept by its client id: a resend of that id by another shop must not be
    answered with the first shop's row, and the same id with another count or material (a
    phone that reused an id, or an edit sent as a resend) is refused, never taken for the
    first; neither changes anything."""
    other = await registry.create_organization(
        name="石岛农资店",
        kind=OrganizationKind.agri_input_shop,
        region_id=points.regions["other_town"].id,
    )
    await make_user(points, "other_shop", Role.generator, other)
    sale = a_sale()
    assert (await post(client, points, sale, path="/m/v1/pesticide/sales")).status_code == 201
    taken = await post(client, points, sale, "other_shop", "/m/v1/pesticide/sales")
    assert (taken.status_code, taken.json()["field"]) == (409, "client_event_id"), taken.text
    assert "100" not in taken.text and str(points.orgs["shop"].id) not in taken.text
    for changed in ({"count": 120}, {"material": "agri.drum"}):
        other = await post(client, points, {**sale, **changed}, path="/m/v1/pesticide/sales")
        assert (other.status_code, other.json()["field"]) == (409, "client_event_id"), other.text
    again = await post(client, points, sale, path="/m/v1/pesticide/sales")
    assert again.status_code == 200 and again.json()["count"] == 100
    assert [(s.material, s.count) for s in await PackageSale.all()] == [
        ("agri.plastic_bottle", 100)
    ]


async def test_a_sale_entered_wrong_is_cancelled_by_its_shop_and_counts_no_more(
    client: httpx.AsyncClient, points: World
) -> None:
    """A count typed ten times too large would swell the recovery rate's denominator for good:
    the shop cancels the sale (作废) with a reason and records the right one. The cancelled
    sale stays, counted in no figure, and the audit log says who cancelled it and why; a
    resend of it, or cancelling it again, changes nothing; no one else can cancel it."""
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}

    async def sold() -> int:
        metrics = await client.get(
            "/m/v1/metrics/pesticide", params=day, headers=points.headers("manager")
        )
        return int(metrics.json()["sold"])

    wrong = a_sale(count=1000)
    made = await post(client, points, wrong, path="/m/v1/pesticide/sales")
    assert made.status_code == 201, made.text
    assert made.json()["cancelled_at"] is None
    assert await sold() == 1000
    url = f"/m/v1/pesticide/sales/{made.json()['id']}/cancel"
    for who, body, status, field in (
        ("shop", {"reason": ""}, 422, "reason"),
        ("shop", {}, 422, "reason"),
        ("station", {"reason": "not ours"}, 404, "sale_id"),
        ("manager", {"reason": "not ours"}, 404, "sale_id"),
    ):
        refused = await client.post(url, json=body, headers=points.headers(who))
        assert (refused.status_code, refused.json()["field"]) == (status, field), who
    assert await sold() == 1000
    cancelled = await client.post(
        url, json={"reason": "录入错误：应为100"}, headers=points.headers("shop")
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_reason"] == "录入错误：应为100"
    assert await sold() == 0
    right = {**wrong, "client_event_id": str(uuid.uuid4()), "count": 100}
    assert (await post(client, points, right, path="/m/v1/pesticide/sales")).status_code == 201
    assert await sold() == 100
    # Resent from a phone's queue, or cancelled again: answered as it stands, nothing changes.
    resent = await post(client, points, wrong, path="/m/v1/pesticide/sales")
    assert resent.json()["cancelled_at"] == cancelled.json()["cancelled_at"]
    again = await client.post(url, json={"reason": "again"}, headers=points.headers("shop"))
    assert again.json() == cancelled.json()
    assert await sold() == 100
    assert await PackageSale.all().count() == 2
    await the_cancellation_is_audited(
        client, points, "package_sale", by="shop", reason="录入错误：应为100"
    )


async def the_cancellation_is_audited(
    client: httpx.AsyncClient, world: World, subject_type: str, *, by: str, reason: str
) -> None:
    """The audit log holds one entry for the subject type: its cancellation, by whom and why."""
    entries = await client.get(
        "/m/v1/audit", params={"subject_type": subject_type}, headers=world.headers("manager")
    )
    assert entries.status_code == 200, entries.text
    (entry,) = entries.json()["entries"]
    assert (entry["action"], entry["actor_user_id"]) == (
        f"{subject_type}.cancelled",
        world.users[by].id,
    )
    assert (entry["before"]["cancelled_at"], entry["after"]["cancel_reason"]) == (None, reason)


async def test_a_return_entered_wrong_is_cancelled_by_its_point_and_counts_no_more(
    client: httpx.AsyncClient, points: World
) -> None:
    """A count typed ten times too large would swell the recovery rate and the farmer's credit
    points for good: the point cancels the return (作废) with a reason and records the right
    one. The cancelled return stays, in no figure, no ledger and no balance, and the audit log
    says who cancelled it and why; a resend of it (alone or in a sync), or cancelling it again,
    changes nothing; no one else can cancel it."""
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}

    async def standing() -> tuple[int, str, int, int]:
        """Containers returned, the farmer's points and returns, the ledger's rows."""
        metrics = await client.get(
            "/m/v1/metrics/pesticide", params=day, headers=points.headers("manager")
        )
        credits = (await client.post("/p/v1/credits", json={"farmer_phone": PHONE})).json()
        ledger = await client.get(
            "/m/v1/pesticide/ledger.csv", params=day, headers=points.headers("manager")
        )
        rows = len(ledger.content.decode("utf-8-sig").splitlines()) - 1
        return int(metrics.json()["returned"]), credits["points"], credits["returns"], rows

    wrong = a_return(lines=[{"material": "agri.plastic_bottle", "count": 120}])
    made = await post(client, points, wrong, who="station")
    assert made.status_code == 201, made.text
    assert made.json()["cancelled_at"] is None
    assert await standing() == (120, "120.0", 1, 1)
    url = f"/m/v1/pesticide/returns/{made.json()['id']}/cancel"
    for who, body, status, field in (
        ("station", {"reason": " "}, 422, "reason"),
        ("station", {}, 422, "reason"),
        ("shop", {"reason": "not ours"}, 404, "return_id"),
        ("manager", {"reason": "not ours"}, 404, "return_id"),
    ):
        refused = await client.post(url, json=body, headers=points.headers(who))
        assert (refused.status_code, refused.json()["field"]) == (status, field), who
    assert await standing() == (120, "120.0", 1, 1)
    cancelled = await client.post(
        url, json={"reason": "录入错误：应为12"}, headers=points.headers("station")
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_reason"] == "录入错误：应为12"
    assert (cancelled.json()["points"], cancelled.json()["balance"]) == ("120.0", "0.0")
    assert await standing() == (0, "0.0", 0, 0)
    right = a_return(lines=[{"material": "agri.plastic_bottle", "count": 12}])
    assert (await post(client, points, right, who="station")).status_code == 201
    assert await standing() == (12, "12.0", 1, 1)
    # Resent from a phone's queue, alone or in a sync, or cancelled again: answered as it
    # stands, nothing changes.
    resent = await post(client, points, wrong, who="station")
    assert resent.json()["cancelled_at"] == cancelled.json()["cancelled_at"]
    synced = await client.post(
        "/m/v1/sync",
        json={"events": [{**wrong, "kind": "return"}]},
        headers=points.headers("station"),
    )
    assert synced.json()["results"][0]["status"] == "duplicate"
    again = await client.post(url, json={"reason": "again"}, headers=points.headers("station"))
    assert again.json() == {**cancelled.json(), "balance": "12.0"}
    assert await standing() == (12, "12.0", 1, 1)
    assert await PackagingReturn.all().count() == 2
    await the_cancellation_is_audited(
        client, points, "packaging_return", by="station", reason="录入错误：应为12"
    )


@pytest.mark.parametrize("kind", ["sale", "return"])
async def test_cancels_of_one_record_at_once_write_one_cancellation(
    client: httpx.AsyncClient, points: World, kind: str
) -> None:
    """A phone's retry and a colleague's cancel at the same moment: the first cancels the
    sale or return, the others find it cancelled; one audit entry, one answer for all."""
    if kind == "sale":
        made = await post(client, points, a_sale("agri.drum", 40), path="/m/v1/pesticide/sales")
        model: type[PackageSale | PackagingReturn] = PackageSale
        url, action = "/m/v1/pesticide/sales/{}/cancel", "package_sale.cancelled"
    else:
        made = await post(client, points, a_return())
        model = PackagingReturn
        url, action = "/m/v1/pesticide/returns/{}/cancel", "packaging_return.cancelled"
    url = url.format(made.json()["id"])
    answers = await asyncio.gather(
        *(
            client.post(url, json={"reason": f"reason {i}"}, headers=points.headers("shop"))
            for i in range(4)
        )
    )
    assert {a.status_code for a in answers} == {200}
    assert len({(a.json()["cancel_reason"], a.json()["cancelled_at"]) for a in answers}) == 1
    stored = await model.get(id=made.json()["id"])
    assert stored.cancel_reason == answers[0].json()["cancel_reason"]
    assert await AuditEntry.filter(action=action).count() == 1


async def test_what_is_kept_to_know_a_resend_gives_no_farmers_number_back(
    client: httpx.AsyncClient, points: World
) -> None:
    """A return's content digest and the fingerprint an Idempotency-Key keeps of its request
    were plain SHA-256s: with the seven digits the masked form shows, the farmer's number came
    back from a database dump in 10,000 tries. Both are keyed now, and resends are still known
    (by the digest, by a key), as are those kept plain before (a digest dropped by migration
    0063, a fingerprint of a key claimed before)."""
    body = a_return()
    raw = json.dumps(body).encode()
    headers = {**points.headers("shop"), "Content-Type": "application/json"}
    keyed = {**headers, "Idempotency-Key": "return-1"}
    first = await client.post("/m/v1/pesticide/returns", content=raw, headers=keyed)
    assert first.status_code == 201, first.text
    row = await PackagingReturn.get(id=first.json()["id"]).prefetch_related("farmer")
    (fingerprint,) = await connections.get("default").execute_query_dict(
        "SELECT fingerprint FROM idempotency_key WHERE key = 'return-1'"
    )
    masked = row.farmer.masked
    found = []
    for hidden in range(10_000):
        guess = f"{masked[:3]}{hidden:04d}{masked[-4:]}"
        content = ReturnCommand.model_validate({**body, "farmer_phone": guess})
        digest = hashlib.sha256(content.model_dump_json().encode()).hexdigest()
        sent = raw.replace(PHONE.encode(), guess.encode())
        request = hashlib.sha256(b"POST\n/m/v1/pesticide/returns\n\n" + sent).hexdigest()
        if row.payload_digest == digest or fingerprint["fingerprint"] == request:
            found.append(guess)
    assert found == []
    with pytest.raises(TypeError):  # digested only as keyed
        ReturnCommand.model_validate(body).digest()
    # Resends are known still: by the key, by the content, and another farmer is not the same.
    assert (await client.post("/m/v1/pesticide/returns", content=raw, headers=keyed)).headers[
        "idempotent-replayed"
    ] == "true"
    assert (await post(client, points, body)).status_code == 200
    other = {**body, "farmer_phone": "13900000000"}
    assert (await post(client, points, other)).json()["field"] == "client_event_id"
    # Kept plain before: known by the client_event_id, and by the plain fingerprint.
    await PackagingReturn.filter(id=row.id).update(payload_digest="")
    plain = hashlib.sha256(b"POST\n/m/v1/pesticide/returns\n\n" + raw).hexdigest()
    await connections.get("default").execute_query(
        "UPDATE idempotency_key SET fingerprint = $1 WHERE key = 'return-1'", [plain]
    )
    assert (await post(client, points, body)).status_code == 200
    replayed = await client.post("/m/v1/pesticide/returns", content=raw, headers=keyed)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert await PackagingReturn.all().count() == 1
