"""Single posts recorded together: the posts waiting in a worker's queue share one transaction,
each is judged alone, a flush that fails as a whole is retried post by post, and a resend
within one flush is a duplicate."""

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tortoise import connections

from tests.custody import helpers
from tests.custody.helpers import tag_bag
from tests.factories import World, event, medical_bag
from wastetrack.batches.models import Batch
from wastetrack.core.errors import Forbidden, ServiceUnavailable
from wastetrack.core.settings import Settings
from wastetrack.custody import posts, recorder, repository
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent


def command(body: dict[str, Any]) -> EventCommand:
    return EventCommand.model_validate(body)


@pytest.fixture
def queue(settings: Settings) -> posts.PostQueue:
    return posts.PostQueue(settings.secret_key)


@pytest.fixture
async def code(client: httpx.AsyncClient, world: World) -> str:
    """A bag the clinic tagged for the carrier to collect."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    return str(bag["code"])


async def together(
    queue: posts.PostQueue, world: World, *sent: tuple[str, dict[str, Any]]
) -> list[recorder.Recorded | BaseException]:
    """Post these (who, body) at once: all are queued before the flush starts, so one flush
    records them; an error is returned in its post's place."""
    return await asyncio.gather(
        *(
            queue.record(principal=world.principals[who], submission=command(body))
            for who, body in sent
        ),
        return_exceptions=True,
    )


def recorded(outcome: recorder.Recorded | BaseException) -> recorder.Recorded:
    assert not isinstance(outcome, BaseException), outcome
    return outcome


def failing_write(
    monkeypatch: pytest.MonkeyPatch, fails: Callable[[list[uuid.UUID | None], int], bool]
) -> list[int]:
    """Make the write fail when `fails(its events' client ids, how many calls so far)`; returns
    the number of events of each call."""
    write = repository.write
    calls: list[int] = []

    async def patched(rows: repository.Part) -> None:
        calls.append(len(rows.client_event_ids))
        if fails(rows.client_event_ids, len(calls)):
            raise RuntimeError("the write failed")
        await write(rows)

    monkeypatch.setattr(repository, "write", patched)
    return calls


async def writers(*client_event_ids: str) -> list[str]:
    """The transaction that wrote each event (its xmin), in the order asked."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT client_event_id::text AS id, xmin::text AS tx FROM custody_event"
        " WHERE client_event_id = ANY($1::uuid[])",
        [list(client_event_ids)],
    )
    by_id = {row["id"]: row["tx"] for row in rows}
    return [by_id[i] for i in client_event_ids]


async def test_posts_waiting_together_share_one_transaction(
    queue: posts.PostQueue, world: World, code: str
) -> None:
    collected = event("collected", code, minutes=10)
    tagged = medical_bag()
    first, second = map(
        recorded, await together(queue, world, ("carrier", collected), ("clinic", tagged))
    )
    assert (first.result.status, first.result.state) == ("applied", "collected")
    assert (second.result.status, second.result.state) == ("applied", "tagged")
    assert first.batch is not None and second.batch is not None
    # Each event is its poster's.
    assert first.batch.holder_id == world.orgs["carrier"].id
    assert second.batch.producer_id == world.orgs["clinic"].id
    one, other = await writers(collected["client_event_id"], tagged["client_event_id"])
    assert one == other


async def test_a_refused_post_does_not_stop_the_others_in_its_flush(
    client: httpx.AsyncClient, queue: posts.PostQueue, world: World, code: str
) -> None:
    collected = event("collected", code, minutes=10)
    # A generator may not record a collection: refused, and nothing of it is written.
    refused = event("collected", code, minutes=11)
    applied, rejected = map(
        recorded, await together(queue, world, ("carrier", collected), ("clinic", refused))
    )
    assert applied.result.status == "applied"
    assert rejected.result.status == "rejected" and rejected.error is not None
    count = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM custody_event WHERE client_event_id = $1",
        [uuid.UUID(refused["client_event_id"])],
    )
    assert count[0]["n"] == 0
    # Through the route the refusal is the post's own problem+json.
    response = await client.post(
        "/m/v1/events",
        json=event("collected", code, minutes=12),
        headers=world.headers("clinic"),
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "event_type"


async def test_a_flush_that_fails_as_a_whole_is_retried_post_by_post(
    queue: posts.PostQueue, world: World, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = failing_write(monkeypatch, lambda ids, _: len(ids) > 1)
    collected = event("collected", code, minutes=10)
    tagged = medical_bag()
    first, second = map(
        recorded, await together(queue, world, ("carrier", collected), ("clinic", tagged))
    )
    assert calls == [2, 1, 1]
    assert (first.result.status, second.result.status) == ("applied", "applied")
    one, other = await writers(collected["client_event_id"], tagged["client_event_id"])
    assert one != other  # each in a transaction of its own, each recorded once


async def test_a_post_whose_retry_fails_gets_its_error_alone(
    queue: posts.PostQueue, world: World, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = medical_bag()
    failing_write(
        monkeypatch,
        lambda ids, _: any(str(i) == broken["client_event_id"] for i in ids),
    )
    collected = event("collected", code, minutes=10)
    good, bad = await together(queue, world, ("carrier", collected), ("clinic", broken))
    assert not isinstance(good, BaseException) and good.result.status == "applied"
    assert isinstance(bad, RuntimeError)


async def test_a_resend_in_the_same_flush_is_a_duplicate(
    queue: posts.PostQueue, world: World, code: str
) -> None:
    collected = event("collected", code, minutes=10)
    original, resend = map(
        recorded, await together(queue, world, ("carrier", collected), ("carrier", collected))
    )
    assert original.result.status == "applied"
    assert (resend.result.status, resend.result.event_id) == (
        "duplicate",
        original.result.event_id,
    )


async def test_another_organizations_id_in_the_same_flush_is_a_conflict_that_shows_nothing(
    queue: posts.PostQueue, world: World, code: str
) -> None:
    """Two organizations post under one client id in one flush: the first is applied, the
    second is refused as an id another organization used, and learns nothing of its event."""
    mine = event("collected", code, minutes=10)
    theirs = medical_bag(client_event_id=mine["client_event_id"])
    first, second = map(
        recorded, await together(queue, world, ("carrier", mine), ("other_clinic", theirs))
    )
    assert first.result.status == "applied"
    assert (second.result.status, second.result.event_id, second.result.batch_code) == (
        "conflict",
        None,
        None,
    )
    assert second.error is not None and second.error.field == "client_event_id"
    assert await CustodyEvent.filter(client_event_id=mine["client_event_id"]).count() == 1


async def test_an_auditor_is_refused_before_anything_is_queued(
    queue: posts.PostQueue, world: World
) -> None:
    with pytest.raises(Forbidden):
        await posts.record_one(
            queue, principal=world.principals["auditor"], submission=command(medical_bag())
        )
    assert not queue._waiting


async def test_a_refused_correction_leaves_no_trace_on_a_batch_the_flush_writes(
    queue: posts.PostQueue, world: World, code: str
) -> None:
    """The correction's checks fail after it would have changed the batch in memory; the other
    post of the flush writes that batch: it must be written as it was."""
    before = await Batch.get(code=code)
    tagging = await CustodyEvent.get(batch_id=before.id, seq=1)
    correction = event(
        "corrected",
        code,
        minutes=8,
        corrects=str(tagging.id),
        event_time=(before.tagged_at - timedelta(minutes=30)).isoformat(),
        category="med.pathological",
        quantity="200000",
    )
    collected = event("collected", code, minutes=10)
    refused, applied = map(
        recorded, await together(queue, world, ("clinic", correction), ("carrier", collected))
    )
    assert refused.result.status == "rejected" and refused.error is not None
    assert refused.error.field == "quantity"
    assert applied.result.status == "applied"
    after = await Batch.get(code=code)
    assert (after.tagged_at, after.category_id, after.quantity) == (
        before.tagged_at,
        before.category_id,
        before.quantity,
    )
    assert after.state == "collected"


async def test_a_load_emptied_earlier_in_the_flush_is_judged_as_a_single_batch(
    client: httpx.AsyncClient, queue: posts.PostQueue, world: World, code: str
) -> None:
    """A load left holding nothing is an ordinary batch again (docs/custody.md), whether its
    packing was undone in an earlier call or earlier in the same flush: the receipt asked
    the stored rows, which still held the bag, and refused a partial acceptance."""
    carrier = world.orgs["carrier"].id
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    await helpers.collect(client, world, code, minutes=2)
    for body in (
        event("aggregated", load, minutes=3, children=[code]),
        event("collected", load, minutes=10),
        event(
            "in_transit", load, minutes=20, destination_organization_id=world.orgs["facility"].id
        ),
    ):
        await helpers.recorded(client, world, "carrier", body)
    packing = await CustodyEvent.get(batch__code=code, event_type="aggregated")
    undo = event("corrected", code, minutes=30, corrects=str(packing.id), aggregated=False)
    receipt = event(
        "received", load, minutes=40, outcome="partially_accepted", weight_kg="2", reason="破损"
    )
    undone, received = map(
        recorded, await together(queue, world, ("manager", undo), ("facility", receipt))
    )
    assert undone.result.status == "applied"
    assert received.error is None, received.error
    assert received.result.status == "applied"
    row = await Batch.get(code=load)
    assert row.state == "received"
    assert await Batch.filter(split_from_id=row.id).count() == 1


async def test_a_bag_is_cancelled_in_the_flush_that_collects_another_partys_load(
    client: httpx.AsyncClient, queue: posts.PostQueue, world: World, code: str
) -> None:
    """Each post is judged alone: the carrier's load, read with the flush's other batches, lent
    its bag to the clinic's stray bag, whose cancellation was refused as a container's."""
    carrier = world.orgs["carrier"].id
    stray = (await tag_bag(client, world))["code"]
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    await helpers.collect(client, world, code, minutes=2)
    packed = event("aggregated", load, minutes=3, children=[code])
    await helpers.recorded(client, world, "carrier", packed)
    cancelled, collected = map(
        recorded,
        await together(
            queue,
            world,
            ("clinic", event("cancelled", stray, minutes=30, reason="tagged by mistake")),
            ("carrier", event("collected", load, minutes=40)),
        ),
    )
    assert (cancelled.error, collected.error) == (None, None)
    assert (await Batch.get(code=stray)).state == "cancelled"


async def test_each_post_is_answered_with_its_batch_as_its_own_event_left_it(
    queue: posts.PostQueue, world: World, code: str
) -> None:
    collected = event("collected", code, minutes=10)
    moving = event(
        "in_transit", code, minutes=20, destination_organization_id=world.orgs["facility"].id
    )
    first, second = map(
        recorded, await together(queue, world, ("carrier", collected), ("carrier", moving))
    )
    assert first.batch is not None and second.batch is not None
    assert (first.batch.state, first.batch.last_seq) == ("collected", 2)
    assert (second.batch.state, second.batch.last_seq) == ("in_transit", 3)


async def test_a_lone_post_that_fails_is_tried_once_more(
    queue: posts.PostQueue, world: World, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadlock, or a resend committed meanwhile through another worker, fails a call once;
    a lone post is tried again like the posts of a larger flush."""
    calls = failing_write(monkeypatch, lambda _, call: call == 1)
    (outcome,) = map(
        recorded, await together(queue, world, ("carrier", event("collected", code, minutes=10)))
    )
    assert calls == [1, 1] and outcome.result.status == "applied"


async def test_a_stopped_flush_leaves_nobody_waiting(queue: posts.PostQueue, world: World) -> None:
    """Cancelled when the worker stops: every waiting post is answered 503, and the queue
    starts a new flush for the next post."""
    waiting = asyncio.ensure_future(
        queue.record(principal=world.principals["clinic"], submission=command(medical_bag()))
    )
    await asyncio.sleep(0)  # queued, and its flush created but not yet run
    assert queue._flush_task is not None
    queue._flush_task.cancel()
    with pytest.raises(ServiceUnavailable):
        await waiting
    (outcome,) = map(recorded, await together(queue, world, ("clinic", medical_bag())))
    assert outcome.result.status == "applied"
