"""Zero-waste cell achievement as of a day (metrics.md §6): the latest assessment governs,
achieved strictly before the same calendar date three years on, 29 February → 28 February."""

from datetime import date
from decimal import Decimal

import httpx
import pytest

from tests.factories import World
from tests.rollups import reference_indicators as ref
from wastetrack.cells import service as cells
from wastetrack.cells.models import Cell, CellAssessment
from wastetrack.core.errors import RuleViolation
from wastetrack.indicators.models import Indicator

EVIDENCE = {
    "reduction_measures": {"value": "95", "evidence": "现场检查记录"},
    "publicity": {"value": "90", "evidence": "宣传活动照片"},
}


async def make_cell(world: World, name: str = "北山社区") -> Cell:
    village = world.regions["village"]
    return await Cell.create(
        cell_type="community", name=name, region_id=village.id, region_path=village.path
    )


async def record(world: World, cell: Cell, level: str, on: date, tier: str) -> CellAssessment:
    """An assessment as the service stores it (scores are beside the point here)."""
    return await CellAssessment.create(
        cell=cell,
        level=level,
        assessed_on=on,
        expires_on=cells.expiry(on),
        scores={},
        total=Decimal(90 if tier != "not_achieved" else 50),
        tier=tier,
        assessor_id=world.users["manager"].id,
    )


async def achieved_on(world: World, day: date) -> tuple[str, str]:
    share = (await cells.achievement(principal=world.principals["manager"], today=day))["share"]
    return str(share["numerator"]), str(share["denominator"])


@pytest.mark.parametrize(
    ("assessed_on", "expires_on"),
    [
        (date(2024, 2, 29), date(2027, 2, 28)),
        (date(2023, 5, 10), date(2026, 5, 10)),
        (date(2025, 12, 31), date(2028, 12, 31)),
    ],
)
def test_an_assessment_lapses_on_the_same_calendar_date_three_years_on(
    assessed_on: date, expires_on: date
) -> None:
    assert cells.expiry(assessed_on) == expires_on


async def test_achieved_then_failed_reassessment_is_not_achieved(world: World) -> None:
    cell = await make_cell(world)
    await make_cell(world, "南山社区")  # registered, never assessed: in the denominator
    await record(world, cell, "county", date(2025, 1, 10), "achieved")
    assert await achieved_on(world, date(2025, 5, 31)) == ("1", "2")
    await record(world, cell, "county", date(2025, 6, 1), "not_achieved")
    assert await achieved_on(world, date(2025, 7, 1)) == ("0", "2")
    # As of a day before the failed re-assessment, the earlier one still governs.
    assert await achieved_on(world, date(2025, 5, 31)) == ("1", "2")


async def test_on_the_same_date_the_higher_level_governs_then_the_later_record(
    world: World,
) -> None:
    day = date(2025, 3, 1)
    passed_city = await make_cell(world, "甲")
    await record(world, passed_city, "city", day, "excellent")
    await record(world, passed_city, "county", day, "not_achieved")
    failed_province = await make_cell(world, "乙")
    await record(world, failed_province, "county", day, "achieved")
    await record(world, failed_province, "province", day, "not_achieved")
    re_entered = await make_cell(world, "丙")
    await record(world, re_entered, "county", day, "not_achieved")
    await record(world, re_entered, "county", day, "achieved")
    result = await cells.achievement(principal=world.principals["manager"], today=day)
    assert (result["share"]["numerator"], result["share"]["denominator"]) == (2, 3)
    assert result["definition"]["formula"].startswith("registered cells whose latest")
    assert result["target_share"] == Decimal("0.70")


async def test_the_target_is_the_indicators_of_the_loaded_edition(world: World) -> None:
    """One target: the share is judged against what /m/v1/indicators shows for the plan's
    zero-waste cells, so an edition that moves it moves both."""
    indicator = await Indicator.get(code=cells.TARGET_INDICATOR)
    assert indicator.target == Decimal(70)
    try:
        await Indicator.filter(code=indicator.code).update(target=Decimal("72.5"))
        result = await cells.achievement(principal=world.principals["manager"], today=date.today())
        assert result["target_share"] == Decimal("0.725")
    finally:
        await Indicator.filter(code=indicator.code).update(target=indicator.target)


async def test_achievement_ends_on_the_exact_expiry_day(world: World) -> None:
    cell = await make_cell(world)
    await record(world, cell, "county", date(2023, 5, 10), "achieved")
    assert await achieved_on(world, date(2026, 5, 9)) == ("1", "1")
    assert await achieved_on(world, date(2026, 5, 10)) == ("0", "1")


async def test_an_assessment_of_29_february_lapses_on_28_february(world: World) -> None:
    cell = await make_cell(world)
    await record(world, cell, "county", date(2024, 2, 29), "achieved")
    assert await achieved_on(world, date(2027, 2, 27)) == ("1", "1")
    assert await achieved_on(world, date(2027, 2, 28)) == ("0", "1")


async def test_an_assessment_dated_29_february_is_recorded(
    client: httpx.AsyncClient, world: World
) -> None:
    made = await client.post(
        "/m/v1/cells",
        headers=world.headers("manager"),
        json={"cell_type": "factory", "name": "某厂", "region_id": world.regions["village"].id},
    )
    evidence = {"value": "95", "evidence": "检查记录"}
    assessed = await client.post(
        f"/m/v1/cells/{made.json()['id']}/assessments",
        headers=world.headers("manager"),
        json={
            "level": "county",
            "assessed_on": "2024-02-29",
            "entered": {"solid_waste_utilization": evidence, "hazardous_compliance": evidence},
        },
    )
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["expires_on"] == "2027-02-28"


async def test_a_higher_level_stands_on_the_lower_levels_latest_assessment(world: World) -> None:
    """A county pass, then a failed county re-assessment: the city may not build on the old
    pass (the failure governs the county level as it governs the achievement)."""
    cell = await make_cell(world)
    await record(world, cell, "county", date(2025, 1, 10), "achieved")
    await record(world, cell, "county", date(2025, 6, 1), "not_achieved")
    with pytest.raises(RuleViolation) as refused:
        await cells.assess(
            principal=world.principals["manager"],
            cell_id=cell.id,
            level="city",
            assessed_on=date(2025, 7, 1),
            entered=EVIDENCE,
            timezone=world.settings.timezone,
        )
    assert refused.value.field == "level"
    assert await CellAssessment.filter(cell_id=cell.id, level="city").count() == 0
    assert await achieved_on(world, date(2025, 7, 1)) == ("0", "1")


@pytest.mark.parametrize(
    ("county", "city_on", "accepted"),
    [
        # The pass before the failed re-assessment still stood on the day.
        ([("2025-01-10", "achieved"), ("2025-06-01", "not_achieved")], "2025-05-31", True),
        # A failure, then a pass: the latest counts.
        ([("2025-01-10", "not_achieved"), ("2025-06-01", "achieved")], "2025-07-01", True),
        # The same day, the later record governs.
        ([("2025-06-01", "achieved"), ("2025-06-01", "not_achieved")], "2025-07-01", False),
        # The latest pass has lapsed (three years on).
        ([("2022-05-10", "achieved")], "2025-05-10", False),
    ],
)
async def test_the_lower_level_governs_as_in_the_achievement(
    world: World, county: list[tuple[str, str]], city_on: str, accepted: bool
) -> None:
    cell = await make_cell(world)
    for on, tier in county:
        await record(world, cell, "county", date.fromisoformat(on), tier)
    day = date.fromisoformat(city_on)
    standing = cells.governs(await CellAssessment.filter(cell_id=cell.id), day)
    assert cells.is_achieved(standing, day) is accepted
    try:
        await cells.assess(
            principal=world.principals["manager"],
            cell_id=cell.id,
            level="city",
            assessed_on=day,
            entered=EVIDENCE,
            timezone=world.settings.timezone,
        )
    except RuleViolation as error:
        assert (accepted, error.field) == (False, "level")
    else:
        assert accepted


async def test_a_failed_county_reassessment_refuses_a_city_assessment_as_the_oracle_does(
    client: httpx.AsyncClient, world: World
) -> None:
    """County passed on 2025-01-10 and failed on 2025-06-01: a city assessment on 2025-07-01
    is refused (409 naming `level`), since an earlier pass does not outlast a failed
    re-assessment (docs/metrics.md §6). The randomized reference checks hold the service
    against `reference_indicators.may_record`, which must read the history the same way."""
    cell = await make_cell(world)
    history = [("2025-01-10", "achieved"), ("2025-06-01", "not_achieved")]
    for on, tier in history:
        await record(world, cell, "county", date.fromisoformat(on), tier)
    refused = await client.post(
        f"/m/v1/cells/{cell.id}/assessments",
        headers=world.headers("manager"),
        json={"level": "city", "assessed_on": "2025-07-01", "entered": EVIDENCE},
    )
    assert (refused.status_code, refused.json()["field"]) == (409, "level"), refused.text
    assert await CellAssessment.filter(cell_id=cell.id, level="city").count() == 0
    made = [
        ref.Assessment(cell=cell.id, level="county", on=date.fromisoformat(on), tier=tier, order=i)
        for i, (on, tier) in enumerate(history)
    ]
    assert not ref.may_record(made, cell=cell.id, level="city", on=date(2025, 7, 1))
    # Before the failed re-assessment the pass stood, for the oracle as for the service.
    assert ref.may_record(made, cell=cell.id, level="city", on=date(2025, 5, 31))


@pytest.mark.parametrize(
    ("city_first", "county_fail_on"),
    [(True, date(2025, 3, 1)), (False, date(2025, 3, 1)), (True, date(2025, 6, 1))],
)
async def test_the_same_assessments_give_the_same_standing_in_any_order_of_recording(
    world: World, city_first: bool, county_fail_on: date
) -> None:
    """County passed on 2025-01-10, a city pass on 2025-06-01, a failed county re-assessment
    dated before the city pass or on its day: recorded first, the failure refuses the city
    assessment; recorded after it, it takes the city pass down. Either way the cell does not
    achieve the standard on 2025-07-01 (docs/metrics.md §6)."""
    cell = await make_cell(world)
    await record(world, cell, "county", date(2025, 1, 10), "achieved")
    if city_first:
        await record(world, cell, "city", date(2025, 6, 1), "achieved")  # the county stood
        assert await achieved_on(world, date(2025, 7, 1)) == ("1", "1")
        await record(world, cell, "county", county_fail_on, "not_achieved")
    else:
        await record(world, cell, "county", county_fail_on, "not_achieved")
        with pytest.raises(RuleViolation) as refused:
            await cells.assess(
                principal=world.principals["manager"],
                cell_id=cell.id,
                level="city",
                assessed_on=date(2025, 6, 1),
                entered=EVIDENCE,
                timezone=world.settings.timezone,
            )
        assert refused.value.field == "level"
    assert await achieved_on(world, date(2025, 7, 1)) == ("0", "1")
    # Before the failure the county pass stood.
    assert await achieved_on(world, date(2025, 2, 1)) == ("1", "1")


async def test_a_cells_assessments_are_read_back_with_the_one_that_governs(
    client: httpx.AsyncClient, world: World
) -> None:
    """What the achievement counted, cell by cell: every assessment with its scores, whether it
    stands, and the one governing today, for an auditor's recount. A county failure dated
    before a city pass but recorded after it takes the city pass down."""
    cell = await make_cell(world)
    passed = await record(world, cell, "county", date(2025, 1, 10), "achieved")
    city = await record(world, cell, "city", date(2025, 3, 1), "achieved")
    failed = await record(world, cell, "county", date(2025, 2, 1), "not_achieved")
    other = await make_cell(world, "南山社区")
    kept = await record(world, other, "county", date(2025, 6, 1), "achieved")
    h = world.headers("manager")

    read = await client.get(f"/m/v1/cells/{cell.id}/assessments", headers=h)
    assert read.status_code == 200, read.text
    standing = read.json()
    assert [(a["id"], a["stands"]) for a in standing["assessments"]] == [
        (passed.id, True),
        (city.id, False),
        (failed.id, True),
    ]
    assert (standing["governing_id"], standing["achieved"]) == (failed.id, False)
    assert standing["assessments"][0]["expires_on"] == "2028-01-10"
    second = (await client.get(f"/m/v1/cells/{other.id}/assessments", headers=h)).json()
    assert (second["governing_id"], second["achieved"]) == (kept.id, True)
    share = (await client.get("/m/v1/metrics/cells", headers=h)).json()["share"]
    assert (str(share["numerator"]), str(share["denominator"])) == ("1", "2")
    for who, cell_id in (("town_manager", cell.id), ("manager", 2**31 - 1)):
        missing = await client.get(f"/m/v1/cells/{cell_id}/assessments", headers=world.headers(who))
        assert (missing.status_code, missing.json()["field"]) == (404, "cell_id"), missing.text
