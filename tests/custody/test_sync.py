"""Offline sync: each event applied exactly once, in device-time order as far as clocks are
trusted, bad ones reported."""

import asyncio
import itertools
import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest
from pydantic import ValidationError
from tortoise import connections

from tests.custody.helpers import recorded, tag_bag
from tests.factories import NOW, World, event, medical_bag
from wastetrack.alerts.models import Alert
from wastetrack.alerts.service import SCAN_ANOMALY
from wastetrack.batches.models import Batch, Label
from wastetrack.core import commands, db
from wastetrack.custody import repository
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.recorder import sync_order
from wastetrack.manifests.commands import FoundCommand
from wastetrack.rollups import service as rollups


async def sync(client: httpx.AsyncClient, world: World, who: str, events: list) -> httpx.Response:
    return await client.post("/m/v1/sync", json={"events": events}, headers=world.headers(who))


async def test_resend_is_a_duplicate_and_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = medical_bag(carrier_organization_id=world.orgs["carrier"].id)
    first = await sync(client, world, "clinic", [bag])
    assert first.json()["results"][0]["status"] == "applied"
    again = await sync(client, world, "clinic", [bag])
    result = again.json()["results"][0]
    assert result["status"] == "duplicate"
    assert result["batch_code"] == first.json()["results"][0]["batch_code"]
    assert await Batch.all().count() == 1
    assert await CustodyEvent.all().count() == 1


async def test_a_refused_entry_resent_is_judged_again_unless_the_key_replays_the_answer(
    client: httpx.AsyncClient, world: World
) -> None:
    """A refusal is no record: the phone's backlog put the bag's departure (+15 min) before its
    collection (+30), so the departure was refused from a bag still tagged; the same body sent
    again, its answer lost, is judged against the log as it stands: the collection is a
    duplicate and the departure, now after it, is applied (flagged, its clock behind). Sent
    with the first request's Idempotency-Key, the resend gets the first answer whole."""
    bag = (await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id))["code"]
    backlog = [
        event("in_transit", bag, minutes=15, destination_organization_id=world.orgs["facility"].id),
        event("collected", bag, minutes=30),
    ]
    keyed = {**world.headers("carrier"), "Idempotency-Key": f"resend-{bag}"}
    first = await client.post("/m/v1/sync", json={"events": backlog}, headers=keyed)
    assert [r["status"] for r in first.json()["results"]] == ["rejected", "applied"]
    assert first.json()["results"][0]["error"]["field"] == "event_type"
    replayed = await client.post("/m/v1/sync", json={"events": backlog}, headers=keyed)
    assert replayed.json() == first.json()
    assert await CustodyEvent.filter(batch__code=bag).count() == 2
    again = await sync(client, world, "carrier", backlog)
    results = again.json()["results"]
    assert [r["status"] for r in results] == ["applied", "duplicate"], results
    (flagged,) = await Alert.filter(kind=SCAN_ANOMALY, batch__code=bag)
    assert flagged.details["flags"] == ["device_clock_behind"]
    assert [e.event_type for e in await CustodyEvent.filter(batch__code=bag).order_by("seq")] == [
        "tagged",
        "collected",
        "in_transit",
    ]


def _written_otherwise(body: dict, offset_hours: int) -> dict:
    """The same content written as another client might: the instant in another UTC offset,
    the quantity with trailing zeros."""
    moment = datetime.fromisoformat(body["device_time"])
    shown = moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()
    return {**body, "device_time": shown, "quantity": body["quantity"] + "00"}


async def test_the_same_content_written_otherwise_is_a_duplicate(
    client: httpx.AsyncClient, world: World
) -> None:
    """Same content is the same values, whatever the offset an instant is written in or the
    zeros a number has: by sync, and by a single post, which answers with the same batch."""
    bag = medical_bag(carrier_organization_id=world.orgs["carrier"].id)
    first = (await sync(client, world, "clinic", [bag])).json()["results"][0]
    for hours in (8, -10, 14):
        again = (await sync(client, world, "clinic", [_written_otherwise(bag, hours)])).json()
        assert again["results"][0] == {**first, "status": "duplicate"}, again
    single = medical_bag()
    single.pop("event_type")
    made = await client.post("/m/v1/batches", json=single, headers=world.headers("clinic"))
    assert made.status_code == 201, made.text
    resent = await client.post(
        "/m/v1/batches", json=_written_otherwise(single, -10), headers=world.headers("clinic")
    )
    assert (resent.status_code, resent.json()["code"]) == (200, made.json()["code"]), resent.text
    other = {**single, "quantity": "3.51"}  # another value is other content still
    refused = await client.post("/m/v1/batches", json=other, headers=world.headers("clinic"))
    assert (refused.status_code, refused.json()["field"]) == (409, "client_event_id")
    assert await Batch.all().count() == 2


async def test_hazards_are_a_set_each_named_once(client: httpx.AsyncClient, world: World) -> None:
    """A resend naming the same hazard characteristics in another order is the same record (the
    first order stays, the label's); one naming a characteristic twice is refused, as a new
    record or a manifest's line."""
    bag = medical_bag(category="med.chemical", waste_code="841-004-01", hazard=["T", "C"])
    first = (await sync(client, world, "clinic", [bag])).json()["results"][0]
    assert first["status"] == "applied", first
    again = (await sync(client, world, "clinic", [{**bag, "hazard": ["C", "T"]}])).json()
    assert again["results"][0] == {**first, "status": "duplicate"}, again
    assert (await Batch.get(code=first["batch_code"])).hazard == ["T", "C"]
    twice = medical_bag(hazard=["In", "In"])
    result = (await sync(client, world, "clinic", [twice])).json()["results"][0]
    assert (result["status"], result["error"]["field"]) == ("rejected", "hazard"), result
    single = {**twice}
    single.pop("event_type")
    refused = await client.post("/m/v1/batches", json=single, headers=world.headers("clinic"))
    assert (refused.status_code, refused.json()["field"]) == (422, "hazard"), refused.text
    assert await Batch.all().count() == 1
    with pytest.raises(ValidationError, match="each hazard characteristic once"):
        FoundCommand(hazard=["T", "T"])


def test_a_record_stored_before_sets_were_read_as_sets_matches_its_resend() -> None:
    """A tagging stored on 5 December 2026 before hazards were read as a set kept the digest
    of its values with the hazards as sent: a resend in another offset still matches it."""
    bag = medical_bag(category="med.chemical", waste_code="841-004-01", hazard=["T", "C"])
    stored = EventCommand.model_validate(bag)
    then = commands._written_digest(commands._canonical(stored, sets=False), stored._late())
    assert then != stored.digest()
    resent = EventCommand.model_validate(_written_otherwise(bag, -10))
    assert resent.same_content(then)
    assert not EventCommand.model_validate({**bag, "quantity": "9"}).same_content(then)


async def test_a_batch_is_the_same_content_however_it_was_scanned_or_typed(
    client: httpx.AsyncClient, world: World
) -> None:
    """A resend names its batches as another client might (a phone that scanned the QR, an
    integration that typed the printed code, lower case with hyphens) and a packing's children
    in another order: the same batches, so a duplicate; another batch is other content."""
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    code = bag["code"]
    scanned = event("collected", bag["qr_url"], minutes=5)
    first = (await sync(client, world, "carrier", [scanned])).json()["results"][0]
    assert first["status"] == "applied", first
    typed = f"{code[:4]}-{code[4:8]}-{code[8:]}".lower()
    again = (await sync(client, world, "carrier", [{**scanned, "batch": typed}])).json()
    assert again["results"][0] == {**first, "status": "duplicate"}, again
    other = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    refused = (await sync(client, world, "carrier", [{**scanned, "batch": other}])).json()
    assert refused["results"][0]["status"] == "conflict", refused
    one, two, box = [await tag_bag(client, world) for _ in range(3)]
    packing = event("aggregated", box["code"], minutes=5, children=[one["qr_url"], two["code"]])
    first = (await sync(client, world, "clinic", [packing])).json()["results"][0]
    assert first["status"] == "applied", first
    turned = {**packing, "children": [two["qr_url"], one["code"].lower()]}
    again = (await sync(client, world, "clinic", [turned])).json()
    assert again["results"][0] == {**first, "status": "duplicate"}, again
    assert await CustodyEvent.filter(batch__code__in=[code, other]).count() == 3


def test_a_record_stored_before_scanned_texts_were_read_matches_its_resend() -> None:
    """A packing stored before 7 December 2026 kept the digest of its children as sent (in
    their order, a QR URL as the URL): the same body resent still matches it."""
    texts = {"https://w.example/q/ONE": "AAAA", "https://w.example/q/TWO": "BBBB"}
    sent = event("aggregated", "CCCC", minutes=5, children=list(reversed(texts)))
    stored = EventCommand.model_validate(sent)
    then = commands._written_digest(commands._canonical(stored, sets=False), stored._late())
    resent = EventCommand.model_validate(sent).named(texts.get)
    assert resent.children == ["BBBB", "AAAA"] and resent.digest() != then
    assert resent.same_content(then)
    assert (
        not EventCommand.model_validate({**sent, "children": ["x"]})
        .named(texts.get)
        .same_content(then)
    )


async def test_same_id_with_other_content_is_a_conflict(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = medical_bag()
    await sync(client, world, "clinic", [bag])
    changed = {**bag, "quantity": "9.9"}
    result = (await sync(client, world, "clinic", [changed])).json()["results"][0]
    assert result["status"] == "conflict"
    assert result["error"]["field"] == "client_event_id"
    assert await Batch.all().count() == 1


async def test_another_organizations_client_id_is_a_conflict_that_shows_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    """Client ids are the phones' own; one another organization recorded under is a conflict,
    never an answer carrying that organization's batch, event or state."""
    bag = medical_bag()
    first = (await sync(client, world, "clinic", [bag])).json()["results"][0]
    for sent in (bag, {**bag, "quantity": "9.9"}):
        result = (await sync(client, world, "other_clinic", [sent])).json()["results"][0]
        assert (result["status"], result["error"]["field"]) == ("conflict", "client_event_id")
        assert (result["batch_code"], result["event_id"], result["state"]) == (None, None, None)
        assert first["batch_code"] not in str(result)
    assert (await sync(client, world, "clinic", [bag])).json()["results"][0] == {
        **first,
        "status": "duplicate",
    }
    assert await Batch.all().count() == 1


async def test_single_post_conflict_is_409(client: httpx.AsyncClient, world: World) -> None:
    batch = await tag_bag(client, world)
    body = event("cancelled", batch["code"], minutes=5, reason="typo")
    assert (
        await client.post("/m/v1/events", json=body, headers=world.headers("clinic"))
    ).status_code == 201
    assert (
        await client.post("/m/v1/events", json=body, headers=world.headers("clinic"))
    ).status_code == 200
    body["reason"] = "something else"
    response = await client.post("/m/v1/events", json=body, headers=world.headers("clinic"))
    assert response.status_code == 409


async def test_events_of_a_batch_apply_in_device_time_order(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    later = event(
        "in_transit",
        batch["code"],
        minutes=30,
        destination_organization_id=world.orgs["facility"].id,
    )
    earlier = event("collected", batch["code"], minutes=10)
    response = await sync(client, world, "carrier", [later, earlier])
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["applied", "applied"]
    events = await CustodyEvent.filter(batch__code=batch["code"]).order_by("seq")
    assert [e.event_type for e in events] == ["tagged", "collected", "in_transit"]


async def test_a_clock_stepped_back_a_few_seconds_keeps_the_phones_order(
    client: httpx.AsyncClient, world: World
) -> None:
    """A collector tags a label, its phone's clock is pulled back 40 s by the network, it
    collects and dispatches the bag: the backlog applies in the order recorded, not with the
    collection first (the batch not yet made) nor the dispatch before the collection."""
    printed = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["community"].id, "stream": "household", "count": 1},
    )
    assert printed.status_code == 201
    (label,) = await Label.filter(organization=world.orgs["community"])
    tagged = event("tagged", label.code, category="hh.food.household", quantity="2", unit="kg")
    tagged["device_time"] = (NOW - timedelta(hours=2) + timedelta(seconds=100)).isoformat()
    collected = event("collected", label.code)  # 100 s before the tagging, by the phone
    dispatched = event(
        "in_transit",
        label.code,
        destination_organization_id=world.orgs["facility"].id,
    )
    dispatched["device_time"] = (NOW - timedelta(hours=2) - timedelta(seconds=40)).isoformat()
    response = await sync(client, world, "collector", [tagged, collected, dispatched])
    assert [r["status"] for r in response.json()["results"]] == ["applied"] * 3, response.text
    events = await CustodyEvent.filter(batch__code=label.code).order_by("seq")
    assert [e.event_type for e in events] == ["tagged", "collected", "in_transit"]


def test_two_small_clock_steps_in_a_row_keep_the_order_sent() -> None:
    """Each step is judged on the clocks' own readings: an event 45 s before the one sent just
    before it stays after it, however far that one was moved by an earlier step."""
    base = NOW - timedelta(hours=1)
    sent = [
        event("collected", "A", device_time=base.isoformat()),
        event("stored", "A", device_time=(base - timedelta(seconds=30)).isoformat()),
        event("stored", "A", device_time=(base - timedelta(seconds=75)).isoformat()),
    ]
    commands = [EventCommand.model_validate(body) for body in sent]
    assert sync_order(commands, [["A"]] * 3) == [0, 1, 2]
    # A step of more than a minute is a clock to believe: that event goes first.
    commands[2] = EventCommand.model_validate(
        event("stored", "A", device_time=(base - timedelta(seconds=120)).isoformat())
    )
    assert sync_order(commands, [["A"]] * 3) == [2, 0, 1]


@pytest.mark.parametrize(
    ("bag", "box", "handover"),
    [(180, 0, 120), (180, 0, 180), (0, 180, 120), (180, 0, 6)],
    ids=["bag-late", "handover-at-bag-tagging", "box-late", "handover-a-second-after"],
)
def test_a_step_after_one_that_waits_for_a_tagging_waits_too(
    bag: int, box: int, handover: int
) -> None:
    """The box was packed (5 s) and handed on, by the clock, before one of the two taggings:
    the packing waits for the taggings, and the handover, after the packing by the clock,
    waits for the packing, in whatever order the four were sent (a handover sent first once
    waited for nothing sent before it, or tied with the packing at a tagging's time, and the
    box left without the bag); a second after the packing, it is after it only if sent after
    it (the phone's own order)."""
    base = NOW - timedelta(hours=1)

    def at(seconds: int) -> str:
        return (base + timedelta(seconds=seconds)).isoformat()

    steps = [
        (medical_bag(batch="BAG") | {"device_time": at(bag)}, ["BAG"]),
        (medical_bag(batch="BOX") | {"device_time": at(box)}, ["BOX"]),
        (
            event("aggregated", "BOX", children=["BAG"]) | {"device_time": at(5)},
            ["BOX", "BAG"],
        ),
        (
            event("handed_over", "BOX", to_organization_id=1) | {"device_time": at(handover)},
            ["BOX"],
        ),
    ]
    for sent in itertools.permutations(steps):
        kinds = [body["event_type"] for body, _ in sent]
        if handover == 6 and kinds.index("handed_over") < kinds.index("aggregated"):
            continue
        commands = [EventCommand.model_validate(body) for body, _ in sent]
        order = [sent[i][0] for i in sync_order(commands, [batches for _, batches in sent])]
        applied = [(e["event_type"], e["batch"]) for e in order]
        assert applied[2:] == [("aggregated", "BOX"), ("handed_over", "BOX")], kinds
        assert sorted(applied[:2]) == [("tagged", "BAG"), ("tagged", "BOX")]


def test_a_backlog_in_any_order_keeps_the_sync_promises() -> None:
    """Random backlogs on a few batches, clocks stepping a little and a lot, shuffled: the
    order is a permutation of the steps; a tagging goes before its batch's other steps; of two
    steps on a batch, the one sent later goes after the other unless its clock is more than a
    minute earlier, and two corrections always in the order sent."""
    rng = random.Random(20261205)
    base = NOW - timedelta(hours=1)
    for _ in range(400):
        codes_ = [f"B{k}" for k in range(rng.randint(1, 4))]
        steps: list[tuple[dict, list[str]]] = [
            (medical_bag(batch=code) | {"device_time": base.isoformat()}, [code])
            for code in codes_
            if rng.random() < 0.8
        ]
        for _ in range(rng.randint(2, 9)):
            kind = rng.choice(["in_transit", "aggregated", "corrected", "handed_over"])
            acted = [rng.choice(codes_)]
            if kind == "aggregated":
                others = [c for c in codes_ if c != acted[0]]
                acted += rng.sample(others, k=min(len(others), rng.randint(0, 2)))
            seconds = rng.choice([0, 5, 30, 61, 90, 120, 180, 181, 300, 600])
            step = event("in_transit", acted[0]) | {
                "event_type": kind,
                "device_time": (base + timedelta(seconds=seconds)).isoformat(),
            }
            steps.append((step, acted))
        rng.shuffle(steps)
        commands = [EventCommand.model_construct(**body) for body, _ in steps]
        for command, (body, _) in zip(commands, steps, strict=True):
            command.device_time = datetime.fromisoformat(body["device_time"])
        batches = [acted for _, acted in steps]
        order = sync_order(commands, batches)
        assert sorted(order) == list(range(len(steps)))
        place = {step: position for position, step in enumerate(order)}
        for i, j in itertools.combinations(range(len(steps)), 2):
            shared = set(batches[i]) & set(batches[j])
            if not shared:
                continue
            a, b = commands[i], commands[j]
            if a.event_type == "tagged" and b.event_type != "tagged" and batches[i][0] in shared:
                assert place[i] < place[j]
            elif b.event_type == "tagged" and a.event_type != "tagged" and batches[j][0] in shared:
                assert place[j] < place[i]
            elif "tagged" not in (a.event_type, b.event_type):
                if a.event_type == b.event_type == "corrected":
                    assert place[i] < place[j]
                elif a.device_time - b.device_time <= timedelta(minutes=1):
                    assert place[i] < place[j]


async def test_a_carriers_round_then_a_clock_step_keeps_the_bags_in_their_load(
    client: httpx.AsyncClient, world: World
) -> None:
    """The phone app's round: the load tagged, a bag collected and scanned into the load; the
    clock is then pulled back 40 s and the load dispatched. Applied as recorded, the bag goes
    into the load before the load leaves."""
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    base = NOW - timedelta(hours=1)

    def at(seconds: int) -> str:
        return (base + timedelta(seconds=seconds)).isoformat()

    load = event(
        "tagged",
        stream="medical",
        category="med.hw01",
        quantity="1",
        unit="kg",
        producer_organization_id=carrier,
    )
    load["device_time"] = at(100)
    answer = await sync(client, world, "carrier", [load])
    code = answer.json()["results"][0]["batch_code"]
    backlog = [
        event("collected", code) | {"device_time": at(100)},
        event("collected", bag["code"]) | {"device_time": at(101)},
        event("aggregated", code, children=[bag["code"]]) | {"device_time": at(102)},
        event("in_transit", code, destination_organization_id=world.orgs["facility"].id)
        | {"device_time": at(62)},
    ]
    response = await sync(client, world, "carrier", backlog)
    assert [r["status"] for r in response.json()["results"]] == ["applied"] * 4, response.text
    held = await Batch.get(code=bag["code"])
    assert (held.state, held.parent_id) == ("aggregated", (await Batch.get(code=code)).id)


async def test_a_bag_is_tagged_before_it_goes_into_a_box_whatever_the_clock_did(
    client: httpx.AsyncClient, world: World
) -> None:
    """A clinic tags a bag, its clock is pulled back (40 s, or 3 minutes), it tags a box,
    packs the bag into it and hands the box to its carrier: the packing waits for the bag it
    takes, not only for its box, and the handover, sent after the packing, waits for it."""
    base = NOW - timedelta(hours=1)

    def at(seconds: int) -> str:
        return (base + timedelta(seconds=seconds)).isoformat()

    printed = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": 4},
    )
    assert printed.status_code == 201, printed.text
    labels = [label.code for label in await Label.filter(organization=world.orgs["clinic"])]
    carrier = world.orgs["carrier"].id
    for (bag, box), pulled_back in ((labels[:2], 40), (labels[2:], 180)):
        backlog = [
            medical_bag(batch=bag) | {"device_time": at(pulled_back - 10)},
            medical_bag(batch=box) | {"device_time": at(-10)},
            event("aggregated", box, children=[bag]) | {"device_time": at(-5)},
            event("handed_over", box, to_organization_id=carrier) | {"device_time": at(-4)},
        ]
        response = await sync(client, world, "clinic", backlog)
        assert [r["status"] for r in response.json()["results"]] == ["applied"] * 4, (
            pulled_back,
            response.text,
        )
        packed = await Batch.get(code=bag)
        assert (packed.state, packed.parent_id) == ("aggregated", (await Batch.get(code=box)).id)
        chain = await CustodyEvent.filter(batch__code=box).order_by("seq")
        assert [e.event_type for e in chain] == ["tagged", "aggregated", "handed_over"]


async def test_a_box_emptied_then_cancelled_keeps_the_order_sent_whatever_the_clock_did(
    client: httpx.AsyncClient, world: World
) -> None:
    """Taking a bag out of its box (a correction undoing the packing) is a step of the box as
    packing it was: the box's cancellation, sent after it with a clock pulled back 20 s, went
    first and was refused (the box still held the bag). Now the two keep the order sent; a
    clock more than a minute earlier still puts the cancellation first."""
    for pulled_back, statuses in ((20, ["applied", "applied"]), (90, ["applied", "rejected"])):
        bag = (await tag_bag(client, world))["code"]
        box = (await tag_bag(client, world))["code"]
        packing = event("aggregated", box, minutes=3, children=[bag])
        assert (await sync(client, world, "clinic", [packing])).status_code == 200
        packed = await CustodyEvent.get(batch__code=bag, event_type="aggregated")
        undo = event("corrected", bag, minutes=40, corrects=str(packed.id), aggregated=False)
        cancel = event("cancelled", box, minutes=40, reason="scanned into the wrong box")
        back = datetime.fromisoformat(undo["device_time"]) - timedelta(seconds=pulled_back)
        cancel["device_time"] = back.isoformat()
        response = await sync(client, world, "clinic", [undo, cancel])
        results = response.json()["results"]
        assert [r["status"] for r in results] == statuses, (pulled_back, results)
        expected = "cancelled" if pulled_back == 20 else "tagged"
        assert (await Batch.get(code=box)).state == expected


async def test_bad_event_never_drops_the_good_ones(client: httpx.AsyncClient, world: World) -> None:
    good = medical_bag()
    refused = medical_bag(category="hh.recyclable.paper")
    malformed = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": "tagged",
        "device_time": "yesterday",
    }
    not_even_an_id = {"event_type": "collected"}
    response = await sync(client, world, "clinic", [good, refused, malformed, not_even_an_id])
    body = response.json()
    assert response.status_code == 200
    assert [r["status"] for r in body["results"]] == ["applied", "rejected", "rejected", "rejected"]
    assert body["results"][1]["error"]["field"] == "category"
    assert body["results"][2]["error"]["field"] == "device_time"
    assert body["results"][2]["client_event_id"] == malformed["client_event_id"]
    assert body["results"][3]["client_event_id"] is None
    assert (body["applied"], body["rejected"]) == (1, 3)
    assert await Batch.all().count() == 1


async def test_more_than_500_events_are_refused_whole(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await sync(client, world, "clinic", [medical_bag() for _ in range(501)])
    assert response.status_code == 422
    assert response.json()["field"] == "events"
    assert await Batch.all().count() == 0


async def test_a_sync_over_its_limit_is_refused_before_any_entry_is_read(
    client: httpx.AsyncClient, world: World
) -> None:
    """650,000 empty entries under the byte cap were each validated on the worker's loop, about
    seven seconds in which it answered nobody, before the count refused them (sync review):
    the count comes first, whoever sends it."""
    body = '{"events": [' + ",".join(["{}"] * 650_000) + "]}"
    assert len(body) < world.settings.max_body_bytes
    for who in ("clinic", "auditor"):
        started = time.monotonic()
        response = await client.post(
            "/m/v1/sync",
            content=body,
            headers={**world.headers(who), "Content-Type": "application/json"},
        )
        took = time.monotonic() - started
        assert (response.status_code, response.json()["field"]) == (422, "events"), response.text
        assert took < 2.0, took


async def test_offline_collector_binds_labels_and_collects_in_one_sync(
    client: httpx.AsyncClient, world: World
) -> None:
    pdf = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["community"].id, "stream": "household", "count": 2},
    )
    assert pdf.status_code == 201
    codes = [label.code for label in await Label.filter(organization=world.orgs["community"])]
    entries = []
    for minute, code in enumerate(codes):
        entries.append(
            event(
                "tagged",
                code,
                minutes=minute,
                category="hh.food.household",
                quantity="12.5",
                unit="kg",
            )
        )
        entries.append(event("collected", code, minutes=minute + 5))
    response = await sync(client, world, "collector", list(reversed(entries)))
    assert response.json()["applied"] == 4, response.text
    assert await Batch.filter(state="collected").count() == 2


async def test_crash_mid_request_leaves_nothing_half_written(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    # The last write of a call: labels, batches and events are already written when it fails.
    monkeypatch.setattr(rollups, "apply", crash)
    with pytest.raises(RuntimeError):
        await sync(client, world, "clinic", [medical_bag(), medical_bag()])
    monkeypatch.undo()
    assert await Batch.all().count() == 0
    assert await Label.all().count() == 0
    assert await CustodyEvent.all().count() == 0


async def test_a_sync_that_loses_a_deadlock_is_a_409_and_writes_nothing(
    client: httpx.AsyncClient, world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL breaks a deadlock by rolling one transaction back: a race lost, which the
    phone retries (409 `concurrent_write`), never a 500."""
    other = await asyncpg.connect(**db.credentials_from_url(database_url))
    write, waiting = repository.write, asyncio.Event()

    async def deadlocked(rows: repository.Part) -> None:
        # Lock 1, then wait for lock 2, which the other transaction holds while it waits for 1.
        client_ = connections.get("default")
        await client_.execute_query("SELECT pg_advisory_xact_lock(1)")
        waiting.set()
        await client_.execute_query("SELECT pg_advisory_xact_lock(2)")
        await write(rows)

    async def other_side() -> None:
        # Its own deadlock check waits far longer than the sync's (1 s): on a loaded machine
        # it could otherwise run first and roll this side back instead.
        await other.execute("SET deadlock_timeout = '60s'")
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock(2)")
            await asyncio.wait_for(waiting.wait(), 10)
            # Once the sync waits for lock 2, it waits first: its deadlock check (after
            # deadlock_timeout) runs first, finds the cycle and rolls the sync back.
            for _ in range(200):
                if await other.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                ):
                    break
                await asyncio.sleep(0.01)
            await other.execute("SELECT pg_advisory_xact_lock(1)")

    monkeypatch.setattr(repository, "write", deadlocked)
    try:
        answer, _ = await asyncio.gather(
            sync(client, world, "clinic", [medical_bag(), medical_bag()]), other_side()
        )
    finally:
        await other.close()
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "concurrent_write"
    assert await Batch.all().count() == 0


async def test_a_bag_is_cancelled_in_the_sync_that_hands_over_a_box_of_bags(
    client: httpx.AsyncClient, world: World
) -> None:
    """What a batch holds is its own children only: the box's bags, read for the whole call,
    were counted as the stray bag's, and its cancellation refused as a container's."""
    stray, inside, box = [(await tag_bag(client, world))["code"] for _ in range(3)]
    await recorded(client, world, "clinic", event("aggregated", box, minutes=3, children=[inside]))
    answer = await sync(
        client,
        world,
        "clinic",
        [
            event("cancelled", stray, minutes=30, reason="tagged by mistake"),
            event("handed_over", box, minutes=40, to_organization_id=world.orgs["carrier"].id),
        ],
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert (await Batch.get(code=stray)).state == "cancelled"
