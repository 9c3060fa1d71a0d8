"""Cancelling a manifest (作废) before it arrives: by its producer while no carrier has signed,
by the region's manager until the arrival; nothing is signed on it after, and its batches may
go back to their producer from wherever it left them."""

import io
from datetime import UTC, datetime, timedelta

import httpx
import pypdf

from tests.factories import World, event, make_user
from tests.manifests.test_chain import post
from tests.manifests.test_manifests import (  # noqa: F401 (the fixture)
    NOW,
    Parties,
    _drums_of_oil,
    call,
    drive_to_arrival,
    parties,
    sign_both_legs,
    sign_leg,
    sign_producer,
)
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.custody.models import CustodyEvent
from wastetrack.manifests.models import Manifest, ManifestRevision
from wastetrack.manifests.queries import open_manifest_of

REASON = {"reason": "第二段承运车辆故障，改派"}


async def test_the_producer_cancels_until_a_carrier_signs_and_the_batches_go_back(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    draft = (await call(client, world, "maker", "", parties.body)).json()
    by_carrier = await call(client, world, "carrier", f"/{draft['id']}/cancel", REASON)
    assert (by_carrier.status_code, by_carrier.json()["field"]) == (403, "role")
    no_reason = await call(client, world, "maker", f"/{draft['id']}/cancel", {"reason": " "})
    assert (no_reason.status_code, no_reason.json()["field"]) == (422, "reason")
    cancelled = await call(client, world, "maker", f"/{draft['id']}/cancel", REASON)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["state"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        REASON["reason"],
    )
    # A cancelled draft is never signed, nor cancelled twice.
    signed = await sign_producer(client, world, draft["id"])
    assert (signed.status_code, signed.json()["field"]) == (409, "manifests[0]"), signed.text
    assert signed.json()["item_field"] == "manifest_id"
    twice = await call(client, world, "maker", f"/{draft['id']}/cancel", REASON)
    assert (twice.status_code, twice.json()["field"]) == (409, "manifest_id")

    # Signed by the producer: the batches are in the first carrier's hands, its leg unsigned.
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    revision = {"changes": {"packaging": "200L铁桶×5"}, "reason": "点数有误"}
    proposed = await call(client, world, "maker", f"/{mid}/revisions", revision)
    assert proposed.status_code == 201, proposed.text
    code = parties.batches[0]
    home = event(
        "handed_over",
        code,
        to_organization_id=world.orgs["maker"].id,
        device_time=(NOW - timedelta(hours=1)).isoformat(),
    )
    # While the manifest is open, the carrier may not take the batch back to the producer.
    kept = await post(client, world, "carrier", home)
    assert (kept.status_code, kept.json()["field"]) == (409, "to_organization_id"), kept.text
    cancelled = await call(client, world, "maker", f"/{mid}/cancel", REASON)
    assert cancelled.status_code == 200, cancelled.text
    assert await open_manifest_of(code) is None
    withdrawn = await ManifestRevision.get(id=proposed.json()["id"])
    assert (withdrawn.state, withdrawn.decided_at is not None) == ("withdrawn", True)
    leg = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(hours=2))
    assert (leg.status_code, leg.json()["field"]) == (409, "manifest_id"), leg.text
    answer = await call(
        client, world, "carrier", f"/{mid}/revisions/{proposed.json()['id']}/approve"
    )
    assert (answer.status_code, answer.json()["field"]) == (409, "manifest_id")
    # Nowhere else but home: the cancelled manifest names no other party for it.
    elsewhere = event(
        "handed_over",
        code,
        to_organization_id=world.orgs["plant"].id,
        device_time=(NOW - timedelta(hours=1)).isoformat(),
    )
    refused = await post(client, world, "carrier", elsewhere)
    assert (refused.status_code, refused.json()["field"]) == (409, "to_organization_id")
    back = await post(client, world, "carrier", home)
    assert back.status_code == 201, back.text
    batch = await Batch.get(code=code)
    assert (batch.state, batch.holder_id) == ("handed_over", world.orgs["maker"].id)
    # The chain keeps the producer's signed handover: nothing the manifest recorded is undone.
    steps = await CustodyEvent.filter(batch_id=batch.id).order_by("seq")
    assert [e.event_type for e in steps] == ["tagged", "handed_over", "handed_over"]
    pdf = await client.get(f"/m/v1/manifests/{mid}/manifest.pdf", headers=world.headers("maker"))
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Cancelled" in text and "已作废" in text  # the state by its name


async def test_the_regions_manager_cancels_a_manifest_a_later_carrier_never_signs(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=3))).status_code == 200
    first = await sign_leg(client, world, mid, 1, "carrier", NOW - timedelta(minutes=170))
    assert first.status_code == 200, first.text
    code = parties.batches[0]
    onward = event(
        "handed_over",
        code,
        to_organization_id=world.orgs["second"].id,
        device_time=(NOW - timedelta(hours=2)).isoformat(),
    )
    assert (await post(client, world, "carrier", onward)).status_code == 201
    # The second carrier holds the batch and never signs its leg.
    by_producer = await call(client, world, "maker", f"/{mid}/cancel", REASON)
    assert (by_producer.status_code, by_producer.json()["field"]) == (409, "manifest_id")
    assert "legs[0]'s carrier has signed" in by_producer.json()["detail"]
    by_auditor = await call(client, world, "auditor", f"/{mid}/cancel", REASON)
    assert by_auditor.status_code == 403
    # A town's manager elsewhere does not see the manifest at all.
    by_town = await call(client, world, "town_manager", f"/{mid}/cancel", REASON)
    assert by_town.status_code == 404
    before = (await Manifest.get(id=mid)).state
    assert before == "in_transit_leg_1"
    cancelled = await call(client, world, "manager", f"/{mid}/cancel", REASON)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled_at"] is not None
    # The second carrier takes it back to the producer; the first still holds the other batch
    # in transit, and takes that one back too.
    for who, batch_code in (("second", code), ("carrier", parties.batches[1])):
        home = event(
            "handed_over",
            batch_code,
            to_organization_id=world.orgs["maker"].id,
            device_time=(NOW - timedelta(hours=1)).isoformat(),
        )
        back = await post(client, world, who, home)
        assert back.status_code == 201, back.text
    held = {b.holder_id for b in await Batch.filter(code__in=parties.batches)}
    assert held == {world.orgs["maker"].id}


async def test_an_arrived_manifest_is_decided_not_cancelled(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    arrived = await drive_to_arrival(client, world, parties)
    refused = await call(client, world, "manager", f"/{arrived['id']}/cancel", REASON)
    assert (refused.status_code, refused.json()["field"]) == (409, "manifest_id")
    assert (await Manifest.get(id=arrived["id"])).state == "arrived"


async def test_waste_handed_over_to_the_receiver_has_arrived_and_is_not_cancelled(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Every leg signed, the last carrier hands a drum to the receiver by scan before the
    arrival is recorded: cancelled then, the manifest would leave the drum at the facility
    with no decision to take it in or send it back (and its receipt judged by no manifest)."""
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (
        await sign_producer(client, world, mid, NOW - timedelta(minutes=130))
    ).status_code == 200
    await sign_both_legs(client, world, mid)
    code = parties.batches[0]
    given = event(
        "handed_over",
        code,
        to_organization_id=world.orgs["plant"].id,
        device_time=(NOW - timedelta(minutes=50)).isoformat(),
    )
    assert (await post(client, world, "second", given)).status_code == 201
    refused = await call(client, world, "manager", f"/{mid}/cancel", REASON)
    assert (refused.status_code, refused.json()["field"]) == (409, "manifest_id"), refused.text
    assert code in refused.json()["detail"]
    assert (await Manifest.get(id=mid)).state == "in_transit_leg_2"
    # The receiver takes the drum in by the manifest's decision, not by a scan.
    taken = event(
        "received",
        code,
        outcome="accepted",
        weight_kg="400",
        device_time=(NOW - timedelta(minutes=30)).isoformat(),
    )
    scanned = await post(client, world, "plant", taken)
    assert (scanned.status_code, scanned.json()["field"]) == (409, "event_type"), scanned.text
    assert (await Batch.get(code=code)).holder_id == world.orgs["plant"].id


async def test_a_draft_naming_its_producer_as_receiver_is_refused_and_one_stored_is_cancelled(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A plant making hazardous waste of its own drafts a manifest naming itself the receiver
    by mistake: refused, naming the receiver (a transfer goes to another organization), and
    nothing drafted. One stored before that rule took its drums, in its own hands, nowhere:
    its producer cancels it (else the drums could go on no other manifest)."""
    plant = world.orgs["plant"]
    await make_user(world, "plant_office", Role.generator, plant)
    codes = await _drums_of_oil(client, world, "plant_office", NOW - timedelta(hours=3))
    body = {**parties.body, "batches": codes, "receiver_organization_id": plant.id}
    refused = await call(client, world, "plant_office", "", body)
    assert (refused.status_code, refused.json()["field"]) == (422, "receiver_organization_id")
    assert not await Manifest.filter(producer_id=plant.id).exists()
    drafted = await call(client, world, "maker", "", parties.body)
    assert drafted.status_code == 201, drafted.text
    stored = await Manifest.get(id=drafted.json()["id"])
    stored.receiver_id = stored.producer_id  # as a draft of a stop before the rule
    await stored.save(update_fields=["receiver_id"])
    cancelled = await call(client, world, "maker", f"/{stored.id}/cancel", REASON)
    assert cancelled.status_code == 200, cancelled.text


async def test_after_a_cancellation_a_batch_goes_back_only_to_its_producer(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Refused on a first manifest, back home, then on a second one that is cancelled: the
    first manifest's receiver and carriers are no way out for it, only its producer."""
    first = await drive_to_arrival(client, world, parties, NOW - timedelta(minutes=50))
    rejected = {"decision": "rejected", "received_quantity_kg": "0", "reason": "包装破损"}
    decided = await call(client, world, "plant", f"/{first['id']}/decision", rejected)
    assert decided.status_code == 200, decided.text
    code = parties.batches[0]
    holder = "second"  # it delivered the batch (its leg took it over) and takes it back
    now = datetime.now(UTC)
    for who, body in (
        (holder, event("handed_over", code, to_organization_id=world.orgs["maker"].id)),
        ("maker", event("stored", code)),
    ):
        answer = await post(client, world, who, {**body, "device_time": now.isoformat()})
        assert answer.status_code == 201, answer.text
    one = {**parties.body, "batches": [code], "quantity_kg": "400"}
    again = await call(client, world, "maker", "", one)
    assert again.status_code == 201, again.text
    mid = again.json()["id"]
    assert (await sign_producer(client, world, mid, now)).status_code == 200
    assert (await call(client, world, "maker", f"/{mid}/cancel", REASON)).status_code == 200
    # A retried bulk signature of the cancelled manifest is the signature made before (it
    # writes nothing), answered with the manifest's state: cancelled.
    retried = await sign_producer(client, world, mid, now)
    assert retried.status_code == 200, retried.text
    (item,) = retried.json()["results"]
    assert (item["status"], item["state"]) == ("already_signed", "cancelled")
    for elsewhere in ("plant", "second"):
        body = event("handed_over", code, to_organization_id=world.orgs[elsewhere].id)
        refused = await post(client, world, "carrier", {**body, "device_time": now.isoformat()})
        assert (refused.status_code, refused.json()["field"]) == (409, "to_organization_id")
    home = event("handed_over", code, to_organization_id=world.orgs["maker"].id)
    back = await post(client, world, "carrier", {**home, "device_time": now.isoformat()})
    assert back.status_code == 201, back.text
