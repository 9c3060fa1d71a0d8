"""Transfer manifests: numbering, locked sections, legs in order, decision, discrepancies,
revisions, the overdue alert, the PDF."""

import asyncio
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pypdf
import pytest
import zxingcpp
from PIL import Image

from tests.api.test_paging import _walk
from tests.custody.helpers import tag_bag
from tests.factories import NOW as STORY_NOW
from tests.factories import World, event, make_user, medical_bag
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.calendar import service as calendar
from wastetrack.core import codes
from wastetrack.core.settings import Settings
from wastetrack.core.timefmt import local_limit, local_time
from wastetrack.custody import repository
from wastetrack.manifests.models import Manifest, ManifestDiscrepancy, ManifestRevision
from wastetrack.manifests.receiving import decision_due, settle_deadlines
from wastetrack.registry import service as registry
from wastetrack.registry.models import FacilityLicence, OrganizationKind

# The suite's story clock (tests.factories.NOW), not the real now: in the first hours of a
# city day it ends a minute before midnight, and these stories mix their own times with the
# factories' events (two hours before it), which must not come before the batches' taggings.
NOW = STORY_NOW


@dataclass
class Parties:
    batches: list[str]
    body: dict


@pytest.fixture
async def parties(client: httpx.AsyncClient, world: World) -> Parties:
    city = world.regions["city"].id
    maker = await registry.create_organization(
        name="荣成某船舶修造公司", kind=OrganizationKind.enterprise, region_id=city
    )
    plant = await registry.create_organization(
        name="危废处置中心", kind=OrganizationKind.treatment_facility, region_id=city
    )
    second = await registry.create_organization(
        name="联运承运公司", kind=OrganizationKind.carrier, region_id=city
    )
    await registry.add_licence(
        organization_id=plant.id, category_key="hw.08", method_codes=["R9", "D10"]
    )
    world.orgs.update({"maker": maker, "plant": plant, "second": second})
    await make_user(world, "maker", Role.generator, maker)
    await make_user(world, "plant", Role.facility_operator, plant)
    await make_user(world, "second", Role.carrier, second)
    codes = await _drums_of_oil(client, world, "maker")
    body = {
        "category": "hw.08",
        "waste_code": "900-249-08",
        "waste_name": "废机油",
        "hazard": ["T", "I"],
        "physical_form": "液态",
        "packaging": "200L铁桶×4",
        "quantity_kg": "800",
        "emergency_measures": "泄漏时用吸油毡围堵，禁止明火",
        "batches": codes,
        "receiver_organization_id": plant.id,
        "legs": [
            {
                "carrier_organization_id": world.orgs["carrier"].id,
                "vehicle_plate": "鲁K12345",
                "permit_number": "鲁危运001",
            },
            {
                "carrier_organization_id": second.id,
                "vehicle_plate": "鲁K67890",
                "permit_number": "鲁危运002",
            },
        ],
    }
    return Parties(codes, body)


async def _drums_of_oil(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    tagged: datetime = NOW - timedelta(hours=3),
) -> list[str]:
    """The codes of two batches of waste mineral oil (HW08, 400 kg each) `who` tags, by
    default before every handover these tests sign (from NOW - 2 h): however long ago NOW,
    taken when the module was imported, is by the time a slow suite gets here."""
    codes = []
    for _ in range(2):
        bag = medical_bag(
            stream="hazardous",
            category="hw.08",
            waste_code="900-249-08",
            hazard=["T", "I"],
            quantity="400",
            device_time=tagged.isoformat(),
        )
        bag.pop("event_type")
        made = await client.post("/m/v1/batches", json=bag, headers=world.headers(who))
        assert made.status_code == 201, made.text
        codes.append(made.json()["code"])
    return codes


async def call(
    client: httpx.AsyncClient, world: World, who: str, path: str, body: dict | None = None
) -> httpx.Response:
    return await client.post(f"/m/v1/manifests{path}", json=body or {}, headers=world.headers(who))


async def sign_producer(
    client: httpx.AsyncClient, world: World, mid: int, at: datetime = NOW - timedelta(hours=2)
) -> httpx.Response:
    """The producer signs, handing the batches over at `at` (a leg's handover may not precede
    it; by default, when these tests sign the first leg)."""
    item = {"manifest_id": mid, "handover_at": at.isoformat()}
    body = {"role": "producer", "manifests": [item]}
    return await client.post("/m/v1/manifests/sign", json=body, headers=world.headers("maker"))


async def drive_to_arrival(
    client: httpx.AsyncClient, world: World, parties: Parties, arrived: datetime = NOW
) -> dict:
    drafted = await call(client, world, "maker", "", parties.body)
    assert drafted.status_code == 201, drafted.text
    mid = drafted.json()["id"]
    signed = await sign_producer(client, world, mid, arrived - timedelta(hours=2))
    assert signed.status_code == 200, signed.text
    for seq, who in ((1, "carrier"), (2, "second")):
        signed = await call(
            client,
            world,
            who,
            f"/{mid}/legs/{seq}/sign",
            {
                "handover_at": (arrived - timedelta(hours=3 - seq)).isoformat(),
                "handover_place": "石岛",
            },
        )
        assert signed.status_code == 200, signed.text
    arrival = await call(
        client, world, "plant", f"/{mid}/arrival", {"arrived_at": arrived.isoformat()}
    )
    assert arrival.status_code == 200, arrival.text
    return arrival.json()


async def test_manifest_runs_from_draft_to_acceptance(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    manifest = made.json()
    assert manifest["number"].startswith(f"{NOW.year}3710") and len(manifest["number"]) == 14
    mid = manifest["id"]
    early = await call(
        client,
        world,
        "carrier",
        f"/{mid}/legs/1/sign",
        {"handover_at": NOW.isoformat(), "handover_place": "厂区"},
    )
    assert early.status_code == 409
    signed = await sign_producer(client, world, mid)
    assert signed.json()["results"][0]["state"] == "submitted", signed.text
    locked = await call(client, world, "maker", f"/{mid}/sign")
    assert (locked.status_code, locked.json()["field"]) == (409, "producer")
    batch = await Batch.get(code=parties.batches[0])
    assert (batch.state, batch.holder_id) == ("handed_over", world.orgs["carrier"].id)
    out_of_order = await call(
        client,
        world,
        "second",
        f"/{mid}/legs/2/sign",
        {"handover_at": NOW.isoformat(), "handover_place": "石岛"},
    )
    assert out_of_order.status_code == 409
    wrong_carrier = await call(
        client,
        world,
        "second",
        f"/{mid}/legs/1/sign",
        {"handover_at": NOW.isoformat(), "handover_place": "石岛"},
    )
    assert wrong_carrier.status_code == 403
    arrived = await drive_to_arrival_after_producer(client, world, mid)
    assert arrived["decision_due_at"] is not None
    decided = await call(
        client,
        world,
        "plant",
        f"/{mid}/decision",
        {"decision": "accepted", "received_quantity_kg": "790", "method": "R9"},
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["state"], decided.json()["discrepancies"]) == ("accepted", [])
    assert {b.state for b in await Batch.filter(code__in=parties.batches)} == {"received"}
    again = await call(
        client,
        world,
        "plant",
        f"/{mid}/decision",
        {"decision": "rejected", "received_quantity_kg": "0", "reason": "x"},
    )
    assert again.status_code == 409
    pdf = await client.get(f"/m/v1/manifests/{mid}/manifest.pdf", headers=world.headers("maker"))
    page = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0]
    assert manifest["number"] in page.extract_text()
    assert "已接收" in page.extract_text() and "accepted" not in page.extract_text()
    (picture,) = page.images
    urls = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(picture.data)))]
    assert [url.rsplit(".", 1)[0] for url in urls] == [f"http://testserver/t/{manifest['number']}"]


async def sign_leg(
    client: httpx.AsyncClient, world: World, mid: int, seq: int, who: str, at: datetime
) -> httpx.Response:
    body = {"handover_at": at.isoformat(), "handover_place": "石岛"}
    return await call(client, world, who, f"/{mid}/legs/{seq}/sign", body)


async def sign_both_legs(client: httpx.AsyncClient, world: World, mid: int) -> None:
    """The two carriers sign their legs, two hours and an hour before the tests' now."""
    for seq, who in ((1, "carrier"), (2, "second")):
        signed = await sign_leg(client, world, mid, seq, who, NOW - timedelta(hours=3 - seq))
        assert signed.status_code == 200, signed.text


async def drive_to_arrival_after_producer(
    client: httpx.AsyncClient, world: World, mid: int
) -> dict:
    await sign_both_legs(client, world, mid)
    return (
        await call(client, world, "plant", f"/{mid}/arrival", {"arrived_at": NOW.isoformat()})
    ).json()


async def test_mismatches_become_discrepancies_for_producer_and_authority(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    arrived = await drive_to_arrival(client, world, parties)
    decided = await call(
        client,
        world,
        "plant",
        f"/{arrived['id']}/decision",
        {
            "decision": "partially_accepted",
            "received_quantity_kg": "640",
            "method": "D10",
            "reason": "一桶渗漏",
            "found": {"packaging": "200L铁桶×3"},
        },
    )
    assert decided.status_code == 200, decided.text
    fields = {d["field"]: d for d in decided.json()["discrepancies"]}
    assert (fields["quantity_kg"]["declared"], fields["quantity_kg"]["found"]) == (
        "800.000",
        "640.000",
    )
    assert fields["packaging"]["declared"] == "200L铁桶×4"
    for who in ("maker", "manager"):
        listed = (
            await client.get(
                "/m/v1/manifests", params={"discrepant": True}, headers=world.headers(who)
            )
        ).json()
        assert [m["id"] for m in listed] == [arrived["id"]]


async def test_a_finding_the_manifest_could_not_hold_is_refused_naming_it(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """What the receiver found is a value the manifest itself could hold (a name, form or
    packaging of at least one character, at least one hazard characteristic): an empty or blank
    finding was signed and kept as a discrepancy "found ''" for the producer and the authority.
    Refused, nothing written."""
    arrived = await drive_to_arrival(client, world, parties)
    decision = {"decision": "accepted", "received_quantity_kg": "800", "method": "R9"}
    texts = ("waste_name", "physical_form", "packaging")
    blank: list[tuple[str, object]] = [(name, v) for name in texts for v in ("", "   ")]
    for name, value in (*blank, ("hazard", [])):
        body = {**decision, "found": {name: value}}
        decided = await call(client, world, "plant", f"/{arrived['id']}/decision", body)
        assert (decided.status_code, decided.json()["field"]) == (422, f"found.{name}")
    assert await ManifestDiscrepancy.all().count() == 0
    assert (await Manifest.get(id=arrived["id"])).receiver_signed_at is None


async def test_a_quantity_is_kept_as_the_manifest_states_it_however_it_was_typed(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """1e3 kg received is 1000.000 kg, in the decision and in the discrepancy it makes."""
    arrived = await drive_to_arrival(client, world, parties)
    body = {"decision": "accepted", "received_quantity_kg": "1e3", "method": "D10"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", body)
    assert decided.status_code == 200, decided.text
    assert decided.json()["received_quantity_kg"] == "1000.000"
    found = {d["field"]: d["found"] for d in decided.json()["discrepancies"]}
    assert found["quantity_kg"] == "1000.000"


async def test_a_rejection_names_no_method_receives_nothing_and_its_pdf_prints_its_0_kg(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    arrived = await drive_to_arrival(client, world, parties)
    path = f"/{arrived['id']}/decision"
    rejection = {"decision": "rejected", "received_quantity_kg": "0", "reason": "包装破损"}
    treated = await call(client, world, "plant", path, {**rejection, "method": "D10"})
    assert (treated.status_code, treated.json()["field"]) == (422, "method"), treated.text
    # Nor does it receive anything: 800 kg "received" would print beside no receipt's weight.
    weighed = await call(client, world, "plant", path, {**rejection, "received_quantity_kg": "800"})
    assert (weighed.status_code, weighed.json()["field"]) == (422, "received_quantity_kg")
    rejected = await call(client, world, "plant", path, rejection)
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["received_quantity_kg"], rejected.json()["method_id"]) == (
        "0.000",
        None,
    )
    pdf = await client.get(
        f"/m/v1/manifests/{arrived['id']}/manifest.pdf", headers=world.headers("maker")
    )
    text = " ".join(
        " ".join(page.extract_text().split())
        for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages
    )
    assert "已拒收 0.000 kg" in text, text


async def test_a_batch_on_an_open_manifest_is_not_packed_into_a_container(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """Packed (aggregated, a final state), the batch could take no leg or decision of its
    manifest: the carrier's own leg would be refused. The packing is refused instead."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    box = (await _drums_of_oil(client, world, "carrier"))[0]  # the carrier's own load
    packing = event("aggregated", box, minutes=10, children=parties.batches)
    packed = await client.post("/m/v1/events", json=packing, headers=world.headers("carrier"))
    assert (packed.status_code, packed.json()["field"]) == (409, "children[0]"), packed.text
    assert packed.json()["manifest_id"] == mid
    leg = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=1))
    assert leg.status_code == 200, leg.text


async def test_a_receiver_whose_licence_lapsed_before_the_arrival_rejects_the_waste(
    client: httpx.AsyncClient, world: World, settings: Settings, parties: Parties
) -> None:
    """Refusing waste takes nothing in and needs no licence (as a custody receipt): else the
    arrived manifest could be neither decided nor cancelled. Accepting it still needs one."""
    arrived = await drive_to_arrival(client, world, parties)
    day = NOW.astimezone(ZoneInfo(settings.timezone)).date()
    await FacilityLicence.filter(organization_id=world.orgs["plant"].id).update(
        valid_until=day - timedelta(days=1)
    )
    path = f"/{arrived['id']}/decision"
    accepted = {"decision": "accepted", "received_quantity_kg": "800", "method": "D10"}
    refused = await call(client, world, "plant", path, accepted)
    assert (refused.status_code, refused.json()["field"]) == (403, "method"), refused.text
    rejection = {"decision": "rejected", "received_quantity_kg": "0", "reason": "资质过期"}
    rejected = await call(client, world, "plant", path, rejection)
    assert (rejected.status_code, rejected.json()["decision"]) == (200, "rejected"), rejected.text


async def test_the_producer_sends_no_waste_to_a_receiver_whose_licence_lapsed_since_the_draft(
    client: httpx.AsyncClient, world: World, settings: Settings, parties: Parties
) -> None:
    """The receiver's licence was judged at the draft only: a draft kept while it lapsed was
    signed, and the drums left for a facility that could only reject them (hazardous review).
    The producer's signature judges it again on the handover's city day, by either route:
    a 403 naming the receiver, nothing signed, the drums still at their producer."""
    drafted = await call(client, world, "maker", "", parties.body)
    assert drafted.status_code == 201, drafted.text
    mid = drafted.json()["id"]
    day = NOW.astimezone(ZoneInfo(settings.timezone)).date()
    await FacilityLicence.filter(organization_id=world.orgs["plant"].id).update(
        valid_until=day - timedelta(days=1)
    )
    bulk = await sign_producer(client, world, mid, NOW - timedelta(minutes=30))
    assert (bulk.status_code, bulk.json()["field"], bulk.json()["item_field"]) == (
        403,
        "manifests[0]",
        "receiver_organization_id",
    ), bulk.text
    single = await call(client, world, "maker", f"/{mid}/sign")
    assert (single.status_code, single.json()["field"]) == (403, "receiver_organization_id")
    manifest = await Manifest.get(id=mid)
    holders = {b.holder_id for b in await Batch.filter(code__in=parties.batches)}
    assert (manifest.state, manifest.producer_signed_at, holders) == (
        "draft",
        None,
        {world.orgs["maker"].id},
    )
    # Its licence valid through the handover's day: signed.
    await FacilityLicence.filter(organization_id=world.orgs["plant"].id).update(valid_until=day)
    renewed = await sign_producer(client, world, mid, NOW - timedelta(minutes=30))
    assert renewed.status_code == 200, renewed.text


async def test_manifest_refusals(client: httpx.AsyncClient, world: World, parties: Parties) -> None:
    household = {**parties.body, "category": "hh.hazardous.battery"}
    exempt = await call(client, world, "maker", "", household)
    assert (exempt.status_code, exempt.json()["field"]) == (409, "category")
    assert "exempt" in exempt.json()["detail"]
    # Which streams travel with a manifest is the stream's rule (catalog data), not a name.
    medical = await call(client, world, "maker", "", {**parties.body, "category": "med.sharps"})
    assert (medical.status_code, medical.json()["field"]) == (409, "category")
    assert "(medical) is exempt" in medical.json()["detail"]
    unknown = await call(client, world, "maker", "", {**parties.body, "category": "no.such"})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "category")
    unlicensed = await call(
        client,
        world,
        "maker",
        "",
        {**parties.body, "receiver_organization_id": world.orgs["unlicensed"].id},
    )
    assert (unlicensed.status_code, unlicensed.json()["field"]) == (403, "receiver_organization_id")
    other_code = await call(
        client, world, "maker", "", {**parties.body, "waste_code": "900-214-08"}
    )
    assert (other_code.status_code, other_code.json()["field"]) == (422, "batches[0]")
    by_carrier = await call(client, world, "carrier", "", parties.body)
    assert by_carrier.status_code == 403
    arrived = await drive_to_arrival(client, world, parties)
    bad_method = await call(
        client,
        world,
        "plant",
        f"/{arrived['id']}/decision",
        {"decision": "accepted", "received_quantity_kg": "800", "method": "R1"},
    )
    assert (bad_method.status_code, bad_method.json()["field"]) == (403, "method")


async def test_revision_applies_only_when_every_other_party_approves(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    made = (await call(client, world, "maker", "", parties.body)).json()
    mid = made["id"]
    draft_revision = await call(
        client,
        world,
        "maker",
        f"/{mid}/revisions",
        {"changes": {"quantity_kg": "780"}, "reason": "称重更正"},
    )
    assert draft_revision.status_code == 409
    # As the docs say a draft is corrected: cancelled and drafted again (it said "edited").
    assert "cancels it and drafts it again" in draft_revision.json()["detail"]
    await call(client, world, "maker", f"/{mid}/sign")
    proposed = (
        await call(
            client,
            world,
            "maker",
            f"/{mid}/revisions",
            {"changes": {"quantity_kg": "780"}, "reason": "称重更正"},
        )
    ).json()
    rid = proposed["id"]
    for who in ("carrier", "second"):
        answer = await call(client, world, who, f"/{mid}/revisions/{rid}/approve")
        assert answer.json()["state"] == "pending"
    done = (await call(client, world, "plant", f"/{mid}/revisions/{rid}/approve")).json()
    assert (done["state"], done["previous"]) == ("approved", {"quantity_kg": "800.000"})
    manifest = (await client.get(f"/m/v1/manifests/{mid}", headers=world.headers("maker"))).json()
    assert manifest["quantity_kg"] == "780.000"
    second = (
        await call(
            client,
            world,
            "carrier",
            f"/{mid}/revisions",
            {"changes": {"packaging": "200L铁桶×5"}, "reason": "现场清点"},
        )
    ).json()
    refused = (await call(client, world, "maker", f"/{mid}/revisions/{second['id']}/reject")).json()
    assert refused["state"] == "rejected"
    outsider = await call(client, world, "clinic", f"/{mid}/revisions/{second['id']}/approve")
    assert outsider.status_code == 404


async def test_the_proposing_organization_withdraws_its_pending_revision(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """A mistaken proposal stayed pending until another party rejected it: its proposer could
    neither reject it (it had answered already) nor take it back (hazardous review). It
    withdraws it; nothing applies, and it is answered no more. Another party cannot withdraw
    it, nor anyone one that is no longer pending."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    await call(client, world, "maker", f"/{mid}/sign")
    proposed = await call(
        client,
        world,
        "carrier",
        f"/{mid}/revisions",
        {"changes": {"quantity_kg": "780"}, "reason": "称重更正"},
    )
    rid = proposed.json()["id"]
    for who in ("maker", "plant"):
        refused = await call(client, world, who, f"/{mid}/revisions/{rid}/withdraw")
        assert (refused.status_code, refused.json()["field"]) == (403, "role"), refused.text
    withdrawn = await call(client, world, "carrier", f"/{mid}/revisions/{rid}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["state"], withdrawn.json()["previous"]) == ("withdrawn", {})
    for who, answer in (("maker", "approve"), ("plant", "reject"), ("carrier", "withdraw")):
        late = await call(client, world, who, f"/{mid}/revisions/{rid}/{answer}")
        assert (late.status_code, late.json()["field"]) == (409, "revision_id"), late.text
    manifest = (await client.get(f"/m/v1/manifests/{mid}", headers=world.headers("maker"))).json()
    assert manifest["quantity_kg"] == "800.000"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"waste_name": "废" * 129}, "waste_name"),
        ({"waste_name": ""}, "waste_name"),
        ({"physical_form": "固" * 33}, "physical_form"),
        ({"packaging": "桶" * 65}, "packaging"),
        ({"quantity_kg": "1e9"}, "quantity_kg"),
        ({"quantity_kg": "Infinity"}, "quantity_kg"),
        ({"quantity_kg": "1E-20000"}, "quantity_kg"),
        ({"quantity_kg": "0.0001"}, "quantity_kg"),
        ({"quantity_kg": "-5"}, "quantity_kg"),
        ({"emergency_measures": "x" * 2001}, "emergency_measures"),
    ],
)
async def test_a_revision_proposes_only_what_the_manifest_holds(
    client: httpx.AsyncClient, world: World, parties: Parties, changes: dict, field: str
) -> None:
    """Each proposed change is checked as the draft checks that field, when it is proposed:
    never a revision every party approves and that then cannot apply."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    await call(client, world, "maker", f"/{mid}/sign")
    proposed = await call(
        client, world, "maker", f"/{mid}/revisions", {"changes": changes, "reason": "更正"}
    )
    assert proposed.status_code == 422, proposed.text
    assert proposed.json()["field"] == f"changes.{field}"
    assert await ManifestRevision.filter(manifest_id=mid).count() == 0


async def test_undecided_manifest_raises_an_alert_after_5_working_days(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    parties.body["batches"] = await _drums_of_oil(
        client, world, "maker", tagged=NOW - timedelta(days=12)
    )
    arrived = await drive_to_arrival(client, world, parties, arrived=NOW - timedelta(days=9))
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    alerts = (await client.get("/m/v1/alerts", headers=world.headers("plant"))).json()
    assert [(a["kind"], a["details"]["manifest"]) for a in alerts] == [
        ("manifest_overdue", arrived["number"])
    ]
    # Decided late, the manifest is overdue no more: the next round clears its alert.
    decided = await call(
        client,
        world,
        "plant",
        f"/{arrived['id']}/decision",
        {"decision": "accepted", "received_quantity_kg": "800", "method": "R9"},
    )
    assert decided.status_code == 200, decided.text
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    (alert,) = await Alert.filter(kind="manifest_overdue")
    assert alert.acknowledged_at is not None and "cleared_at" in alert.details


async def test_arrival_cannot_precede_the_last_handover(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    made = (await call(client, world, "maker", "", parties.body)).json()
    mid = made["id"]
    await sign_producer(client, world, mid)
    for seq, who in ((1, "carrier"), (2, "second")):
        await call(
            client,
            world,
            who,
            f"/{mid}/legs/{seq}/sign",
            {"handover_at": NOW.isoformat(), "handover_place": "石岛"},
        )
    early = await call(
        client,
        world,
        "plant",
        f"/{mid}/arrival",
        {"arrived_at": (NOW - timedelta(hours=5)).isoformat()},
    )
    assert (early.status_code, early.json()["field"]) == (422, "arrived_at")


async def _scanned_to_the_plant(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,
    *,
    legs: tuple[datetime, datetime],
    scanned: datetime,
) -> int:
    """A manifest its producer signed with the first leg, its two legs signed at `legs`, and
    every drum then scanned over to the plant by the last carrier at `scanned`: its id."""
    mid: int = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, legs[0])).status_code == 200
    for seq, who, at in ((1, "carrier", legs[0]), (2, "second", legs[1])):
        signed = await sign_leg(client, world, mid, seq, who, at)
        assert signed.status_code == 200, signed.text
    for code in parties.batches:
        given = event(
            "handed_over",
            code,
            to_organization_id=world.orgs["plant"].id,
            device_time=scanned.isoformat(),
        )
        posted = await client.post("/m/v1/events", json=given, headers=world.headers("second"))
        assert posted.status_code == 201, posted.text
    return mid


async def _refused_arrival(client: httpx.AsyncClient, world: World, mid: int, at: datetime) -> str:
    """The plant records the arrival at `at`, refused (422 on `arrived_at`): the refusal's text."""
    early = await call(client, world, "plant", f"/{mid}/arrival", {"arrived_at": at.isoformat()})
    assert (early.status_code, early.json()["field"]) == (422, "arrived_at"), early.text
    detail: str = early.json()["detail"]
    return detail


async def test_arrival_cannot_precede_a_handover_to_the_receiver_scanned_after_the_legs(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """docs/transport.md: the last carrier may still scan the drums over to the receiver. An
    arrival timed after the legs' handovers but before that scan was taken, and the decision's
    receipts, timed at the arrival, put the receiver's taking of the waste an hour before it
    was handed it (manifests review)."""
    legs = (NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    scanned = NOW - timedelta(minutes=30)
    mid = await _scanned_to_the_plant(client, world, parties, legs=legs, scanned=scanned)
    detail = await _refused_arrival(client, world, mid, scanned - timedelta(hours=1))
    # The handover's own time, not the bound less the phones' allowance (diff review of 32eec9d).
    assert local_time(scanned, world.settings.timezone) in detail
    arrived = await call(
        client, world, "plant", f"/{mid}/arrival", {"arrived_at": scanned.isoformat()}
    )
    assert arrived.status_code == 200, arrived.text


async def test_arrival_allows_the_carriers_phone_clock_skew(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """docs/custody.md: a device time within 10 minutes (CLOCK_SKEW, "for two phones' clocks")
    of the latest step is neither refused nor flagged. The last carrier's phone, 5 minutes
    fast, scans the drums over to the receiver as the truck arrives; the receiver's office
    records the arrival at that moment by its own (right) clock. The receipts the decision
    times at the arrival would be 5 minutes behind the scan: custody would take them
    unflagged, and the arrival took them too (diff review of 144dec7)."""
    legs = (NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    truth = NOW - timedelta(minutes=30)
    fast = truth + timedelta(minutes=5)  # the carrier's phone
    mid = await _scanned_to_the_plant(client, world, parties, legs=legs, scanned=fast)
    arrived = await call(
        client, world, "plant", f"/{mid}/arrival", {"arrived_at": truth.isoformat()}
    )
    assert arrived.status_code == 200, arrived.text


async def test_arrival_refusal_names_the_step_that_binds_it(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """docs/streams/hazardous.md: an earlier `arrived_at` is a 422 naming it, the last
    handover's own time and the allowance. The last leg is signed at S; its carrier scans the
    drums over 5 minutes later (S+5). An arrival at S-2 is refused by the signed handover (S),
    but the message named S+5 with a 10-minute allowance, which puts S-2 inside it (diff
    review of f367b0a): the step that binds is the one named."""
    signed_at = NOW - timedelta(minutes=90)
    legs = (NOW - timedelta(minutes=100), signed_at)
    scanned = signed_at + timedelta(minutes=5)
    mid = await _scanned_to_the_plant(client, world, parties, legs=legs, scanned=scanned)
    detail = await _refused_arrival(client, world, mid, signed_at - timedelta(minutes=2))
    assert local_time(signed_at, world.settings.timezone) in detail, detail


async def test_a_handover_or_arrival_in_the_future_is_refused(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """Recorded, a future arrival would block the decision (its events would lie in the future)
    and push the overdue alert out for years; a later leg records no event to catch it."""
    made = (await call(client, world, "maker", "", parties.body)).json()
    mid = made["id"]
    await sign_producer(client, world, mid)
    tomorrow = NOW + timedelta(days=1)
    for seq, who in ((1, "carrier"), (2, "second")):
        ahead = await sign_leg(client, world, mid, seq, who, tomorrow)
        assert (ahead.status_code, ahead.json()["field"]) == (422, "handover_at"), ahead.text
        if seq == 2:  # before the first leg's handover
            early = await sign_leg(client, world, mid, seq, who, NOW - timedelta(hours=5))
            assert (early.status_code, early.json()["field"]) == (422, "handover_at"), early.text
        signed = await sign_leg(client, world, mid, seq, who, NOW - timedelta(hours=3 - seq))
        assert signed.status_code == 200, signed.text
    for future in (tomorrow.isoformat(), "2099-01-01T00:00:00+08:00"):
        arrival = await call(client, world, "plant", f"/{mid}/arrival", {"arrived_at": future})
        assert (arrival.status_code, arrival.json()["field"]) == (422, "arrived_at"), arrival.text
    arrival = await call(client, world, "plant", f"/{mid}/arrival", {"arrived_at": NOW.isoformat()})
    assert arrival.status_code == 200, arrival.text


@pytest.mark.parametrize(
    ("arrived_at", "due_at"),
    [
        # UTC 16:30 on Monday 2 March is 00:30 on Tuesday in the city: 5 working days from
        # Tuesday, due by the end of Tuesday 10 March (city time).
        ("2026-03-02T16:30:00+00:00", "2026-03-10T16:00:00+00:00"),
        ("2026-03-03T00:30:00+08:00", "2026-03-10T16:00:00+00:00"),
        ("2026-03-02T15:30:00+00:00", "2026-03-09T16:00:00+00:00"),
        # Spring Festival 2026: 15–23 February off, Saturday 14 February worked.
        ("2026-02-12T10:00:00+08:00", "2026-02-26T16:00:00+00:00"),
        # National Day 2026: 1–7 October off, Saturday 10 October worked.
        ("2026-09-30T09:00:00+08:00", "2026-10-13T16:00:00+00:00"),
    ],
)
async def test_decision_is_due_after_5_official_working_days_in_city_time(
    orm: list[str], arrived_at: str, due_at: str
) -> None:
    due, assumed = await decision_due(
        arrived_at=datetime.fromisoformat(arrived_at), timezone="Asia/Shanghai"
    )
    assert (due, assumed) == (datetime.fromisoformat(due_at), [])


async def test_a_deadline_in_a_year_the_calendar_lacks_says_so_and_follows_the_calendar(
    client: httpx.AsyncClient, world: World, parties: Parties, restore_calendar: None
) -> None:
    """Arrived on Wednesday 30 December 2026: the official calendar ends with 2026, so 1 January
    2027 counts as a working day until an operator enters it as the holiday it is."""
    arrived = await drive_to_arrival(client, world, parties)
    arrival = datetime(2026, 12, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    due, assumed = await decision_due(arrived_at=arrival, timezone="Asia/Shanghai")
    assert (due, assumed) == (datetime(2027, 1, 6, 16, 0, tzinfo=UTC), [2027])
    # As if it had arrived then: the deadline says what it assumed.
    await Manifest.filter(id=arrived["id"]).update(
        arrived_at=arrival, decision_due_at=due, decision_due_assumed=assumed
    )
    read = await client.get(f"/m/v1/manifests/{arrived['id']}", headers=world.headers("plant"))
    assert read.json()["decision_due_assumed"] == [2027]
    pdf = await client.get(
        f"/m/v1/manifests/{arrived['id']}/manifest.pdf", headers=world.headers("plant")
    )
    assert pdf.status_code == 200
    printed = " ".join(pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text().split())
    assert "Monday" in printed
    # The deadline prints as its last day, the end of 6 January, not 7 January at 00:00.
    assert "2027-01-06 当日止" in printed and "2027-01-07 00:00" not in printed
    assert "已运抵" in printed and "arrived" not in printed  # the state by its name
    # Early on 7 January 2027 the assumed deadline has passed: the receiver is alerted.
    await alerts.refresh(now=datetime(2027, 1, 7, 0, 0, tzinfo=UTC))
    number = arrived["number"]
    assumed_due = f"{number}:{int(due.timestamp())}"
    assert await Alert.filter(kind="manifest_overdue", subject=assumed_due).count() == 1
    await calendar.set_day(
        day=date(2027, 1, 1),
        is_working_day=False,
        name="元旦",
        source="国务院办公厅通知",
        reason="补记",
    )
    # The next round computes the deadline again and clears the alert it no longer calls for.
    await alerts.refresh(now=datetime(2027, 1, 7, 1, 0, tzinfo=UTC))
    moved = await Manifest.get(id=arrived["id"])
    assert (moved.decision_due_at, moved.decision_due_assumed) == (
        datetime(2027, 1, 7, 16, 0, tzinfo=UTC),
        None,  # the first day entered begins the year: it is no longer assumed
    )
    assert (await calendar.get_day(day=date(2027, 1, 4))).source.startswith(calendar.YEAR_BEGUN)
    alert = await Alert.get(kind="manifest_overdue", subject=assumed_due)
    assert alert.acknowledged_at is not None and "cleared_at" in alert.details
    # A local change in a year the calendar holds moves the deadline too.
    await calendar.set_day(
        day=date(2027, 1, 5), is_working_day=False, name="局部停工", source="市政府", reason="补记"
    )
    await alerts.refresh(now=datetime(2027, 1, 7, 2, 0, tzinfo=UTC))
    moved = await Manifest.get(id=arrived["id"])
    assert moved.decision_due_at == datetime(2027, 1, 8, 16, 0, tzinfo=UTC)
    assert await settle_deadlines(timezone="Asia/Shanghai") == 0
    read = await client.get(f"/m/v1/manifests/{arrived['id']}", headers=world.headers("plant"))
    assert read.json()["decision_due_assumed"] is None
    # Past the deadline the official days give, the receiver is alerted again.
    assert await alerts.refresh(now=datetime(2027, 1, 9, 0, 0, tzinfo=UTC)) >= 1
    (again,) = await Alert.filter(kind="manifest_overdue", acknowledged_at=None)
    assert again.subject == f"{number}:{int(moved.decision_due_at.timestamp())}"
    assert again.details["manifest"] == number


async def test_a_deadline_moved_but_still_passed_keeps_one_alert(
    client: httpx.AsyncClient, world: World, parties: Parties, restore_calendar: None
) -> None:
    """Overdue on its assumed deadline, then the official days move it later, still passed:
    the first alert clears and the new deadline's is the manifest's one open alert."""
    arrived = await drive_to_arrival(client, world, parties)
    arrival = datetime(2026, 12, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    due, assumed = await decision_due(arrived_at=arrival, timezone="Asia/Shanghai")
    await Manifest.filter(id=arrived["id"]).update(
        arrived_at=arrival, decision_due_at=due, decision_due_assumed=assumed
    )
    await alerts.refresh(now=datetime(2027, 1, 7, 0, 0, tzinfo=UTC))
    await calendar.set_day(
        day=date(2027, 1, 1),
        is_working_day=False,
        name="元旦",
        source="国务院办公厅通知",
        reason="补记",
    )
    await alerts.refresh(now=datetime(2027, 1, 8, 0, 0, tzinfo=UTC))
    moved = await Manifest.get(id=arrived["id"])
    assert moved.decision_due_at is not None
    (open_alert,) = await Alert.filter(kind="manifest_overdue", acknowledged_at=None)
    assert open_alert.subject == f"{arrived['number']}:{int(moved.decision_due_at.timestamp())}"
    # The holiday undone, the deadline moves back, and its first alert is raised again.
    await calendar.set_day(
        day=date(2027, 1, 1), is_working_day=True, name=None, source="撤销", reason="补记"
    )
    await alerts.refresh(now=datetime(2027, 1, 8, 1, 0, tzinfo=UTC))
    (open_alert,) = await Alert.filter(kind="manifest_overdue", acknowledged_at=None)
    assert open_alert.subject == f"{arrived['number']}:{int(due.timestamp())}"


async def test_an_arrival_sent_in_utc_late_in_the_evening_counts_from_the_next_city_day(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    parties.body["batches"] = await _drums_of_oil(
        client, world, "maker", tagged=datetime.fromisoformat("2026-11-15T08:00:00+08:00")
    )
    # Monday 16 November 16:30 UTC = Tuesday 17 November 00:30 in Rongcheng.
    arrived = await drive_to_arrival(
        client, world, parties, arrived=datetime(2026, 11, 16, 16, 30, tzinfo=UTC)
    )
    assert datetime.fromisoformat(arrived["decision_due_at"]) == datetime(
        2026, 11, 24, 16, 0, tzinfo=UTC
    )


async def test_hazardous_waste_changes_hands_only_with_an_organization_its_manifest_names(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """Off its manifest, a carrier may not collect it; on it, a carrier may not hand it to an
    organization the manifest does not name. Refused on `batch`, nothing changed."""
    stray = medical_bag(
        stream="hazardous",
        category="hw.08",
        waste_code="900-249-08",
        hazard=["T"],
        quantity="50",
        carrier_organization_id=world.orgs["carrier"].id,
        device_time=(NOW - timedelta(hours=3)).isoformat(),
    )
    stray.pop("event_type")
    made = await client.post("/m/v1/batches", json=stray, headers=world.headers("maker"))
    assert made.status_code == 201, made.text
    unlisted = made.json()["code"]
    collected = await client.post(
        "/m/v1/events",
        json=event("collected", unlisted, device_time=(NOW - timedelta(hours=2)).isoformat()),
        headers=world.headers("carrier"),
    )
    assert (collected.status_code, collected.json()["field"]) == (409, "batch"), collected.text
    assert "transfer manifest" in collected.json()["detail"]
    assert (await Batch.get(code=unlisted)).state == "tagged"
    # On its manifest: the first carrier hands one batch to the second leg's carrier, not to
    # an organization the manifest does not name; the receiver then takes both.
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    signed = await sign_producer(client, world, mid, NOW - timedelta(minutes=150))
    assert signed.status_code == 200, signed.text
    # Handed on before the first leg is signed, the batch would leave that leg unsignable.
    early = event(
        "handed_over",
        parties.batches[0],
        to_organization_id=world.orgs["second"].id,
        device_time=(NOW - timedelta(minutes=140)).isoformat(),
    )
    out_of_turn = await client.post("/m/v1/events", json=early, headers=world.headers("carrier"))
    assert (out_of_turn.status_code, out_of_turn.json()["field"]) == (409, "to_organization_id")
    assert "earlier leg" in out_of_turn.json()["detail"]
    first_leg = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(minutes=150))
    assert first_leg.status_code == 200, first_leg.text
    code = parties.batches[0]
    at = (NOW - timedelta(hours=2)).isoformat()
    elsewhere = event(
        "handed_over", code, to_organization_id=world.orgs["unlicensed"].id, device_time=at
    )
    refused = await client.post("/m/v1/events", json=elsewhere, headers=world.headers("carrier"))
    assert (refused.status_code, refused.json()["field"]) == (409, "to_organization_id")
    onward = event("handed_over", code, to_organization_id=world.orgs["second"].id, device_time=at)
    passed = await client.post("/m/v1/events", json=onward, headers=world.headers("carrier"))
    assert passed.status_code == 201, passed.text
    second_leg = await sign_leg(client, world, mid, 2, "second", NOW - timedelta(minutes=90))
    assert second_leg.status_code == 200, second_leg.text
    assert (await Batch.get(code=code)).state == "in_transit"
    # The other batch the second carrier's signature took over itself; the first carrier's
    # handover, synced late, finds the batch no longer in its hands.
    other = await Batch.get(code=parties.batches[1])
    assert (other.state, other.holder_id) == ("in_transit", world.orgs["second"].id)
    late = event(
        "handed_over",
        parties.batches[1],
        to_organization_id=world.orgs["second"].id,
        device_time=(NOW - timedelta(minutes=100)).isoformat(),
    )
    synced = await client.post("/m/v1/events", json=late, headers=world.headers("carrier"))
    assert (synced.status_code, synced.json()["field"]) == (404, "batch"), synced.text
    arrival = {"arrived_at": (NOW - timedelta(hours=1)).isoformat()}
    assert (await call(client, world, "plant", f"/{mid}/arrival", arrival)).status_code == 200
    decision = {"decision": "accepted", "received_quantity_kg": "800", "method": "R9"}
    decided = await call(client, world, "plant", f"/{mid}/decision", decision)
    assert decided.status_code == 200, decided.text
    assert {b.state for b in await Batch.filter(code__in=parties.batches)} == {"received"}
    # A batch the receiver refuses may go back to its producer, whom the manifest names.
    maker, other = world.orgs["maker"].id, world.orgs["unlicensed"].id
    assert await repository.on_signed_manifest(code, maker, producer=True)
    assert not await repository.on_signed_manifest(code, maker, producer=False)
    assert not await repository.on_signed_manifest(code, other, producer=True)


async def test_the_declaration_the_decision_compared_is_not_revised_after_it(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """A revision approved after the decision would change the quantity beside discrepancies
    that speak of the old one: refused, proposed or approved; a field it did not compare
    (emergency measures) may still be revised."""
    arrived = await drive_to_arrival(client, world, parties)
    mid = arrived["id"]
    change = {"changes": {"quantity_kg": "780"}, "reason": "复称"}
    pending = (await call(client, world, "maker", f"/{mid}/revisions", change)).json()
    decision = {"decision": "accepted", "received_quantity_kg": "640", "method": "R9"}
    decided = await call(client, world, "plant", f"/{mid}/decision", decision)
    assert [d["field"] for d in decided.json()["discrepancies"]] == ["quantity_kg"]
    approved = await call(client, world, "carrier", f"/{mid}/revisions/{pending['id']}/approve")
    assert (approved.status_code, approved.json()["field"]) == (409, "changes.quantity_kg")
    proposed = await call(client, world, "plant", f"/{mid}/revisions", change)
    assert (proposed.status_code, proposed.json()["field"]) == (409, "changes.quantity_kg")
    measures = {"changes": {"emergency_measures": "泄漏时用沙土覆盖"}, "reason": "补充"}
    assert (await call(client, world, "plant", f"/{mid}/revisions", measures)).status_code == 201
    manifest = await Manifest.get(id=mid)
    assert manifest.quantity_kg == 800
    assert (await ManifestRevision.get(id=pending["id"])).approvals == [world.orgs["maker"].id]


async def test_the_first_leg_cannot_take_the_batches_before_the_producer_handed_them_over(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=2))).status_code == 200
    early = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=3))
    assert (early.status_code, early.json()["field"]) == (422, "handover_at"), early.text
    assert "producer's handover" in early.json()["detail"]
    signed = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=2))
    assert signed.status_code == 200, signed.text


async def test_a_legs_vehicle_refused_at_its_signature_is_named_as_the_draft_names_it(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """The second leg's vehicle lost its hazardous-goods licence after the draft."""
    vehicle = {
        "plate": "鲁K67890",
        "permit_number": "2",
        "capacity_kg": "5000",
        "hazardous_licence_number": "鲁交危许字2",
        "hazardous_licence_expires": "2099-12-31",
    }
    headers = world.headers("second")
    assert (await client.post("/m/v1/vehicles", json=vehicle, headers=headers)).status_code == 201
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    assert (await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=2))).is_success
    expired = {"hazardous_licence_expires": (NOW - timedelta(days=2)).date().isoformat()}
    patched = await client.patch("/m/v1/vehicles/鲁K67890", json=expired, headers=headers)
    assert patched.status_code == 200, patched.text
    refused = await sign_leg(client, world, mid, 2, "second", NOW - timedelta(hours=1))
    assert (refused.status_code, refused.json()["field"]) == (422, "legs[1].vehicle_plate")


async def test_a_vehicle_refused_at_the_producers_signature_is_named_as_the_draft_names_it(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """The first leg's vehicle lost its hazardous-goods licence after the draft: the hand-over
    the producer's signature records refuses it, and nothing is signed."""
    vehicle = {
        "plate": "鲁K12345",
        "permit_number": "1",
        "capacity_kg": "5000",
        "hazardous_licence_number": "鲁交危许字1",
        "hazardous_licence_expires": "2099-12-31",
    }
    headers = world.headers("carrier")
    assert (await client.post("/m/v1/vehicles", json=vehicle, headers=headers)).status_code == 201
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    expired = {"hazardous_licence_expires": (NOW - timedelta(days=2)).date().isoformat()}
    patched = await client.patch("/m/v1/vehicles/鲁K12345", json=expired, headers=headers)
    assert patched.status_code == 200, patched.text
    refused = await call(client, world, "maker", f"/{mid}/sign")
    assert (refused.status_code, refused.json()["field"]) == (422, "legs[0].vehicle_plate")
    assert (await Manifest.get(id=mid)).producer_signed_at is None


async def test_a_draft_lists_each_batch_once(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    twice = {**parties.body, "batches": [*parties.batches, parties.batches[0]]}
    refused = await call(client, world, "maker", "", twice)
    assert (refused.status_code, refused.json()["field"]) == (422, "batches[2]"), refused.text
    # A batch the producer cannot see, or a code of no batch, is named where it was listed.
    for stranger in ((await tag_bag(client, world))["code"], codes.new_code()):
        body = {**parties.body, "batches": [parties.batches[0], stranger]}
        refused = await call(client, world, "maker", "", body)
        assert (refused.status_code, refused.json()["field"]) == (404, "batches[1]"), refused.text
    assert await Manifest.all().count() == 0


async def test_a_batch_is_on_one_manifest_at_a_time(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """A batch on a draft, or on a manifest signed and not yet decided, is refused on another
    draft (its signature would fail once the first moved the batch, after a serial that is
    never reused was spent): a 409 naming the batch's place and the other manifest. Once that
    manifest is cancelled, the batch may be listed again; two drafts at once take turns."""
    first = await call(client, world, "maker", "", parties.body)
    assert first.status_code == 201, first.text
    number = first.json()["number"]
    again = {**parties.body, "batches": [parties.batches[1]], "quantity_kg": "400"}
    refused = await call(client, world, "maker", "", again)
    assert (refused.status_code, refused.json()["field"]) == (409, "batches[0]"), refused.text
    assert number in refused.json()["detail"]
    assert await Manifest.all().count() == 1
    # Signed by its producer, still open: refused as well, naming it (though the batch is now
    # the carrier's, which the handover's refusal alone would say).
    assert (await sign_producer(client, world, first.json()["id"])).status_code == 200
    refused = await call(client, world, "maker", "", again)
    assert (refused.status_code, refused.json()["field"]) == (409, "batches[0]"), refused.text
    assert f"{number} (" in refused.json()["detail"], refused.text
    cancelled = await call(
        client, world, "maker", f"/{first.json()['id']}/cancel", {"reason": "改派"}
    )
    assert cancelled.status_code == 200, cancelled.text
    home = event(
        "handed_over",
        parties.batches[1],
        to_organization_id=world.orgs["maker"].id,
        device_time=(NOW - timedelta(hours=1)).isoformat(),
    )
    back = await client.post("/m/v1/events", json=home, headers=world.headers("carrier"))
    assert back.status_code == 201, back.text
    # Both at once: one draft takes the batch, the other is told where it is.
    answers = await asyncio.gather(
        call(client, world, "maker", "", again), call(client, world, "maker", "", again)
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    made = next(a for a in answers if a.status_code == 201).json()["number"]
    assert made in next(a for a in answers if a.status_code == 409).json()["detail"]
    # The serials: the first draft's, then the one draft made; none spent on a refusal.
    assert int(made[-6:]) == int(number[-6:]) + 1


async def test_a_draft_checks_its_legs_vehicles_as_the_producers_signature_will(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """A registered vehicle without a hazardous-goods licence is refused while the draft can
    still change, not at the signature of a draft nobody may edit."""
    vehicle = {"plate": "鲁K12345", "permit_number": "1", "capacity_kg": "5000"}
    headers = world.headers("carrier")
    assert (await client.post("/m/v1/vehicles", json=vehicle, headers=headers)).status_code == 201
    refused = await call(client, world, "maker", "", parties.body)
    assert (refused.status_code, refused.json()["field"]) == (422, "legs[0].vehicle_plate")
    assert "licence" in refused.json()["detail"]
    assert await Manifest.all().count() == 0


async def _draft(
    client: httpx.AsyncClient, world: World, parties: Parties, maker: str, carriers: list[str]
) -> int:
    """A manifest `maker` drafts for two new batches of its own, carried by `carriers` in turn
    to the plant."""
    codes = await _drums_of_oil(client, world, maker)
    legs = [
        {**parties.body["legs"][0], "carrier_organization_id": world.orgs[who].id}
        for who in carriers
    ]
    body = {**parties.body, "batches": codes, "legs": legs}
    drafted = await call(client, world, maker, "", body)
    assert drafted.status_code == 201, drafted.text
    return int(drafted.json()["id"])


async def test_each_party_walks_the_manifests_it_is_party_to_once_each_newest_first(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """The list reads each reason to see a manifest on its own (producer, receiver, a leg's
    carrier, a manager's or auditor's region) and merges them: every party's walk, one row a
    page or more, gives its manifests once each (a carrier of two legs too), newest first,
    and so does the walk of those with a discrepancy; a lookup finds the same manifests."""
    town_maker = await registry.create_organization(
        name="石岛某修船厂",
        kind=OrganizationKind.enterprise,
        region_id=world.regions["other_town"].id,
    )
    world.orgs["town_maker"] = town_maker
    await make_user(world, "town_maker", Role.generator, town_maker)
    both = await _draft(client, world, parties, "maker", ["carrier", "second"])
    twice = await _draft(client, world, parties, "maker", ["second", "second"])
    in_town = await _draft(client, world, parties, "town_maker", ["carrier"])
    alone = await _draft(client, world, parties, "maker", ["carrier"])
    expected = {
        "maker": [alone, twice, both],
        "carrier": [alone, in_town, both],
        "second": [twice, both],
        "plant": [alone, in_town, twice, both],
        "manager": [alone, in_town, twice, both],
        "auditor": [alone, in_town, twice, both],
        "admin": [alone, in_town, twice, both],
        "town_manager": [in_town],
        "town_maker": [in_town],
        "clinic": [],
    }
    for mid in (in_town, both):
        for field in ("quantity_kg", "packaging"):  # two discrepancies: the manifest comes once
            await ManifestDiscrepancy.create(
                manifest_id=mid, field=field, declared="800", found="640", recorded_at=NOW
            )
    for who, ids in expected.items():
        for limit in (1, 2, 50):
            rows, _ = await _walk(client, "/m/v1/manifests", world.headers(who), limit)
            assert [m["id"] for m in rows] == ids, (who, limit)
            path = f"/m/v1/manifests?discrepant=true&limit={limit}"
            rows, _ = await _walk(client, path, world.headers(who), limit)
            assert [m["id"] for m in rows] == [i for i in ids if i in (in_town, both)]
        lookups = [
            (await client.get(f"/m/v1/manifests/{mid}", headers=world.headers(who))).status_code
            for mid in (both, twice, in_town, alone)
        ]
        assert lookups == [200 if mid in ids else 404 for mid in (both, twice, in_town, alone)]


def _printed_limit(detail: str) -> datetime:
    """The moment a refusal prints as its limit, read on the city's clock."""
    found = re.search(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00), city time", detail)
    assert found, detail
    return datetime.fromisoformat(found.group(1))


async def test_a_handover_or_arrival_too_early_names_its_limit_on_the_city_clock(
    client: httpx.AsyncClient, world: World, parties: Parties
) -> None:
    """A leg signed before the previous handover, an arrival before the last, are refused
    naming the limit they crossed: it was the database's UTC text with microseconds, a day
    earlier than the city's after 16:00 UTC (dates review), then the city's minute, which a
    moment seconds before the limit does not precede (diff review). The city's second,
    rounded up: the moment printed is itself accepted."""
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    base = (NOW - timedelta(hours=3)).replace(second=0, microsecond=0)
    assert (await sign_producer(client, world, mid, base)).status_code == 200
    early = await sign_leg(client, world, mid, 1, "carrier", base - timedelta(minutes=30))
    assert (early.status_code, early.json()["field"]) == (422, "handover_at"), early.text
    assert (
        f"({local_limit(base, 'Asia/Shanghai', earliest=True)}, city time;"
        in (early.json()["detail"])
    )
    first = base + timedelta(minutes=5, seconds=50, microseconds=300)
    assert (await sign_leg(client, world, mid, 1, "carrier", first)).status_code == 200
    sent = base + timedelta(minutes=5, seconds=20)
    refused = await sign_leg(client, world, mid, 2, "second", sent)
    assert (refused.status_code, refused.json()["field"]) == (422, "handover_at"), refused.text
    limit = _printed_limit(refused.json()["detail"])
    assert sent < first <= limit == first.replace(microsecond=0) + timedelta(seconds=1)
    assert (await sign_leg(client, world, mid, 2, "second", limit)).status_code == 200
    arrival = {"arrived_at": (limit - timedelta(seconds=30)).isoformat()}
    refused = await call(client, world, "plant", f"/{mid}/arrival", arrival)
    assert (refused.status_code, refused.json()["field"]) == (422, "arrived_at"), refused.text
    assert limit - timedelta(seconds=30) < _printed_limit(refused.json()["detail"])
