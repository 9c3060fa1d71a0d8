"""The dashboard's pages through the ASGI app: login, refusals, content."""

import httpx

from tests.custody.helpers import tag_bag
from tests.factories import PASSWORD, World


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
    pasted = await client.get("/dashboard/batches", params={"code": "X" * 65})
    assert pasted.status_code == 422 and "code" in pasted.text
