"""Zero-waste cells: computed and evidenced criteria, mandatory ones, levels, achievement."""

import asyncio
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from tests.custody.helpers import post_event, tag_bag
from tests.factories import CITY_TODAY, NOW, World, event
from wastetrack.cells.models import Cell, CellAssessment
from wastetrack.core import cityday, codes
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

EVIDENCE = {
    "reduction_measures": {"value": "95", "evidence": "现场检查记录"},
    "publicity": {"value": "90", "evidence": "宣传活动照片"},
}


async def sorted_pickups(
    client: httpx.AsyncClient,
    world: World,
    *,
    passed: int,
    failed: int,
    at: datetime = NOW - timedelta(hours=2),
) -> list[str]:
    """Paper picked up in the village with quality checks (at a moment); the batch codes."""
    point = await registry.create_organization(
        name="投放点", kind=OrganizationKind.collection_point, region_id=world.regions["village"].id
    )
    site = (
        await client.post(
            "/admin/v1/sites",
            headers=world.headers("admin"),
            json={"organization_id": point.id, "name": "1号", "latitude": 37.1, "longitude": 122.4},
        )
    ).json()
    url = codes.qr_url(site["code"], base_url="http://testserver", secret=world.settings.secret_key)
    made = []
    for index in range(passed + failed):
        response = await client.post(
            "/m/v1/pickups",
            headers=world.headers("collector"),
            json={
                "client_event_id": str(uuid.uuid4()),
                "site": url,
                "category": "hh.recyclable.paper",
                "weight_kg": "10",
                "device_time": at.isoformat(),
                "quality": {"passed": index < passed, "contamination_share": "0.05"},
            },
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["batch_code"])
    return made


async def recycle(client: httpx.AsyncClient, world: World, code: str) -> None:
    """The collector takes the paper to the recycler, which recycles it (R3)."""
    for who, body in (
        (
            "collector",
            event(
                "in_transit",
                code,
                minutes=100,
                destination_organization_id=world.orgs["unlicensed"].id,
            ),
        ),
        ("unlicensed", event("received", code, minutes=105, outcome="accepted", weight_kg="10")),
        ("unlicensed", event("treated", code, minutes=110, method="R3")),
    ):
        response = await post_event(client, world, who, body)
        assert response.status_code == 201, response.text


async def cell(client: httpx.AsyncClient, world: World, name: str) -> int:
    made = await client.post(
        "/m/v1/cells",
        headers=world.headers("manager"),
        json={"cell_type": "community", "name": name, "region_id": world.regions["village"].id},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def assess(
    client: httpx.AsyncClient,
    world: World,
    cell_id: int,
    level: str,
    entered: dict,
    on: date = CITY_TODAY,
) -> httpx.Response:
    return await client.post(
        f"/m/v1/cells/{cell_id}/assessments",
        headers=world.headers("manager"),
        json={
            "level": level,
            "entered": entered,
            "assessed_on": on.isoformat(),
        },
    )


@pytest.mark.parametrize("value", ["89.995", "99.999", "1E-1000000"])
async def test_an_entered_value_finer_than_a_hundredth_is_refused_naming_it(
    client: httpx.AsyncClient, world: World, value: str
) -> None:
    """A criterion is judged to the hundredth as shown: 89.995 was kept as 90.00 and passed a
    threshold of 90 unsaid, and "1E-1000000" was taken as a resend of "0" (cells review). Two
    places at most, as an indicator's entered value; nothing written."""
    cell_id = await cell(client, world, "北山社区")
    entered = {**EVIDENCE, "publicity": {"value": value, "evidence": "宣传活动照片"}}
    refused = await assess(client, world, cell_id, "county", entered)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "entered.publicity.value", refused.text
    listed = await client.get(
        f"/m/v1/cells/{cell_id}/assessments", headers=world.headers("manager")
    )
    assert listed.json()["assessments"] == [], listed.text


async def test_failed_mandatory_criterion_fails_the_cell(
    client: httpx.AsyncClient, world: World
) -> None:
    await sorted_pickups(client, world, passed=3, failed=2)  # 60 %; 80 % is required
    result = (
        await assess(client, world, await cell(client, world, "北山社区"), "county", EVIDENCE)
    ).json()
    assert result["scores"]["sorting_accuracy"]["value"] == "60.00"
    assert result["scores"]["sorting_accuracy"]["passed"] is False
    # Utilization is a cohort (metrics.md §5): of the 5 batches generated, none recovered yet.
    assert result["scores"]["recovery_share"]["value"] == "0.00"
    assert result["tier"] == "not_achieved"


async def test_cell_climbs_the_levels_and_counts_towards_the_target(
    client: httpx.AsyncClient, world: World
) -> None:
    batches = await sorted_pickups(client, world, passed=9, failed=1)
    for code in batches[:4]:
        await recycle(client, world, code)
    good = await cell(client, world, "北山社区")
    await cell(client, world, "南山社区")
    early = await assess(client, world, good, "city", EVIDENCE)
    assert (early.status_code, early.json()["field"]) == (409, "level")
    missing = await assess(client, world, good, "county", {"publicity": EVIDENCE["publicity"]})
    assert (missing.status_code, missing.json()["field"]) == (422, "entered.reduction_measures")
    twice = {**EVIDENCE, "publicity ": EVIDENCE["publicity"]}
    padded = await assess(client, world, good, "county", twice)
    assert (padded.status_code, padded.json()["field"]) == (422, "entered.publicity ")
    county = (await assess(client, world, good, "county", EVIDENCE)).json()
    # 4 of the 10 batches generated were recycled (a cohort share, metrics.md §5).
    assert county["scores"]["recovery_share"]["value"] == "40.00"
    assert (county["total"], county["tier"]) == ("100.00", "excellent")
    city = await assess(client, world, good, "city", EVIDENCE)
    assert city.status_code == 201
    achieved = (await client.get("/m/v1/metrics/cells", headers=world.headers("manager"))).json()
    assert (achieved["share"]["numerator"], achieved["share"]["denominator"]) == ("1", "2")
    assert achieved["target_share"] == "0.70"
    indicator = next(
        i
        for i in (await client.get("/m/v1/indicators", headers=world.headers("manager"))).json()[
            "indicators"
        ]
        if i["code"] == "zero_waste_cells"
    )
    assert (indicator["actual"]["value"], indicator["status"]) == ("50.00", "off_track")
    # A standing on the day, with what it counts and what it means.
    today = cityday.today(world.settings.timezone).isoformat()
    actual = indicator["actual"]
    assert (actual["period_start"], actual["period_end"]) == (today, today)
    assert (actual["unit"], actual["definition"]) == ("cells", achieved["definition"])
    by_clinic = await client.post(
        "/m/v1/cells",
        headers=world.headers("clinic"),
        json={"cell_type": "school", "name": "x", "region_id": world.regions["village"].id},
    )
    assert by_clinic.status_code == 403


async def test_computed_criteria_cover_the_twelve_months_ending_on_the_assessment_day(
    client: httpx.AsyncClient, world: World
) -> None:
    """City days, whatever offset the phone sent: the window's first day counts from its city
    midnight, the day before it and the days after the assessment do not."""
    on = CITY_TODAY - timedelta(days=1)
    first = cityday.year_to(on)
    midnight = cityday.day_start(first, world.settings.timezone)
    west = timezone(timedelta(hours=-10))  # the first day is still the day before at −10:00
    await sorted_pickups(
        client, world, passed=2, failed=0, at=(midnight + timedelta(minutes=30)).astimezone(west)
    )
    await sorted_pickups(client, world, passed=0, failed=1, at=midnight - timedelta(minutes=30))
    await sorted_pickups(client, world, passed=0, failed=1)  # today: after the assessment
    result = (
        await assess(client, world, await cell(client, world, "西山社区"), "county", EVIDENCE, on)
    ).json()
    assert result["scores"]["sorting_accuracy"]["value"] == "100.00", result


async def test_a_computed_criterion_keeps_what_it_counted_its_period_and_definition(
    client: httpx.AsyncClient, world: World
) -> None:
    """An auditor reading an assessment sees each computed value with its numerator,
    denominator and unit, the twelve months it covers and the definition with its source, as
    every figure is shown (docs/metrics.md §6)."""
    made = await sorted_pickups(client, world, passed=3, failed=1)
    await recycle(client, world, made[0])
    result = (
        await assess(client, world, await cell(client, world, "北山社区"), "county", EVIDENCE)
    ).json()
    period = (cityday.year_to(CITY_TODAY).isoformat(), CITY_TODAY.isoformat())
    accuracy = result["scores"]["sorting_accuracy"]
    assert (accuracy["value"], accuracy["numerator"], accuracy["denominator"]) == (
        "75.00",
        "3",
        "4",
    )
    assert (accuracy["unit"], (accuracy["date_from"], accuracy["date_to"])) == (
        "quality checks",
        period,
    )
    assert accuracy["definition"]["source"].endswith("docs/metrics.md §6")
    share = result["scores"]["recovery_share"]
    assert share["value"] == "25.00"
    assert (Decimal(share["numerator"]), Decimal(share["denominator"]), share["unit"]) == (
        Decimal(10),
        Decimal(40),
        "kg",
    )
    assert (share["date_from"], share["date_to"]) == period
    assert share["definition"]["formula"].startswith("Σ mass of the batches tagged in the period")
    assert (share["batches_without_mass"], Decimal(share["estimated_kg"])) == (0, 0)
    # An entered criterion is the assessors' finding, with its evidence: no count of the tracker.
    assert "numerator" not in result["scores"]["publicity"]


async def test_the_recovery_share_says_which_batches_it_could_not_weigh(
    client: httpx.AsyncClient, world: World
) -> None:
    """As every cohort figure does (docs/metrics.md §3): a bag counted in items of a category
    with no unit mass is in neither sum and is counted apart, and the estimated part of the
    denominator is given; a region whose batches all lack a mass is not 'no data'."""
    carrier = world.orgs["carrier"].id
    await tag_bag(client, world, carrier_organization_id=carrier, quantity="4", unit="count")
    alone = (
        await assess(client, world, await cell(client, world, "北山社区"), "county", EVIDENCE)
    ).json()["scores"]["recovery_share"]
    assert (alone["value"], alone["batches_without_mass"]) == (None, 1)
    assert alone["note"] == "no batch of those months has a known mass (batches_without_mass)"

    await tag_bag(client, world, carrier_organization_id=carrier, quantity="3.5")
    await tag_bag(client, world, carrier_organization_id=carrier, quantity="0.02", unit="m3")
    share = (
        await assess(client, world, await cell(client, world, "南山社区"), "county", EVIDENCE)
    ).json()["scores"]["recovery_share"]
    estimated = Decimal(share["denominator"]) - Decimal("3.5")  # the m³ bag, by its density
    assert estimated > 0 and Decimal(share["estimated_kg"]) == estimated
    assert share["batches_without_mass"] == 1


async def test_an_entered_criterion_the_type_does_not_enter_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """A misspelt code, or a computed criterion's, would be dropped without a word: the
    assessor would believe a value kept that was not."""
    cell_id = await cell(client, world, "北山社区")
    for code in ("publicty", "sorting_accuracy"):
        entered = {**EVIDENCE, code: {"value": "100", "evidence": "x"}}
        refused = await assess(client, world, cell_id, "county", entered)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == f"entered.{code}"
    assert not await CellAssessment.filter(cell_id=cell_id).exists()


async def test_a_criterion_is_judged_as_it_is_shown(
    client: httpx.AsyncClient, world: World
) -> None:
    """60.00 against a threshold of 60 passes, as shown (an entered value has two places at
    most: 59.995 is refused, see above)."""
    await sorted_pickups(client, world, passed=3, failed=2)
    entered = {**EVIDENCE, "reduction_measures": {"value": "60.00", "evidence": "现场检查记录"}}
    result = (
        await assess(client, world, await cell(client, world, "南山社区"), "county", entered)
    ).json()
    score = result["scores"]["reduction_measures"]
    assert (score["value"], score["threshold"], score["passed"]) == ("60.00", 60, True)
    # -0 is 0: shown and kept so, as any resend of it is the same record
    negative_zero = {**entered, "reduction_measures": {"value": "-0", "evidence": "现场检查记录"}}
    result = (
        await assess(client, world, await cell(client, world, "北山社区"), "county", negative_zero)
    ).json()
    assert result["scores"]["reduction_measures"]["value"] == "0.00"


async def test_a_cell_is_not_assessed_on_a_day_to_come(
    client: httpx.AsyncClient, world: World
) -> None:
    """Twelve months ending on a day to come would be scored from months not yet lived."""
    good = await cell(client, world, "北山社区")
    tomorrow = cityday.today(world.settings.timezone) + timedelta(days=1)
    for day in (tomorrow, date(2199, 1, 1)):
        refused = await assess(client, world, good, "county", EVIDENCE, day)
        assert refused.headers["content-type"] == "application/problem+json"
        assert (refused.status_code, refused.json()["field"]) == (422, "assessed_on")
    assert await CellAssessment.filter(cell_id=good).count() == 0


async def test_a_region_or_organization_outside_yours_is_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    """The 石岛 manager cannot tell a 崖头 region or organization from one that does not exist,
    nor register a cell with either."""
    home = {"cell_type": "school", "name": "石岛小学", "region_id": world.regions["other_town"].id}
    cases = [
        ({"region_id": world.regions["village"].id}, "region_id"),
        ({"region_id": 999999}, "region_id"),
        ({"organization_id": world.orgs["clinic"].id}, "organization_id"),
        ({"organization_id": 999999}, "organization_id"),
    ]
    for change, field in cases:
        refused = await client.post(
            "/m/v1/cells", json={**home, **change}, headers=world.headers("town_manager")
        )
        assert refused.headers["content-type"] == "application/problem+json"
        assert (refused.status_code, refused.json()["field"]) == (404, field), change
    assert await Cell.all().count() == 0
    own = {**home, "organization_id": world.orgs["port"].id}
    made = await client.post("/m/v1/cells", json=own, headers=world.headers("town_manager"))
    assert made.status_code == 201, made.text


async def test_a_place_is_registered_as_a_cell_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """A resent registration (the answer timed out) names the cell registered first and adds
    none: an 11th, never assessed, would lower the achievement rate."""
    first = await cell(client, world, "北山社区")
    village = world.regions["village"].id
    again = await client.post(
        "/m/v1/cells",
        headers=world.headers("manager"),
        json={"cell_type": "community", "name": " 北山社区  ", "region_id": village},
    )
    assert again.headers["content-type"] == "application/problem+json"
    answer = again.json()
    assert (again.status_code, answer["field"], answer["cell_id"]) == (409, "name", first)
    school = await client.post(
        "/m/v1/cells",
        headers=world.headers("manager"),
        json={"cell_type": "school", "name": "北山社区", "region_id": village},
    )
    assert school.status_code == 201, school.text
    assert await Cell.filter(name="北山社区").count() == 2
    achieved = (await client.get("/m/v1/metrics/cells", headers=world.headers("manager"))).json()
    assert achieved["share"]["denominator"] == str(await Cell.all().count())


async def test_registrations_of_one_place_sent_at_once_name_the_first(
    client: httpx.AsyncClient, world: World
) -> None:
    """The same registration sent four times at once (a phone's retries on a bad line): one
    cell, and each of the others a 409 naming `name` and the cell made, not a bare lost race."""
    village = world.regions["village"].id
    for round_ in range(4):
        body = {"cell_type": "community", "name": f"同名社区{round_}", "region_id": village}
        answers = await asyncio.gather(
            *(
                client.post("/m/v1/cells", headers=world.headers("manager"), json=body)
                for _ in range(4)
            )
        )
        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
        (made,) = [a.json()["id"] for a in answers if a.status_code == 201]
        refused = [a.json() for a in answers if a.status_code == 409]
        assert [(r["field"], r["cell_id"]) for r in refused] == [("name", made)] * 3


async def test_a_resent_assessment_is_answered_though_the_level_below_failed_since(
    client: httpx.AsyncClient, world: World
) -> None:
    """The phone's answer to a city assessment was lost; meanwhile another assessor recorded a
    failing county re-assessment of the day. The retry is still the latest city assessment of
    its day: answered with it (200), recorded once, not refused for the level below (which
    decides whether a new one may be recorded; the city one no longer stands)."""
    batches = await sorted_pickups(client, world, passed=9, failed=1)
    for code in batches[:4]:
        await recycle(client, world, code)
    cell_id = await cell(client, world, "北山社区")
    assert (await assess(client, world, cell_id, "county", EVIDENCE)).status_code == 201
    city = await assess(client, world, cell_id, "city", EVIDENCE)
    assert city.status_code == 201, city.text
    failing = await client.post(
        f"/m/v1/cells/{cell_id}/assessments",
        headers=world.headers("admin"),
        json={
            "level": "county",
            "assessed_on": CITY_TODAY.isoformat(),
            "entered": {code: {"value": "10", "evidence": "复查记录"} for code in EVIDENCE},
        },
    )
    assert (failing.status_code, failing.json()["tier"]) == (201, "not_achieved"), failing.text
    retry = await assess(client, world, cell_id, "city", EVIDENCE)
    assert (retry.status_code, retry.json()["id"]) == (200, city.json()["id"]), retry.text
    assert await CellAssessment.filter(cell_id=cell_id, level="city").count() == 1
    # Another city finding is a new record, and the failed county assessment refuses it.
    other = {code: {"value": "99", "evidence": "新证据"} for code in EVIDENCE}
    refused = await assess(client, world, cell_id, "city", other)
    assert (refused.status_code, refused.json()["field"]) == (409, "level"), refused.text


async def test_an_assessment_sent_again_is_recorded_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """A phone's retry without an Idempotency-Key, or several at once: the same finding on the
    same day is answered with the one recorded (200), once. A different finding is a record of
    its own, and the first finding sent after it is too — it must govern the day again; so is
    the same finding once the tracker's data have changed what it computes."""
    await sorted_pickups(client, world, passed=9, failed=1)
    cell_id = await cell(client, world, "北山社区")
    # The first send and its retries at the same moment: one records it, the others find it.
    sent = await asyncio.gather(
        *(assess(client, world, cell_id, "county", EVIDENCE) for _ in range(4))
    )
    assert sorted(a.status_code for a in sent) == [200, 200, 200, 201], [a.text for a in sent]
    first = next(a for a in sent if a.status_code == 201)
    assert {a.json()["id"] for a in sent} == {first.json()["id"]}
    again = await assess(client, world, cell_id, "county", EVIDENCE)
    assert (again.status_code, again.json()) == (200, first.json())
    assert await CellAssessment.filter(cell_id=cell_id).count() == 1
    # Another assessor finding the same is a record of their own.
    by_admin = await client.post(
        f"/m/v1/cells/{cell_id}/assessments",
        headers=world.headers("admin"),
        json={"level": "county", "entered": EVIDENCE, "assessed_on": CITY_TODAY.isoformat()},
    )
    assert by_admin.status_code == 201, by_admin.text
    lower = {**EVIDENCE, "publicity": {"value": "40", "evidence": "复查记录"}}
    changed = await assess(client, world, cell_id, "county", lower)
    assert (changed.status_code, changed.json()["tier"]) == (201, "not_achieved")
    back = await assess(client, world, cell_id, "county", EVIDENCE)
    assert back.status_code == 201 and back.json()["tier"] == first.json()["tier"]
    assert (await assess(client, world, cell_id, "county", EVIDENCE)).status_code == 200
    # More quality checks today: the computed accuracy reads otherwise, a new finding.
    await sorted_pickups(client, world, passed=0, failed=5)
    rescored = await assess(client, world, cell_id, "county", EVIDENCE)
    assert rescored.status_code == 201, rescored.text
    assert rescored.json()["scores"]["sorting_accuracy"]["value"] == "60.00"
    assert await CellAssessment.filter(cell_id=cell_id).count() == 5
