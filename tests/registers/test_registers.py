"""Registers built from histories recorded through the API: rows, corrections and
cancellations, the inventory identity over a random history, CSV/XLSX, who may read them."""

import csv
import io
import random
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import openpyxl
from tortoise.transactions import in_transaction

from tests.custody.helpers import advance, post_event, tag_bag
from tests.factories import World, event
from wastetrack.registers import movements
from wastetrack.registry.models import Site

ZONE = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(ZONE).date()


async def register(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    kind: str,
    org: str | None = None,
    *,
    days: tuple[date, date] | None = None,
    **params: str,
) -> httpx.Response:
    start, end = days or (today() - timedelta(days=1), today())
    query = {"date_from": start.isoformat(), "date_to": end.isoformat(), **params}
    if org is not None:
        query["organization_id"] = str(world.orgs[org].id)
    return await client.get(f"/m/v1/registers/{kind}", params=query, headers=world.headers(who))


async def rows(client: httpx.AsyncClient, world: World, who: str, kind: str, **kw: object) -> list:
    response = await register(client, world, who, kind, **kw)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_chain_enters_and_leaves_each_register(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="treated")
    orgs = world.orgs

    clinic_in = await rows(client, world, "clinic", "incoming")
    assert [(r["code"], r["how"], r["from_organization"]) for r in clinic_in] == [
        (bag["code"], "tagged", None)
    ]
    clinic_out = await rows(client, world, "clinic", "outgoing")
    assert [(r["how"], r["to_organization"]["id"]) for r in clinic_out] == [
        ("collected", orgs["carrier"].id)
    ]
    carrier_in = await rows(client, world, "carrier", "incoming")
    assert [(r["how"], r["from_organization"]["id"]) for r in carrier_in] == [
        ("collected", orgs["clinic"].id)
    ]
    carrier_out = await rows(client, world, "carrier", "outgoing")
    assert [(r["how"], r["to_organization"]["id"]) for r in carrier_out] == [
        ("received", orgs["facility"].id)
    ]
    facility_in = await rows(client, world, "facility", "incoming")
    assert [(r["how"], r["mass_kg"], r["waste_code"]) for r in facility_in] == [
        ("received", "3.400", "841-001-01")
    ]
    assert facility_in[0]["carrier"]["id"] == orgs["carrier"].id
    facility_out = await rows(client, world, "facility", "outgoing")
    assert [(r["how"], r["to_organization"], r["fate"]) for r in facility_out] == [
        ("treated", None, "disposed_harmless")
    ]
    for who in ("clinic", "carrier", "facility"):
        stock = await rows(client, world, who, "inventory")
        assert stock["batches"] == []  # type: ignore[index]


async def test_inventory_lists_what_is_held_with_storage_days(
    client: httpx.AsyncClient, world: World
) -> None:
    three_days_ago = datetime.now(UTC) - timedelta(days=3, hours=1)
    bag = await tag_bag(client, world, device_time=three_days_ago.isoformat())
    stock = await rows(
        client, world, "clinic", "inventory", days=(today() - timedelta(days=10), today())
    )
    assert [(b["code"], b["storage_days"], b["overdue"]) for b in stock["batches"]] == [  # type: ignore[index]
        (bag["code"], 3, True)  # medical waste: 48 hours at the producer
    ]
    balance = stock["balance"]  # type: ignore[index]
    assert balance == [
        {
            "category": "med.infectious",
            "category_name": "感染性废物",
            "opening": {"batches": 0, "kg": "0", "without_mass": 0},
            "incoming": {"batches": 1, "kg": "3.500", "without_mass": 0},
            "outgoing": {"batches": 0, "kg": "0", "without_mass": 0},
            "closing": {"batches": 1, "kg": "3.500", "without_mass": 0},
        }
    ]
    # The period that ended before the tagging holds nothing.
    before = await rows(
        client,
        world,
        "clinic",
        "inventory",
        days=(today() - timedelta(days=10), today() - timedelta(days=5)),
    )
    assert before["batches"] == []  # type: ignore[index]


async def test_packing_old_bags_into_a_box_keeps_their_storage_clock(
    client: httpx.AsyncClient, world: World
) -> None:
    """A clinic packs three-day-old bags into a box tagged today: the box has been stored as
    long as its oldest bag, as the overdue-storage alert counts."""
    three_days_ago = datetime.now(UTC) - timedelta(days=3, hours=1)
    bag = await tag_bag(client, world, device_time=three_days_ago.isoformat())
    box = await tag_bag(client, world)
    packed = await post_event(
        client, world, "clinic", event("aggregated", box["code"], minutes=5, children=[bag["code"]])
    )
    assert packed.status_code == 201, packed.text
    stock = await rows(
        client, world, "clinic", "inventory", days=(today() - timedelta(days=10), today())
    )
    held = [(b["code"], b["storage_days"], b["overdue"]) for b in stock["batches"]]  # type: ignore[index]
    assert held == [(box["code"], 3, True)]
    assert datetime.fromisoformat(stock["batches"][0]["since"]) == three_days_ago  # type: ignore[index]


async def test_a_batch_without_a_known_mass_shows_none_not_zero_kg(
    client: httpx.AsyncClient, world: World
) -> None:
    """Items of a category with no unit mass have no mass until weighed (metrics §3): the
    registers show none, not 0 kg estimated, and the balance counts the batch apart."""
    bag = await tag_bag(client, world, quantity="5", unit="count")
    (row,) = await rows(client, world, "clinic", "incoming")
    assert (row["code"], row["mass_kg"], row["estimated"]) == (bag["code"], None, False)
    stock = await rows(client, world, "clinic", "inventory")
    assert [b["mass_kg"] for b in stock["batches"]] == [None]  # type: ignore[index]
    (line,) = stock["balance"]  # type: ignore[index]
    assert line["closing"] == {"batches": 1, "kg": "0", "without_mass": 1}


async def test_a_corrected_weight_shows_and_a_cancelled_batch_is_in_no_register(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="received")
    events = (
        await client.get(f"/m/v1/batches/{bag['code']}/events", headers=world.headers("facility"))
    ).json()
    fixed = await post_event(
        client,
        world,
        "facility",
        event("corrected", bag["code"], minutes=80, corrects=events[-1]["id"], weight_kg="3.9"),
    )
    assert fixed.status_code == 201, fixed.text
    facility_in = await rows(client, world, "facility", "incoming")
    assert [r["mass_kg"] for r in facility_in] == ["3.900"]
    stock = await rows(client, world, "facility", "inventory")
    assert [b["mass_kg"] for b in stock["batches"]] == ["3.900"]  # type: ignore[index]

    mistake = await tag_bag(client, world)
    cancelled = await post_event(
        client, world, "clinic", event("cancelled", mistake["code"], minutes=5, reason="mistake")
    )
    assert cancelled.status_code == 201, cancelled.text
    codes = {r["code"] for r in await rows(client, world, "clinic", "incoming")}
    assert codes == {bag["code"]}
    stock = await rows(client, world, "clinic", "inventory")
    assert stock["batches"] == []  # type: ignore[index]


async def test_a_correction_dated_later_does_not_move_a_handover_synced_after_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic corrects a bag at 00:10; the carrier's phone, offline, had collected it at
    23:50 the day before and syncs afterwards. The handover was on that day, at 23:50, as for
    a bag nobody corrected: a correction moves nothing, so it moves no movement's time."""
    day = today() - timedelta(days=2)

    def at(on: date, hour: int, minute: int) -> str:
        return datetime.combine(on, time(hour, minute), ZONE).isoformat()

    carrier = world.orgs["carrier"].id
    corrected, plain = [
        await tag_bag(client, world, device_time=at(day, 22, 0), carrier_organization_id=carrier)
        for _ in range(2)
    ]
    tagging = (
        await client.get(
            f"/m/v1/batches/{corrected['code']}/events", headers=world.headers("clinic")
        )
    ).json()[0]
    fix = event("corrected", corrected["code"], corrects=tagging["id"], quantity="4.0")
    fix["device_time"] = at(day + timedelta(days=1), 0, 10)
    assert (await post_event(client, world, "clinic", fix)).status_code == 201
    for bag in (corrected, plain):
        collected = event("collected", bag["code"])
        collected["device_time"] = at(day, 23, 50)
        assert (await post_event(client, world, "carrier", collected)).status_code == 201

    both = sorted([corrected["code"], plain["code"]])
    on_day = {"days": (day, day)}
    assert (
        sorted(r["code"] for r in await rows(client, world, "clinic", "outgoing", **on_day)) == both
    )
    assert (
        sorted(r["code"] for r in await rows(client, world, "carrier", "incoming", **on_day))
        == both
    )
    handed = await rows(client, world, "clinic", "medical-handover", **on_day)
    assert [r["local_time"] for r in handed] == [f"{day.isoformat()} 23:50"] * 2


async def test_the_inventory_balances_over_a_random_history(
    client: httpx.AsyncClient, world: World
) -> None:
    rng = random.Random(13)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=9)
    carrier, facility = world.orgs["carrier"].id, world.orgs["facility"].id
    # Who holds each batch at the end, by the last step recorded on it (a reference).
    holder_after = {0: "clinic", 1: "carrier", 2: "carrier", 3: "facility", 4: None}
    expected: dict[str, set[str]] = {"clinic": set(), "carrier": set(), "facility": set()}
    for n in range(10):
        at = base + timedelta(hours=rng.randrange(0, 96))
        category = rng.choice(["med.infectious", "med.sharps"])
        bag = await tag_bag(
            client,
            world,
            device_time=at.isoformat(),
            category=category,
            quantity=str(rng.randrange(1, 9)),
            carrier_organization_id=carrier,
        )
        code = bag["code"]
        if n % 5 == 4:
            body = event("cancelled", code, reason="mistake")
            body["device_time"] = (at + timedelta(hours=1)).isoformat()
            assert (await post_event(client, world, "clinic", body)).status_code == 201
            continue
        steps = [
            ("carrier", "collected", {}),
            ("carrier", "in_transit", {"destination_organization_id": facility}),
            ("facility", "received", {"outcome": "accepted", "weight_kg": "2.5"}),
            ("facility", "treated", {"method": "D10"}),
        ][: rng.randrange(0, 5)]
        holder = holder_after[len(steps)]
        if holder:
            expected[holder].add(code)
        for who, kind, fields in steps:
            at += timedelta(hours=rng.randrange(1, 40))
            body = event(kind, code, **fields)
            body["device_time"] = at.isoformat()
            response = await post_event(client, world, who, body)
            assert response.status_code == 201, response.text
    first = base.astimezone(ZONE).date()
    seen = {"opening": 0, "outgoing": 0}
    for org, codes in expected.items():
        stock = await rows(client, world, org, "inventory", org=org, days=(first, today()))
        assert {b["code"] for b in stock["batches"]} == codes, org  # type: ignore[index]
    for org in ("clinic", "carrier", "facility"):
        for start_offset, length in [(0, 11), (2, 3), (3, 2), (5, 6), (9, 1)]:
            start = first + timedelta(days=start_offset)
            end = start + timedelta(days=length - 1)
            stock = await rows(client, world, org, "inventory", org=org, days=(start, end))
            for line in stock["balance"]:  # type: ignore[index]
                for unit in ("batches", "kg"):
                    assert Decimal(line["opening"][unit]) + Decimal(
                        line["incoming"][unit]
                    ) - Decimal(line["outgoing"][unit]) == Decimal(line["closing"][unit]), (
                        org,
                        start,
                        end,
                        line,
                    )
            for part in seen:
                seen[part] += sum(line[part]["batches"] for line in stock["balance"])  # type: ignore[index]
            closing = sum(line["closing"]["batches"] for line in stock["balance"])  # type: ignore[index]
            assert closing == len(stock["batches"])  # type: ignore[index]
            # The next period opens with what this one closed with.
            after = await rows(
                client,
                world,
                org,
                "inventory",
                days=(end + timedelta(days=1), end + timedelta(days=1)),
            )
            opened = {
                line["category"]: line["opening"]
                for line in after["balance"]  # type: ignore[index]
            }
            closed = {
                line["category"]: line["closing"]
                for line in stock["balance"]  # type: ignore[index]
                if line["closing"]["batches"]
            }
            assert {k: v for k, v in opened.items() if v["batches"]} == closed
            # Incoming and outgoing registers list the same movements the balance counts.
            got_in = await rows(client, world, org, "incoming", days=(start, end))
            got_out = await rows(client, world, org, "outgoing", days=(start, end))
            balance = stock["balance"]  # type: ignore[index]
            assert len(got_in) == sum(line["incoming"]["batches"] for line in balance)
            assert len(got_out) == sum(line["outgoing"]["batches"] for line in balance)
    assert seen["opening"] and seen["outgoing"], seen  # the history crossed the periods


async def test_the_medical_handover_register_names_both_sides(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="treated")
    clinic = await rows(client, world, "clinic", "medical-handover")
    assert len(clinic) == 1
    row = clinic[0]
    assert row["source"]["id"] == world.orgs["clinic"].id
    assert row["handed_by"]["username"] == "clinic"
    assert row["received_by"]["username"] == "carrier"
    assert row["direction"] == "out"
    assert row["treatment_mode"] == "disposal" or row["fate"] == "disposed_harmless"
    handed = date.fromisoformat(row["local_time"][:10])
    assert row["keep_until"] == handed.replace(year=handed.year + 3).isoformat()
    carrier = await rows(client, world, "carrier", "medical-handover")
    assert [(r["direction"], r["handed_by"]["username"]) for r in carrier] == [
        ("in", "clinic"),
        ("out", "carrier"),
    ]
    assert carrier[1]["received_by"]["username"] == "facility"


async def test_csv_and_xlsx_hold_the_same_rows(client: httpx.AsyncClient, world: World) -> None:
    for _ in range(2):
        bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
        await advance(client, world, bag["code"], until="received")
    json_rows = await rows(client, world, "facility", "incoming")
    expected = [(r["code"], r["mass_kg"], r["from_organization"]["name"]) for r in json_rows]
    assert len(expected) == 2

    as_csv = await register(client, world, "facility", "incoming", format="csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [(r["code"], r["mass_kg"], r["from_organization.name"]) for r in table] == expected
    # The same moments as the JSON, on the city's clock (its day, not UTC's).
    assert [datetime.fromisoformat(r["time"]) for r in table] == [
        datetime.fromisoformat(r["time"]) for r in json_rows
    ]
    assert all(r["time"].endswith("+08:00") for r in table)

    as_xlsx = await register(client, world, "facility", "incoming", format="xlsx")
    assert as_xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    head = list(values[0])
    got = [
        (r[head.index("code")], r[head.index("mass_kg")], r[head.index("from_organization.name")])
        for r in values[1:]
    ]
    # Masses are numbers in the spreadsheet (it sums them), the same as the JSON's text.
    assert all(isinstance(mass, float) for _, mass, _ in got)
    assert [(c, Decimal(str(m)), n) for c, m, n in got] == [
        (c, Decimal(m), n) for c, m, n in expected
    ]

    balance = await register(client, world, "facility", "inventory", format="csv", table="balance")
    lines = list(csv.DictReader(io.StringIO(balance.content.decode("utf-8-sig"))))
    assert [(r["category"], r["closing.batches"]) for r in lines] == [("med.infectious", "2")]


async def _head(client: httpx.AsyncClient, world: World, who: str, kind: str, **kw: str) -> list:
    """A register's CSV download, as lists: its header first."""
    response = await register(client, world, who, kind, format="csv", **kw)
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_a_registers_file_has_its_columns_whatever_it_holds(
    client: httpx.AsyncClient, world: World
) -> None:
    """The read model's columns, in its order: an empty register still has its header, and a
    file before and after a handover (a party named, or none) has the same columns, a party
    as its `.id` and `.name`, never a bare empty column."""
    (empty,) = await _head(client, world, "facility", "incoming")
    assert empty[0] == "code" and "from_organization.name" in empty
    bag = await tag_bag(client, world)
    before = (await _head(client, world, "clinic", "incoming"))[0]
    other, clinic = world.orgs["other_clinic"].id, world.orgs["clinic"].id
    away = event("handed_over", bag["code"], minutes=5, to_organization_id=other)
    assert (await post_event(client, world, "clinic", away)).status_code == 201
    back = event("handed_over", bag["code"], minutes=10, to_organization_id=clinic)
    assert (await post_event(client, world, "other_clinic", back)).status_code == 201
    after = (await _head(client, world, "clinic", "incoming"))[0]
    assert before == after == empty
    assert "from_organization" not in after and "carrier" not in after


async def test_the_inventorys_files_name_the_period_they_count(
    client: httpx.AsyncClient, world: World
) -> None:
    """The batches held at the end of the period (their storage days to it) and the balance
    over it: every row names the period, as X-Period does."""
    await tag_bag(client, world)
    days = [(today() - timedelta(days=1)).isoformat(), today().isoformat()]
    for table in ("batches", "balance"):
        head, *lines = await _head(client, world, "clinic", "inventory", table=table)
        assert head[:2] == ["date_from", "date_to"] and lines, table
        assert all(line[:2] == days for line in lines), table


async def test_who_may_read_an_organizations_registers(
    client: httpx.AsyncClient, world: World
) -> None:
    await tag_bag(client, world)
    for who, status in [
        ("clinic", 200),
        ("manager", 200),
        ("auditor", 200),
        ("admin", 200),
        ("other_clinic", 404),
        ("carrier", 404),
        ("town_manager", 404),  # 石岛 manager; the clinic lies in 崖头
    ]:
        response = await register(client, world, who, "incoming", org="clinic")
        assert response.status_code == status, (who, response.text)
        if status == 200:
            assert len(response.json()) == 1, who


async def test_a_bad_period_or_format_names_the_field(
    client: httpx.AsyncClient, world: World
) -> None:
    reversed_period = await register(
        client, world, "clinic", "outgoing", days=(today(), today() - timedelta(days=3))
    )
    assert reversed_period.status_code == 422
    assert reversed_period.json()["field"] == "date_to"
    bad_format = await register(client, world, "clinic", "outgoing", format="pdf")
    assert bad_format.status_code == 422
    assert bad_format.json()["field"] == "format"
    bad_site = await register(client, world, "clinic", "inventory", site_id="999999")
    assert bad_site.status_code == 404
    assert bad_site.json()["field"] == "site_id"


async def test_the_refused_part_of_a_partial_acceptance_comes_back_to_the_carrier(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="in_transit")
    body = event(
        "received",
        bag["code"],
        minutes=60,
        outcome="partially_accepted",
        weight_kg="2.0",
        reason="two bags torn",
    )
    response = await post_event(client, world, "facility", body)
    assert response.status_code == 201, response.text
    facility_in = await rows(client, world, "facility", "incoming")
    assert [(r["code"], r["mass_kg"]) for r in facility_in] == [(bag["code"], "2.000")]
    carrier_in = await rows(client, world, "carrier", "incoming")
    back = [r for r in carrier_in if r["code"] != bag["code"]]
    assert [(r["how"], r["from_organization"]["id"], r["mass_kg"]) for r in back] == [
        ("refused_remainder", world.orgs["facility"].id, "1.500")
    ]
    # It came back when it was refused, not when the bag was tagged.
    refused_at = datetime.fromisoformat(body["device_time"])
    assert datetime.fromisoformat(back[0]["time"]) == refused_at
    stock = await rows(client, world, "carrier", "inventory")
    assert [b["code"] for b in stock["batches"]] == [back[0]["code"]]  # type: ignore[index]
    assert datetime.fromisoformat(stock["batches"][0]["since"]) == refused_at  # type: ignore[index]
    assert [b["code"] for b in (await rows(client, world, "clinic", "inventory"))["batches"]] == []  # type: ignore[index]


async def test_a_site_narrows_the_register_to_the_batches_produced_there(
    client: httpx.AsyncClient, world: World
) -> None:
    site = await Site.create(
        organization=world.orgs["clinic"],
        name="北山社区卫生室二楼",
        region=world.regions["village"],
        latitude=37.16,
        longitude=122.42,
    )
    at_site = await tag_bag(client, world, origin_site_id=site.id)
    await tag_bag(client, world)
    everything = await rows(client, world, "clinic", "incoming")
    assert len(everything) == 2
    narrowed = await rows(client, world, "clinic", "incoming", site_id=str(site.id))
    assert [(r["code"], r["site_id"]) for r in narrowed] == [(at_site["code"], site.id)]
    other = await register(
        client, world, "other_clinic", "incoming", org="other_clinic", site_id=str(site.id)
    )
    assert other.status_code == 404


async def test_a_register_finds_its_batches_through_indexes_not_the_whole_log(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="treated")
    params = [world.orgs["facility"].id, datetime.now(UTC)]
    async with in_transaction() as conn:
        # A handful of rows, so the planner may rightly read whole tables or walk a whole index
        # in order: rule both out inside a transaction that is rolled back, so the plan shows
        # whether each party has an index of its own (a bitmap scan needs a condition).
        await conn.execute_query("SET LOCAL enable_seqscan = off")
        await conn.execute_query("SET LOCAL enable_indexscan = off")
        await conn.execute_query("SET LOCAL enable_indexonlyscan = off")
        found = await conn.execute_query_dict(f"EXPLAIN {movements.MOVEMENTS}", params)
        await conn.rollback()
    plan = "\n".join(row["QUERY PLAN"] for row in found)
    assert not re.search(r"Seq Scan on custody_event", plan), plan
    # Each partition's copy of the actor's and the receiver's index (migration 0030).
    assert re.search(r"custody_event_p\d{4}_organization_id_batch_id_idx", plan), plan
    assert re.search(r"custody_event_p\d{4}_to_organization_id_batch_id_idx", plan), plan
