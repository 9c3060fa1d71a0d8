"""A delivery's receipt and its public check say who recorded it (the port's signature or the
vessel's declaration) and where each line stands with the reception facility now."""

import dataclasses
import importlib
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pypdf
import pytest
import zxingcpp
from PIL import Image
from pypdf.generic import ContentStream
from tortoise import connections

from tests.custody.helpers import post_event
from tests.factories import World, event, make_user
from tests.ports.test_ports import Harbour, arrive, deliver, delivery
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role, User
from wastetrack.batches.models import Batch
from wastetrack.ports.deliveries import Acceptance, acceptance
from wastetrack.ports.models import Delivery
from wastetrack.ports.receipts import ReceiptLine, ReceiptText, render_receipt_pdf
from wastetrack.registry import vessels

KG_LINE = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"}


async def receipt_text(client: httpx.AsyncClient, world: World, delivery_id: int) -> str:
    pdf = await client.get(
        f"/m/v1/deliveries/{delivery_id}/receipt.pdf", headers=world.headers("port")
    )
    assert pdf.status_code == 200, pdf.text
    return pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()


async def public_check(client: httpx.AsyncClient, made: dict) -> dict:
    public = await client.get(
        made["receipt_url"].removeprefix("http://testserver"),
        headers={"Accept": "application/json"},
    )
    assert public.status_code == 200, public.text
    return public.json()


async def to_plant(client: httpx.AsyncClient, world: World, code: str) -> None:
    """The port sends the line's batch on to the plant."""
    step = event("in_transit", code, minutes=5, destination_organization_id=world.orgs["plant"].id)
    response = await post_event(client, world, "port", step)
    assert response.status_code == 201, response.text


async def test_a_crews_delivery_is_the_vessels_declaration_until_a_receipt_decides(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """The crew's record carries no port signature: its lines are pending, and a line the
    plant then rejects shows as rejected on the paper and on its public check."""
    await arrive(client, world, harbour.small)
    response = await deliver(client, world, delivery(harbour, harbour.small, KG_LINE), who="crew")
    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["recorded_by"], made["lines"][0]["acceptance"]) == ("vessel", "pending")
    text = await receipt_text(client, world, made["id"])
    assert "Signed for the reception facility" not in text
    assert f"Declared by the vessel: {world.users['crew'].username}" in text
    assert "pending" in text
    checked = await public_check(client, made)
    assert checked["recorded_by"] == "vessel"
    assert [line["acceptance"] for line in checked["lines"]] == ["pending"]

    code = made["lines"][0]["batch_code"]
    await to_plant(client, world, code)
    refusal = event("received", code, minutes=30, outcome="rejected", reason="混有油污")
    assert (await post_event(client, world, "plant", refusal)).status_code == 201
    assert "rejected" in await receipt_text(client, world, made["id"])
    checked = await public_check(client, made)
    assert [line["acceptance"] for line in checked["lines"]] == ["rejected"]
    assert checked["number"] == made["receipt_number"]
    # The delivery's read, alone and listed, says the same.
    for who in ("port", "crew"):
        listed = await client.get("/m/v1/deliveries", headers=world.headers(who))
        (read,) = [d for d in listed.json() if d["id"] == made["id"]]
        assert (read["recorded_by"], read["lines"][0]["acceptance"]) == ("vessel", "rejected")
    one = await client.get(f"/m/v1/deliveries/{made['id']}", headers=world.headers("port"))
    assert one.json()["lines"][0]["acceptance"] == "rejected"


async def test_a_line_measured_at_zero_m3_prints_it_as_the_json_states_it(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """An empty cell is a quantity not measured; a measured 0.000 m³ beside the kg is printed."""
    await arrive(client, world, harbour.small)
    line = {**KG_LINE, "volume_m3": "0"}
    response = await deliver(client, world, delivery(harbour, harbour.small, line))
    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["lines"][0]["volume_m3"], made["lines"][0]["mass_kg"]) == ("0.000", "30.000")
    assert "塑料 0.000 30.000" in await receipt_text(client, world, made["id"])


async def test_a_ports_delivery_is_signed_and_shows_a_part_refused_later(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    await arrive(client, world, harbour.small)
    response = await deliver(client, world, delivery(harbour, harbour.small, KG_LINE))
    assert response.status_code == 201, response.text
    made = response.json()
    text = await receipt_text(client, world, made["id"])
    assert f"Signed for the reception facility: {world.users['port'].username}" in text
    assert "Declared by the vessel" not in text
    checked = await public_check(client, made)
    assert checked["recorded_by"] == "port"
    assert [line["acceptance"] for line in checked["lines"]] == ["accepted"]

    code = made["lines"][0]["batch_code"]
    await to_plant(client, world, code)
    part = event(
        "received",
        code,
        minutes=30,
        outcome="partially_accepted",
        weight_kg="20",
        reason="10 kg 渔网缠绕，退回",
    )
    assert (await post_event(client, world, "plant", part)).status_code == 201
    assert "partially accepted" in await receipt_text(client, world, made["id"])
    checked = await public_check(client, made)
    assert [line["acceptance"] for line in checked["lines"]] == ["partially_accepted"]
    # The refused part, back with the port, is sent again: partially accepted while it is out,
    # accepted once a receipt takes it in.
    remainder = (await Batch.get(split_from__code=code)).code
    plant = world.orgs["plant"].id
    again = event("in_transit", remainder, minutes=40, destination_organization_id=plant)
    assert (await post_event(client, world, "port", again)).status_code == 201
    checked = await public_check(client, made)
    assert [line["acceptance"] for line in checked["lines"]] == ["partially_accepted"]
    taken = event("received", remainder, minutes=50, outcome="accepted", weight_kg="10")
    assert (await post_event(client, world, "plant", taken)).status_code == 201
    checked = await public_check(client, made)
    assert [line["acceptance"] for line in checked["lines"]] == ["accepted"]
    read = await client.get(f"/m/v1/deliveries/{made['id']}", headers=world.headers("port"))
    assert [line["acceptance"] for line in read.json()["lines"]] == ["accepted"]


async def test_a_signature_stays_when_its_operator_moves_to_another_organization(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """The port signed when its operator recorded the delivery; the operator later working for
    another organization unsigns nothing and takes nothing along: a resend from there is a
    conflict, the receipt, its public check and the read still say the port, and its lines
    stay accepted. Deliveries recorded before the flag was kept get it from the custody log
    (migration 0047)."""
    await arrive(client, world, harbour.small)
    body = delivery(harbour, harbour.small, KG_LINE)
    response = await deliver(client, world, body)
    assert response.status_code == 201, response.text
    made = response.json()
    await User.filter(id=world.users["port"].id).update(organization_id=world.orgs["other_port"].id)
    await make_user(world, "port_now", Role.port_operator, world.orgs["port"])
    # The delivery stays the port's: the moved operator resending it from the other port gets
    # a conflict that shows nothing of it; the port's operator resending it gets it back.
    moved = await User.get(id=world.users["port"].id)
    world.tokens["port"] = str(
        (await auth.issue_tokens(user=moved, settings=world.settings))["access_token"]
    )
    resent = await deliver(client, world, body)
    assert resent.status_code == 409 and made["receipt_number"] not in resent.text
    again = await deliver(client, world, body, who="port_now")
    assert (again.status_code, again.json()["id"]) == (200, made["id"]), again.text
    one = await client.get(f"/m/v1/deliveries/{made['id']}", headers=world.headers("port_now"))
    assert (one.json()["recorded_by"], one.json()["lines"][0]["acceptance"]) == (
        "port",
        "accepted",
    )
    checked = await public_check(client, made)
    assert (checked["recorded_by"], checked["lines"][0]["acceptance"]) == ("port", "accepted")
    pdf = await client.get(
        f"/m/v1/deliveries/{made['id']}/receipt.pdf", headers=world.headers("port_now")
    )
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Signed for the reception facility" in text
    # Deliveries recorded before the flag was kept get it from the custody log (migration 0047):
    # their lines were tagged for the port, whoever the operator works for now.
    crews = await deliver(client, world, delivery(harbour, harbour.small, KG_LINE), who="crew")
    assert crews.status_code == 201, crews.text
    await Delivery.all().update(signed_by_port=False)
    await connections.get("default").execute_script(
        importlib.import_module("migrations.0047_delivery_port_signed_from_log").BACKFILL
    )
    signed = {d.id: d.signed_by_port for d in await Delivery.all()}
    assert signed == {made["id"]: True, crews.json()["id"]: False}


@pytest.mark.parametrize(
    ("decided_by", "outcome", "split", "port_signed", "expected"),
    [
        (None, None, False, False, Acceptance.pending),
        (None, None, False, True, Acceptance.accepted),
        ("received", "accepted", False, False, Acceptance.accepted),
        ("treated", None, False, False, Acceptance.accepted),
        ("received", "partially_accepted", True, True, Acceptance.partially_accepted),
        # A partial acceptance corrected to a whole one leaves no refused part.
        ("received", "partially_accepted", False, False, Acceptance.accepted),
        ("treated", None, True, False, Acceptance.partially_accepted),
        ("received", "rejected", False, True, Acceptance.rejected),
    ],
)
def test_a_lines_acceptance_follows_its_latest_receipt(
    decided_by: str | None, outcome: str | None, split: bool, port_signed: bool, expected: str
) -> None:
    found = acceptance(decided_by=decided_by, outcome=outcome, split=split, port_signed=port_signed)
    assert found == expected


def _receipt(**changes: Any) -> ReceiptText:
    """A vessel-declared receipt of one line, with long names, changed as given."""
    when = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    line = ReceiptLine(
        category_code="A",
        category_name_zh="塑料",
        category_name_en="Plastics",
        volume_m3=None,
        mass_kg=Decimal("30"),
        mass_derived=False,
        batch_code="ABCDEFGHJ",
        acceptance="partially_accepted",
        acceptance_zh="部分接收",
    )
    receipt = ReceiptText(
        number="R-1",
        url="http://testserver/r/R-1.1ABCDEFGH",
        port_name="石岛中心渔港",
        berth_name="一号泊位",
        reception_provider="荣成市石岛湾船舶污染物接收转运处置服务有限公司第二分公司",
        discharge_from=when,
        discharge_to=when,
        ship_name="鲁荣渔 12345",
        registration_number="370000000000",
        imo_number=None,
        gross_tonnage=Decimal("120"),
        ship_type="渔船",
        owner="荣成市某某远洋渔业股份有限公司石岛分公司",
        flag_state="中国",
        lines=[line],
        flags=[],
        recorded_by="crew",
        signed_by_port=False,
        recorded_at=when,
        timezone="Asia/Shanghai",
    )
    return dataclasses.replace(receipt, **changes)


def test_long_texts_wrap_within_the_page() -> None:
    """A provider's long name wraps, and the notice that the vessel declared the delivery stays
    on the paper (each text drawn starts and, at the font's widest, ends within the page)."""
    receipt = _receipt()
    page = pypdf.PdfReader(io.BytesIO(render_receipt_pdf(receipt))).pages[0]
    right = float(page.mediabox.width)
    drawn: list[tuple[float, str]] = []

    def seen(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
            # at the font's widest: a CJK glyph is one em, a Latin one at most 0.6 em
            ems = sum(1.0 if ord(c) >= 0x2E80 else 0.6 for c in text)
            drawn.append((x + ems * size * max(tm[0], 1) * cm[0], text))

    text = page.extract_text(visitor_text=seen)
    assert "未经接收单位签字" in "".join(text.split())
    assert drawn and all(end <= right for end, _ in drawn), [d for d in drawn if d[0] > right]


# A berth's name takes up to 64 characters (schemas.ports.BerthCreate); this has 32.
LONG_BERTH = "石岛新港区第三作业区船舶垃圾污染物接收转运专用泊位北侧一号至三号"


def _qr_box(page: Any) -> tuple[float, float, float, float]:
    """The rectangle (x0, y0, x1, y1, in pt) the page draws its one image, the QR, into."""
    stream = ContentStream(page.get_contents(), page.pdf)
    matrix = None
    for operands, operator in stream.operations:
        if operator == b"cm":
            matrix = [float(v) for v in operands]
        if operator == b"Do":
            assert matrix is not None
            a, _, _, d, e, f = matrix
            return e, f, e + a, f + d
    raise AssertionError("no image on the page")


def test_a_long_berth_name_wraps_short_of_the_receipts_qr() -> None:
    """The first row (port · berth) starts beside the QR (x 165-197 mm, y 10-42 mm): a name of
    more than ~29 hanzi without a space ran to the right margin across the QR's lower module
    rows, and the printed receipt's QR no longer scanned (rasterised by poppler, zxing read
    nothing). It wraps short of the QR, and the QR decodes to the record."""
    pdf = render_receipt_pdf(_receipt(berth_name=LONG_BERTH))
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    x0, y0, x1, y1 = _qr_box(page)
    over: list[str] = []

    def seen(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if not text.strip():
            return
        scale = size * max(tm[0], 1) * cm[0]
        left = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
        base = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]
        x = left
        for char in text:
            width = (1.0 if ord(char) >= 0x2E80 else 0.5) * scale
            # the glyph's ink box: from a little under the baseline to about 0.85 em above
            if not char.isspace() and x < x1 and x + width > x0:
                if base - 0.12 * scale < y1 and base + 0.85 * scale > y0:
                    over.append(char)
            x += width

    page.extract_text(visitor_text=seen)
    assert over == [], f"text drawn over the QR: {''.join(over)!r}"
    assert LONG_BERTH in "".join(page.extract_text().split())  # all of it, wrapped
    (picture,) = page.images
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(picture.data)))]
    assert decoded == [_receipt().url]


async def test_a_line_packed_into_a_load_follows_the_loads_receipts_and_its_own_until_then(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """A line the plant rejected and the port took back is packed into the port's own load (a
    line of a vessel without an owner): until a receipt decides on the load, the line's latest
    receipt is still its own rejection (it read accepted, the port's signature). Once a
    receipt decides on the load, its lines follow it, as their fate does in the figures (a
    line packed into a load refused before is refused with it until the load's next receipt).
    Once the plant accepts the load, both lines are accepted: on the read, the receipt and its
    public check alike."""
    ownerless = await vessels.create_vessel(
        name="鲁荣渔50001",
        registration_number="371082200009",
        gross_tonnage=Decimal(60),
        home_port_id=world.orgs["port"].id,
    )
    await arrive(client, world, harbour.small)
    made = []
    for vessel in (harbour.small, harbour.small, ownerless):
        response = await deliver(client, world, delivery(harbour, vessel, KG_LINE))
        assert response.status_code == 201, response.text
        made.append(response.json())
    refused, fresh = made[:2]
    refused_code, fresh_code, load_code = (d["lines"][0]["batch_code"] for d in made)
    plant = world.orgs["plant"].id

    async def record(*steps: tuple[str, dict]) -> None:
        for who, step in steps:
            response = await post_event(client, world, who, step)
            assert response.status_code == 201, response.text

    async def standing() -> list[str]:
        found = []
        for one in (refused, fresh):
            read = await client.get(f"/m/v1/deliveries/{one['id']}", headers=world.headers("port"))
            checked = await public_check(client, one)
            assert read.json()["lines"][0]["acceptance"] == checked["lines"][0]["acceptance"]
            found.append(read.json()["lines"][0]["acceptance"])
        return found

    def sent_back(code: str, at: int) -> list[tuple[str, dict]]:
        """To the plant, which rejects it, and back with the port."""
        return [
            ("port", event("in_transit", code, minutes=at, destination_organization_id=plant)),
            ("plant", event("received", code, minutes=at + 5, outcome="rejected", reason="混杂")),
            ("port", event("in_transit", code, minutes=at + 10)),
        ]

    await record(*sent_back(refused_code, 0))
    assert await standing() == ["rejected", "accepted"]
    await record(("port", event("aggregated", load_code, minutes=20, children=[refused_code])))
    assert await standing() == ["rejected", "accepted"]
    assert "rejected" in await receipt_text(client, world, refused["id"])
    await record(*sent_back(load_code, 30))
    await record(("port", event("aggregated", load_code, minutes=50, children=[fresh_code])))
    assert await standing() == ["rejected", "rejected"]
    # The load goes to the plant again, which accepts it: its lines follow it.
    await record(
        ("port", event("in_transit", load_code, minutes=60, destination_organization_id=plant)),
        ("plant", event("received", load_code, minutes=65, outcome="accepted", weight_kg="90")),
    )
    assert await standing() == ["accepted", "accepted"]
    assert "rejected" not in await receipt_text(client, world, refused["id"])
