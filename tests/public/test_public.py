"""The pages behind every printed QR: HTML in Chinese for a phone's browser, JSON for a client
that asks for it, and one and the same 404 for unknown, forged and mistyped codes."""

from decimal import Decimal

import httpx
import pytest
from starlette.requests import Request

from mobile_api.routers.public import wants_json
from tests.custody.helpers import advance, tag_bag
from tests.factories import World, forged
from tests.ports.test_ports import Harbour, arrive, deliver, delivery
from wastetrack.batches.models import Batch, Label
from wastetrack.core import codes
from wastetrack.core.timefmt import local_time
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        (BROWSER["Accept"], False),
        ("", False),
        ("*/*", False),
        ("application/json", True),
        ("application/json, text/html;q=0.5", True),
        ("text/html, application/json;q=0.9", False),
        ("application/*", True),
        ("application/json;q=oops, text/html;q=0.1", False),
    ],
)
def test_accept_header_chooses_json_only_when_it_ranks_first(accept: str, json: bool) -> None:
    scope = {"type": "http", "headers": [(b"accept", accept.encode())] if accept else []}
    assert wants_json(Request(scope)) is json


async def test_batch_page_shows_category_state_and_city_minutes_but_no_parties(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="treated")
    page = await client.get(path_of(batch["qr_url"]), headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["vary"] == "Accept"
    record = await Batch.get(code=batch["code"])
    for shown in (
        "感染性废物",
        "医疗废物",
        "已处置",
        local_time(record.tagged_at, "Asia/Shanghai"),
    ):
        assert shown in page.text, shown
    for name in ("北山社区卫生室", "荣成医废转运有限公司", "荣成医疗废物处置中心"):
        assert name not in page.text
    data = (await client.get(path_of(batch["qr_url"]), headers=JSON)).json()
    assert (data["kind"], data["code"], data["state"], data["state_zh"]) == (
        "batch",
        batch["code"],
        "treated",
        "已处置",
    )
    assert data["category_code"] and "organization" not in str(data)


async def test_unused_label_page_says_it_is_not_yet_bound(
    client: httpx.AsyncClient, world: World
) -> None:
    issued = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": 1},
    )
    assert issued.status_code == 201
    label = await Label.get(organization=world.orgs["clinic"])
    url = codes.qr_url(label.code, base_url="http://testserver", secret=world.settings.secret_key)
    page = await client.get(path_of(url), headers=BROWSER)
    assert page.status_code == 200 and "未启用" in page.text and "医疗废物" in page.text
    data = (await client.get(path_of(url), headers=JSON)).json()
    assert (data["kind"], data["state"], data["tagged_at"]) == ("batch", "unbound", None)


async def test_berth_and_collection_point_plates_open_a_page_not_an_error(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    point = await registry.create_organization(
        name="北山社区投放点管理站",
        kind=OrganizationKind.collection_point,
        region_id=world.regions["village"].id,
    )
    urls = {}
    for org, name in ((point.id, "北山社区3号投放点"), (world.orgs["clinic"].id, "卫生室后院")):
        site = await client.post(
            "/admin/v1/sites",
            headers=world.headers("admin"),
            json={"organization_id": org, "name": name, "latitude": 37.165, "longitude": 122.487},
        )
        assert site.status_code == 201, site.text
        urls[name] = codes.qr_url(
            site.json()["code"], base_url="http://testserver", secret=world.settings.secret_key
        )
    # A collection point's plate is one; another organization's site is only a site.
    for url, kind, shown in (
        (harbour.berth_url, "berth", ("3号泊位", "石岛渔港", "船舶垃圾")),
        (
            urls["北山社区3号投放点"],
            "collection_point",
            ("北山社区3号投放点", "管理站", "分类投放"),
        ),
        (urls["卫生室后院"], "site", ("卫生室后院", "北山社区卫生室", "单位站点")),
    ):
        page = await client.get(path_of(url), headers=BROWSER)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        for text in shown:
            assert text in page.text, (kind, text)
        data = (await client.get(path_of(url), headers=JSON)).json()
        assert data["kind"] == kind and shown[0] in data["name"], data


async def test_receipt_page_in_html_and_json(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.large)
    made = (await deliver(client, world, delivery(harbour, harbour.large))).json()
    path = path_of(made["receipt_url"])
    page = await client.get(path, headers=BROWSER)
    assert page.status_code == 200
    for shown in ("船舶垃圾/污染物接收单", "鲁荣渔58836", "石岛渔港", "3号泊位", " m³"):
        assert shown in page.text, shown
    data = (await client.get(path, headers=JSON)).json()
    assert (data["kind"], data["number"], data["ship_name"]) == (
        "receipt",
        made["receipt_number"],
        "鲁荣渔58836",
    )
    assert Decimal(data["lines"][0]["volume_m3"]) == Decimal("0.5")


async def test_forged_unknown_and_unsigned_codes_get_one_and_the_same_refusal(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    batch = await tag_bag(client, world)
    await arrive(client, world, harbour.large)
    made = (await deliver(client, world, delivery(harbour, harbour.large))).json()
    unknown = codes.qr_url(
        codes.new_code(), base_url="http://testserver", secret=world.settings.secret_key
    )
    refusals = [
        forged(path_of(batch["qr_url"])),
        forged(harbour.berth_url.removeprefix("http://testserver")),
        path_of(unknown),
        f"/q/{batch['code']}",
        "/q/not-a-code",
        forged(path_of(made["receipt_url"])),
        "/r/WDR0000.1AAAAAAAA",
        "/t/20263710000001.1AAAAAAAA",
        "/t/nothing",
        # Mistyped past any code's shape: too long for one, or with a control character.
        "/q/" + "A" * 600,
        "/q/AB%00CD",
        "/r/" + "7" * 600,
        "/t/AB%01CD.1AAAAAAAA",
        "/t/20263710000001.1éééééééé",
        "/r/WDR0000.1éééééééé",
        "/q/ABCDEFGHJ.1éééééééé",
        # A signed link with whitespace or a control character added, even at its end (where
        # reading a typed code would strip it): no printed QR names it.
        *(path_of(batch["qr_url"]) + tail for tail in ("%0A", "%09", "%0D", "%0B", "%1F", "%20")),
        path_of(made["receipt_url"]) + "%0A",
        path_of(batch["qr_url"]).replace(".", "%20."),
        # A slash typed after a signed link (or before it), or no code at all.
        *(
            path_of(link) + tail
            for link in (batch["qr_url"], made["receipt_url"])
            for tail in ("/", "%2F")
        ),
        path_of(batch["qr_url"]).replace("/q/", "/q//"),
        # The code of a signed link as the app reads it typed, not as it was printed: in small
        # letters, or in the label's groups.
        path_of(batch["qr_url"]).lower(),
        path_of(batch["qr_url"]).replace(batch["code"], codes.printed(batch["code"])),
        path_of(made["receipt_url"]).lower(),
        "/q/",
        "/r/",
        "/t/",
    ]
    pages = [await client.get(path, headers=BROWSER) for path in refusals]
    assert {(p.status_code, p.headers["content-type"]) for p in pages} == {
        (404, "text/html; charset=utf-8")
    }
    assert len({p.text for p in pages}) == 1 and "未找到" in pages[0].text
    answers = [await client.get(path, headers=JSON) for path in refusals]
    assert {(a.status_code, a.headers["content-type"]) for a in answers} == {
        (404, "application/problem+json")
    }
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["field"] == "code"
