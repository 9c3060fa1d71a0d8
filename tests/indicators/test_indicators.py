"""The plan's indicators: seeded targets, computed and entered values, status by the rule."""

import csv
import io
import re
from datetime import date
from decimal import Decimal

import httpx
import pytest

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event
from tests.ports.test_ports import Harbour, arrive, deliver, delivery, harbour
from wastetrack.core import cityday
from wastetrack.indicators import loader
from wastetrack.indicators.loader import DIRECTIONS
from wastetrack.indicators.models import Indicator, IndicatorValue
from wastetrack.indicators.service import STATUS_RULE, elapsed_share, status

__all__ = ["harbour"]  # the ports' fixture, for the port indicator


async def overview(client: httpx.AsyncClient, world: World) -> dict[str, dict]:
    answer = (await client.get("/m/v1/indicators", headers=world.headers("manager"))).json()
    assert "baseline" in answer["status_rule"]
    return {i["code"]: i for i in answer["indicators"]}


async def test_plan_targets_are_seeded(client: httpx.AsyncClient, world: World) -> None:
    found = await overview(client, world)
    assert found["fishing_port_collection"]["target_2025"] == "100.00"
    assert found["zero_waste_cells"]["target_2025"] == "70.00"
    assert found["beverage_carton_recycling"]["target_2025"] == "40.00"
    assert found["rural_sewage_treatment"]["baseline_2020"] == "43.40"
    assert found["straw_utilization"]["status"] == "no_data"


async def test_computed_indicator_comes_with_its_counts(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await post_event(client, world, "carrier", event("collected", bag["code"], minutes=5))
    clinics = (await overview(client, world))["small_clinic_collection"]
    assert clinics["actual"]["source"] == "computed"
    assert (clinics["actual"]["numerator"], clinics["actual"]["denominator"]) == ("1", "2")
    assert (clinics["actual"]["value"], clinics["status"]) == ("50.00", "off_track")
    # A rate is never shown bare: what it counts and its definition come with it.
    assert clinics["actual"]["unit"] == "institutions"
    assert clinics["actual"]["definition"]["formula"]
    assert "第九章第三节" in clinics["actual"]["definition"]["source"]


async def test_a_standing_is_reported_on_its_day(client: httpx.AsyncClient, world: World) -> None:
    """Sorting coverage counts the villages sorting on the day, not over twelve months: its
    period is that day; a flow's is the twelve months to it."""
    today = cityday.today(world.settings.timezone)
    found = await overview(client, world)
    coverage = found["sorting_facility_coverage"]["actual"]
    assert (coverage["period_start"], coverage["period_end"]) == (today.isoformat(),) * 2
    assert (coverage["numerator"], coverage["denominator"]) == ("0", "1")
    assert coverage["unit"] == "communities and villages"
    clinics = found["small_clinic_collection"]["actual"]
    assert clinics["period_start"] < clinics["period_end"] == today.isoformat()


async def test_entered_value_keeps_source_and_author(
    client: httpx.AsyncClient, world: World
) -> None:
    url = "/m/v1/indicators/straw_utilization/values"
    body = {"value": "96.5", "period_end": "2025-12-31", "source_note": "市农业农村局年报"}
    made = await client.post(url, json=body, headers=world.headers("manager"))
    assert made.status_code == 201
    straw = (await overview(client, world))["straw_utilization"]
    assert (straw["actual"]["value"], straw["actual"]["entered_by"]) == ("96.50", "manager")
    assert straw["status"] == "on_track"
    computed = await client.post(
        "/m/v1/indicators/fishing_port_collection/values",
        json=body,
        headers=world.headers("manager"),
    )
    assert (computed.status_code, computed.json()["field"]) == (409, "code")
    assert (await client.post(url, json=body, headers=world.headers("clinic"))).status_code == 403
    # A mistyped future period would hide every later value, and one ending today has not
    # ended (it is judged at its end); a share is at most 100 %.
    today = cityday.today(world.settings.timezone).isoformat()
    for wrong, field in (
        ({"period_end": "2052-12-31"}, "period_end"),
        ({"period_end": today}, "period_end"),
        ({"value": "150"}, "value"),
    ):
        refused = await client.post(url, json={**body, **wrong}, headers=world.headers("manager"))
        assert (refused.status_code, refused.json()["field"]) == (422, field), refused.text
    # A code longer than any indicator's (its column holds 64) is refused naming it, not a 500.
    too_long = f"/m/v1/indicators/{'x' * 65}/values"
    refused = await client.post(too_long, json=body, headers=world.headers("manager"))
    assert (refused.status_code, refused.json()["field"]) == (422, "code"), refused.text
    # An entered value counts nothing: the dashboard shows no counts for it, not a bare " / ".
    page = await client.get("/dashboard", cookies={"wt_session": world.tokens["manager"]})
    row = re.search(r'<tr data-code="straw_utilization">(.*?)</tr>', page.text, re.S)
    assert row is not None, page.text
    assert re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)[6].strip() == "—"


async def test_an_entered_value_is_judged_at_its_own_period_end(
    client: httpx.AsyncClient, world: World
) -> None:
    """Statistics come a year or more late: a 2023 figure is judged against the share of the
    plan elapsed by the end of 2023, whatever day it is read."""
    url = "/m/v1/indicators/rural_sewage_treatment/values"
    # Baseline 43.4, target 55: 52 is 74 % of the way, 60 % of the plan elapsed by 2023-12-31.
    body = {"value": "52", "period_end": "2023-12-31", "source_note": "市生态环境局年报"}
    made = await client.post(url, json=body, headers=world.headers("manager"))
    assert made.status_code == 201, made.text
    sewage = (await overview(client, world))["rural_sewage_treatment"]
    assert (sewage["actual"]["period_end"], sewage["status"]) == ("2023-12-31", "on_track")


async def test_only_the_city_enters_a_value(client: httpx.AsyncClient, world: World) -> None:
    """Entered values are the city's, read by every manager: a town's manager may not set
    them; the city's manager and an admin may."""
    url = "/m/v1/indicators/straw_utilization/values"
    body = {"value": "80", "period_end": "2025-12-31", "source_note": "石岛管理区统计"}
    refused = await client.post(url, json=body, headers=world.headers("town_manager"))
    assert refused.headers["content-type"] == "application/problem+json"
    assert (refused.status_code, refused.json()["field"]) == (403, "role")
    assert await IndicatorValue.all().count() == 0
    for who in ("manager", "admin"):
        made = await client.post(url, json=body, headers=world.headers(who))
        assert made.status_code == 201, (who, made.text)


async def test_status_rule_with_a_baseline() -> None:
    sewage = await Indicator.get(code="rural_sewage_treatment")  # 43.4 → 55
    mid_plan = date(2023, 7, 1)  # half the plan period elapsed
    assert status(sewage, Decimal("50"), mid_plan) == "on_track"  # 57 % of the way
    assert status(sewage, Decimal("47"), mid_plan) == "at_risk"  # 31 %, within 25 points
    assert status(sewage, Decimal("44"), mid_plan) == "off_track"  # 5 %
    assert status(sewage, Decimal("55"), date(2026, 1, 1)) == "on_track"
    assert status(sewage, None, mid_plan) == "no_data"


def test_the_elapsed_share_counts_the_day_it_is_judged_at_the_end_of() -> None:
    """STATUS_RULE judges a value at the end of its period: by then that day has passed. The
    plan has 1826 days, both ends included."""
    assert elapsed_share(date(2020, 12, 31)) == 0
    assert elapsed_share(date(2021, 1, 1)) == Decimal(1) / 1826
    assert elapsed_share(date(2021, 12, 31)) == Decimal(365) / 1826
    assert elapsed_share(date(2023, 12, 31)) == Decimal(1095) / 1826  # docs/metrics.md §6
    assert elapsed_share(date(2025, 12, 30)) == Decimal(1825) / 1826
    assert elapsed_share(date(2025, 12, 31)) == 1
    assert elapsed_share(date(2030, 6, 1)) == 1


async def test_a_value_just_short_of_the_elapsed_share_is_at_risk(orm: list[str]) -> None:
    """43.97 on 43.4 → 55 is 0.04914 of the way; by the end of 2021-03-31, 90 of 1826 days
    (0.04929) have passed: short, within 25 points. Counting 89 of 1825 days (0.04877), as
    the rule once was computed, called it on track."""
    sewage = await Indicator.get(code="rural_sewage_treatment")
    assert status(sewage, Decimal("43.97"), date(2021, 3, 31)) == "at_risk"
    assert status(sewage, Decimal("43.98"), date(2021, 3, 31)) == "on_track"  # 0.05000


async def test_sections_follow_the_plan(orm: list[str]) -> None:
    carton = await Indicator.get(code="beverage_carton_recycling")
    assert (carton.section, carton.target) == ("第九章第一节", Decimal(40))
    villages = await Indicator.get(code="rural_household_waste_harmless")
    assert villages.section.startswith("第八章第三节")
    clinics = await Indicator.get(code="small_clinic_collection")
    assert clinics.section == "第九章第三节"
    assert "未给数值" in (clinics.target_text or "")


async def test_the_data_file_and_the_migrated_indicators_agree(orm: list[str]) -> None:
    """A correction to the indicators is a new edition and a data migration that loads it."""
    doc = loader.read_edition()
    for item in doc["items"]:
        stored = await Indicator.get(code=item["code"])
        assert (
            stored.section,
            stored.target_text,
            None if stored.baseline is None else Decimal(stored.baseline),
            None if stored.target is None else Decimal(stored.target),
            stored.source,
        ) == (
            item["section"],
            item["target_text"],
            None if item["baseline"] is None else Decimal(str(item["baseline"])),
            None if item["target"] is None else Decimal(str(item["target"])),
            doc["source"],
        ), item["code"]


async def test_the_port_indicator_is_the_headline_under_its_own_definition(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """渔港污水和垃圾收集处置率 is the lower of the garbage and sewage rates: the indicator
    shows the headline's counts and says so, not the weaker group's definition as if its rate
    were the whole figure."""
    await arrive(client, world, harbour.small)
    line = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"}
    assert (await deliver(client, world, delivery(harbour, harbour.small, line))).status_code == 201
    actual = (await overview(client, world))["fishing_port_collection"]["actual"]
    period = {"date_from": actual["period_start"], "date_to": actual["period_end"]}
    ports = await client.get("/m/v1/metrics/ports", headers=world.headers("manager"), params=period)
    headline = ports.json()["listed_ports"]["headline"]
    assert (actual["numerator"], actual["denominator"], actual["unit"]) == (
        headline["numerator"],
        headline["denominator"],
        headline["unit"],
    )
    assert actual["definition"] == headline["definition"]
    assert "the lower of" in actual["definition"]["formula"]


def landfill_share(baseline: str | None) -> Indicator:
    """An indicator where lower is better (a share of waste landfilled), built here: the
    current edition holds none."""
    return Indicator(
        code="landfill_share",
        name_zh="生活垃圾填埋占比",
        name_en="share of household waste landfilled",
        unit="%",
        baseline=None if baseline is None else Decimal(baseline),
        target=Decimal("10"),
        target_text=None,
        direction="at_most",
        computed_by=None,
        section="test",
        source="test",
    )


async def test_an_at_most_indicator_is_on_track_at_or_below_its_target() -> None:
    """A cap is met at or below it, at risk within 10 % above it, off track beyond: the same
    rule as a floor, turned round."""
    capped = landfill_share(None)
    mid_plan = date(2023, 7, 1)
    assert status(capped, Decimal("8"), mid_plan) == "on_track"
    assert status(capped, Decimal("10"), mid_plan) == "on_track"
    assert status(capped, Decimal("10.9"), mid_plan) == "at_risk"
    assert status(capped, Decimal("11"), mid_plan) == "at_risk"
    assert status(capped, Decimal("12"), mid_plan) == "off_track"
    assert status(capped, Decimal("95"), mid_plan) == "off_track"


async def test_an_at_most_indicator_progresses_down_from_its_baseline() -> None:
    capped = landfill_share("30")  # 30 → 10
    mid_plan = date(2023, 7, 1)  # half the plan period elapsed
    assert status(capped, Decimal("18"), mid_plan) == "on_track"  # 60 % of the way
    assert status(capped, Decimal("24"), mid_plan) == "at_risk"  # 30 %, within 25 points
    assert status(capped, Decimal("29"), mid_plan) == "off_track"  # 5 %
    assert status(capped, Decimal("35"), mid_plan) == "off_track"  # worse than the baseline
    assert status(capped, Decimal("9"), mid_plan) == "on_track"


async def test_status_knows_every_direction_of_the_edition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {i["direction"] for i in loader.read_edition()["items"]} <= set(DIRECTIONS)
    assert "at_most" in STATUS_RULE and "110 %" in STATUS_RULE
    # An edition naming another direction is refused as it is read, never judged as a floor.
    sideways = {"items": [{"code": "x", "direction": "sideways"}]}
    monkeypatch.setattr(loader, "read_data_file", lambda *_: sideways)
    with pytest.raises(ValueError, match="x improve in a direction other than"):
        loader.read_edition()


async def test_the_spreadsheet_carries_the_status_rule(
    client: httpx.AsyncClient, world: World
) -> None:
    """The status column is defined in the file itself, as a rate's row carries its
    definition."""
    answer = await client.get(
        "/m/v1/indicators", params={"format": "csv"}, headers=world.headers("manager")
    )
    assert answer.status_code == 200, answer.text
    table = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert table and all(row["status_rule"] == STATUS_RULE for row in table)
    assert list(table[0]).index("status_rule") == list(table[0]).index("status") + 1


async def test_every_indicator_says_which_way_it_improves(
    client: httpx.AsyncClient, world: World
) -> None:
    """Its status follows `status_rule`, which turns on the indicator's direction: the answer
    and its file carry it, so a status can be checked against the rule it quotes."""
    edition = {i["code"]: i["direction"] for i in loader.read_edition()["items"]}
    answer = await client.get("/m/v1/indicators", headers=world.headers("manager"))
    assert answer.status_code == 200, answer.text
    assert "direction" in answer.json()["status_rule"]
    entries = {i["code"]: i for i in answer.json()["indicators"]}
    assert {code: entries[code].get("direction") for code in edition} == edition
    exported = await client.get(
        "/m/v1/indicators", params={"format": "csv"}, headers=world.headers("manager")
    )
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert {row["code"]: row.get("direction") for row in rows} == edition
