"""Every document prints its Chinese intact with the bundled font (text read back with pypdf,
labels checked without OCR), and its times in the city's zone to the minute."""

import io
import re
from datetime import timedelta

import httpx
import pypdf
import zxingcpp
from PIL import Image

from tests.custody.helpers import tag_bag
from tests.factories import World, forged
from tests.manifests.test_manifests import NOW, Parties, call, drive_to_arrival
from tests.ports.test_ports import Harbour, arrive, deliver, delivery
from wastetrack.batches.labels import LabelText, render_label_png
from wastetrack.core.fonts import cjk_repertoire
from wastetrack.core.timefmt import local_time
from wastetrack.ports.models import Delivery
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

CITY = "Asia/Shanghai"
UTC_OR_SECONDS = re.compile(r"\+00:00|\d{2}:\d{2}:\d{2}|T\d{2}:\d{2}")


def pdf_text(content: bytes) -> tuple[str, set[str]]:
    """All pages' text and the names of the fonts embedded."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    return "\n".join(page.extract_text() for page in reader.pages), fonts


def bundled(fonts: set[str]) -> bool:
    return any(name.endswith("+NotoSansCJKSC") for name in fonts)


async def test_receipt_prints_ship_port_and_owner_in_chinese_at_city_minutes(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.large)
    made = (await deliver(client, world, delivery(harbour, harbour.large))).json()
    response = await client.get(
        f"/m/v1/deliveries/{made['id']}/receipt.pdf", headers=world.headers("crew")
    )
    text, fonts = pdf_text(response.content)
    assert bundled(fonts)
    for name in ("船舶垃圾/污染物接收单", "鲁荣渔58836", "石岛渔港", "3号泊位", "荣成某渔业公司"):
        assert name in text, name
    record = await Delivery.get(id=made["id"])
    for moment in (record.started_at, record.ended_at, record.recorded_at):
        assert local_time(moment, CITY) in text
    assert not UTC_OR_SECONDS.search(text), UTC_OR_SECONDS.search(text)


async def test_manifest_prints_parties_and_emergency_measures_with_signs(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    measures = "储存温度≤40℃；泄漏时用吸油毡围堵，禁止明火（见安全技术说明书）"
    parties.body["emergency_measures"] = measures
    arrived = await drive_to_arrival(client, world, parties)
    mid = arrived["id"]
    response = await client.get(
        f"/m/v1/manifests/{mid}/manifest.pdf", headers=world.headers("maker")
    )
    text, fonts = pdf_text(response.content)
    assert bundled(fonts)
    for name in (
        "危险废物转移联单",
        "废机油",
        measures,
        "荣成某船舶修造公司",
        "荣成医废转运有限公司",
        "联运承运公司",
        "危废处置中心",
        "鲁K12345",
        "200L铁桶×4",
    ):
        assert name in text, name
    assert local_time(NOW, CITY) in text  # arrival
    assert local_time(NOW - timedelta(hours=2), CITY) in text  # first handover
    assert not UTC_OR_SECONDS.search(text), UTC_OR_SECONDS.search(text)


async def test_manifest_qr_opens_its_public_page(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    made = (await call(client, world, "maker", "", parties.body)).json()
    pdf = await client.get(
        f"/m/v1/manifests/{made['id']}/manifest.pdf", headers=world.headers("maker")
    )
    (picture,) = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].images
    (url,) = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(picture.data)))]
    assert url.startswith(f"http://testserver/t/{made['number']}.")
    path = url.removeprefix("http://testserver")
    page = await client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert made["number"] in page.text and "废机油" in page.text and "草稿" in page.text
    data = (await client.get(path, headers={"Accept": "application/json"})).json()
    assert (data["kind"], data["number"], data["producer"]) == (
        "manifest",
        made["number"],
        "荣成某船舶修造公司",
    )
    assert (await client.get(forged(path))).status_code == 404


async def test_label_stock_sheet_prints_the_stream_in_chinese(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": 3},
    )
    text, fonts = pdf_text(response.content)
    assert bundled(fonts)
    assert text.count("医疗废物") == 3


def printed(png: bytes) -> tuple[str, str]:
    info = Image.open(io.BytesIO(png)).info
    return info["Title"], info["Font"]


async def test_labels_and_plates_draw_chinese_with_the_bundled_font(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    batch = await tag_bag(client, world)
    berth_code = harbour.berth_url.rsplit("/q/", 1)[1].split(".")[0]
    point = await registry.create_organization(
        name="北山社区投放点管理站",
        kind=OrganizationKind.collection_point,
        region_id=world.regions["village"].id,
    )
    # A collection point's plate says so; another organization's site is only a site.
    sites = {}
    for org, name in ((point.id, "北山社区3号投放点"), (world.orgs["clinic"].id, "卫生室后院")):
        site = await client.post(
            "/admin/v1/sites",
            headers=world.headers("admin"),
            json={"organization_id": org, "name": name, "latitude": 37.165, "longitude": 122.487},
        )
        assert site.status_code == 201, site.text
        sites[name] = site.json()["code"]
    headers = world.headers("clinic")
    for path, title in (
        (f"/m/v1/batches/{batch['code']}/label.png", "感染性废物"),
        (f"/m/v1/berths/{berth_code}/label.png", "泊位 3号泊位"),
        (f"/m/v1/sites/{sites['北山社区3号投放点']}/label.png", "生活垃圾分类投放点"),
        (f"/m/v1/sites/{sites['卫生室后院']}/label.png", "单位站点"),
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        assert printed(response.content) == (title, "Noto Sans CJK SC"), path
        assert set(title.replace(" ", "")) <= cjk_repertoire()


def test_a_label_without_its_cjk_font_falls_back_to_english_and_looks_different() -> None:
    text = LabelText(
        code="R98H0PN9Q",
        url="http://t/q/R98H0PN9Q.AAAAAAAA",
        category_zh="感染性废物",
        category_en="Infectious waste",
        stream_zh="医疗废物",
        stream_en="Medical waste",
        colour="#F2C200",
    )
    chinese = render_label_png(text)
    english = render_label_png(text, cjk_fonts=("/nonexistent/font.ttf",))
    assert printed(chinese) == ("感染性废物", "Noto Sans CJK SC")
    assert printed(english) == ("Infectious waste", "default")
    band = (380, 12, 580, 80)  # the colour band with the category's name
    assert (
        Image.open(io.BytesIO(chinese)).crop(band).tobytes()
        != Image.open(io.BytesIO(english)).crop(band).tobytes()
    )
