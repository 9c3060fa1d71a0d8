"""The dashboard's pages through the ASGI app: login, refusals, content."""

import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from dateutil.relativedelta import relativedelta

from mobile_api.routers.dashboard import _point, percent
from tests.custody.helpers import tag_bag
from tests.factories import CITY_TODAY, PASSWORD, World, make_user
from tests.pesticide.test_take_back import a_return, a_sale, points
from wastetrack.auth.models import Role
from wastetrack.cells import service as cells
from wastetrack.core import cityday
from wastetrack.core.metrics import Definition, ratio
from wastetrack.indicators.models import Indicator
from wastetrack.registry import service as registry
from wastetrack.registry.models import Region, RegionLevel

__all__ = ["points"]  # a fixture used here


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/dashboard/login", data={"username": username, "password": password})


async def test_pages_need_a_manager_login(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get("/dashboard")).headers["location"] == "/dashboard/login"
    wrong = await login(client, "manager", "not-the-password")
    assert wrong.status_code == 401 and "incorrect username or password" in wrong.text
    clinic = await login(client, "clinic")
    assert clinic.status_code == 403
    ok = await login(client, "manager")
    assert (ok.status_code, ok.headers["location"]) == (303, "/dashboard")
    assert "httponly" in ok.headers["set-cookie"].lower()
    assert ok.headers["cache-control"] == "no-store"  # the cookie is a token


async def test_overview_shows_targets_and_counts(client: httpx.AsyncClient, world: World) -> None:
    await login(client, "manager")
    page = await client.get("/dashboard")
    assert page.status_code == 200
    for text in (
        "渔港污水和垃圾收集处置率",
        "城市细胞达到",
        # The captions define the rates as docs/metrics.md §5 does: over what was generated.
        "资源化利用率 = 资源化利用量 ÷ 产生量",
        "无害化处理率 = 无害化处理量 ÷ 产生量",
        "暂无数据",
        "/static/vendor/echarts.min.js",
    ):
        assert text in page.text
    assert "cdn" not in page.text.lower()
    script = await client.get("/static/vendor/echarts.min.js")
    assert script.status_code == 200 and len(script.content) > 500_000


async def test_the_cells_target_is_the_loaded_editions(
    client: httpx.AsyncClient, world: World
) -> None:
    """The heading and the chart's target line say the target the share is judged against
    (the indicator of the loaded edition), not a number of their own."""
    indicator = await Indicator.get(code=cells.TARGET_INDICATOR)
    await login(client, "manager")
    try:
        await Indicator.filter(code=indicator.code).update(target=Decimal("72.5"))
        page = (await client.get("/dashboard")).text
    finally:
        await Indicator.filter(code=indicator.code).update(target=indicator.target)
    assert "“无废细胞”达标率（目标 72.5%）" in page
    charts = _charts(page)
    assert charts["cells"]["target"] == 72.5
    assert "yAxis: data.cells.target" in page


def indicator_rows(page: str) -> dict[str, str]:
    """The plan-indicator table's rows by indicator code, as the page's HTML."""
    return dict(re.findall(r'<tr data-code="([^"]+)">(.*?)</tr>', page, re.S))


async def test_each_indicator_shows_its_own_period_unit_and_definition(
    client: httpx.AsyncClient, world: World
) -> None:
    """Indicators cover different periods (twelve months, 30 days, a standing on the day, an
    entered year): each row says its own, with its unit and where its definition comes from;
    the page's period is the twelve months ending today, the flows' own."""
    today = cityday.today(world.settings.timezone)
    entered = {"value": "96.5", "period_end": "2025-12-31", "source_note": "市农业农村局年报"}
    made = await client.post(
        "/m/v1/indicators/straw_utilization/values", json=entered, headers=world.headers("manager")
    )
    assert made.status_code == 201, made.text
    answer = await client.get("/m/v1/indicators", headers=world.headers("manager"))
    actuals = {i["code"]: i["actual"] for i in answer.json()["indicators"] if i["actual"]}
    await login(client, "manager")
    page = (await client.get("/dashboard")).text
    rows = indicator_rows(page)
    assert f"统计期：{cityday.year_to(today)} 至 {today}" in page
    # The monthly chart's buckets are calendar months: its heading gives their own span.
    first_month = today.replace(day=1) - relativedelta(months=11)
    assert f"按月：{first_month} 至 {today}" in page
    assert {"small_clinic_collection", "sorting_facility_coverage", "straw_utilization"} <= set(
        actuals
    )
    for code, actual in actuals.items():
        start, end = actual.get("period_start"), actual["period_end"]
        said = f"截至 {end}" if start in (None, end) else f"{start} 至 {end}"
        assert said in rows[code], (code, rows[code])
        assert "<td>%</td>" in rows[code], code
    assert f'<td class="period">截至 {today}</td>' in rows["sorting_facility_coverage"]
    assert '<td class="period">截至 2025-12-31</td>' in rows["straw_utilization"]
    clinics = rows["small_clinic_collection"]
    definition = actuals["small_clinic_collection"]["definition"]
    assert "家机构" in clinics and f"口径：{definition['source']}" in clinics
    assert f'title="{definition["formula"][:30]}' in clinics  # the formula, on hover


async def test_the_overview_names_the_region_its_figures_cover(
    client: httpx.AsyncClient, world: World
) -> None:
    """A town's manager reads its town's coverage and cells, not the city's."""
    await login(client, "town_manager")
    page = await client.get("/dashboard")
    assert page.status_code == 200, page.text
    assert "石岛管理区：" in page.text and "全市：" not in page.text
    await login(client, "manager")
    assert "荣成市：" in (await client.get("/dashboard")).text


def _charts(page: str) -> dict[str, Any]:
    """The data the page's charts draw."""
    found = re.search(r"const data = (.*?);\n", page)
    assert found, page
    charts: dict[str, Any] = json.loads(found[1])
    return charts


async def test_a_villages_sorting_bar_is_named_as_its_part_of_the_town(
    client: httpx.AsyncClient, world: World
) -> None:
    """docs/streams/household.md: an area inside a town gives one town row with `partial:
    true`, the figures of the area's part of it. A village manager's chart drew its village's
    100 % as 崖头街道's, where the city's manager sees 崖头街道 at 50 % (rdash review)."""
    town = world.regions["town"]
    await registry.create_region(
        code="371082001201", name="南山村", level=RegionLevel.village, parent_id=town.id
    )
    await Region.filter(id=world.regions["village"].id).update(
        sorted_collection_since=CITY_TODAY - timedelta(days=10)
    )
    await make_user(world, "village_manager", Role.manager, world.orgs["community"])
    bars = {}
    for who in ("manager", "village_manager"):
        await login(client, who)
        sorting = _charts((await client.get("/dashboard")).text)["sorting"]
        bars[who] = dict(zip(sorting["towns"], sorting["covered"], strict=True))
    assert bars["manager"]["崖头街道"] == {
        "value": 50.0,
        "text": "50.0%",
        "numerator": "1",
        "denominator": "2",
    }
    assert bars["village_manager"] == {
        "崖头街道（北山社区）": {
            "value": 100.0,
            "text": "100.0%",
            "numerator": "1",
            "denominator": "1",
        }
    }, bars


def test_a_share_short_of_all_never_reads_100_percent_nor_one_above_none_0() -> None:
    """The page prints a rate to a tenth of a percent: 1,999 of 2,000 bags treated read
    100.0 % (and one of 20,000, 0.0 %), a manager told all was done where one bag was not
    (rdash review). It reads the exact quotient: 19,999 of 20,000, whose four-place rate is
    1.0000, read 100.0 % still (diff review). A rate beyond 1 (the mass balance, not a share)
    reads as rounded; an indicator's value reads to a hundredth, by the same rule."""

    def rate(numerator: int, denominator: int) -> dict[str, Any]:
        return {"numerator": Decimal(numerator), "denominator": Decimal(denominator)}

    for (numerator, denominator), shown in (
        ((1999, 2000), "99.9%"),
        ((19999, 20000), "99.9%"),
        ((1, 1), "100.0%"),
        ((1, 20000), "0.1%"),
        ((0, 5), "0.0%"),
        ((1, 2), "50.0%"),
        ((2, 3), "66.7%"),
        ((1, 8), "12.5%"),
        ((3, 8), "37.5%"),
        ((10001, 10000), "100.0%"),
        ((6, 5), "120.0%"),
    ):
        assert percent(rate(numerator, denominator)) == shown, (numerator, denominator)
    assert percent(rate(19999, 20000), 2) == "99.99%"
    assert percent(rate(199999, 200000), 2) == "99.99%"
    assert (percent(None), percent(rate(0, 0))) == ("—", "—")


def test_a_charts_point_is_drawn_at_the_reading_its_tooltip_says() -> None:
    """A chart drew its point at the four-place rate: 19,999 of 20,000 kg at the axis's top
    while its tooltip said 99.9 %, and 1 kg of 20,001 as nothing while it said 0.1 % (diff
    review). Height and tooltip are one reading."""
    definition: Definition = {"formula": "utilized ÷ generated", "source": "test"}
    almost_all = _point(ratio(Decimal(19999), Decimal(20000), "kg", definition))
    almost_none = _point(ratio(Decimal(1), Decimal(20001), "kg", definition))
    assert almost_all is not None and almost_none is not None
    assert (almost_all["text"], almost_none["text"]) == ("99.9%", "0.1%")
    assert (almost_all["value"], almost_none["value"]) == (99.9, 0.1)
    assert _point(ratio(0, 0, "kg", definition)) is None


async def test_the_indicator_table_never_reads_a_share_short_of_all_as_100(
    client: httpx.AsyncClient, points: World
) -> None:
    """The plan-indicator table printed a computed indicator's value, its rate to a hundredth
    of a percent: 19,999 of 20,000 containers recovered read 100.00 beside "19999 / 20000"
    (diff review). It reads as the stream table does, from the exact quotient."""
    sale = {**a_sale(count=20000)}
    made = await client.post("/m/v1/pesticide/sales", json=sale, headers=points.headers("shop"))
    assert made.status_code == 201, made.text
    back = a_return(lines=[{"material": "agri.plastic_bottle", "count": 19999}])
    taken = await client.post("/m/v1/pesticide/returns", json=back, headers=points.headers("shop"))
    assert taken.status_code == 201, taken.text
    await login(client, "manager")
    row = indicator_rows((await client.get("/dashboard")).text)["pesticide_packaging_recovery"]
    assert "19999 / 20000" in row, row
    assert re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[4] == "99.99%", row
    # The value itself, which the indicator's status judges and its file carries, by one rule
    # (`metrics.percent`): it read 100.00 too.
    listed = await client.get("/m/v1/indicators", headers=points.headers("manager"))
    (recovery,) = [
        i for i in listed.json()["indicators"] if i["code"] == "pesticide_packaging_recovery"
    ]
    assert recovery["actual"]["value"] == "99.99", recovery


async def test_trace_page_shows_a_batch_the_manager_may_see(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, latitude=37.2, longitude=122.5)
    await login(client, "town_manager")  # 石岛: not the clinic's town
    hidden = await client.get("/dashboard/batches", params={"code": bag["code"]})
    assert "no batch or label with this code" in hidden.text
    await login(client, "manager")
    shown = await client.get("/dashboard/batches", params={"code": bag["code"]})
    assert bag["code"] in shown.text and "[122.5, 37.2]" in shown.text
    assert "已贴标" in shown.text and "<td>贴标登记</td>" in shown.text
    assert ">tagged<" not in shown.text and "· tagged" not in shown.text
    pasted = await client.get("/dashboard/batches", params={"code": "X" * 513})
    assert pasted.status_code == 422 and "code" in pasted.text
    assert (await client.get("/dashboard/batches", params={"code": ""})).status_code == 200


def _medical_month(page: str) -> Any:
    charts = _charts(page)
    months = charts["utilization"]["months"]
    (series,) = [v for k, v in charts["utilization"]["streams"].items() if "医疗" in k]
    return series[months.index(CITY_TODAY.strftime("%Y-%m"))]


async def test_chart_month_says_its_batches_without_mass(
    client: httpx.AsyncClient, world: World
) -> None:
    """docs/metrics.md §5: "`batches_without_mass` … The monthly series of the dashboard's
    utilization chart gives it per stream and month too." A bag in items (med.infectious has no
    unit mass) beside one in kg: the chart's point for the month carried no such count (rdash
    review)."""
    carrier = world.orgs["carrier"].id
    await tag_bag(client, world, carrier_organization_id=carrier, quantity="3.5")
    await tag_bag(client, world, carrier_organization_id=carrier, quantity="4", unit="count")
    await login(client, "manager")
    point = _medical_month((await client.get("/dashboard")).text)
    assert point is not None
    assert point["batches_without_mass"] == 1 and point["denominator"] == "3.500", point


async def test_chart_month_of_unweighed_batches_is_not_a_month_without_waste(
    client: httpx.AsyncClient, world: World
) -> None:
    """Only bags of no known mass this month: the chart drew a gap, which its caption read as
    "当月无产生量则空缺" (nothing generated), and nothing on the page said the month held a
    batch (rdash review)."""
    carrier = world.orgs["carrier"].id
    await tag_bag(client, world, carrier_organization_id=carrier, quantity="4", unit="count")
    await login(client, "manager")
    page = (await client.get("/dashboard")).text
    # A point of no height (a gap in the line) that says why: not "nothing generated".
    assert _medical_month(page) == {
        "value": None,
        "text": "—",
        "numerator": "0",
        "denominator": "0.000",
        "batches_without_mass": 1,
    }
    assert "质量未知的批次不计入" in page


async def test_stream_table_shares_carry_their_definition_source(
    client: httpx.AsyncClient, world: World
) -> None:
    """The review standard: every share shown carries numerator, denominator, period,
    definition and source: the stream table's 无害化处理率 / 资源化利用率 showed neither the
    definition's source nor its formula, as the indicator table does (rdash review)."""
    await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id, quantity="3.5")
    day = CITY_TODAY.isoformat()
    answer = await client.get(
        "/m/v1/metrics/utilization",
        headers=world.headers("manager"),
        params={"date_from": day, "date_to": day},
    )
    (stream,) = answer.json()["streams"]
    source = stream["harmless_treatment_rate"]["definition"]["source"]
    await login(client, "manager")
    page = (await client.get("/dashboard")).text
    section = re.search(r'<section class="wide" id="streams">(.*?)</section>', page, re.S)[1]
    assert source in section, source


async def test_the_sorting_and_cells_shares_carry_their_definition_source(
    client: httpx.AsyncClient, world: World
) -> None:
    """Every share the page shows carries its definition's source: the sorting section's
    coverage and accuracy, and the cells' share, printed counts and periods only (recount
    review)."""
    a, b = cityday.year_to(CITY_TODAY), CITY_TODAY
    period = {"date_from": a.isoformat(), "date_to": b.isoformat()}
    manager = world.headers("manager")
    sorting = (await client.get("/m/v1/metrics/sorting", headers=manager, params=period)).json()
    cells_figures = (await client.get("/m/v1/metrics/cells", headers=manager)).json()
    await login(client, "manager")
    page = (await client.get("/dashboard")).text
    for heading, rates in (
        ("生活垃圾分类覆盖率", [sorting["coverage"], sorting["accuracy"]]),
        ("“无废细胞”达标率", [cells_figures["share"]]),
    ):
        section = re.search(f"<section><h2>{heading}.*?</section>", page, re.S)
        assert section is not None, heading
        for rate in rates:
            assert rate["definition"]["source"] in section[0], (heading, rate["definition"])
