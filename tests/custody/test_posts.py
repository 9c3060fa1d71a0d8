"""Single posts recorded together: the posts waiting in a worker's queue share one transaction,
each is judged alone, a flush that fails as a whole is retried post by post, and a resend
within one flush is a duplicate."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from tortoise import connections

from tests.custody.helpers import tag_bag
from tests.factories import World, event, medical_bag
from wastetrack.batches.models import Batch
from wastetrack.core.errors import Forbidden, ServiceUnavailable
from wastetrack.core.settings import Settings
from wastetrack.custody import posts, repository
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent


def command(body: dict[str, Any]) -> EventCommand:
    return EventCommand.model_validate(body)


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
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    queue = posts.PostQueue(settings.secret_key)
    collected = event("collected", bag["code"], minutes=10)
    tagged = medical_bag()
    # Both are queued before the flush starts: one flush records them.
    first, second = await asyncio.gather(
        queue.record(principal=world.principals["carrier"], submission=command(collected)),
        queue.record(principal=world.principals["clinic"], submission=command(tagged)),
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
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    queue = posts.PostQueue(settings.secret_key)
    collected = event("collected", bag["code"], minutes=10)
    # A generator may not record a collection: refused, and nothing of it is written.
    refused = event("collected", bag["code"], minutes=11)
    applied, rejected = await asyncio.gather(
        queue.record(principal=world.principals["carrier"], submission=command(collected)),
        queue.record(principal=world.principals["clinic"], submission=command(refused)),
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
        json=event("collected", bag["code"], minutes=12),
        headers=world.headers("clinic"),
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "event_type"


async def test_a_flush_that_fails_as_a_whole_is_retried_post_by_post(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    write = repository.write
    calls: list[int] = []

    async def failing_together(**kwargs: Any) -> None:
        calls.append(len(kwargs["events"]))
        if len(kwargs["events"]) > 1:
            raise RuntimeError("a flush that fails as a whole")
        await write(**kwargs)

    monkeypatch.setattr(repository, "write", failing_together)
    queue = posts.PostQueue(settings.secret_key)
    collected = event("collected", bag["code"], minutes=10)
    tagged = medical_bag()
    first, second = await asyncio.gather(
        queue.record(principal=world.principals["carrier"], submission=command(collected)),
        queue.record(principal=world.principals["clinic"], submission=command(tagged)),
    )
    assert calls == [2, 1, 1]
    assert (first.result.status, second.result.status) == ("applied", "applied")
    one, other = await writers(collected["client_event_id"], tagged["client_event_id"])
    assert one != other  # each in a transaction of its own, each recorded once


async def test_a_post_whose_retry_fails_gets_its_error_alone(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    write = repository.write
    broken = medical_bag()

    async def failing_for_one(**kwargs: Any) -> None:
        if any(str(e.client_event_id) == broken["client_event_id"] for e in kwargs["events"]):
            raise RuntimeError("this post cannot be written")
        await write(**kwargs)

    monkeypatch.setattr(repository, "write", failing_for_one)
    queue = posts.PostQueue(settings.secret_key)
    collected = event("collected", bag["code"], minutes=10)
    outcomes = await asyncio.gather(
        queue.record(principal=world.principals["carrier"], submission=command(collected)),
        queue.record(principal=world.principals["clinic"], submission=command(broken)),
        return_exceptions=True,
    )
    good, bad = outcomes
    assert not isinstance(good, BaseException) and good.result.status == "applied"
    assert isinstance(bad, RuntimeError)


async def test_a_resend_in_the_same_flush_is_a_duplicate(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    queue = posts.PostQueue(settings.secret_key)
    collected = command(event("collected", bag["code"], minutes=10))
    carrier = world.principals["carrier"]
    original, resend = await asyncio.gather(
        queue.record(principal=carrier, submission=collected),
        queue.record(principal=carrier, submission=collected),
    )
    assert original.result.status == "applied"
    assert (resend.result.status, resend.result.event_id) == (
        "duplicate",
        original.result.event_id,
    )


async def test_an_auditor_is_refused_before_anything_is_queued(
    world: World, settings: Settings
) -> None:
    queue = posts.PostQueue(settings.secret_key)
    with pytest.raises(Forbidden):
        await posts.record_one(
            queue, principal=world.principals["auditor"], submission=command(medical_bag())
        )
    assert not queue._waiting


async def test_a_refused_correction_leaves_no_trace_on_a_batch_the_flush_writes(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """The correction's checks fail after it would have changed the batch in memory; the other
    post of the flush writes that batch: it must be written as it was."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    before = await Batch.get(code=bag["code"])
    tagging = await CustodyEvent.get(batch_id=before.id, seq=1)
    queue = posts.PostQueue(settings.secret_key)
    correction = event(
        "corrected",
        bag["code"],
        minutes=8,
        corrects=str(tagging.id),
        event_time=(before.tagged_at - timedelta(minutes=30)).isoformat(),
        category="med.pathological",
        quantity="200000",
    )
    collected = event("collected", bag["code"], minutes=10)
    refused, applied = await asyncio.gather(
        queue.record(principal=world.principals["clinic"], submission=command(correction)),
        queue.record(principal=world.principals["carrier"], submission=command(collected)),
    )
    assert refused.result.status == "rejected" and refused.error is not None
    assert refused.error.field == "quantity"
    assert applied.result.status == "applied"
    after = await Batch.get(code=bag["code"])
    assert (after.tagged_at, after.category_id, after.quantity) == (
        before.tagged_at,
        before.category_id,
        before.quantity,
    )
    assert after.state == "collected"


async def test_each_post_is_answered_with_its_batch_as_its_own_event_left_it(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    queue = posts.PostQueue(settings.secret_key)
    collected = event("collected", bag["code"], minutes=10)
    moving = event(
        "in_transit", bag["code"], minutes=20, destination_organization_id=world.orgs["facility"].id
    )
    carrier = world.principals["carrier"]
    first, second = await asyncio.gather(
        queue.record(principal=carrier, submission=command(collected)),
        queue.record(principal=carrier, submission=command(moving)),
    )
    assert first.batch is not None and second.batch is not None
    assert (first.batch.state, first.batch.last_seq) == ("collected", 2)
    assert (second.batch.state, second.batch.last_seq) == ("in_transit", 3)


async def test_a_lone_post_that_fails_is_tried_once_more(
    client: httpx.AsyncClient,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deadlock, or a resend committed meanwhile through another worker, fails a call once;
    a lone post is tried again like the posts of a larger flush."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    write = repository.write
    calls: list[int] = []

    async def failing_once(**kwargs: Any) -> None:
        calls.append(len(kwargs["events"]))
        if len(calls) == 1:
            raise RuntimeError("deadlock detected")
        await write(**kwargs)

    monkeypatch.setattr(repository, "write", failing_once)
    queue = posts.PostQueue(settings.secret_key)
    collected = event("collected", bag["code"], minutes=10)
    outcome = await queue.record(
        principal=world.principals["carrier"], submission=command(collected)
    )
    assert calls == [1, 1] and outcome.result.status == "applied"


async def test_a_stopped_flush_leaves_nobody_waiting(world: World, settings: Settings) -> None:
    """Cancelled when the worker stops: every waiting post is answered 503, and the queue
    starts a new flush for the next post."""
    queue = posts.PostQueue(settings.secret_key)
    waiting = asyncio.ensure_future(
        queue.record(principal=world.principals["clinic"], submission=command(medical_bag()))
    )
    await asyncio.sleep(0)  # queued, and its flush created but not yet run
    assert queue._flush_task is not None
    queue._flush_task.cancel()
    with pytest.raises(ServiceUnavailable):
        await waiting
    outcome = await queue.record(
        principal=world.principals["clinic"], submission=command(medical_bag())
    )
    assert outcome.result.status == "applied"
