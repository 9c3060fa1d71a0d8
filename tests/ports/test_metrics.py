"""Port figures: a delivery and its lines fall in the same period, the day of its lines'
tagging after corrections."""

import csv
import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import httpx
import pytest

from tests.custody.helpers import post_event
from tests.factories import CITY_TODAY, CITY_ZONE, World, event
from tests.ports.test_ports import ARRIVED_AT, Harbour, arrive, deliver, delivery
from wastetrack.batches.models import Batch
from wastetrack.ports.rules import PORT_RULES, small_vessel
from wastetrack.registry import service as registry
from wastetrack.registry import vessels


async def figures(client: httpx.AsyncClient, world: World, day: date) -> tuple[int, str, int]:
    """The port's deliveries and garbage delivered on the day, and the vessels of 石岛东南
    with a delivery on it."""
    period = {"date_from": day.isoformat(), "date_to": day.isoformat()}
    ports = await client.get("/m/v1/metrics/ports", headers=world.headers("manager"), params=period)
    port = next(p for p in ports.json()["ports"] if p["port_id"] == world.orgs["port"].id)
    garbage = next(g for g in port["groups"] if g["group"] == "garbage")
    areas = await client.get(
        "/m/v1/metrics/sea-areas", headers=world.headers("manager"), params=period
    )
    shidao = next(a for a in areas.json()["areas"] if a["code"] == "shidao_se")
    return port["deliveries"], garbage["delivered"], shidao["vessels_with_deliveries"]


async def test_a_delivery_moves_with_its_lines_corrected_tagging_day(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """The discharge's end typed after the city's midnight: corrected to the evening before,
    the lines, the delivery and the vessel's sea-area delivery all move to that day; the
    receipt number keeps the day it was issued on."""
    await arrive(client, world, harbour.small)
    line = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"}
    response = await deliver(client, world, delivery(harbour, harbour.small, line))
    assert response.status_code == 201, response.text
    made = response.json()
    assert await figures(client, world, CITY_TODAY) == (1, "30.000", 1)
    code = made["lines"][0]["batch_code"]
    history = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("port"))
    evening = datetime.combine(CITY_TODAY, time(), CITY_ZONE) - timedelta(minutes=10)
    fix = event(
        "corrected",
        code,
        minutes=1,
        corrects=history.json()[0]["id"],
        event_time=evening.isoformat(),
    )
    assert (await post_event(client, world, "port", fix)).status_code == 201
    yesterday = CITY_TODAY - timedelta(days=1)
    assert await figures(client, world, yesterday) == (1, "30.000", 1)
    assert await figures(client, world, CITY_TODAY) == (0, "0", 0)
    read = await client.get(f"/m/v1/deliveries/{made['id']}", headers=world.headers("port"))
    assert read.json()["receipt_number"] == made["receipt_number"]


async def test_a_line_the_port_loaded_other_lines_into_counts_through_them(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A vessel without an owner leaves the port its line's producer, so the port may scan
    other vessels' lines into that line's batch and carry the load to treatment (weighed
    200 kg, R1). The load is a container: counted through its children, as in the cohorts —
    each line once, with its own mass and the load's fate — not as 200 kg more delivered and
    never treated."""
    ownerless = await vessels.create_vessel(
        name="鲁荣渔50001",
        registration_number="371082200009",
        gross_tonnage=Decimal(60),
        home_port_id=world.orgs["port"].id,
    )
    codes = []
    for vessel, kg in ((ownerless, "100"), (harbour.small, "50"), (harbour.large, "50")):
        line = {"annex_v": "A", "scheme_version": "2018", "mass_kg": kg}
        made = await deliver(client, world, delivery(harbour, vessel, line))
        assert made.status_code == 201, made.text
        codes.append(made.json()["lines"][0]["batch_code"])
    load, *children = codes
    steps = [
        ("port", event("aggregated", load, minutes=5, children=children)),
        (
            "port",
            event(
                "in_transit", load, minutes=10, destination_organization_id=world.orgs["plant"].id
            ),
        ),
        ("plant", event("received", load, minutes=30, outcome="accepted", weight_kg="200")),
        ("plant", event("treated", load, minutes=35, method="R1")),
    ]
    for who, step in steps:
        response = await post_event(client, world, who, step)
        assert response.status_code == 201, response.text
    period = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
    ports = await client.get("/m/v1/metrics/ports", headers=world.headers("manager"), params=period)
    port = next(p for p in ports.json()["ports"] if p["port_id"] == world.orgs["port"].id)
    garbage = next(g for g in port["groups"] if g["group"] == "garbage")
    assert (garbage["delivered"], garbage["treated"]) == ("100.000", "100.000")
    # The same mass as the marine cohort's: the container's own declared kg is in neither.
    cohort = await client.get(
        "/m/v1/metrics/utilization", headers=world.headers("manager"), params=period
    )
    (marine,) = [s for s in cohort.json()["streams"] if s["stream"] == "marine"]
    assert Decimal(marine["generated_kg"]) == Decimal(garbage["delivered"])


# The stories' port calls arrive five hours before they end (tests.ports.test_ports), which in
# the first five hours of a city day is the day before: the expected amounts belong to the day
# the calls arrived, so the period runs from that day to the stories' day.
SINCE_ARRIVAL = ARRIVED_AT.astimezone(CITY_ZONE).date()


async def headline_of(client: httpx.AsyncClient, world: World) -> tuple[dict, dict]:
    """The listed-ports figures from the calls' arrival to the stories' day: the headline and
    the groups by name."""
    period = {"date_from": SINCE_ARRIVAL.isoformat(), "date_to": CITY_TODAY.isoformat()}
    answer = await client.get(
        "/m/v1/metrics/ports", headers=world.headers("manager"), params=period
    )
    assert answer.status_code == 200, answer.text
    listed = answer.json()["listed_ports"]
    return listed["headline"], {g["group"]: g for g in listed["groups"]}


async def test_the_headline_carries_its_counts_period_and_own_definition(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """30 kg of the 120 kg of garbage expected treated, none of the 4.8 m³ of sewage: the
    headline is the sewage rate with its numerator, denominator and unit, over the period,
    defined as the lower of the two — not as the sewage rate alone."""
    await arrive(client, world, harbour.small)
    line = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"}
    made = await deliver(client, world, delivery(harbour, harbour.small, line))
    code = made.json()["lines"][0]["batch_code"]
    plant = world.orgs["plant"].id
    steps = [
        ("port", event("in_transit", code, minutes=5, destination_organization_id=plant)),
        ("plant", event("received", code, minutes=30, outcome="accepted", weight_kg="30")),
        ("plant", event("treated", code, minutes=35, method="R1")),
    ]
    for who, step in steps:
        assert (await post_event(client, world, who, step)).status_code == 201
    headline, groups = await headline_of(client, world)
    sewage = groups["sewage"]["collection_treatment_rate"]
    assert groups["garbage"]["collection_treatment_rate"]["rate"] == "0.2500"
    assert headline["group"] == "sewage"
    counts = ("numerator", "denominator", "rate", "unit")
    assert [headline[k] for k in counts] == [sewage[k] for k in counts]
    assert (headline["denominator"], headline["unit"]) == ("4.80", "m3")
    assert (headline["date_from"], headline["date_to"]) == (
        SINCE_ARRIVAL.isoformat(),
        CITY_TODAY.isoformat(),
    )
    assert headline["definition"] != sewage["definition"]
    assert "the lower of" in headline["definition"]["formula"]
    assert headline["definition"]["source"]


async def test_the_headline_is_the_lower_group_though_both_round_alike(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """Sewage 1.4 of 4.8 m³ (0.29167) is below garbage 35.008 of 120 kg (0.29173), though both
    show as 0.2917: the headline is sewage's, as a recount of the counts shown finds, not the
    group listed first."""
    plant = world.orgs["plant"].id
    await registry.add_licence(
        organization_id=plant, category_key="marine.sewage", method_codes=["D9"]
    )
    await arrive(client, world, harbour.small)  # 8 crew × 10 days: 120 kg and 4.8 m³ expected
    garbage = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "35.008"}
    sewage = {"category": "marine.sewage", "volume_m3": "1.4"}
    made = await deliver(client, world, delivery(harbour, harbour.small, garbage, sewage))
    assert made.status_code == 201, made.text
    codes = [line["batch_code"] for line in made.json()["lines"]]
    for code, weight, method in zip(codes, ("35.008", "1400"), ("R1", "D9"), strict=True):
        steps = [
            ("port", event("in_transit", code, minutes=5, destination_organization_id=plant)),
            ("plant", event("received", code, minutes=30, outcome="accepted", weight_kg=weight)),
            ("plant", event("treated", code, minutes=35, method=method)),
        ]
        for who, step in steps:
            answer = await post_event(client, world, who, step)
            assert answer.status_code == 201, answer.text
    headline, groups = await headline_of(client, world)
    rates = {name: g["collection_treatment_rate"] for name, g in groups.items()}
    assert rates["garbage"]["rate"] == rates["sewage"]["rate"] == "0.2917"
    assert (headline["group"], headline["numerator"], headline["unit"]) == (
        "sewage",
        rates["sewage"]["numerator"],
        "m3",
    )


async def test_without_a_sewage_expectation_the_headline_shows_why_it_has_no_figure(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """Only a vessel of 400 GT or more called: no sewage is expected, so no headline; it names
    the group without an expectation and shows its counts."""
    await arrive(client, world, harbour.large)
    headline, groups = await headline_of(client, world)
    assert groups["garbage"]["collection_treatment_rate"]["denominator"] == "120.0"
    assert (headline["group"], headline["rate"], headline["denominator"]) == ("sewage", None, "0")
    assert "the lower of" in headline["definition"]["formula"]


def test_the_sewage_threshold_reads_below() -> None:
    """The rule's key says what it means: sewage is expected from vessels strictly below it."""
    assert PORT_RULES["small_vessel_below_gt"] == 400
    assert small_vessel(Decimal("399.99"))
    assert not small_vessel(Decimal(400))


async def test_a_vessel_of_exactly_400_gt_is_expected_no_sewage(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    at_threshold = await vessels.create_vessel(
        name="鲁荣渔50400",
        registration_number="371082200400",
        gross_tonnage=Decimal(400),
        home_port_id=world.orgs["port"].id,
    )
    await arrive(client, world, at_threshold)
    _, groups = await headline_of(client, world)
    assert (groups["garbage"]["expected"], groups["sewage"]["expected"]) == ("120.0", "0")


async def test_the_spreadsheet_has_the_headline_first_and_every_row_names_its_period(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """The file a manager keeps has the figure the city is judged on — 渔港污水和垃圾收集处置率,
    with its numerator, denominator, unit and own definition — first, then the listed ports'
    pooled groups, then each port's; a saved file has no X-Period header, so every row names
    its period."""
    await arrive(client, world, harbour.small)
    line = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"}
    assert (await deliver(client, world, delivery(harbour, harbour.small, line))).status_code == 201
    period = {"date_from": SINCE_ARRIVAL.isoformat(), "date_to": CITY_TODAY.isoformat()}
    headers = world.headers("manager")
    answer = (await client.get("/m/v1/metrics/ports", headers=headers, params=period)).json()
    got = await client.get(
        "/m/v1/metrics/ports", headers=headers, params={**period, "format": "csv"}
    )
    assert got.status_code == 200, got.text
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert all(
        (r["date_from"], r["date_to"]) == (period["date_from"], period["date_to"]) for r in rows
    )
    assert [r["figure"] for r in rows[:3]] == ["headline", "listed_ports", "listed_ports"]
    headline, want = rows[0], answer["listed_ports"]["headline"]
    rate = "collection_treatment_rate"
    assert headline["group"] == want["group"]
    for key in ("numerator", "denominator", "rate", "unit"):
        assert headline[f"{rate}.{key}"] == want[key], key
    assert headline[f"{rate}.definition.formula"] == want["definition"]["formula"]
    assert headline[f"{rate}.definition.source"] == want["definition"]["source"]
    pooled = {r["group"]: r for r in rows if r["figure"] == "listed_ports"}
    for group in answer["listed_ports"]["groups"]:
        assert pooled[group["group"]][f"{rate}.denominator"] == group[rate]["denominator"]
    ours = [r for r in rows if r["figure"] == "port" and r["port_id"] == str(world.orgs["port"].id)]
    assert [(r["group"], r["delivered"], r["listed"]) for r in ours] == [
        ("garbage", "30.000", "true"),
        ("sewage", "0", "true"),
    ]
    # Last, the share of listed ports with a reception facility, in columns of its own.
    share, want = rows[-1], answer["reception_facility_share"]
    assert share["figure"] == "reception_facility_share"
    for key in ("numerator", "denominator", "rate", "unit"):
        assert share[f"reception_facility_share.{key}"] == str(want[key] or ""), key
    assert share["reception_facility_share.definition.formula"] == want["definition"]["formula"]
    areas = await client.get(
        "/m/v1/metrics/sea-areas", headers=headers, params={**period, "format": "csv"}
    )
    area_rows = list(csv.DictReader(io.StringIO(areas.content.decode("utf-8-sig"))))
    assert area_rows and all(
        (r["date_from"], r["date_to"]) == (period["date_from"], period["date_to"])
        for r in area_rows
    )


async def port_groups(client: httpx.AsyncClient, world: World) -> dict[str, dict]:
    """The port's groups over yesterday and today, by name."""
    period = {
        "date_from": (CITY_TODAY - timedelta(days=1)).isoformat(),
        "date_to": CITY_TODAY.isoformat(),
    }
    ports = await client.get("/m/v1/metrics/ports", headers=world.headers("manager"), params=period)
    port = next(p for p in ports.json()["ports"] if p["port_id"] == world.orgs["port"].id)
    return {group["group"]: group for group in port["groups"]}


async def recategorise_refused_part(
    client: httpx.AsyncClient, world: World, harbour: Harbour, line: dict, category: str
) -> httpx.Response:
    """A line of 100 kg delivered, 60 kg of it accepted; the manager corrects the category of
    the 40 kg refused. The correction's answer."""
    await registry.add_licence(
        organization_id=world.orgs["plant"].id, category_key="marine.oily", method_codes=["R1"]
    )
    await arrive(client, world, harbour.small)
    made = await deliver(client, world, delivery(harbour, harbour.small, line))
    assert made.status_code == 201, made.text
    code = made.json()["lines"][0]["batch_code"]
    plant = world.orgs["plant"].id
    received = event(
        "received",
        code,
        minutes=30,
        outcome="partially_accepted",
        weight_kg="60",
        reason="other waste mixed in",
    )
    for who, step in (
        ("port", event("in_transit", code, minutes=5, destination_organization_id=plant)),
        ("plant", received),
    ):
        assert (await post_event(client, world, who, step)).status_code == 201
    remainder = await Batch.get(split_from__code=code)
    history = await client.get(
        f"/m/v1/batches/{remainder.code}/events", headers=world.headers("manager")
    )
    fix = event(
        "corrected",
        remainder.code,
        minutes=40,
        corrects=history.json()[0]["id"],
        category=category,
        reason="the part refused is other waste",
    )
    return await post_event(client, world, "manager", fix)


GARBAGE_KG = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "100"}


@pytest.mark.parametrize(
    ("line", "corrected_to", "delivered"),
    [
        (GARBAGE_KG, "marine.oily", "60.000"),
        ({"category": "marine.oily", "mass_kg": "100"}, "marpol2018.A", "40.000"),
    ],
    ids=["out-of-garbage", "into-garbage"],
)
async def test_a_refused_part_counts_in_the_group_of_its_corrected_category(
    client: httpx.AsyncClient,
    world: World,
    harbour: Harbour,
    line: dict[str, str],
    corrected_to: str,
    delivered: str,
) -> None:
    """100 kg delivered, 60 kg accepted: the 40 kg refused, corrected into another category,
    is that category's waste in the port figures as in the cohorts (docs/metrics.md §6: each
    part by its own fate, a line as its batch after corrections)."""
    answer = await recategorise_refused_part(client, world, harbour, line, corrected_to)
    assert answer.status_code == 201, answer.text
    assert (await port_groups(client, world))["garbage"]["delivered"] == delivered


async def test_a_refused_part_goes_into_sewage_only_when_its_line_measured_m3(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """Sewage is counted in m³, a refused part by its share of its line's volume: the part of a
    line that measured none would count as nothing, so the correction is refused, as it is for
    the line itself (first written by an independent review); with the line's 0.2 m³
    measured, it counts its share."""
    refused = await recategorise_refused_part(client, world, harbour, GARBAGE_KG, "marine.sewage")
    assert (refused.status_code, refused.json()["field"]) == (422, "category"), refused.text
    groups = await port_groups(client, world)
    assert (groups["garbage"]["delivered"], groups["sewage"]["delivered"]) == ("100.000", "0")


async def test_a_refused_part_of_a_line_with_its_m3_counts_its_share_in_sewage(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    line = {**GARBAGE_KG, "volume_m3": "0.2"}
    answer = await recategorise_refused_part(client, world, harbour, line, "marine.sewage")
    assert answer.status_code == 201, answer.text
    groups = await port_groups(client, world)
    assert (groups["garbage"]["delivered"], groups["sewage"]["delivered"]) == ("60.000", "0.080")


async def test_a_groups_estimated_mass_is_marked_in_the_answer_and_its_file(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """0.5 m³ of plastics not weighed is 25 kg from the catalog's density, beside 30 kg weighed:
    the garbage group says 25 of its 55 kg are estimated (docs/metrics.md §3: every figure gives
    the estimated share of its mass), per port, pooled and in the file."""
    await arrive(client, world, harbour.small)
    lines = [
        {"annex_v": "A", "scheme_version": "2018", "volume_m3": "0.5"},
        {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"},
    ]
    made = await deliver(client, world, delivery(harbour, harbour.small, *lines))
    assert made.status_code == 201, made.text
    period = {
        "date_from": (CITY_TODAY - timedelta(days=1)).isoformat(),
        "date_to": CITY_TODAY.isoformat(),
    }
    headers = world.headers("manager")
    answer = (await client.get("/m/v1/metrics/ports", headers=headers, params=period)).json()
    port = next(p for p in answer["ports"] if p["port_id"] == world.orgs["port"].id)
    garbage = next(g for g in port["groups"] if g["group"] == "garbage")
    assert (garbage["delivered"], garbage["estimated_kg"]) == ("55.000", "25.000")
    pooled = next(g for g in answer["listed_ports"]["groups"] if g["group"] == "garbage")
    assert pooled["estimated_kg"] == garbage["estimated_kg"]
    sheet = await client.get(
        "/m/v1/metrics/ports", headers=headers, params={**period, "format": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert [r["estimated_kg"] for r in rows if r["figure"] != "headline"][:1] == ["25.000"]
    assert [r["estimated_kg"] for r in rows if r["figure"] == "headline"] == [""]
