"""QR labels, decoded by an independent reader (zxing-cpp), never by our own code."""

import io

import httpx
import pypdf
import zxingcpp
from PIL import Image

from tests.custody.helpers import tag_bag
from tests.factories import World
from wastetrack.batches.labels import LabelText, render_label_png
from wastetrack.batches.models import Label
from wastetrack.core import codes


def decode(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


async def test_label_png_is_50x30mm_at_300dpi_and_decodes_to_the_signed_url(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    response = await client.get(
        f"/m/v1/batches/{batch['code']}/label.png", headers=world.headers("clinic")
    )
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (591, 354)
    assert round(image.info["dpi"][0]) == 300
    assert decode(image) == [batch["qr_url"]]
    assert codes.code_from_scan(decode(image)[0], secret=world.settings.secret_key) == batch["code"]


def test_label_falls_back_to_ascii_without_a_cjk_font() -> None:
    text = LabelText(
        code="R98H0PN9Q",
        url="http://t/q/R98H0PN9Q.AAAAAAAA",
        category_zh="感染性废物",
        category_en="Infectious waste",
        stream_zh="医疗废物",
        stream_en="Medical waste",
        colour="#F2C200",
    )
    with_cjk = render_label_png(text)
    without = render_label_png(text, cjk_fonts=("/nonexistent/font.ttc",))
    assert decode(Image.open(io.BytesIO(without))) == ["http://t/q/R98H0PN9Q.AAAAAAAA"]
    assert decode(Image.open(io.BytesIO(with_cjk))) == ["http://t/q/R98H0PN9Q.AAAAAAAA"]


async def test_a_plate_prints_a_name_holding_a_line_break(
    client: httpx.AsyncClient, world: World
) -> None:
    """A site's name the registry accepts with a line break in it was a 500 on its plate
    (Pillow measures no text holding one): it prints on one line, the break a space."""
    for name in ("北山社区\r\n3号投放点", "北山社区\n3号投放点"):
        site = await client.post(
            "/admin/v1/sites",
            headers=world.headers("admin"),
            json={
                "organization_id": world.orgs["community"].id,
                "name": name,
                "latitude": 37.165,
                "longitude": 122.487,
            },
        )
        assert site.status_code == 201, site.text
        png = await client.get(
            f"/m/v1/sites/{site.json()['code']}/label.png", headers=world.headers("manager")
        )
        assert png.status_code == 200, png.text
        (url,) = decode(Image.open(io.BytesIO(png.content)))
        assert url.startswith("http")


async def test_manager_issues_label_stock_as_a_pdf_sheet(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": 30},
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2  # 24 labels per A4 page
    issued = {label.code for label in await Label.filter(organization=world.orgs["clinic"])}
    assert len(issued) == 30
    first_page_codes = set()
    for picture in reader.pages[0].images:
        for url in decode(Image.open(io.BytesIO(picture.data))):
            first_page_codes.add(codes.code_from_scan(url, secret=world.settings.secret_key))
    assert len(first_page_codes) == 24
    assert first_page_codes <= issued


async def test_only_managers_issue_label_stock(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/m/v1/labels",
        headers=world.headers("clinic"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": 3},
    )
    assert response.status_code == 403
    assert await Label.all().count() == 0


async def test_town_manager_cannot_issue_labels_outside_their_region(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/m/v1/labels",
        headers=world.headers("town_manager"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": 3},
    )
    # Not found, as an organization that does not exist: ids reveal nothing.
    assert response.status_code == 404
    assert response.json()["field"] == "organization_id"
