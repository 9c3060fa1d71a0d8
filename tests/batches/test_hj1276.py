"""HJ 1276-2022: the 数字识别码 of hazardous-waste batches (format, numbering under concurrent
tagging, lookup) and the label as the standard draws it, decoded by an independent reader."""

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pypdf
import pytest
import zxingcpp
from PIL import Image
from tortoise import connections

from tests.custody.helpers import as_superuser_without_triggers, tag_bag
from tests.dashboard.test_pages import login
from tests.factories import World, event, make_user, medical_bag
from wastetrack.auth.models import Role
from wastetrack.batches import identifiers
from wastetrack.batches.hj1276 import (
    HJ1276_SIZES,
    HazardousLabelText,
    LabelSize,
    render_hj1276_png,
)
from wastetrack.batches.models import Batch, Label
from wastetrack.core import codes
from wastetrack.core.settings import get_settings
from wastetrack.custody.models import CustodyEvent
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

# GB 32100-2015's own worked example, with its correct check character.
CREDIT_CODE = "91350100M000100Y43"
DPI = 300


def px(mm: float) -> int:
    return round(mm / 25.4 * DPI)


@pytest.fixture
async def maker(world: World) -> str:
    """A shipyard with a credit code, able to tag its own hazardous waste."""
    org = await registry.create_organization(
        name="荣成某船舶修造公司",
        kind=OrganizationKind.enterprise,
        region_id=world.regions["city"].id,
        credit_code=CREDIT_CODE,
        contact_phone="0631-7561234",
    )
    world.orgs["maker"] = org
    await make_user(world, "maker", Role.generator, org)
    return "maker"


def drum(**fields: object) -> dict:
    values = {
        "stream": "hazardous",
        "category": "hw.08",
        "waste_code": "900-249-08",
        "hazard": ["T", "I"],
        "quantity": "180",
    }
    body = medical_bag(**{**values, **fields})
    body.pop("event_type")
    return body


async def tag(client: httpx.AsyncClient, world: World, who: str, **fields: object) -> dict:
    made = await client.post("/m/v1/batches", json=drum(**fields), headers=world.headers(who))
    assert made.status_code == 201, made.text
    return made.json()


def city_day(value: str) -> str:
    when = datetime.fromisoformat(value).astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{when:%Y%m%d}"


async def test_identifier_has_four_segments_and_37_characters(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    # 23:30 UTC is the next morning in Rongcheng: the date segment is the city's day.
    late = (datetime.now(UTC) - timedelta(days=1)).replace(hour=23, minute=30)
    first = await tag(client, world, maker, device_time=late.isoformat())
    second = await tag(client, world, maker, device_time=late.isoformat())
    other_code = await tag(client, world, maker, waste_code="900-214-08")
    day = f"{late.astimezone(ZoneInfo('Asia/Shanghai')):%Y%m%d}"
    assert day != f"{late:%Y%m%d}"
    assert first["identifier"] == f"{CREDIT_CODE}90024908{day}001"
    assert second["identifier"] == f"{CREDIT_CODE}90024908{day}002"
    assert len(first["identifier"]) == identifiers.LENGTH == 37
    assert identifiers.segments(first["identifier"]) == (CREDIT_CODE, "90024908", day, "001")
    # Another waste code counts from 001 again.
    assert other_code["identifier"].endswith("001")
    assert other_code["identifier"][18:26] == "90021408"


async def test_concurrent_taggings_never_share_an_identifier(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    made = await asyncio.gather(
        *(
            client.post("/m/v1/batches", json=drum(device_time=when), headers=world.headers(maker))
            for _ in range(8)
        )
    )
    assert [response.status_code for response in made] == [201] * 8, [r.text for r in made]
    numbers = sorted(response.json()["identifier"][-3:] for response in made)
    assert numbers == [f"{n:03d}" for n in range(1, 9)]
    stored = await Batch.filter(identifier__isnull=False).values_list("identifier", flat=True)
    assert len(set(stored)) == len(stored) == 8


async def test_a_full_day_refuses_its_own_tagging_not_the_sync_it_came_in(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    """HJ 1276 numbers 999 batches per unit, waste code and day. The 1000th tagging is refused
    on its own (409 naming waste_code, alone or as its entry of a sync), and the sync's other
    entries are recorded: a phone's backlog is never stuck on it."""
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    full = f"{CREDIT_CODE}90024908{city_day(when)}"
    await connections.get("default").execute_query(
        "INSERT INTO identifier_sequence (prefix, last_number) VALUES ($1, 998)", [full]
    )
    entries = [
        drum(device_time=when) | {"event_type": "tagged"},
        drum(device_time=when) | {"event_type": "tagged"},
        drum(device_time=when, waste_code="900-214-08") | {"event_type": "tagged"},
    ]
    synced = await client.post("/m/v1/sync", json={"events": entries}, headers=world.headers(maker))
    assert synced.status_code == 200, synced.text
    results = synced.json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "applied"], results
    assert results[1]["error"]["field"] == "waste_code"
    assert "999" in results[1]["error"]["detail"]
    stored = await Batch.filter(identifier__isnull=False).values_list("identifier", flat=True)
    assert set(stored) == {f"{full}999", f"{CREDIT_CODE}90021408{city_day(when)}001"}
    alone = await client.post(
        "/m/v1/batches", json=drum(device_time=when), headers=world.headers(maker)
    )
    assert (alone.status_code, alone.json()["field"]) == (409, "waste_code")
    assert await Batch.all().count() == 2


async def test_non_hazardous_and_uncoded_producers_get_no_identifier(
    client: httpx.AsyncClient, world: World, maker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = await tag_bag(client, world)
    assert bag["identifier"] is None
    # A producer without a credit code: tagged without one by default ...
    plant = await registry.create_organization(
        name="无代码企业", kind=OrganizationKind.enterprise, region_id=world.regions["city"].id
    )
    await make_user(world, "uncoded", Role.generator, plant)
    assert (await tag(client, world, "uncoded"))["identifier"] is None
    # ... and refused when the city requires the code.
    monkeypatch.setattr(get_settings(), "hj1276_require_credit_code", True)
    refused = await client.post("/m/v1/batches", json=drum(), headers=world.headers("uncoded"))
    assert refused.status_code == 422
    assert refused.json()["field"] == "producer_organization_id"
    assert (await tag(client, world, maker))["identifier"] is not None


async def test_scan_and_lookup_accept_the_identifier(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    made = await tag(client, world, maker)
    identifier = made["identifier"]
    typed = identifiers.spaced(identifier).lower()  # as a person would type it off the label
    for qr in (identifier, typed):
        scanned = await client.get("/m/v1/scan", params={"qr": qr}, headers=world.headers(maker))
        assert scanned.status_code == 200, scanned.text
        assert (scanned.json()["kind"], scanned.json()["batch"]["code"]) == ("batch", made["code"])
    found = await client.get(f"/m/v1/batches/{identifier}", headers=world.headers(maker))
    assert found.json()["code"] == made["code"]
    # Scanned with a scanner's group separator (GS) between the segments, on every route that
    # names a batch by its code.
    scanned = "%1D".join(identifiers.segments(identifier))
    for view in ("", "/events", "/verify", "/fate", "/epcis.jsonld", "/trajectory", "/label.png"):
        got = await client.get(f"/m/v1/batches/{scanned}{view}", headers=world.headers(maker))
        assert got.status_code == 200, (view, got.text)
    # The code typed off the label as it prints it, in any case, is the same batch; a code
    # whose check fails is no batch.
    printed = codes.printed(made["code"])
    for typed_code in (printed, printed.lower()):
        found = await client.get(f"/m/v1/batches/{typed_code}", headers=world.headers(maker))
        assert found.json()["code"] == made["code"]
        trace = await client.get(f"/m/v1/batches/{typed_code}/events", headers=world.headers(maker))
        assert trace.status_code == 200, trace.text
    wrong = made["code"][:-1] + ("A" if made["code"][-1] != "A" else "B")
    missing = await client.get(f"/m/v1/batches/{wrong}", headers=world.headers(maker))
    assert (missing.status_code, missing.json()["field"]) == (404, "code")
    # An unknown identifier, and a known one the user may not see, answer as an unknown code.
    unknown = identifier[:-3] + "999"
    answers = [
        await client.get("/m/v1/scan", params={"qr": unknown}, headers=world.headers(maker)),
        await client.get("/m/v1/scan", params={"qr": identifier}, headers=world.headers("clinic")),
        await client.get("/m/v1/scan", params={"qr": "ZZZZZZZZZ"}, headers=world.headers(maker)),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.json()["detail"] for a in answers}) == 1
    # The dashboard's trace page names it as the API does, a scanner's GS too.
    await login(client, "manager")
    gs = "\x1d".join(identifiers.segments(identifier))
    page = await client.get("/dashboard/batches", params={"code": gs})
    assert page.status_code == 200 and made["code"] in page.text, page.text


async def test_records_and_manifests_take_the_identifier_as_scanned(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    """A phone sends what it scanned: an HJ 1276 label's identifier names the batch in a
    record and in a manifest as the label's QR code does."""
    first, second, third = [await tag(client, world, maker) for _ in range(3)]
    # A scanner may put its group separator (GS) between the segments.
    scanned = "\x1d".join(identifiers.segments(first["identifier"]))
    unknown = first["identifier"][:-3] + "999"
    entries = [
        event("cancelled", scanned, reason="贴错标签"),
        event("cancelled", unknown, reason="贴错标签"),
    ]
    synced = await client.post("/m/v1/sync", json={"events": entries}, headers=world.headers(maker))
    assert synced.status_code == 200, synced.text
    applied, refused = synced.json()["results"]
    assert (applied["status"], applied["batch_code"], applied["state"]) == (
        "applied",
        first["code"],
        "cancelled",
    )
    assert (refused["status"], refused["error"]["field"]) == ("rejected", "batch")
    # Another organization's batch answers as an unknown one.
    theirs = event("cancelled", second["identifier"], reason="贴错标签")
    other = await client.post("/m/v1/events", json=theirs, headers=world.headers("clinic"))
    assert (other.status_code, other.json()["field"]) == (404, "batch"), other.text

    plant = await registry.create_organization(
        name="危废处置中心",
        kind=OrganizationKind.treatment_facility,
        region_id=world.regions["city"].id,
    )
    await registry.add_licence(organization_id=plant.id, category_key="hw.08", method_codes=["R9"])
    body = {
        "category": "hw.08",
        "waste_code": "900-249-08",
        "waste_name": "废机油",
        "hazard": ["T", "I"],
        "physical_form": "液态",
        "packaging": "200L铁桶×2",
        "quantity_kg": "360",
        "emergency_measures": "泄漏时用吸油毡围堵，禁止明火",
        "batches": ["\x1d".join(identifiers.segments(second["identifier"])), third["code"]],
        "receiver_organization_id": plant.id,
        "legs": [
            {
                "carrier_organization_id": world.orgs["carrier"].id,
                "vehicle_plate": "鲁K12345",
                "permit_number": "鲁危运001",
            }
        ],
    }
    drafted = await client.post("/m/v1/manifests", json=body, headers=world.headers(maker))
    assert drafted.status_code == 201, drafted.text
    assert drafted.json()["batch_codes"] == [second["code"], third["code"]]
    body["batches"] = [unknown]
    refused_draft = await client.post("/m/v1/manifests", json=body, headers=world.headers(maker))
    assert (refused_draft.status_code, refused_draft.json()["field"]) == (404, "batches[0]")


@pytest.mark.parametrize(
    ("query", "side_mm", "text_mm"),
    [
        ({}, 100, 3),
        ({"volume_l": "50"}, 100, 3),
        ({"volume_l": "200"}, 150, 5),
        ({"volume_l": "1000"}, 200, 6),
        ({"size": "200"}, 200, 6),
    ],
)
async def test_hazardous_label_has_its_true_size_and_decodes(
    client: httpx.AsyncClient,
    world: World,
    maker: str,
    query: dict,
    side_mm: int,
    text_mm: int,
) -> None:
    made = await tag(client, world, maker)
    response = await client.get(
        f"/m/v1/batches/{made['code']}/label.png", params=query, headers=world.headers(maker)
    )
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (px(side_mm), px(side_mm))
    assert round(image.info["dpi"][0]) == DPI
    assert image.info["Standard"] == "HJ 1276-2022"
    # The height in mm at the PNG's 300 dpi, never a pixel rounded below the minimum.
    assert int(image.info["MinTextHeightPx"]) / DPI * 25.4 >= text_mm
    assert image.info["OverflowPx"] == "0"
    assert image.info["Identifier"] == made["identifier"]
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [made["qr_url"]]


async def test_a_label_whose_fields_do_not_fit_its_size_is_refused_for_a_larger_one(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    """Five hazards' precautions and a producer's name of thirty characters overrun a 150 mm
    label at its 5 mm text: refused naming `size`, never printed overlapping; 200 mm fits."""
    world.orgs[maker].name = "山东省威海市荣成市石岛管理区某某某船舶修造与海洋工程有限公司"
    await world.orgs[maker].save(update_fields=["name"])
    made = await tag(client, world, maker, hazard=["T", "C", "I", "R", "In"])
    label = f"/m/v1/batches/{made['code']}/label.png"
    small = await client.get(label, params={"size": "150"}, headers=world.headers(maker))
    assert (small.status_code, small.json()["field"]) == (422, "size")
    assert "150 × 150 mm" in small.json()["detail"]
    large = await client.get(label, params={"size": "200"}, headers=world.headers(maker))
    assert large.status_code == 200, large.text
    image = Image.open(io.BytesIO(large.content))
    assert image.info["OverflowPx"] == "0"
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [made["qr_url"]]


async def test_label_size_applies_to_hazardous_waste_only(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world)
    refused = await client.get(
        f"/m/v1/batches/{bag['code']}/label.png",
        params={"size": "100"},
        headers=world.headers("clinic"),
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "size")
    wrong = await client.get(
        f"/m/v1/batches/{bag['code']}/label.png",
        params={"size": "120"},
        headers=world.headers("clinic"),
    )
    assert wrong.status_code == 422


async def test_manifest_pdf_prints_each_batch_identifier(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    city = world.regions["city"].id
    plant = await registry.create_organization(
        name="危废处置中心", kind=OrganizationKind.treatment_facility, region_id=city
    )
    await registry.add_licence(
        organization_id=plant.id, category_key="hw.08", method_codes=["R9", "D10"]
    )
    made = [
        await tag(
            client, world, maker, device_time=(datetime.now(UTC) - timedelta(hours=3)).isoformat()
        )
        for _ in range(2)
    ]
    created = await client.post(
        "/m/v1/manifests",
        json={
            "category": "hw.08",
            "waste_code": "900-249-08",
            "waste_name": "废机油",
            "hazard": ["T", "I"],
            "physical_form": "液态",
            "packaging": "200L铁桶×2",
            "quantity_kg": "360",
            "emergency_measures": "泄漏时用吸油毡围堵，禁止明火",
            "batches": [m["code"] for m in made],
            "receiver_organization_id": plant.id,
            "legs": [
                {
                    "carrier_organization_id": world.orgs["carrier"].id,
                    "vehicle_plate": "鲁K12345",
                    "permit_number": "鲁危运001",
                }
            ],
        },
        headers=world.headers(maker),
    )
    assert created.status_code == 201, created.text
    pdf = await client.get(
        f"/m/v1/manifests/{created.json()['id']}/manifest.pdf", headers=world.headers(maker)
    )
    text = re.sub(r"\s+", " ", pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text())
    for batch in made:
        assert identifiers.spaced(batch["identifier"]) in text


def test_identifier_text_is_recognized_only_in_its_own_shape() -> None:
    identifier = f"{CREDIT_CODE}9002490820261130001"
    assert identifiers.normalize(f" {identifiers.spaced(identifier).lower()} ") == identifier
    assert identifiers.normalize(identifier.replace("Y", "O")) is None  # no O in credit codes
    assert identifiers.normalize(identifier[:-1]) is None
    assert identifiers.normalize("R98H0PN9Q") is None


async def test_the_identifier_is_pinned_by_the_batch_chain(
    client: httpx.AsyncClient, world: World, maker: str
) -> None:
    """The number is issued when the call writes, after tagging was hashed: the call then
    writes it into the tagging and hashes the chain again, the events after the tagging in the
    same call too. So a row whose identifier is rewritten (another number, none, or one given
    to a batch that had none) no longer verifies."""
    printed = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs[maker].id, "stream": "hazardous", "count": 2},
    )
    assert printed.status_code == 201, printed.text
    first, second = await Label.filter(organization=world.orgs[maker]).values_list(
        "code", flat=True
    )
    entries = [
        drum(batch=first) | {"event_type": "tagged"},
        event("cancelled", first, minutes=5, reason="贴错标签"),
        drum(batch=second) | {"event_type": "tagged"},
    ]
    synced = await client.post("/m/v1/sync", json={"events": entries}, headers=world.headers(maker))
    assert [r["status"] for r in synced.json()["results"]] == ["applied"] * 3, synced.text
    alone = (await tag(client, world, maker))["code"]  # a single post, group-committed
    bag = await tag_bag(client, world)

    async def verdict(who: str, code: str) -> dict:
        answer = await client.get(f"/m/v1/batches/{code}/verify", headers=world.headers(who))
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    numbered = dict(
        await Batch.filter(code__in=[first, second, alone]).values_list("code", "identifier")
    )
    for code in (first, second, alone):
        tagging = await CustodyEvent.get(batch__code=code, seq=1)
        assert tagging.details["identifier"] == numbered[code]
        assert (await verdict(maker, code))["valid"] is True
    assert (await verdict("clinic", bag["code"]))["valid"] is True
    unissued = numbered[first][:-3] + "999"
    for who, code, forged in (
        (maker, first, unissued),
        (maker, second, None),
        ("clinic", bag["code"], unissued),
    ):
        await as_superuser_without_triggers(
            ("UPDATE batch SET identifier = $1 WHERE code = $2", [forged, code])
        )
        found = await verdict(who, code)
        assert (found["valid"], found["broken_at_seq"]) == (False, 1), (code, found)
        assert "identifier" in found["detail"]
        await as_superuser_without_triggers(
            ("UPDATE batch SET identifier = $1 WHERE code = $2", [numbered.get(code), code])
        )
        assert (await verdict(who, code))["valid"] is True


def _shipyard_label(
    producer: str,
    *,
    contact: str = "0631-7561234",
    hazards: tuple[str, ...] = ("T",),
    size: LabelSize = HJ1276_SIZES[0],
) -> bytes:
    """A shipyard's waste-oil drum label, drawn straight from its text."""
    return render_hj1276_png(
        HazardousLabelText(
            code="R98H0PN9Q",
            url="https://wastetrack.example.cn/q/R98H0PN9Q.1AAAAAAAA",
            identifier=None,
            waste_name="废矿物油与含矿物油废物",
            category="HW08 废矿物油与含矿物油废物",
            waste_code="900-249-08",
            hazards=hazards,
            producer=producer,
            contact=contact,
            tagged_on=datetime(2026, 11, 30).date(),
            weight="180 kg",
        ),
        size=size,
    )


def test_a_producer_named_beyond_gb2312_is_printed_as_registered() -> None:
    """Two shipyards whose names differ in one everyday name character outside GB 2312 (喆,
    镕) got the very same label: both drawn as the font's missing-glyph box."""
    drawn = [
        _shipyard_label(producer, hazards=("T", "I"), size=HJ1276_SIZES[1])
        for producer in ("荣成喆丰船舶修造有限公司", "荣成镕丰船舶修造有限公司")
    ]
    pixels = [Image.open(io.BytesIO(png)).tobytes() for png in drawn]
    assert pixels[0] != pixels[1]


def test_a_line_break_or_tab_in_a_name_prints_as_a_space() -> None:
    """A name the registry accepts may hold a line break or a tab: Pillow measured no text
    holding a line break (a 500 for every label of that producer), failed on a carriage
    return, and drew a tab as the font's empty box. Each prints as a space, as in a PDF."""

    spaced = _shipyard_label("荣成某船舶 有限公司")
    for producer in ("荣成某船舶\n有限公司", "荣成某船舶\r\n有限公司", "荣成某船舶\r有限公司"):
        assert _shipyard_label(producer) == spaced
    assert _shipyard_label("荣成某船舶\t有限公司") == spaced
    assert _shipyard_label("荣成某船舶 有限公司", contact="0631-7561234\n138") == (
        _shipyard_label("荣成某船舶 有限公司", contact="0631-7561234 138")
    )
