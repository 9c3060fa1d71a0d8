"""The pesticide ledger (台账) reads a consignment's batches as the custody log holds them: a
batch cancelled since is in no ledger, and a corrected tagging shows its corrected material and
kg (docs/streams/pesticide.md, as docs/registers.md for every register)."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import httpx
import openpyxl

from tests.custody.helpers import post_event
from tests.factories import CITY_TODAY, CITY_ZONE, NOW, World, event
from tests.pesticide.test_take_back import BOTTLES_AND_DRUMS, a_return, points, post, send
from wastetrack.registry import service as registry

__all__ = ["points"]  # the fixture used here

DAY = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}


async def consignment_rows(
    client: httpx.AsyncClient, world: World, who: str, day: date | None = None
) -> list[dict]:
    period = DAY if day is None else {"date_from": day.isoformat(), "date_to": day.isoformat()}
    response = await client.get(
        "/m/v1/pesticide/ledger.csv", params=period, headers=world.headers(who)
    )
    assert response.status_code == 200, response.text
    rows = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    return [row for row in rows if row["类型 kind"] == "consignment"]


async def test_a_consignment_reads_its_batches_after_corrections_and_cancellations(
    client: httpx.AsyncClient, points: World
) -> None:
    sent = await send(client, points, *BOTTLES_AND_DRUMS)
    assert sent.status_code == 201, sent.text
    bottles, drums = (line["batch_code"] for line in sent.json()["lines"])
    # The drums were never sent (recorded by mistake); the bottles weighed 21.5 kg, not 12.5.
    cancelled = await post_event(
        client, points, "station", event("cancelled", drums, minutes=5, reason="recorded twice")
    )
    assert cancelled.status_code == 201, cancelled.text
    history = await client.get(f"/m/v1/batches/{bottles}/events", headers=points.headers("station"))
    tagging = history.json()[0]["id"]
    fix = event("corrected", bottles, minutes=5, corrects=tagging, quantity="21.5")
    corrected = await post_event(client, points, "station", fix)
    assert corrected.status_code == 201, corrected.text
    for who in ("station", "manager"):
        rows = await consignment_rows(client, points, who)
        assert [(r["材质 material"], Decimal(r["重量 weight_kg"])) for r in rows] == [
            ("agri.plastic_bottle", Decimal("21.5"))
        ], who
        assert bottles in rows[0]["去向 destination"]


async def test_the_ledgers_weights_and_points_are_numbers_a_spreadsheet_sums(
    client: httpx.AsyncClient, points: World
) -> None:
    """In XLSX a mass or a count is a number cell (docs/registers.md): a column of text would
    sum to 0."""
    assert (await post(client, points, a_return())).status_code == 201
    sent = await send(
        client, points, {"material": "agri.drum", "count": 6, "weight_kg": "9.25"}, who="shop"
    )
    assert sent.status_code == 201, sent.text
    xlsx = await client.get(
        "/m/v1/pesticide/ledger.xlsx", params=DAY, headers=points.headers("shop")
    )
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    header = [cell.value for cell in sheet[1]]
    kind, weight, count, awarded = (
        header.index(name) for name in ("类型 kind", "重量 weight_kg", "数量 count", "积分 points")
    )
    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2)]
    assert [(r[kind], r[count], r[weight]) for r in rows] == [
        ("consignment", 6, 9.25),
        ("return", 12, 0.6),
        ("return", 1, None),
    ]
    assert [r[awarded] for r in rows if r[awarded] is not None] == [17]


async def test_a_consignment_refused_at_the_gate_says_so_in_the_ledger(
    client: httpx.AsyncClient, points: World
) -> None:
    """The point takes its consignment to the treatment site, which refuses the drums: the
    ledger's row no longer reads as sent on and done with, its fate says `rejected`, as the
    figures count it; the bottles, on their way, are `in_progress`."""
    sent = await send(client, points, *BOTTLES_AND_DRUMS)
    assert sent.status_code == 201, sent.text
    bottles, drums = (line["batch_code"] for line in sent.json()["lines"])
    site = points.orgs["unlicensed"].id
    for code in (bottles, drums):
        for step in (
            event("collected", code, minutes=2),
            event("in_transit", code, minutes=3, destination_organization_id=site),
        ):
            moved = await post_event(client, points, "station", step)
            assert moved.status_code == 201, moved.text
    refusal = event("received", drums, minutes=5, outcome="rejected", reason="破损渗漏")
    refused = await post_event(client, points, "unlicensed", refusal)
    assert refused.status_code == 201, refused.text
    rows = await consignment_rows(client, points, "station")
    assert {r["材质 material"]: r["结果 fate"] for r in rows} == {
        "agri.plastic_bottle": "in_progress",
        "agri.drum": "rejected",
    }


async def test_a_consignment_batch_is_on_the_day_of_its_corrected_tagging(
    client: httpx.AsyncClient, points: World
) -> None:
    """The point records today a consignment it sent two days ago and corrects its bottles'
    tagging time: the ledger puts their row on that day, as the incoming register and the
    cohorts do; the drums, not corrected, stay today (first written by an independent
    review)."""
    sent = await send(client, points, *BOTTLES_AND_DRUMS)
    assert sent.status_code == 201, sent.text
    bottles, drums = (line["batch_code"] for line in sent.json()["lines"])
    history = await client.get(f"/m/v1/batches/{bottles}/events", headers=points.headers("station"))
    true_time = NOW - timedelta(days=2)
    fix = event("corrected", bottles, minutes=5, corrects=history.json()[0]["id"])
    fix |= {"event_time": true_time.isoformat(), "reason": "sent two days ago"}
    assert (await post_event(client, points, "station", fix)).status_code == 201
    true_day = true_time.astimezone(CITY_ZONE).date()
    today = CITY_TODAY  # the tests' day, as the consignment's time is (NOW - 3 h)
    incoming = await client.get(
        "/m/v1/registers/incoming",
        params={"date_from": true_day.isoformat(), "date_to": true_day.isoformat()},
        headers=points.headers("station"),
    )
    assert [b["code"] for b in incoming.json()] == [bottles]
    for day, codes in ((true_day, [bottles]), (today, [drums])):
        rows = await consignment_rows(client, points, "station", day)
        assert [r["日期 date"] for r in rows] == [day.isoformat()] * len(codes)
        assert [r["去向 destination"].split("(")[-1].rstrip(")") for r in rows] == codes


async def test_a_ledger_holds_the_consignments_of_the_readers_points_only(
    client: httpx.AsyncClient, points: World
) -> None:
    """The point and its region's manager read its consignment; another town's manager and a
    shop read none of it (first written by an independent review)."""
    sent = await send(client, points, *BOTTLES_AND_DRUMS)
    assert sent.status_code == 201, sent.text
    for who, rows in (("manager", 2), ("station", 2), ("town_manager", 0), ("shop", 0)):
        assert len(await consignment_rows(client, points, who)) == rows, who


async def test_a_consignment_batch_sent_elsewhere_shows_the_destination_custody_holds(
    client: httpx.AsyncClient, points: World
) -> None:
    """The bottles consigned to the recycler leave for the disposal centre instead (the
    departure names it): the ledger's 去向 is where the batch is going or went, as custody and
    the fate beside it read it, not the destination typed on the consignment."""
    sent = await send(client, points, *BOTTLES_AND_DRUMS)
    assert sent.status_code == 201, sent.text
    bottles, drums = (line["batch_code"] for line in sent.json()["lines"])
    elsewhere = points.orgs["facility"]
    for step in (
        event("collected", bottles, minutes=2),
        event("in_transit", bottles, minutes=3, destination_organization_id=elsewhere.id),
    ):
        moved = await post_event(client, points, "station", step)
        assert moved.status_code == 201, moved.text
    shown = {
        code: row["去向 destination"]
        for row in await consignment_rows(client, points, "station")
        for code in (bottles, drums)
        if code in row["去向 destination"]
    }
    assert shown == {
        bottles: f"{elsewhere.name} ({bottles})",
        drums: f"{points.orgs['unlicensed'].name} ({drums})",
    }


async def test_a_batch_packed_into_a_load_or_taken_in_elsewhere_shows_where_it_went(
    client: httpx.AsyncClient, points: World
) -> None:
    """Both consigned to the recycler: the bottles are packed into the drums' load, which the
    disposal centre receives and treats (the bottles travel inside it, their fate the load's);
    a second consignment's bottles are handed to the centre, which stores and treats them (no
    receipt). The ledger's 去向 is the centre for both, as custody holds it."""
    first, second = [
        await send(client, points, *lines) for lines in (BOTTLES_AND_DRUMS, BOTTLES_AND_DRUMS[:1])
    ]
    bottles, drums = (line["batch_code"] for line in first.json()["lines"])
    (handed,) = (line["batch_code"] for line in second.json()["lines"])
    centre = points.orgs["facility"]
    for material in ("agri.drum", "agri.plastic_bottle"):
        await registry.add_licence(
            organization_id=centre.id, category_key=material, method_codes=["R3"]
        )
    for who, step in (
        ("station", event("aggregated", drums, minutes=1, children=[bottles])),
        ("station", event("collected", drums, minutes=2)),
        ("station", event("in_transit", drums, minutes=3, destination_organization_id=centre.id)),
        ("facility", event("received", drums, minutes=20, outcome="accepted", weight_kg="21.5")),
        ("facility", event("treated", drums, minutes=30, method="R3")),
        ("station", event("handed_over", handed, minutes=2, to_organization_id=centre.id)),
        ("facility", event("stored", handed, minutes=20)),
        ("facility", event("treated", handed, minutes=30, method="R3")),
    ):
        moved = await post_event(client, points, who, step)
        assert moved.status_code == 201, moved.text
    shown = {
        code: (row["去向 destination"], row["结果 fate"])
        for row in await consignment_rows(client, points, "station")
        for code in (bottles, drums, handed)
        if code in row["去向 destination"]
    }
    fates = {bottles: "recovered", drums: "container", handed: "recovered"}
    assert shown == {code: (f"{centre.name} ({code})", fate) for code, fate in fates.items()}


async def test_a_part_refused_at_the_gate_stays_in_the_ledger(
    client: httpx.AsyncClient, points: World
) -> None:
    """12.5 kg of bottles consigned; the centre accepts 10 kg and refuses the rest, which goes
    back to the station as a remainder batch (its incoming register lists it). The ledger's
    consignment rows are "its batches as every register reads them": the refused 2.5 kg, now
    `rejected` and back with the station, stays in the ledger, a row of its own weighed and not
    counted (pesticide review: it vanished, and the ledger's kg no longer added up)."""
    sent = await send(client, points, BOTTLES_AND_DRUMS[0])
    assert sent.status_code == 201, sent.text
    (bottles,) = (line["batch_code"] for line in sent.json()["lines"])
    centre = points.orgs["facility"]
    await registry.add_licence(
        organization_id=centre.id, category_key="agri.plastic_bottle", method_codes=["R3"]
    )
    for who, step in (
        ("station", event("collected", bottles, minutes=2)),
        ("station", event("in_transit", bottles, minutes=3, destination_organization_id=centre.id)),
        (
            "facility",
            event(
                "received",
                bottles,
                minutes=20,
                outcome="partially_accepted",
                weight_kg="10",
                reason="部分破损",
            ),
        ),
    ):
        moved = await post_event(client, points, who, step)
        assert moved.status_code == 201, moved.text
    # The station's incoming register holds the refused part, back with it, as a batch.
    incoming = await client.get(
        "/m/v1/registers/incoming",
        params={"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()},
        headers=points.headers("station"),
    )
    back = [b for b in incoming.json() if b.get("how") == "refused_remainder"]
    assert len(back) == 1, incoming.text
    rows = await consignment_rows(client, points, "station")
    assert sum(Decimal(r["重量 weight_kg"]) for r in rows) == Decimal("12.5"), rows
    assert sorted(r["结果 fate"] for r in rows) == ["in_progress", "rejected"], rows
    counts = {r["结果 fate"]: r["数量 count"] for r in rows}
    assert counts["rejected"] == "" and counts["in_progress"] != "", rows  # the pieces once
