"""A producer without an account confirms a handover with a one-time PIN from its printed list."""

import asyncio
import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pypdf
import pytest

from tests.factories import CITY_TODAY, World, event, medical_bag
from wastetrack.batches.labels import PinPage, render_pin_list_pdf
from wastetrack.batches.models import Batch
from wastetrack.cosign import service as cosign
from wastetrack.cosign.models import PinList, PinUse
from wastetrack.custody.models import CustodyEvent
from wastetrack.registry import agreements
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind


@pytest.fixture
async def farm_clinic(world: World) -> Organization:
    """A village clinic with no user account, served by the carrier."""
    clinic = await registry.create_organization(
        name="西村卫生室",
        kind=OrganizationKind.clinic,
        region_id=world.regions["village"].id,
        bed_count=0,
    )
    await agreements.create_service_agreement(
        provider_organization_id=world.orgs["carrier"].id,
        client_organization_id=clinic.id,
        streams=["medical"],
        valid_from=CITY_TODAY - timedelta(days=30),
    )
    return clinic


async def issue(client: httpx.AsyncClient, world: World, who: str, org_id: int) -> httpx.Response:
    return await client.post(f"/m/v1/organizations/{org_id}/pins", headers=world.headers(who))


def printed_codes(pdf: bytes) -> list[str]:
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    return re.findall(r"(?<!\d)\d{6}(?!\d)", text)


async def tag(client: httpx.AsyncClient, world: World, clinic: Organization) -> str:
    body = medical_bag(producer_organization_id=clinic.id)
    body.pop("event_type")
    made = await client.post("/m/v1/batches", json=body, headers=world.headers("carrier"))
    assert made.status_code == 201, made.text
    return str(made.json()["code"])


async def collect(
    client: httpx.AsyncClient, world: World, code: str, pin: str | None, minutes: int = 30
) -> httpx.Response:
    fields = {} if pin is None else {"producer_pin": pin}
    body = event("collected", code, minutes=minutes, **fields)
    return await client.post("/m/v1/events", json=body, headers=world.headers("carrier"))


async def test_the_pin_list_pdf_prints_the_producers_current_codes(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    refused = await issue(client, world, "carrier", farm_clinic.id)
    assert refused.status_code == 403, refused.text
    issued = await issue(client, world, "manager", farm_clinic.id)
    assert issued.status_code == 201, issued.text
    assert issued.headers["content-type"] == "application/pdf"
    assert (issued.headers["X-Pin-List"], issued.headers["X-Pin-Count"]) == ("1", "40")
    pin_list = await PinList.get(organization_id=farm_clinic.id)
    codes = cosign.list_codes(secret=world.settings.secret_key, pin_list=pin_list)
    assert printed_codes(issued.content) == codes
    assert len(set(codes)) == 40


async def test_a_collection_with_the_right_pin_is_confirmed_on_the_event(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    code = await tag(client, world, farm_clinic)
    missing = await collect(client, world, code, None)
    assert (missing.status_code, missing.json()["field"]) == (422, "producer_pin")
    done = await collect(client, world, code, codes[4])
    assert done.status_code == 201, done.text
    events = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("carrier"))
    collected = events.json()[-1]
    assert collected["event_type"] == "collected"
    assert collected["details"]["producer_confirmed"] == "pin"
    assert collected["details"]["producer_pin"] == "1/5"
    assert codes[4] not in str(collected["details"])


async def test_a_wrong_or_spent_pin_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    first, second = await tag(client, world, farm_clinic), await tag(client, world, farm_clinic)
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in codes)
    refused = await collect(client, world, first, wrong)
    assert (refused.status_code, refused.json()["field"]) == (422, "producer_pin")
    assert (await collect(client, world, first, codes[0])).status_code == 201
    # The same code an hour later, for another handover: spent.
    spent = await collect(client, world, second, codes[0], minutes=95)
    assert (spent.status_code, spent.json()["field"]) == (422, "producer_pin")
    assert "used already" in spent.json()["detail"]
    assert (await Batch.get(code=second)).state == "tagged"
    assert await CustodyEvent.filter(batch__code=second).count() == 1
    assert await PinUse.all().count() == 1


async def test_a_new_list_revokes_the_old_one(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    old = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    new = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    code = await tag(client, world, farm_clinic)
    stale = old[0] if old[0] not in new else old[1]
    refused = await collect(client, world, code, stale)
    assert (refused.status_code, refused.json()["field"]) == (422, "producer_pin")
    assert (await collect(client, world, code, new[0])).status_code == 201


async def test_pins_lock_after_repeated_wrong_attempts(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    code = await tag(client, world, farm_clinic)
    wrong = [f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in codes][:5]
    for pin in wrong:
        assert (await collect(client, world, code, pin)).status_code == 422
    locked = await collect(client, world, code, codes[0])
    assert (locked.status_code, locked.json()["field"]) == (429, "producer_pin")
    assert "Retry-After" in locked.headers
    assert (await Batch.get(code=code)).state == "tagged"


async def test_a_wrong_pin_resent_is_one_guess(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """A record resent (its answer lost, or retried alone after its flush failed) is judged
    again but guesses nothing more: the limit (5 an hour here) counts what was typed."""
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    code = await tag(client, world, farm_clinic)
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in codes)
    body = event("collected", code, minutes=30, producer_pin=wrong)
    for _ in range(6):
        sent = await client.post("/m/v1/events", json=body, headers=world.headers("carrier"))
        assert (sent.status_code, sent.json()["field"]) == (422, "producer_pin"), sent.text
    confirmed = await collect(client, world, code, codes[0])
    assert confirmed.status_code == 201, confirmed.text


async def test_concurrent_wrong_pins_count_against_the_limit_in_turn(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """Guesses sent at once (parallel syncs, several workers) are checked one after another:
    no more of them are judged than the limit allows (5 an hour here)."""
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    bags = [await tag(client, world, farm_clinic) for _ in range(10)]
    wrong = [f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in codes][:10]
    syncs = [
        {"events": [event("collected", bag, minutes=30, producer_pin=pin)]}
        for bag, pin in zip(bags, wrong, strict=True)
    ]
    answers = await asyncio.gather(
        *(client.post("/m/v1/sync", json=body, headers=world.headers("carrier")) for body in syncs)
    )
    errors = [answer.json()["results"][0]["error"] for answer in answers]
    assert (
        sorted(error["code"] for error in errors)
        == ["too_many_requests"] * 5 + ["validation_failed"] * 5
    ), errors


async def test_a_producer_with_its_own_users_may_hand_over_without_a_pin(
    client: httpx.AsyncClient, world: World
) -> None:
    body = medical_bag(carrier_organization_id=world.orgs["carrier"].id)
    body.pop("event_type")
    made = await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))
    code = made.json()["code"]
    done = await collect(client, world, code, None)
    assert done.status_code == 201, done.text
    events = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("carrier"))
    assert "producer_confirmed" not in events.json()[-1]["details"]


async def test_an_api_key_of_the_producer_is_not_a_user_who_could_confirm(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """An API key acts as a service user of its organization: a BI tool's read-only key (or
    any key) given to a clinic without staff accounts leaves its PINs required."""
    assert (await issue(client, world, "manager", farm_clinic.id)).status_code == 201
    code = await tag(client, world, farm_clinic)
    for scopes in (["read"], ["read", "events"]):
        key = await client.post(
            "/m/v1/api-keys",
            headers=world.headers("admin"),
            json={"name": "BI", "scopes": scopes, "organization_id": farm_clinic.id},
        )
        assert key.status_code == 201, key.text
        refused = await collect(client, world, code, None)
        assert (refused.status_code, refused.json()["field"]) == (422, "producer_pin")
    assert (await Batch.get(code=code)).state == "tagged"


def test_codes_depend_on_the_producer_and_the_list() -> None:
    secret = "pin-test-secret-" + "y" * 40
    lists = [
        PinList(
            organization_id=org, serial=serial, key_version=1, size=10, issued_at=datetime.now(UTC)
        )
        for org, serial in ((1, 1), (2, 1), (1, 2))
    ]
    codes = [cosign.list_codes(secret=secret, pin_list=pin_list) for pin_list in lists]
    assert codes[0] == cosign.list_codes(secret=secret, pin_list=lists[0])
    assert codes[0] != codes[1] and codes[0] != codes[2]


async def test_one_pin_confirms_every_bag_the_carrier_takes_on_the_same_visit(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    bags = [await tag(client, world, farm_clinic) for _ in range(2)]
    synced = await client.post(
        "/m/v1/sync",
        json={
            "events": [
                event("collected", bag, minutes=30 + i, producer_pin=codes[0])
                for i, bag in enumerate(bags)
            ]
        },
        headers=world.headers("carrier"),
    )
    assert synced.status_code == 200, synced.text
    assert synced.json()["applied"] == 2
    assert {b.state for b in await Batch.filter(code__in=bags)} == {"collected"}


async def test_a_visit_spans_30_minutes_either_way_of_the_bag_that_spent_its_pin(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """A visit's bags reach the server in any order: the one synced first spends the code, a
    bag collected 25 minutes before it still confirms, one 35 minutes after it does not."""
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    spent, before, after = [await tag(client, world, farm_clinic) for _ in range(3)]
    assert (await collect(client, world, spent, codes[0], minutes=60)).status_code == 201
    assert (await collect(client, world, before, codes[0], minutes=35)).status_code == 201
    late = await collect(client, world, after, codes[0], minutes=95)
    assert (late.status_code, late.json()["field"]) == (422, "producer_pin")
    assert (await Batch.get(code=after)).state == "tagged"


async def test_a_visits_pin_replayed_days_later_under_a_clock_set_back_is_refused(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """The carrier heard PIN #1 on Monday's visit; on Wednesday it dates a new bag's collection
    to Monday, five minutes after the first: by the phone's clock the same visit, by the
    server's two days later. Refused as spent; the same code minutes after it was spent (the
    visit's next bag) still confirms."""
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    first, second, later = [await tag(client, world, farm_clinic) for _ in range(3)]
    assert (await collect(client, world, first, codes[0])).status_code == 201
    assert (await collect(client, world, second, codes[0], minutes=32)).status_code == 201
    await PinUse.all().update(used_at=datetime.now(UTC) - timedelta(days=2))
    replayed = await collect(client, world, later, codes[0], minutes=35)
    assert (replayed.status_code, replayed.json()["field"]) == (422, "producer_pin")
    assert "used already" in replayed.json()["detail"]
    assert (await Batch.get(code=later)).state == "tagged"
    # Its own user's late records guess nothing: they do not use up the producer's tries.
    for _ in range(6):
        again = await collect(client, world, later, codes[0], minutes=35)
        assert again.status_code == 422, again.text
    # A bag of the visit recorded offline and synced hours later still confirms.
    await PinUse.all().update(used_at=datetime.now(UTC) - timedelta(hours=3))
    synced = await collect(client, world, later, codes[0], minutes=35)
    assert synced.status_code == 201, synced.text


async def test_a_pin_confirms_a_collection_and_never_a_handover(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """A handover is recorded by the party giving the batch: from the producer's hands it is
    the producer's own record, and a PIN sent with one is refused naming it."""
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    code = await tag(client, world, farm_clinic)
    assert (await collect(client, world, code, codes[0])).status_code == 201
    handover = event(
        "handed_over",
        code,
        minutes=40,
        to_organization_id=world.orgs["facility"].id,
        producer_pin=codes[1],
    )
    refused = await client.post("/m/v1/events", json=handover, headers=world.headers("carrier"))
    assert (refused.status_code, refused.json()["field"]) == (422, "producer_pin")
    assert "collection" in refused.json()["detail"]
    assert (await Batch.get(code=code)).state == "collected"


async def test_label_stock_for_a_producer_without_users_ends_with_a_new_pin_list(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    old = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    sheet = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": farm_clinic.id, "stream": "medical", "count": 3},
    )
    assert sheet.status_code == 201, sheet.text
    reader = pypdf.PdfReader(io.BytesIO(sheet.content))
    assert len(reader.pages) == 2  # the labels, then the PIN list
    current = await PinList.get(organization_id=farm_clinic.id, revoked_at=None)
    assert current.serial == 2
    new = cosign.list_codes(secret=world.settings.secret_key, pin_list=current)
    assert printed_codes(sheet.content) == new
    code = await tag(client, world, farm_clinic)
    stale = next(pin for pin in old if pin not in new)
    assert (await collect(client, world, code, stale)).status_code == 422
    assert (await collect(client, world, code, new[0])).status_code == 201


async def test_a_pin_in_other_than_ascii_digits_is_refused_naming_it(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """Full-width digits (１２３４５６) are no PIN: refused as the field's form, never a 500."""
    codes = printed_codes((await issue(client, world, "manager", farm_clinic.id)).content)
    code = await tag(client, world, farm_clinic)
    full_width = codes[0].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    refused = await collect(client, world, code, full_width)
    assert (refused.status_code, refused.json()["field"]) == (422, "producer_pin")
    assert await PinUse.all().count() == 0
    assert (await Batch.get(code=code)).state == "tagged"


async def test_an_organization_outside_yours_is_not_found_like_one_that_does_not_exist(
    client: httpx.AsyncClient, world: World
) -> None:
    """PINs and label stock for an organization the caller may not read: the same 404 as for
    an id no organization has, so ids reveal nothing."""
    missing = max(org.id for org in world.orgs.values()) + 1000
    for who, path, body in (
        ("clinic", "/m/v1/organizations/{}/pins", None),
        ("town_manager", "/m/v1/organizations/{}/pins", None),
        ("town_manager", "/m/v1/labels", {"stream": "medical", "count": 1}),
    ):
        answers = []
        for org_id in (world.orgs["community"].id, missing):
            url = path.format(org_id)
            json = {**body, "organization_id": org_id} if body else None
            answer = await client.post(url, json=json, headers=world.headers(who))
            answers.append((answer.status_code, answer.json()["field"]))
        assert answers == [(404, "organization_id")] * 2, (who, path, answers)


def test_a_long_producer_name_is_printed_whole_within_the_page() -> None:
    """An organization's name takes up to 128 characters; one line at 11 pt holds about 46
    hanzi, and the rest ran past the page's edge. It shrinks, then wraps onto two lines."""
    name = "荣成市石岛管理区" + "某某镇卫生院第二分院" * 12
    assert len(name) == 128
    pdf = render_pin_list_pdf(PinPage(name, 1, ["123456"] * 40, date(2026, 3, 3)))
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    right = float(page.mediabox.width)
    ends: list[float] = []

    def seen(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
            ems = sum(1.0 if ord(c) >= 0x2E80 else 0.6 for c in text)
            ends.append(x + ems * size * max(tm[0], 1) * cm[0])

    text = page.extract_text(visitor_text=seen)
    assert name in "".join(text.split())
    assert ends and max(ends) <= right, max(ends)
    assert printed_codes(pdf) == ["123456"] * 40


def _runs(pdf: bytes) -> list[tuple[str, float]]:
    """Each text run of a PIN page and its baseline, in mm from the top."""
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    top = float(page.mediabox.height)
    lines: list[tuple[str, float]] = []

    def seen(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            lines.append((text.strip(), (top - (tm[5] * cm[3] + cm[5])) * 25.4 / 72))

    page.extract_text(visitor_text=seen)
    return lines


def test_a_name_just_short_of_the_cells_width_is_printed_on_one_line_above_the_number() -> None:
    """46 hanzi at 11 pt measure 178.5 mm: within 180 mm, but a 180 mm cell holds 178 mm of
    text (its margins), so the last one wrapped to a second 6 mm line, over the number."""
    name = (
        "荣成市石岛管理区海洋与渔业综合服务中心"
        "医疗废物暂存点及港口船舶污染物接收转运处置有限责任公司"
    )
    assert len(name) == 46
    lines = _runs(render_pin_list_pdf(PinPage(name, 1, ["123456"] * 4, date(2026, 3, 3))))
    number = next(y for text, y in lines if text.startswith("No. 1"))
    of_name = [y for text, y in lines if text in name]
    assert len(of_name) == 1 and of_name[0] <= number - 4, lines


@pytest.mark.parametrize("letter", ["\u0958", "\ufb2c"])
def test_a_name_printed_longer_than_written_still_stays_above_the_number(letter: str) -> None:
    """Some letters print as two or three characters (NFC decomposes U+0958 into क and a
    nukta): 128 of them took four to six lines at 7 pt, over the number. Smaller still, the
    name keeps to two lines."""
    lines = _runs(render_pin_list_pdf(PinPage(letter * 128, 1, ["1"] * 4, date(2026, 3, 3))))
    number = next(y for text, y in lines if text.startswith("No. 1"))
    of_name = [y for text, y in lines if set(text) <= {"□"}]
    assert of_name and max(of_name) <= number - 4, (number, of_name)


@pytest.mark.parametrize("name", ["\ufb2c" * 128, "荣成" * 64])
def test_the_lists_number_keeps_its_size_whatever_the_name(name: str) -> None:
    """The number tells a producer which list is current: it was printed at the size the name
    was shrunk to (2.5 pt for 128 letters NFC decomposes into three)."""

    def number_size(name: str) -> float:
        pdf = render_pin_list_pdf(PinPage(name, 1, ["123456"] * 4, date(2026, 3, 3)))
        sizes: list[float] = []

        def seen(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
            if text.strip().startswith("No. 1"):
                sizes.append(size * (tm[0] or 1))

        pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=seen)
        (printed,) = sizes
        return printed

    assert number_size(name) == number_size("西村卫生室")


def test_a_long_name_broken_at_its_spaces_stays_on_two_lines_above_the_number() -> None:
    """128 characters in three words of 42: broken at its spaces, the name took three lines at
    7 pt, the third over the list's number. Two lines hold it broken anywhere."""
    name = "荣" * 42 + " " + "成" * 42 + " " + "丰" * 42
    pdf = render_pin_list_pdf(PinPage(name, 1, ["123456"] * 4, date(2026, 3, 3)))
    lines = _runs(pdf)
    number = next(y for text, y in lines if text.startswith("No. 1"))
    of_name = [y for text, y in lines if text[0] in "荣成丰"]
    assert len(of_name) == 2 and max(of_name) <= number - 4, lines
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "".join(name.split()) in "".join(text.split())


def test_a_name_holding_line_breaks_is_printed_above_the_lists_number() -> None:
    """A name may hold line breaks (the registry keeps them); each printed a line of its own,
    running over the list's number and the instructions placed below the name."""
    name = "西村卫生室\n东院\r\n二号楼\n门诊部"
    pdf = render_pin_list_pdf(PinPage(name, 1, ["123456"] * 4, date(2026, 3, 3)))
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    top = float(page.mediabox.height)
    lines: list[tuple[str, float]] = []  # each text run and its baseline, in mm from the top

    def seen(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            lines.append((text.strip(), (top - (tm[5] * cm[3] + cm[5])) * 25.4 / 72))

    page.extract_text(visitor_text=seen)
    number = next(y for text, y in lines if text.startswith("No. 1"))
    of_name = [y for text, y in lines if any(part in text for part in ("东院", "门诊部"))]
    assert of_name and max(of_name) <= number - 4, lines
    assert "西村卫生室 东院 二号楼 门诊部" in page.extract_text()


async def test_two_label_sheets_at_once_for_a_pin_producer_both_print_a_list(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """Two managers print medical label stock at once for a clinic that confirms handovers by
    PIN (it has a list already). `cosign._new_list` locks the producer's last list so that two
    issues "must not both see the same last serial"; they both do, and one is refused."""
    assert (await issue(client, world, "manager", farm_clinic.id)).status_code == 201
    body = {"organization_id": farm_clinic.id, "stream": "medical", "count": 3}
    answers = await asyncio.gather(
        *(
            client.post("/m/v1/labels", headers=world.headers(who), json=body)
            for who in ("manager", "admin")
        )
    )
    refused = [a.json() for a in answers if a.status_code != 201]
    assert [a.status_code for a in answers] == [201, 201], refused
    lists = await PinList.filter(organization_id=farm_clinic.id).order_by("serial")
    assert [(p.serial, p.revoked_at is None) for p in lists] == [(1, False), (2, False), (3, True)]


async def test_a_producers_first_two_pin_lists_issued_at_once_both_print(
    client: httpx.AsyncClient, world: World, farm_clinic: Organization
) -> None:
    """The same race on a producer's first list: there is no row to lock at all."""
    answers = await asyncio.gather(
        *(issue(client, world, who, farm_clinic.id) for who in ("manager", "admin"))
    )
    refused = [a.json() for a in answers if a.status_code != 201]
    assert [a.status_code for a in answers] == [201, 201], refused
    lists = await PinList.filter(organization_id=farm_clinic.id).order_by("serial")
    assert [(p.serial, p.revoked_at is None) for p in lists] == [(1, False), (2, True)]
