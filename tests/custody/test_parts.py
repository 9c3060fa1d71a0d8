"""A long sync is written in parts while it is still being decided (`recorder._Writes`): what
it leaves is what one write at the end would leave, and a part that fails fails it whole."""

import asyncio
from typing import Any

import httpx
import pytest
from tortoise import connections
from tortoise.exceptions import OperationalError

from tests.batches.test_hj1276 import drum, maker  # noqa: F401 (a fixture)
from tests.factories import World, event
from wastetrack.batches import identifiers
from wastetrack.batches.models import Batch, Label
from wastetrack.core import db
from wastetrack.core.settings import Settings
from wastetrack.custody import recorder, repository
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.rollups import service as rollups


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Parts of 5 events; returns the number of events of each write, as it happens."""
    monkeypatch.setattr(recorder, "PART_EVENTS", 5)
    write = repository.write
    calls: list[int] = []

    async def counted(rows: repository.Part) -> None:
        calls.append(len(rows.client_event_ids))
        await write(rows)

    monkeypatch.setattr(repository, "write", counted)
    return calls


async def labelled_chains(client: httpx.AsyncClient, world: World, count: int) -> list[dict]:
    """Tag `count` printed labels, collect each and send it to the facility, in one backlog: in
    device-time order the taggings come first, so every batch is made in one part and changed
    in later ones."""
    printed = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["community"].id, "stream": "household", "count": count},
    )
    assert printed.status_code == 201
    codes = [label.code for label in await Label.filter(organization=world.orgs["community"])]
    tags = [
        event("tagged", code, minutes=i, category="hh.food.household", quantity="2.5", unit="kg")
        for i, code in enumerate(codes)
    ]
    collections = [event("collected", code, minutes=30 + i) for i, code in enumerate(codes)]
    dispatches = [
        event(
            "in_transit",
            code,
            minutes=60 + i,
            destination_organization_id=world.orgs["facility"].id,
        )
        for i, code in enumerate(codes)
    ]
    return [*reversed(dispatches), *reversed(collections), *tags]


async def sync(client: httpx.AsyncClient, world: World, who: str, entries: list) -> Any:
    return await client.post("/m/v1/sync", json={"events": entries}, headers=world.headers(who))


async def refused(rows: repository.Part) -> None:
    """A write the database refuses."""
    await connections.get("default").execute_query("SELECT 1 / 0")


def crash_on_the_sixth(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in a handler, met at the sixth event: just after the first part went out."""
    apply = recorder._apply
    applied: list[int] = []

    async def crashes(*args: Any) -> repository.NewEvent:
        applied.append(1)
        if len(applied) == 6:
            raise RuntimeError("a bug in a handler")
        return await apply(*args)

    monkeypatch.setattr(recorder, "_apply", crashes)


async def test_a_sync_written_in_parts_leaves_what_one_write_would(
    client: httpx.AsyncClient, world: World, writes: list[int]
) -> None:
    answer = await sync(client, world, "collector", await labelled_chains(client, world, 12))
    assert answer.json()["applied"] == 36, answer.text
    # Parts of five events while deciding, the rest at the end.
    assert writes == [5] * 7 + [1]
    batches = await Batch.all()
    assert len(batches) == 12
    for batch in batches:
        # Made in one part, changed in a later one: the batch row is its last event's.
        assert (batch.state, batch.last_seq, batch.destination_id) == (
            "in_transit",
            3,
            world.orgs["facility"].id,
        )
        verdict = await client.get(
            f"/m/v1/batches/{batch.code}/verify", headers=world.headers("collector")
        )
        assert verdict.json()["valid"] is True, verdict.text
    assert await Label.filter(bound_at__isnull=True).count() == 0
    # The roll-up facts, applied once for the whole call, equal a rebuild from the log.
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_a_part_that_fails_fails_the_whole_sync(
    client: httpx.AsyncClient, world: World, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = await labelled_chains(client, world, 6)
    counted = repository.write

    async def second_fails(rows: repository.Part) -> None:
        await counted(rows)
        if len(writes) == 2:
            raise RuntimeError("the disk is full")

    monkeypatch.setattr(repository, "write", second_fails)
    with pytest.raises(RuntimeError, match="the disk is full"):
        await sync(client, world, "collector", entries)
    assert writes == [5, 5]
    # The first part was written, and rolled back with the rest.
    assert await Batch.all().count() == 0
    assert await CustodyEvent.all().count() == 0
    assert await Label.filter(bound_at__isnull=False).count() == 0
    # The phone sends the same backlog again: all of it is applied, once.
    monkeypatch.setattr(repository, "write", counted)
    assert (await sync(client, world, "collector", entries)).json()["applied"] == 18


async def test_a_part_refused_by_the_database_is_the_error_the_sync_fails_with(
    client: httpx.AsyncClient, world: World, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statements after a failed part fail only because its transaction is aborted."""
    entries = await labelled_chains(client, world, 6)
    apply = recorder._apply

    async def reads_first(*args: Any) -> repository.NewEvent:
        await Batch.all().count()  # a handler's own read, after the part went out
        return await apply(*args)

    monkeypatch.setattr(repository, "write", refused)
    monkeypatch.setattr(recorder, "_apply", reads_first)
    with pytest.raises(OperationalError, match="division by zero"):
        await sync(client, world, "collector", entries)
    monkeypatch.undo()
    assert await Batch.all().count() == 0


async def test_a_part_that_fails_beside_a_handler_bug_leaves_the_bug_as_the_error(
    client: httpx.AsyncClient, world: World, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The part's error replaces only the aborted transaction it causes, never another error
    (a bug must not come back as a 409 to retry)."""
    entries = await labelled_chains(client, world, 6)
    monkeypatch.setattr(repository, "write", refused)
    crash_on_the_sixth(monkeypatch)
    with pytest.raises(RuntimeError, match="a bug in a handler"):
        await sync(client, world, "collector", entries)
    monkeypatch.undo()
    assert await Batch.all().count() == 0


async def test_a_failure_while_a_part_is_written_waits_for_it_then_rolls_back(
    client: httpx.AsyncClient, world: World, writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = await labelled_chains(client, world, 6)
    crash_on_the_sixth(monkeypatch)
    # The handler's own error, not the connection's ("another operation is in progress").
    with pytest.raises(RuntimeError, match="a bug in a handler"):
        await sync(client, world, "collector", entries)
    assert writes == [5]
    assert await Batch.all().count() == 0
    assert await CustodyEvent.all().count() == 0


async def test_a_call_cancelled_while_a_part_is_written_waits_for_it(
    client: httpx.AsyncClient,
    world: World,
    writes: list[int],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    """A worker that stops cancels its calls: the transaction rolls back only once the part on
    its connection is written, and the connection goes back to the pool usable."""
    entries = await labelled_chains(client, world, 6)
    counted, going, gate = repository.write, asyncio.Event(), asyncio.Event()

    async def slow(rows: repository.Part) -> None:
        going.set()
        await gate.wait()
        await counted(rows)

    async def call() -> None:
        async with db.transaction():
            await recorder.record_events(
                principal=world.principals["collector"],
                submissions=[EventCommand.model_validate(entry) for entry in entries],
                secret=settings.secret_key,
            )

    monkeypatch.setattr(repository, "write", slow)
    task = asyncio.ensure_future(call())
    await going.wait()
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # waiting for the part
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writes == [5]
    assert await Batch.all().count() == 0
    monkeypatch.setattr(repository, "write", counted)
    assert (await sync(client, world, "collector", entries)).json()["applied"] == 18


async def test_batches_awaiting_an_identifier_are_numbered_together_at_the_end(
    client: httpx.AsyncClient,
    world: World,
    writes: list[int],
    maker: str,  # noqa: F811 (the fixture imported above)
) -> None:
    drums = [{**drum(), "event_type": "tagged"} for _ in range(12)]
    answer = await sync(client, world, maker, drums)
    assert answer.json()["applied"] == 12, answer.text
    # No parts in a call that may number identifiers: one write, numbered in prefix order.
    assert writes == [12]
    numbers = sorted(b.identifier or "" for b in await Batch.all())
    assert [n[-3:] for n in numbers] == [f"{i:03d}" for i in range(1, 13)]
    assert all(len(n) == identifiers.LENGTH for n in numbers)
