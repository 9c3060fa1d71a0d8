"""Where a manifest lets its batches go and what its signatures and decision record: the
refused part's way back, nothing more after a decision, each leg taking the batches over in the
custody chain, a partial acceptance that refuses a part, a declared quantity its batches bear
out, and the receiver's licence on the day of arrival."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx

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
from wastetrack.batches.models import Batch, IdentifierSequence
from wastetrack.core.settings import Settings
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import EventType
from wastetrack.manifests.models import (
    Manifest,
    ManifestDiscrepancy,
    ManifestRevision,
    ManifestSerial,
)
from wastetrack.registry.models import FacilityLicence, Organization

PARTLY = {
    "decision": "partially_accepted",
    "received_quantity_kg": "640",
    "method": "R9",
    "reason": "一桶渗漏",
}


async def post(client: httpx.AsyncClient, world: World, who: str, body: dict) -> httpx.Response:
    return await client.post("/m/v1/events", json=body, headers=world.headers(who))


async def tag_oil(client: httpx.AsyncClient, world: World, **fields: str) -> str:
    """A batch of the maker's waste oil, 400 kg unless said otherwise; its code."""
    bag = medical_bag(
        stream="hazardous",
        category="hw.08",
        waste_code="900-249-08",
        hazard=["T", "I"],
        **{"quantity": "400", "device_time": (NOW - timedelta(hours=3)).isoformat(), **fields},
    )
    bag.pop("event_type")
    made = await client.post("/m/v1/batches", json=bag, headers=world.headers("maker"))
    assert made.status_code == 201, made.text
    return str(made.json()["code"])


async def test_the_refused_part_of_a_partial_acceptance_goes_back_to_its_producer(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """No manifest lists the refused part (a batch of its own): the manifest of the batch it was
    split from opens its way back, to the producer, not to the receiver."""
    arrived = await drive_to_arrival(client, world, parties)
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", PARTLY)
    assert decided.status_code == 200, decided.text
    originals = await Batch.filter(code__in=parties.batches).values_list("id", flat=True)
    remainders = await Batch.filter(split_from_id__in=originals)
    assert {(b.state, b.holder_id) for b in remainders} == {("rejected", world.orgs["second"].id)}
    refused, returned = remainders
    at = NOW.isoformat()
    again = event(
        "handed_over", refused.code, to_organization_id=world.orgs["plant"].id, device_time=at
    )
    redelivered = await post(client, world, "second", again)
    assert (redelivered.status_code, redelivered.json()["field"]) == (409, "to_organization_id")
    home = event(
        "handed_over", returned.code, to_organization_id=world.orgs["maker"].id, device_time=at
    )
    back = await post(client, world, "second", home)
    assert back.status_code == 201, back.text
    assert (await Batch.get(id=returned.id)).holder_id == world.orgs["maker"].id


async def test_a_decided_manifest_lets_no_party_pass_the_waste_it_accepted(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Received by the plant, the batch does not leave it for the manifest's old carrier: a
    decided manifest opens only the way back of what it refused."""
    arrived = await drive_to_arrival(client, world, parties)
    accepted = {"decision": "accepted", "received_quantity_kg": "800", "method": "R9"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", accepted)
    assert decided.status_code == 200, decided.text
    code = parties.batches[0]
    out = event(
        "handed_over",
        code,
        to_organization_id=world.orgs["carrier"].id,
        device_time=NOW.isoformat(),
    )
    refused = await post(client, world, "plant", out)
    assert (refused.status_code, refused.json()["field"]) == (409, "to_organization_id")
    batch = await Batch.get(code=code)
    assert (batch.state, batch.holder_id) == ("received", world.orgs["plant"].id)


async def test_a_later_legs_signature_takes_the_batches_over_from_the_previous_carrier(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """The first carrier scanned no handover (offline): the second leg's signature records it,
    as the first carrier's, at the signature's time, and puts the batches in transit."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    first = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=2))
    assert first.status_code == 200, first.text
    at = NOW - timedelta(hours=1)
    second = await sign_leg(client, world, mid, 2, "second", at)
    assert second.status_code == 200, second.text
    for code in parties.batches:
        batch = await Batch.get(code=code)
        assert (batch.state, batch.holder_id) == ("in_transit", world.orgs["second"].id)
        chain = await CustodyEvent.filter(batch_id=batch.id).order_by("seq")
        handover, transit = chain[-2:]
        assert (handover.event_type, handover.to_organization_id) == (
            EventType.handed_over,
            world.orgs["second"].id,
        )
        assert handover.organization_id == world.orgs["carrier"].id
        assert handover.actor_id == world.principals["carrier"].user_id
        assert handover.device_time == transit.device_time == at
        assert (transit.event_type, transit.organization_id) == (
            EventType.in_transit,
            world.orgs["second"].id,
        )


async def test_a_carrier_hands_the_batch_only_to_the_next_legs_carrier(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """While the second leg is unsigned, the first carrier may not hand the batch straight to
    the receiver: the second leg could then never take it over."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    first = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=2))
    assert first.status_code == 200, first.text
    code = parties.batches[0]
    at = (NOW - timedelta(minutes=90)).isoformat()
    skip = event("handed_over", code, to_organization_id=world.orgs["plant"].id, device_time=at)
    refused = await post(client, world, "carrier", skip)
    assert (refused.status_code, refused.json()["field"]) == (409, "to_organization_id")
    onward = event("handed_over", code, to_organization_id=world.orgs["second"].id, device_time=at)
    assert (await post(client, world, "carrier", onward)).status_code == 201


async def test_a_partial_acceptance_refuses_a_part_of_what_the_batches_declared(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """800 kg received of 800 declared leaves nothing to refuse: a 422 naming the quantity
    received, nothing decided."""
    arrived = await drive_to_arrival(client, world, parties)
    for received in ("800", "900"):
        decision = {**PARTLY, "received_quantity_kg": received}
        refused = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
        assert (refused.status_code, refused.json()["field"]) == (422, "received_quantity_kg")
        assert "800.000 kg" in refused.json()["detail"]
    assert (await Manifest.get(id=arrived["id"])).state == "arrived"
    assert {b.state for b in await Batch.filter(code__in=parties.batches)} == {"in_transit"}


async def test_a_receipts_refusal_of_its_outcome_names_the_decision(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A load is received whole (custody refuses a part of one on `outcome`): the decision's
    refusal names its own field, `decision`."""
    bags = [await tag_oil(client, world) for _ in range(2)]
    load = await tag_oil(client, world, quantity="800")
    packed = event(
        "aggregated", load, children=bags, device_time=(NOW - timedelta(minutes=170)).isoformat()
    )
    assert (await post(client, world, "maker", packed)).status_code == 201
    body = {**parties.body, "batches": [load]}
    arrived = await drive_to_arrival(client, world, Parties([load], body))
    refused = await call(client, world, "plant", f"/{arrived['id']}/decision", PARTLY)
    assert (refused.status_code, refused.json()["field"]) == (409, "decision"), refused.text
    assert (await Manifest.get(id=arrived["id"])).state == "arrived"


async def test_a_declared_quantity_its_batches_do_not_bear_out_is_refused(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """80 kg typed for batches that declare 800 kg: refused at the draft and as a revision
    when its last approval would apply it, naming the field, with the batches' sum; 5 % off is
    let through."""
    typo = await call(client, world, "maker", "", {**parties.body, "quantity_kg": "80"})
    assert (typo.status_code, typo.json()["field"]) == (422, "quantity_kg"), typo.text
    assert "800.000 kg" in typo.json()["detail"]
    assert await Manifest.all().count() == 0
    made = await call(client, world, "maker", "", {**parties.body, "quantity_kg": "760"})
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    assert (await sign_producer(client, world, mid)).status_code == 200
    change = {"changes": {"quantity_kg": "80"}, "reason": "更正"}
    revised = await call(client, world, "carrier", f"/{mid}/revisions", change)
    assert revised.status_code == 201, revised.text
    rid = revised.json()["id"]
    for who in ("maker", "second"):
        approved = await call(client, world, who, f"/{mid}/revisions/{rid}/approve")
        assert approved.status_code == 200, approved.text
    last = await call(client, world, "plant", f"/{mid}/revisions/{rid}/approve")
    assert (last.status_code, last.json()["field"]) == (422, "changes.quantity_kg"), last.text
    assert (await Manifest.get(id=mid)).quantity_kg == Decimal("760")
    assert (await ManifestRevision.get(id=rid)).state == "pending"


async def test_a_listed_batchs_declaration_is_not_corrected_off_its_manifests_quantity(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A drum of 400 kg corrected to 40 on an 800 kg manifest, a draft or signed, would have
    the manifest print a quantity its batches do not bear out (and the receiver's honest
    440 kg a discrepancy): refused naming `quantity` and the manifest, nothing written. Within
    5 %, or once the manifest is cancelled, the correction stands."""
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    mid, number = made.json()["id"], made.json()["number"]
    code = parties.batches[0]
    events = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("maker"))
    tagging = events.json()[0]["id"]

    def correction(quantity: str) -> dict:
        return event("corrected", code, minutes=-50, corrects=tagging, quantity=quantity)

    for signed, then in ((False, "cancel the draft"), (True, "propose a revision")):
        if signed:
            assert (await sign_producer(client, world, mid)).status_code == 200
        refused = await post(client, world, "maker", correction("40"))
        assert (refused.status_code, refused.json()["field"]) == (409, "quantity"), refused.text
        assert number in refused.json()["detail"] and "440" in refused.json()["detail"]
        assert then in refused.json()["detail"]
        assert (await Batch.get(code=code)).quantity == Decimal("400")
    assert (await post(client, world, "maker", correction("390"))).status_code == 201
    # The way the refusal names: a revision first, the correction while it is pending, the
    # revision applied by the last approval.
    change = {"changes": {"quantity_kg": "1000"}, "reason": "一桶实为600公斤"}
    proposed = await call(client, world, "maker", f"/{mid}/revisions", change)
    assert proposed.status_code == 201, proposed.text
    assert (await post(client, world, "maker", correction("600"))).status_code == 201
    rid = proposed.json()["id"]
    for who in ("carrier", "second", "plant"):
        approved = await call(client, world, who, f"/{mid}/revisions/{rid}/approve")
        assert approved.status_code == 200, approved.text
    assert (await Manifest.get(id=mid)).quantity_kg == Decimal("1000")
    cancel = {"reason": "重新申报"}
    assert (await call(client, world, "manager", f"/{mid}/cancel", cancel)).status_code == 200
    assert (await post(client, world, "maker", correction("40"))).status_code == 201
    assert (await Batch.get(code=code)).quantity == Decimal("40")


async def test_a_batch_listed_on_a_draft_is_not_cancelled(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Cancelled, the draft would list a batch in no register or figure, and the producer's
    signature would fail on it: refused naming the batch and the manifest, nothing written;
    once the manifest is cancelled, the batch may be."""
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    mid, number = made.json()["id"], made.json()["number"]
    code = parties.batches[0]
    cancel = event("cancelled", code, minutes=-50, reason="标签打错")
    refused = await post(client, world, "maker", cancel)
    assert (refused.status_code, refused.json()["field"]) == (409, "batch"), refused.text
    assert number in refused.json()["detail"]
    assert (await Batch.get(code=code)).state == "tagged"
    assert (
        await call(client, world, "maker", f"/{mid}/cancel", {"reason": "重开"})
    ).status_code == 200
    assert (await post(client, world, "maker", cancel)).status_code == 201


async def test_the_decision_judges_the_receivers_licence_on_the_day_of_arrival(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    parties: Parties,  # noqa: F811
) -> None:
    """The licence ran to the day the waste arrived and has lapsed since: the decision taken
    today is on that arrival, as its receipts are (their time: the arrival)."""
    arrived_at = NOW - timedelta(days=1)
    old = [
        await tag_oil(client, world, device_time=(arrived_at - timedelta(hours=3)).isoformat())
        for _ in range(2)
    ]
    arrived = await drive_to_arrival(
        client, world, Parties(old, {**parties.body, "batches": old}), arrived=arrived_at
    )
    arrival_day = arrived_at.astimezone(ZoneInfo(settings.timezone)).date()
    await FacilityLicence.filter(organization_id=world.orgs["plant"].id).update(
        valid_until=arrival_day
    )
    accepted = {"decision": "accepted", "received_quantity_kg": "800", "method": "R9"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", accepted)
    assert decided.status_code == 200, decided.text
    receipts = await CustodyEvent.filter(batch__code__in=old, event_type=EventType.received)
    assert {e.device_time for e in receipts} == {arrived_at}


async def test_a_drum_counted_in_items_leaves_the_quantity_unjudged(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A batch of no known mass (a drum counted as one item: hazardous categories have no
    catalog estimate) would make the batches' sum say too little: the declared quantity is not
    judged by it, and a decision that would share the quantity received by it, accepting in
    whole or in part, is refused; a rejection weighs nothing and is taken."""
    counted = await tag_oil(client, world, quantity="1", unit="count")
    body = {**parties.body, "batches": [parties.batches[0], counted], "quantity_kg": "600"}
    # Drafted (the quantity unjudged), signed, carried and arrived.
    arrived = await drive_to_arrival(client, world, Parties(body["batches"], body))
    partly = {**PARTLY, "received_quantity_kg": "500"}
    whole = {**PARTLY, "decision": "accepted", "received_quantity_kg": "600"}
    for decision in (partly, whole):
        refused = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
        assert (refused.status_code, refused.json()["field"]) == (409, "decision"), refused.text
    rejected = {"decision": "rejected", "received_quantity_kg": "0", "reason": "桶未称重"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", rejected)
    assert decided.status_code == 200, decided.text
    receipts = await CustodyEvent.filter(
        batch__code__in=body["batches"], event_type=EventType.received
    )
    assert [e.weight_kg for e in receipts] == [None, None]


async def test_an_acceptance_makes_up_no_weighing_for_a_drum_of_no_known_mass(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """400 kg declared in kg beside a drum counted as one item, 600 kg received: shared by
    the masses the batches declare, the drum's share would be a made-up 0 kg weighing and the
    other's 600 kg a false discrepancy. The acceptance is refused naming `decision`, with what
    to do, and changes nothing; once the producer has corrected the drum's tagging to kg, the
    quantity is shared by the masses declared."""
    counted = await tag_oil(client, world, quantity="1", unit="count")
    body = {**parties.body, "batches": [parties.batches[0], counted], "quantity_kg": "600"}
    arrived = await drive_to_arrival(client, world, Parties(body["batches"], body))
    whole = {"decision": "accepted", "received_quantity_kg": "600", "method": "R9"}
    refused = await call(client, world, "plant", f"/{arrived['id']}/decision", whole)
    assert (refused.status_code, refused.json()["field"]) == (409, "decision"), refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert counted in refused.json()["detail"] and "reject" in refused.json()["detail"]
    manifest = await Manifest.get(id=arrived["id"])
    assert (manifest.state, manifest.receiver_signed_at, manifest.decision) == (
        "arrived",
        None,
        None,
    )
    assert not await CustodyEvent.filter(
        batch__code__in=body["batches"], event_type=EventType.received
    ).exists()
    assert not await ManifestDiscrepancy.filter(manifest_id=arrived["id"]).exists()
    assert {b.state for b in await Batch.filter(code__in=body["batches"])} == {"in_transit"}
    drum = await Batch.get(code=counted)
    tagging = await CustodyEvent.get(batch_id=drum.id, seq=1)
    weighed = event("corrected", counted, corrects=str(tagging.id), quantity="200", unit="kg")
    corrected = await post(client, world, "maker", weighed)
    assert corrected.status_code == 201, corrected.text
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", whole)
    assert decided.status_code == 200, decided.text
    receipts = await CustodyEvent.filter(
        batch__code__in=body["batches"], event_type=EventType.received
    ).select_related("batch")
    assert {e.batch.code: e.weight_kg for e in receipts} == {
        parties.batches[0]: Decimal("400.000"),
        counted: Decimal("200.000"),
    }
    assert decided.json()["discrepancies"] == []


async def test_a_single_drum_of_no_known_mass_is_weighed_by_the_quantity_received(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Alone on its manifest, the drum's receipt is the quantity received, measured: nothing
    is shared, nothing made up. A part of it cannot be refused (no declared mass to refuse a
    part of)."""
    counted = await tag_oil(client, world, quantity="1", unit="count")
    body = {**parties.body, "batches": [counted], "quantity_kg": "180"}
    arrived = await drive_to_arrival(client, world, Parties(body["batches"], body))
    partly = {**PARTLY, "received_quantity_kg": "150"}
    refused = await call(client, world, "plant", f"/{arrived['id']}/decision", partly)
    assert (refused.status_code, refused.json()["field"]) == (409, "decision"), refused.text
    whole = {"decision": "accepted", "received_quantity_kg": "183.5", "method": "R9"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", whole)
    assert decided.status_code == 200, decided.text
    receipt = await CustodyEvent.get(batch__code=counted, event_type=EventType.received)
    assert receipt.weight_kg == Decimal("183.500")


async def test_a_draft_takes_no_batch_stored_in_a_carriers_hands(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Its manifest cancelled after the producer's signature, the batch is stored at the first
    carrier's depot: the producer's signature could not hand it over (only its holder may), so
    the draft is refused naming the batch, and spends no serial."""
    one_leg = {**parties.body, "legs": parties.body["legs"][:1]}
    first = {**one_leg, "batches": parties.batches[1:], "quantity_kg": "400"}
    mid = (await call(client, world, "maker", "", first)).json()["id"]
    assert (await sign_producer(client, world, mid)).status_code == 200
    cancelled = await call(client, world, "maker", f"/{mid}/cancel", {"reason": "车辆故障"})
    assert cancelled.status_code == 200, cancelled.text
    code = parties.batches[1]
    depot = event("stored", code, device_time=(NOW - timedelta(minutes=90)).isoformat())
    stored = await post(client, world, "carrier", depot)
    assert stored.status_code == 201, stored.text
    batch = await Batch.get(code=code)
    assert (batch.state, batch.holder_id) == ("stored", world.orgs["carrier"].id)
    serials = await ManifestSerial.all().values_list("last_serial", flat=True)
    drafted = await call(client, world, "maker", "", one_leg)
    assert (drafted.status_code, drafted.json()["field"]) == (409, "batches[1]"), drafted.text
    assert await Manifest.all().count() == 1
    assert await ManifestSerial.all().values_list("last_serial", flat=True) == serials


async def test_a_draft_takes_a_refused_part_returned_to_its_producer(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """The refused part of a partial acceptance, handed back to the producer (`handed_over`,
    in the producer's hands), goes on a new manifest: the producer holds it, and its signature
    hands it over to the first carrier."""
    arrived = await drive_to_arrival(client, world, parties)
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", PARTLY)
    assert decided.status_code == 200, decided.text
    originals = await Batch.filter(code__in=parties.batches).values_list("id", flat=True)
    part = (await Batch.filter(split_from_id__in=originals).order_by("id"))[0]
    home = event(
        "handed_over",
        part.code,
        to_organization_id=world.orgs["maker"].id,
        device_time=NOW.isoformat(),
    )
    assert (await post(client, world, "second", home)).status_code == 201
    part = await Batch.get(id=part.id)
    assert (part.state, part.holder_id) == ("handed_over", world.orgs["maker"].id)
    again = {
        **parties.body,
        "batches": [part.code],
        "quantity_kg": str(part.quantity),
        "legs": parties.body["legs"][:1],
    }
    drafted = await call(client, world, "maker", "", again)
    assert drafted.status_code == 201, drafted.text
    signed = await sign_producer(client, world, drafted.json()["id"], datetime.now(UTC))
    assert signed.status_code == 200, signed.text
    part = await Batch.get(id=part.id)
    assert (part.state, part.holder_id) == ("handed_over", world.orgs["carrier"].id)


async def test_a_refused_part_takes_an_hj1276_identifier_of_its_own(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A remainder is a batch of its own with a label of its own; split from a drum that has
    an HJ 1276 identifier, it is numbered under the drum's unit, waste code and day (it had
    none, and its label printed a dash), and its chain pins the number as a tagging's does."""
    await Organization.filter(id=world.orgs["maker"].id).update(credit_code="91350100M000100Y43")
    codes = [await tag_oil(client, world) for _ in range(2)]
    body = {**parties.body, "batches": codes}
    arrived = await drive_to_arrival(client, world, Parties(codes, body))
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", PARTLY)
    assert decided.status_code == 200, decided.text
    drums = await Batch.filter(code__in=codes).order_by("id")
    parts = await Batch.filter(split_from_id__in=[d.id for d in drums]).order_by("split_from_id")
    assert len(parts) == 2
    last = max(int(d.identifier[-3:]) for d in drums if d.identifier)
    for number, (drum, part) in enumerate(zip(drums, parts, strict=True), start=last + 1):
        assert part.identifier == f"{drum.identifier[:-3]}{number:03d}"
        tagging = await CustodyEvent.get(batch_id=part.id, seq=1)
        assert tagging.details["identifier"] == part.identifier
        found = await client.get(f"/m/v1/batches/{part.code}", headers=world.headers("maker"))
        assert found.json()["identifier"] == part.identifier
        verdict = await client.get(
            f"/m/v1/batches/{part.code}/verify", headers=world.headers("maker")
        )
        assert verdict.json()["valid"] is True, verdict.text
    # A day with no number left refuses the partial decision, naming the decision (it named
    # the tagging's waste_code), and writes nothing.
    more = [await tag_oil(client, world) for _ in range(2)]
    arrived = await drive_to_arrival(client, world, Parties(more, {**body, "batches": more}))
    prefix = (await Batch.get(code=more[0])).identifier[:-3]
    await IdentifierSequence.filter(prefix=prefix).update(last_number=999)
    before = await CustodyEvent.all().count()
    full = await call(client, world, "plant", f"/{arrived['id']}/decision", PARTLY)
    assert (full.status_code, full.json()["field"]) == (409, "decision"), full.text
    assert await CustodyEvent.all().count() == before


async def _tag_hw49_drum(client: httpx.AsyncClient, world: World) -> str:
    """A 100 kg drum of the maker's HW49 waste (900-041-49); its code."""
    drum = medical_bag(
        stream="hazardous",
        category="hw.49",
        waste_code="900-041-49",
        hazard=["T"],
        quantity="100",
        device_time=(NOW - timedelta(hours=3)).isoformat(),
    )
    drum.pop("event_type")
    made = await client.post("/m/v1/batches", json=drum, headers=world.headers("maker"))
    assert made.status_code == 201, made.text
    return str(made.json()["code"])


async def _load_holding_hw49(client: httpx.AsyncClient, world: World) -> str:
    """An HW08 load of the maker's (900-249-08) into which a drum of HW49 waste was packed."""
    drum = await _tag_hw49_drum(client, world)
    load = await tag_oil(client, world, quantity="100")
    packed = event(
        "aggregated",
        load,
        children=[drum],
        device_time=(NOW - timedelta(minutes=170)).isoformat(),
    )
    assert (await post(client, world, "maker", packed)).status_code == 201
    return load


async def test_the_receiver_must_be_licensed_for_what_the_listed_loads_hold(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """The receiver holds an HW08 licence only; the HW08 load listed holds a drum of HW49. Its
    receipt would be refused (a container's waste is its contents'), so the draft is, naming
    the receiver and what it lacks, nothing written."""
    load = await _load_holding_hw49(client, world)
    body = {**parties.body, "batches": [load], "quantity_kg": "100"}
    refused = await call(client, world, "maker", "", body)
    assert (refused.status_code, refused.json()["field"]) == (403, "receiver_organization_id")
    assert "hw.49" in refused.json()["detail"]
    assert await Manifest.all().count() == 0


async def test_a_receiver_whose_licences_share_no_method_for_the_load_is_refused_at_the_draft(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """HW08 licensed for R9 and D10, HW49 for R4 only: no method treats the load holding both,
    so its decision could accept it by none and the waste would travel to be rejected. The
    draft judges the receiver as the load's receipt will be: refused, nothing written, no
    serial spent."""
    from wastetrack.registry import service as registry

    await registry.add_licence(
        organization_id=world.orgs["plant"].id, category_key="hw.49", method_codes=["R4"]
    )
    load = await _load_holding_hw49(client, world)
    body = {**parties.body, "batches": [load], "quantity_kg": "100"}
    refused = await call(client, world, "maker", "", body)
    assert (refused.status_code, refused.json()["field"]) == (403, "receiver_organization_id")
    assert "share no method" in refused.json()["detail"], refused.text
    assert await Manifest.all().count() == 0
    assert not await ManifestSerial.filter(last_serial__gt=0).exists()


async def test_the_decisions_method_must_be_licensed_for_everything_the_load_holds(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """HW08 licensed for R9 and D10, HW49 for D10 only: the load holding both may be accepted
    by D10, not by R9 (403 naming `method`, nothing decided), as its treatment would be judged."""
    from wastetrack.registry import service as registry

    await registry.add_licence(
        organization_id=world.orgs["plant"].id, category_key="hw.49", method_codes=["D10"]
    )
    load = await _load_holding_hw49(client, world)
    body = {**parties.body, "batches": [load], "quantity_kg": "100"}
    arrived = await drive_to_arrival(client, world, Parties([load], body))
    path = f"/{arrived['id']}/decision"
    accepted = {"decision": "accepted", "received_quantity_kg": "100", "method": "R9"}
    refused = await call(client, world, "plant", path, accepted)
    assert (refused.status_code, refused.json()["field"]) == (403, "method"), refused.text
    assert "D10" in refused.json()["detail"]
    assert (await Manifest.get(id=arrived["id"])).state == "arrived"
    assert not await CustodyEvent.filter(batch__code=load, event_type=EventType.received)
    decided = await call(client, world, "plant", path, {**accepted, "method": "D10"})
    assert decided.status_code == 200, decided.text
    assert (await Batch.get(code=load)).state == "received"


async def test_a_batch_a_draft_lists_is_packed_nowhere_and_its_load_takes_nothing_more(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A drafted drum packed into a load would be `aggregated` (final), and the producer's
    signature then fail on it; a listed load taking a drum of HW49 would hold waste its
    receiver (HW08 only) may not take and a mass the manifest does not declare. Both packings
    are a 409 naming the manifest, from the draft on, nothing packed; the draft is signed."""
    load = await tag_oil(client, world, quantity="100")
    listed = [*parties.batches, load]
    body = {**parties.body, "batches": listed, "quantity_kg": "900"}
    made = await call(client, world, "maker", "", body)
    assert made.status_code == 201, made.text
    other = await tag_oil(client, world, quantity="100")
    into_other = event("aggregated", other, minutes=-50, children=[parties.batches[0]])
    refused = await post(client, world, "maker", into_other)
    assert (refused.status_code, refused.json()["field"]) == (409, "children[0]"), refused.text
    assert refused.json()["manifest_id"] == made.json()["id"]
    drum = await _tag_hw49_drum(client, world)
    into_load = event("aggregated", load, minutes=-50, children=[drum])
    refused = await post(client, world, "maker", into_load)
    assert (refused.status_code, refused.json()["field"]) == (409, "batch"), refused.text
    assert refused.json()["manifest_id"] == made.json()["id"]
    assert await Batch.filter(parent_id__not_isnull=True).count() == 0
    # Nor does the scan offer what would be refused: a listed drum's cancellation, more waste
    # into the listed load; the load not listed offers it.
    for code, offered in ((parties.batches[0], False), (load, False), (other, True)):
        scanned = await client.get(
            "/m/v1/scan", params={"qr": code}, headers=world.headers("maker")
        )
        actions = scanned.json()["actions"]
        assert ("aggregated" in actions, "cancelled" in actions) == (offered, offered), actions
    assert (await sign_producer(client, world, made.json()["id"])).status_code == 200


async def test_a_listed_load_gives_nothing_back_until_its_manifest_is_cancelled(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """The draft lists a load holding a box holding a drum: taking either out (a packing
    undone, at any depth) would leave the manifest declaring a mass the load no longer holds,
    and free it for a second manifest. A 409 naming the manifest, nothing undone, from the
    draft on; once the manifest is cancelled, the packing may be undone."""
    drum = await tag_oil(client, world, quantity="100")
    box = await tag_oil(client, world, quantity="100")
    load = await tag_oil(client, world, quantity="100")
    for child, container, at in ((drum, box, -58), (box, load, -55)):
        packed = event("aggregated", container, minutes=at, children=[child])
        assert (await post(client, world, "maker", packed)).status_code == 201
    made = await call(
        client, world, "maker", "", {**parties.body, "batches": [load], "quantity_kg": "100"}
    )
    assert made.status_code == 201, made.text
    # The box out of the load, or the drum out of the box inside it: the load gives it back.
    undos = [
        event("corrected", child, minutes=-50, corrects=str(packing.id), aggregated=False)
        for child in (box, drum)
        for packing in await CustodyEvent.filter(
            batch__code=child, event_type=EventType.aggregated, related_batch_id__not_isnull=True
        )
    ]
    for undo in undos:
        refused = await post(client, world, "maker", undo)
        assert (refused.status_code, refused.json()["field"]) == (409, "aggregated"), refused.text
        assert refused.json()["manifest_id"] == made.json()["id"]
    assert await Batch.filter(code__in=[drum, box], parent_id=None).count() == 0
    cancel = {"reason": "重开"}
    assert (
        await call(client, world, "maker", f"/{made.json()['id']}/cancel", cancel)
    ).status_code == 200
    assert (await post(client, world, "maker", undos[1])).status_code == 201
    assert (await Batch.get(code=drum)).parent_id is None
