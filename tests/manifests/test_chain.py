"""The custody steps a manifest records: its own while it is open, under ids no other party can
compute, refused on the request's field when a value cannot be recorded, and corrected only
with the manifest."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import TypeAdapter

from tests.factories import World, event, medical_bag
from tests.manifests.test_manifests import (  # noqa: F401 (the fixture)
    NOW,
    Parties,
    call,
    drive_to_arrival,
    parties,
    sign_leg,
    sign_producer,
)
from wastetrack.batches.models import Batch
from wastetrack.core.errors import RuleViolation, ValidationFailed
from wastetrack.core.settings import Settings
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import EventType
from wastetrack.manifests import chain
from wastetrack.manifests.commands import HANDOVER_STEP, DecisionCommand, step_id
from wastetrack.manifests.models import Manifest, ManifestDiscrepancy, ManifestLeg
from wastetrack.manifests.receiving import _allocated

ACCEPTED = {"decision": "accepted", "received_quantity_kg": "800", "method": "R9"}


async def post(client: httpx.AsyncClient, world: World, who: str, body: dict) -> httpx.Response:
    return await client.post("/m/v1/events", json=body, headers=world.headers(who))


async def test_a_carrier_cannot_scan_in_transit_what_its_leg_signature_records(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Recorded by the carrier's scan, the transit would leave the leg unsignable for ever."""
    manifest = (await call(client, world, "maker", "", parties.body)).json()
    mid = manifest["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    code = parties.batches[0]
    scan = event("in_transit", code, device_time=(NOW - timedelta(hours=2)).isoformat())
    refused = await post(client, world, "carrier", scan)
    assert (refused.status_code, refused.json()["field"]) == (409, "event_type"), refused.text
    assert manifest["number"] in refused.json()["detail"]
    assert "signs its leg" in refused.json()["detail"]
    assert (await Batch.get(code=code)).state == "handed_over"
    # Nor does the carrier's scan offer it.
    scanned = await client.get("/m/v1/scan", params={"qr": code}, headers=world.headers("carrier"))
    assert scanned.status_code == 200, scanned.text
    assert "in_transit" not in scanned.json()["actions"]
    assert "handed_over" in scanned.json()["actions"]
    signed = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=2))
    assert signed.status_code == 200, signed.text
    assert {b.state for b in await Batch.filter(code__in=parties.batches)} == {"in_transit"}


async def test_a_receiver_cannot_scan_received_what_its_decision_records(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Not even as the batches come in transit on the first leg, before the second is signed:
    its sync is refused, and the manifest then runs to its decision."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    signed = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=3))
    assert signed.status_code == 200, signed.text
    at = (NOW - timedelta(minutes=150)).isoformat()
    scans = [
        event("received", code, outcome="accepted", weight_kg="400", device_time=at)
        for code in parties.batches
    ]
    synced = await client.post("/m/v1/sync", json={"events": scans}, headers=world.headers("plant"))
    results = synced.json()["results"]
    assert [(r["status"], r["error"]["field"]) for r in results] == [
        ("rejected", "event_type"),
        ("rejected", "event_type"),
    ], synced.text
    assert "decision" in results[0]["error"]["detail"]
    assert {b.state for b in await Batch.filter(code__in=parties.batches)} == {"in_transit"}
    for code in parties.batches:
        handover = event(
            "handed_over", code, to_organization_id=world.orgs["second"].id, device_time=at
        )
        assert (await post(client, world, "carrier", handover)).status_code == 201
    signed = await sign_leg(client, world, mid, 2, "second", NOW - timedelta(hours=2))
    assert signed.status_code == 200, signed.text
    arrival = {"arrived_at": (NOW - timedelta(hours=1)).isoformat()}
    assert (await call(client, world, "plant", f"/{mid}/arrival", arrival)).status_code == 200
    decided = await call(client, world, "plant", f"/{mid}/decision", ACCEPTED)
    assert decided.status_code == 200, decided.text
    assert {b.state for b in await Batch.filter(code__in=parties.batches)} == {"received"}


async def test_another_party_cannot_take_a_manifest_steps_id_first(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    parties: Parties,  # noqa: F811
) -> None:
    """The number is sequential and the code on the label: an id made of them alone could be
    used first, and the producer's signature would then conflict for ever."""
    manifest = (await call(client, world, "maker", "", parties.body)).json()
    code = parties.batches[0]
    plain = uuid.uuid5(uuid.NAMESPACE_URL, f"manifest:{manifest['number']}:handover:{code}")
    squatter = medical_bag(client_event_id=str(plain))
    assert (await post(client, world, "clinic", squatter)).status_code == 201
    at = NOW - timedelta(hours=2)
    signed = await sign_producer(client, world, manifest["id"], at)
    assert signed.status_code == 200, signed.text
    keyed = step_id(
        number=manifest["number"], step=HANDOVER_STEP, code=code, secret=settings.secret_key
    )
    handover = await CustodyEvent.get(batch__code=code, event_type=EventType.handed_over)
    assert handover.client_event_id == keyed != plain
    # A retry is applied once: answered by the manifest, or by the step's id if it got past.
    events = await CustodyEvent.all().count()
    again = await sign_producer(client, world, manifest["id"], at)
    assert again.json()["already_signed"] == 1, again.text
    first_leg = await Manifest.get(id=manifest["id"]).prefetch_related("legs")
    leg = min(first_leg.legs, key=lambda leg: leg.seq)
    step = {
        "client_event_id": keyed,
        "event_type": EventType.handed_over,
        "batch": code,
        "device_time": at,
        "to_organization_id": leg.carrier_id,
        "vehicle_plate": leg.vehicle_plate,
        "note": f"联单 {manifest['number']}",
    }
    await chain.record(world.principals["maker"], [step], settings.secret_key)
    assert await CustodyEvent.all().count() == events


async def test_a_decision_no_batch_can_weigh_is_refused_on_the_received_quantity(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """120 t received of one 90 t batch: its share is above what a custody event may weigh."""
    bag = medical_bag(
        stream="hazardous",
        category="hw.08",
        waste_code="900-249-08",
        hazard=["T", "I"],
        quantity="90000",
        device_time=(NOW - timedelta(hours=3)).isoformat(),
    )
    bag.pop("event_type")
    made = await client.post("/m/v1/batches", json=bag, headers=world.headers("maker"))
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    body = {
        **parties.body,
        "batches": [code],
        "quantity_kg": "90000",
        "legs": parties.body["legs"][:1],
    }
    mid = (await call(client, world, "maker", "", body)).json()["id"]
    assert (await sign_producer(client, world, mid)).status_code == 200
    assert (await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=2))).is_success
    arrival = {"arrived_at": (NOW - timedelta(hours=1)).isoformat()}
    assert (await call(client, world, "plant", f"/{mid}/arrival", arrival)).status_code == 200
    decision = {"decision": "accepted", "received_quantity_kg": "120000", "method": "R9"}
    refused = await call(client, world, "plant", f"/{mid}/decision", decision)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == "received_quantity_kg"
    manifest = await Manifest.get(id=mid)
    assert (manifest.state, manifest.decision) == ("arrived", None)
    assert await ManifestDiscrepancy.filter(manifest_id=mid).count() == 0
    assert (await Batch.get(code=code)).state == "in_transit"


async def test_a_receipt_a_manifest_decided_is_not_corrected_in_the_custody_chain(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Its outcome, weight and reason are the manifest's decision, shown by its PDF and public
    page: corrected here, they would differ there."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    for seq, who in ((1, "carrier"), (2, "second")):
        signed = await sign_leg(client, world, mid, seq, who, NOW - timedelta(hours=3 - seq))
        assert signed.status_code == 200, signed.text
    arrival = {"arrived_at": NOW.isoformat()}
    assert (await call(client, world, "plant", f"/{mid}/arrival", arrival)).status_code == 200
    assert (await call(client, world, "plant", f"/{mid}/decision", ACCEPTED)).status_code == 200
    code = parties.batches[0]
    receipt = await CustodyEvent.get(batch__code=code, event_type=EventType.received)
    for change in ({"weight_kg": "300"}, {"outcome": "rejected", "reason": "渗漏"}):
        correction = event("corrected", code, corrects=str(receipt.id), **change)
        refused = await post(client, world, "plant", correction)
        assert refused.status_code == 409, refused.text
        assert refused.json()["field"] == next(iter(change))
        assert refused.json()["manifest_id"] == mid
    # A note changes nothing the manifest states.
    noted = event("corrected", code, corrects=str(receipt.id), note="桶号 A-17")
    assert (await post(client, world, "plant", noted)).status_code == 201
    assert (await Batch.get(code=code)).state == "received"


async def test_the_quantity_received_is_shared_among_the_batches_as_they_declared_it(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Two batches of 400 kg on a manifest that declares 820 kg (within the tolerance): 790 kg
    received are 395 kg each, so the custody chain counts what the decision states (the
    declared total's share would give 385.366 each, 770.732 in all)."""
    declared_more = Parties(parties.batches, {**parties.body, "quantity_kg": "820"})
    arrived = await drive_to_arrival(client, world, declared_more)
    decision = {**ACCEPTED, "received_quantity_kg": "790"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
    assert decided.status_code == 200, decided.text
    receipts = await CustodyEvent.filter(
        batch__code__in=parties.batches, event_type=EventType.received
    )
    assert sorted(str(e.weight_kg) for e in receipts) == ["395.000", "395.000"]


async def test_a_handover_is_judged_by_the_manifest_the_batch_is_on_now(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A draft left unsigned with the same batches has an unsigned first leg of its own; the
    handover to the second carrier on the signed manifest is judged by that one alone. (No
    draft lists a batch another lists now; a database from before that rule may hold one.)"""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    made = await Manifest.get(id=mid).prefetch_related("legs")
    columns = {f: getattr(made, f) for f in made._meta.db_fields if f != "id"}
    stale = await Manifest.create(**{**columns, "number": f"{made.number[:-6]}999999"})
    for leg in made.legs:
        await ManifestLeg.create(
            manifest_id=stale.id,
            seq=leg.seq,
            carrier_id=leg.carrier_id,
            vehicle_plate=leg.vehicle_plate,
            permit_number=leg.permit_number,
        )
    assert (await sign_producer(client, world, mid)).status_code == 200
    first = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(minutes=110))
    assert first.status_code == 200, first.text
    onward = event(
        "handed_over",
        parties.batches[0],
        to_organization_id=world.orgs["second"].id,
        device_time=(NOW - timedelta(minutes=100)).isoformat(),
    )
    handed = await post(client, world, "carrier", onward)
    assert handed.status_code == 201, handed.text


async def test_the_first_leg_may_precede_the_producers_signing_moment_by_a_clocks_skew(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """The producer signed without a time: its hand-over is the server's moment, and the
    carrier's phone may be up to 10 minutes behind it."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await call(client, world, "maker", f"/{mid}/sign")).status_code == 200
    signed_at = (await Manifest.get(id=mid)).producer_signed_at
    assert signed_at is not None
    late = await sign_leg(client, world, mid, 1, "carrier", signed_at - timedelta(minutes=15))
    assert (late.status_code, late.json()["field"]) == (422, "handover_at")
    skewed = await sign_leg(client, world, mid, 1, "carrier", signed_at - timedelta(minutes=5))
    assert skewed.status_code == 200, skewed.text


def test_the_received_quantity_is_shared_without_a_negative_part() -> None:
    """By the largest remainders: the shares add up to the quantity received, and none is below
    a gram however many round up; a quantity too small to give each batch a gram weighs none at
    nothing, refused naming it."""
    cases = [
        (Decimal("1000.003"), [Decimal(1), Decimal(1), Decimal(2)]),
        (Decimal("10.3"), [Decimal("2.5")] * 200),
        (Decimal("0.005"), [Decimal(1)] * 5),
    ]
    for received, declared in cases:
        shares = _allocated(received, {f"B{i}": mass for i, mass in enumerate(declared)})
        assert sum(shares) == received and min(shares) >= Decimal("0.001"), (received, shares)
        assert max(s / d for s, d in zip(shares, declared, strict=True)) - min(
            s / d for s, d in zip(shares, declared, strict=True)
        ) <= Decimal("0.001")
    # Enough grams for each, though one's share by mass would round to none: it takes a gram
    # from the largest.
    assert _allocated(Decimal(1), {"A": Decimal(1), "B": Decimal(1), "C": Decimal("0.001")}) == [
        Decimal("0.499"),
        Decimal("0.500"),
        Decimal("0.001"),
    ]
    # Shared by mass, each within a gram of its proportional share: a 200 kg drum and nine
    # 5 kg bags received at what they declared weigh what they declared.
    declared = {"drum": Decimal(200), **{f"bag{i}": Decimal(5) for i in range(9)}}
    assert _allocated(Decimal(245), declared) == list(declared.values())
    with pytest.raises(ValidationFailed) as refused:
        _allocated(Decimal("0.003"), {f"B{i}": Decimal(1) for i in range(5)})
    assert refused.value.field == "received_quantity_kg" and "5 batches" in refused.value.detail


def test_a_share_of_a_batch_of_no_known_mass_is_never_made_up() -> None:
    """A weighing is a measurement (docs/metrics.md §3): beside a batch of no known mass, the
    decision's one quantity cannot be shared without making one up, neither as 0 kg (its
    neighbour then weighed at the whole) nor as an equal part; the refusal names `decision`
    and the batch. Alone, the batch weighs the whole quantity received."""
    for declared in ({"A": Decimal(500), "B": None}, {"A": None, "B": None}):
        with pytest.raises(RuleViolation) as refused:
            _allocated(Decimal(600), declared)
        assert refused.value.field == "decision"
        assert "B" in refused.value.detail
    assert _allocated(Decimal("183.5"), {"B": None}) == [Decimal("183.5")]


async def test_a_decisions_reason_is_refused_when_a_receipt_could_not_hold_it(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Its reason goes on every batch's receipt: the contract allows no longer a reason than a
    custody event's, and a longer one is refused naming it, with nothing decided."""
    limits = [
        TypeAdapter(model).json_schema()["properties"]["reason"]["anyOf"][0]["maxLength"]
        for model in (DecisionCommand, EventCommand)
    ]
    assert limits[0] == limits[1], limits
    arrived = await drive_to_arrival(client, world, parties)
    decision = {"decision": "rejected", "received_quantity_kg": "0", "reason": "漏" * 1001}
    refused = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
    assert (refused.status_code, refused.json()["field"]) == (422, "reason"), refused.text
    assert (await Manifest.get(id=arrived["id"])).state == "arrived"


async def test_a_batch_on_an_open_manifest_goes_only_to_the_parties_it_names(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Rejected on a first manifest and back with its producer, the batch goes out again on a
    second whose one carrier is the first's second: that carrier may not hand it to the first
    manifest's first carrier, whom the open manifest does not name."""
    first = await drive_to_arrival(client, world, parties)
    rejected = {"decision": "rejected", "received_quantity_kg": "0", "reason": "漏液"}
    decided = await call(client, world, "plant", f"/{first['id']}/decision", rejected)
    assert decided.status_code == 200, decided.text
    now = datetime.now(UTC)
    code = parties.batches[0]
    back = event(
        "handed_over",
        code,
        to_organization_id=world.orgs["maker"].id,
        device_time=(now - timedelta(minutes=3)).isoformat(),
    )
    returned = await post(client, world, "second", back)
    assert returned.status_code == 201, returned.text
    kept = event("stored", code, device_time=(now - timedelta(seconds=150)).isoformat())
    stored = await post(client, world, "maker", kept)
    assert stored.status_code == 201, stored.text
    one_leg = {
        **parties.body,
        "batches": [code],
        "quantity_kg": "400",
        "legs": parties.body["legs"][1:],
    }
    drafted = await call(client, world, "maker", "", one_leg)
    assert drafted.status_code == 201, drafted.text
    again = drafted.json()["id"]
    signed = await sign_producer(client, world, again, now - timedelta(minutes=2))
    assert signed.status_code == 200, signed.text
    astray = event(
        "handed_over",
        code,
        to_organization_id=world.orgs["carrier"].id,
        device_time=(now - timedelta(minutes=1)).isoformat(),
    )
    refused = await post(client, world, "second", astray)
    assert (refused.status_code, refused.json()["field"]) == (409, "to_organization_id")
    assert (await Batch.get(code=code)).holder_id == world.orgs["second"].id


async def test_the_arrival_waits_for_batches_a_carrier_took_back(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Every leg signed, the last carrier may hand a batch back to another of the manifest's
    carriers; the receiver cannot receive it from there, so the arrival is refused (on
    `arrived_at`, naming the batch) until that carrier hands it over; once arrived, a batch
    goes to the receiver only, so the decision — a rejection too — can always close it."""
    drafted = await call(client, world, "maker", "", parties.body)
    manifest = drafted.json()["id"]
    assert (await sign_producer(client, world, manifest, NOW - timedelta(hours=3))).is_success
    assert (
        await sign_leg(client, world, manifest, 1, "carrier", NOW - timedelta(hours=2))
    ).is_success
    assert (
        await sign_leg(client, world, manifest, 2, "second", NOW - timedelta(hours=1))
    ).is_success
    taken, kept = parties.batches[:2]

    def handover(code: str, to: str, minutes: int) -> dict:
        at = NOW - timedelta(minutes=minutes)
        return event(
            "handed_over", code, to_organization_id=world.orgs[to].id, device_time=at.isoformat()
        )

    assert (await post(client, world, "second", handover(taken, "carrier", 40))).status_code == 201
    arrival = {"arrived_at": (NOW - timedelta(minutes=20)).isoformat()}
    early = await call(client, world, "plant", f"/{manifest}/arrival", arrival)
    assert (early.status_code, early.json()["field"]) == (409, "arrived_at")
    assert taken in early.json()["detail"]
    assert (await Manifest.get(id=manifest)).arrived_at is None

    assert (await post(client, world, "carrier", handover(taken, "plant", 30))).status_code == 201
    arrived = await call(client, world, "plant", f"/{manifest}/arrival", arrival)
    assert arrived.status_code == 200, arrived.text
    astray = await post(client, world, "second", handover(kept, "carrier", 10))
    assert (astray.status_code, astray.json()["field"]) == (409, "to_organization_id")
    rejected = {"decision": "rejected", "received_quantity_kg": "0", "reason": "漏液"}
    decided = await call(client, world, "plant", f"/{manifest}/decision", rejected)
    assert decided.status_code == 200, decided.text
