"""An aggregation undone by a correction (docs/custody.md, docs/metrics.md §2): a bag scanned
into the wrong load is taken out by `aggregated: false` on its own `aggregated` event. It is
again as it was before the scan, its fate its own; the container keeps its history, and its
facts follow what it still holds."""

import asyncio
from typing import Any

import httpx
import pytest
from tortoise import connections

from tests.custody.helpers import advance, collect, post_event, recorded, tag_bag
from tests.factories import World, event, make_user
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.custody import corrections, repository, transitions
from wastetrack.rollups import service as rollups


async def _batch(client: httpx.AsyncClient, world: World, code: str) -> dict[str, Any]:
    found = await client.get(f"/m/v1/batches/{code}", headers=world.headers("manager"))
    assert found.status_code == 200, found.text
    answer: dict[str, Any] = found.json()
    return answer


async def _own_event(client: httpx.AsyncClient, world: World, code: str, kind: str) -> str:
    """The id of the batch's latest event of this type."""
    listed = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("manager"))
    assert listed.status_code == 200, listed.text
    return str([e for e in listed.json() if e["event_type"] == kind][-1]["id"])


async def _fates(*codes: str) -> dict[str, str]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT b.code, f.fate FROM batch_fact f JOIN batch b ON b.id = f.batch_id"
        " WHERE b.code = ANY($1::text[])",
        [list(codes)],
    )
    return {r["code"]: r["fate"] for r in rows}


async def _load(client: httpx.AsyncClient, world: World, bags: int) -> tuple[str, list[str]]:
    """A carrier's load of `bags` clinic bags it collected."""
    carrier = world.orgs["carrier"].id
    codes = [
        (await tag_bag(client, world, carrier_organization_id=carrier))["code"] for _ in range(bags)
    ]
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    await collect(client, world, *codes, minutes=2)
    await recorded(client, world, "carrier", event("aggregated", load, minutes=3, children=codes))
    return load, codes


def _undo(code: str, aggregation: str, *, minutes: int = 30, **fields: Any) -> dict:
    return event(
        "corrected",
        code,
        minutes=minutes,
        corrects=aggregation,
        **({"aggregated": False} | fields),
    )


async def _treat(client: httpx.AsyncClient, world: World, load: str) -> None:
    for who, body in (
        ("carrier", event("collected", load, minutes=8)),
        (
            "carrier",
            event(
                "in_transit",
                load,
                minutes=10,
                destination_organization_id=world.orgs["facility"].id,
            ),
        ),
        ("facility", event("received", load, minutes=15, outcome="accepted", weight_kg="7")),
        ("facility", event("treated", load, minutes=20, method="D10")),
    ):
        await recorded(client, world, who, body)


async def test_a_bag_taken_out_of_a_load_is_as_before_and_its_fate_its_own(
    client: httpx.AsyncClient, world: World
) -> None:
    load, (wrong, right) = await _load(client, world, 2)
    await _treat(client, world, load)
    assert await _fates(wrong, right, load) == {
        wrong: "disposed_harmless",
        right: "disposed_harmless",
        load: "container",
    }
    aggregation = await _own_event(client, world, wrong, "aggregated")
    # Allowed though the load was treated already: the bag was never in it.
    undone = await recorded(client, world, "carrier", _undo(wrong, aggregation))
    assert undone["state"] == "collected"
    bag = await _batch(client, world, wrong)
    assert (bag["state"], bag["parent_id"], bag["holder_id"]) == (
        "collected",
        None,
        world.orgs["carrier"].id,
    )
    assert (await _batch(client, world, right))["parent_id"] is not None
    fate = await client.get(f"/m/v1/batches/{wrong}/fate", headers=world.headers("manager"))
    assert (fate.json()["containers"], fate.json()["fate"]) == ([], "in_progress"), fate.text
    assert await _fates(wrong, right, load) == {
        wrong: "in_progress",
        right: "disposed_harmless",
        load: "container",
    }
    listed = await client.get(f"/m/v1/batches/{wrong}/events", headers=world.headers("manager"))
    last = listed.json()[-1]
    assert last["details"]["corrected"] == {"aggregated": "false"}
    assert last["details"]["out_of"] == load
    # The bag goes on with its own steps, and its chain verifies.
    await recorded(
        client,
        world,
        "carrier",
        event(
            "in_transit", wrong, minutes=40, destination_organization_id=world.orgs["facility"].id
        ),
    )
    verified = await client.get(f"/m/v1/batches/{wrong}/verify", headers=world.headers("manager"))
    assert verified.json()["valid"], verified.text


async def test_a_load_left_empty_is_a_batch_in_its_own_right(
    client: httpx.AsyncClient, world: World
) -> None:
    """The former container's fact is recomputed by the correction on its child: it holds
    nothing, so it counts as its own tagging declared it, with its own fate — as the same
    load did before anything was scanned into it. A rebuild agrees."""
    load, (bag,) = await _load(client, world, 1)
    await _treat(client, world, load)
    assert await _fates(bag, load) == {bag: "disposed_harmless", load: "container"}
    aggregation = await _own_event(client, world, bag, "aggregated")
    await recorded(client, world, "manager", _undo(bag, aggregation))
    assert await _fates(bag, load) == {bag: "in_progress", load: "disposed_harmless"}
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_an_emptied_box_still_tagged_may_be_cancelled(
    client: httpx.AsyncClient, world: World
) -> None:
    """A clinic's box its only bag was taken out of holds nothing: it may be cancelled, in the
    same sync as the undoing, before the bag's row is written."""
    bag = (await tag_bag(client, world))["code"]
    box = (await tag_bag(client, world))["code"]
    await recorded(client, world, "clinic", event("aggregated", box, minutes=3, children=[bag]))
    cancel = event("cancelled", box, minutes=40, reason="scanned into the wrong box")
    refused = await post_event(client, world, "clinic", cancel)
    assert (refused.status_code, refused.json()["field"]) == (409, "event_type"), refused.text
    aggregation = await _own_event(client, world, bag, "aggregated")
    synced = await client.post(
        "/m/v1/sync",
        json={"events": [_undo(bag, aggregation), cancel]},
        headers=world.headers("clinic"),
    )
    assert synced.status_code == 200, synced.text
    assert [r["status"] for r in synced.json()["results"]] == ["applied", "applied"], synced.text
    assert (await _batch(client, world, box))["state"] == "cancelled"
    assert (await _batch(client, world, bag))["state"] == "tagged"


async def test_an_aggregation_is_undone_once_by_its_recorder_or_a_manager(
    client: httpx.AsyncClient, world: World
) -> None:
    load, (bag, other) = await _load(client, world, 2)
    aggregation = await _own_event(client, world, bag, "aggregated")
    # The clinic produced the bag but did not scan it into the load.
    foreign = await post_event(client, world, "clinic", _undo(bag, aggregation))
    assert (foreign.status_code, foreign.json()["field"]) == (403, "corrects"), foreign.text
    # Only false: an aggregation is made by an aggregated event.
    made = await post_event(client, world, "carrier", _undo(bag, aggregation, aggregated=True))
    assert (made.status_code, made.json()["field"]) == (422, "aggregated"), made.text
    # The container's own event is not the one to correct.
    packing = await _own_event(client, world, load, "aggregated")
    whole = await post_event(client, world, "carrier", _undo(load, packing))
    assert (whole.status_code, whole.json()["field"]) == (422, "aggregated"), whole.text
    # Nor is another type of event.
    tagging = await _own_event(client, world, bag, "tagged")
    tagged = await post_event(client, world, "manager", _undo(bag, tagging))
    assert (tagged.status_code, tagged.json()["field"]) == (422, "aggregated"), tagged.text
    assert (await _batch(client, world, bag))["state"] == "aggregated"

    first = await recorded(client, world, "carrier", _undo(bag, aggregation))
    again = await post_event(client, world, "manager", _undo(bag, aggregation, minutes=31))
    assert (again.status_code, again.json()["field"]) == (409, "aggregated"), again.text
    # A correction of the undoing correction names the same aggregation: undone already.
    through = await post_event(client, world, "carrier", _undo(bag, first["event_id"]))
    assert (through.status_code, through.json()["field"]) == (409, "aggregated"), through.text

    # Scanned into the right load since: the first aggregation is not undone again, the
    # second may be.
    carrier = world.orgs["carrier"].id
    right = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    await recorded(client, world, "carrier", event("aggregated", right, minutes=40, children=[bag]))
    stale = await post_event(client, world, "manager", _undo(bag, aggregation, minutes=45))
    assert (stale.status_code, stale.json()["field"]) == (409, "aggregated"), stale.text
    second = await _own_event(client, world, bag, "aggregated")
    assert second != aggregation
    await recorded(client, world, "manager", _undo(bag, second, minutes=46))
    assert (await _batch(client, world, bag))["state"] == "collected"
    assert (await _batch(client, world, other))["state"] == "aggregated"


async def test_a_container_taken_out_of_its_outer_load_keeps_its_contents(
    client: httpx.AsyncClient, world: World
) -> None:
    """An inner load taken out of the outer one: the bags in it follow the inner load's fate,
    no longer the outer one's."""
    inner, (bag,) = await _load(client, world, 1)
    carrier = world.orgs["carrier"].id
    outer = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    await recorded(
        client, world, "carrier", event("aggregated", outer, minutes=5, children=[inner])
    )
    await _treat(client, world, outer)
    assert await _fates(bag, inner, outer) == {
        bag: "disposed_harmless",
        inner: "container",
        outer: "container",
    }
    aggregation = await _own_event(client, world, inner, "aggregated")
    undone = await recorded(client, world, "carrier", _undo(inner, aggregation))
    # The state the inner load was in when it was scanned: as its own packing left it.
    assert undone["state"] == "tagged"
    assert await _fates(bag, inner, outer) == {
        bag: "in_progress",
        inner: "container",
        outer: "disposed_harmless",
    }


async def _stored_and_scanned(client: httpx.AsyncClient, world: World) -> tuple[str, str, str]:
    """A bag stored (D15) at the facility and scanned by mistake into a box of the facility's
    own crew: its code, the storage's event id and the scan's."""
    if "facility_crew" not in world.users:
        await make_user(world, "facility_crew", Role.collector, world.orgs["facility"])
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    code = bag["code"]
    await advance(client, world, code, until="received")
    stored = await recorded(
        client, world, "facility", event("treated", code, minutes=70, method="D15")
    )
    box = await tag_bag(client, world, "facility_crew", quantity="1")
    await recorded(
        client, world, "facility", event("aggregated", box["code"], minutes=80, children=[code])
    )
    return code, stored["event_id"], await _own_event(client, world, code, "aggregated")


async def test_a_correction_after_a_scan_undone_is_judged_as_if_the_scan_never_was(
    client: httpx.AsyncClient, world: World
) -> None:
    """The mistaken scan undone, the storage is the bag's latest step again: correcting its
    method to a final treatment is accepted and its fate follows (an undone scan is no step,
    as `aggregations.is_step` says for every reader) — posted one by one, or as one offline
    sync, in which the undo is not written yet when the correction is judged."""
    code, stored, scan = await _stored_and_scanned(client, world)
    await recorded(client, world, "facility", _undo(code, scan, minutes=85))
    assert (await _batch(client, world, code))["state"] == "stored"
    corrected = await post_event(
        client,
        world,
        "facility",
        event("corrected", code, minutes=90, corrects=stored, method="D10"),
    )
    assert corrected.status_code == 201, corrected.text
    assert (await _fates(code))[code] == "disposed_harmless"
    code, stored, scan = await _stored_and_scanned(client, world)
    synced = await client.post(
        "/m/v1/sync",
        json={
            "events": [
                _undo(code, scan, minutes=85),
                event("corrected", code, minutes=90, corrects=stored, method="D10"),
            ]
        },
        headers=world.headers("facility"),
    )
    assert synced.status_code == 200, synced.text
    results = synced.json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert (await _fates(code))[code] == "disposed_harmless"


async def test_a_scan_again_after_the_undo_is_a_step(
    client: httpx.AsyncClient, world: World
) -> None:
    """Undone, then scanned into a box again: that scan is a step, so the storage's method
    is no longer the batch's latest step to correct (409 naming `corrects`)."""
    code, stored, scan = await _stored_and_scanned(client, world)
    await recorded(client, world, "facility", _undo(code, scan, minutes=85))
    box = await tag_bag(client, world, "facility_crew", quantity="1")
    await recorded(
        client, world, "facility", event("aggregated", box["code"], minutes=88, children=[code])
    )
    corrected = await post_event(
        client,
        world,
        "facility",
        event("corrected", code, minutes=90, corrects=stored, method="D10"),
    )
    assert (corrected.status_code, corrected.json()["field"]) == (409, "corrects"), corrected.text
    assert (await _fates(code))[code] != "disposed_harmless"


async def test_two_syncs_taking_bags_out_of_one_boxed_crate_do_not_deadlock(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A carrier's box B1 of two bags is packed into its crate C. Phone 1 syncs the undoing of
    bag 1's packing; phone 2 syncs, at the same moment, a second box packed into the crate and
    the undoing of bag 2's packing. Had phone 1 locked bag 1, then B1 (the undo), then C (the
    climb), and phone 2 B2, C and bag 2, then B1, each would wait for the other (PostgreSQL
    ends one: a 409 for a valid sync). The containers an undo judges are locked with the
    call's own batches, in one id order (`recorder._load`): both records are applied."""
    carrier = world.orgs["carrier"].id
    bag1, bag2 = [
        (await tag_bag(client, world, carrier_organization_id=carrier))["code"] for _ in range(2)
    ]
    box1, crate, box2 = [
        (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
        for _ in range(3)
    ]
    await collect(client, world, bag1, bag2, minutes=2)
    await recorded(
        client, world, "carrier", event("aggregated", box1, minutes=3, children=[bag1, bag2])
    )
    await recorded(client, world, "carrier", event("aggregated", crate, minutes=4, children=[box1]))
    first = await _own_event(client, world, bag1, "aggregated")
    second = await _own_event(client, world, bag2, "aggregated")

    # Hold each call at the moment the other would reach it (a second at most), so the two
    # phones' syncs meet every run as they meet by chance in the field.
    phone1_holds_box, phone2_waits = asyncio.Event(), asyncio.Event()
    undo_lock = corrections.locked_container
    climb_lock = transitions.locked_container

    async def undo_locks(work: Any, batch_id: int) -> Any:
        if crate in work.batches:  # phone 2
            try:
                await asyncio.wait_for(phone1_holds_box.wait(), 3)
            except TimeoutError:
                pass
            phone2_waits.set()
            return await undo_lock(work, batch_id)
        held = await undo_lock(work, batch_id)
        phone1_holds_box.set()
        return held

    async def climb_locks(work: Any, batch_id: int) -> Any:
        if crate not in work.batches:  # phone 1, climbing from the box to the crate
            try:
                await asyncio.wait_for(phone2_waits.wait(), 3)
            except TimeoutError:
                pass
            await asyncio.sleep(0.3)  # phone 2's lock request is in
        return await climb_lock(work, batch_id)

    monkeypatch.setattr(corrections, "locked_container", undo_locks)
    monkeypatch.setattr(transitions, "locked_container", climb_locks)

    async def phone1() -> httpx.Response:
        return await client.post(
            "/m/v1/sync",
            json={"events": [_undo(bag1, first)]},
            headers=world.headers("carrier"),
        )

    async def phone2() -> httpx.Response:
        await asyncio.sleep(0.2)
        return await client.post(
            "/m/v1/sync",
            json={
                "events": [
                    event("aggregated", crate, minutes=20, children=[box2]),
                    _undo(bag2, second, minutes=31),
                ]
            },
            headers=world.headers("carrier"),
        )

    one, two = await asyncio.gather(phone1(), phone2())
    answers = (one.status_code, two.status_code)
    assert answers == (200, 200), (one.text, two.text)
    assert [r["status"] for r in one.json()["results"]] == ["applied"], one.text
    assert [r["status"] for r in two.json()["results"]] == ["applied", "applied"], two.text
    assert {b.code: b.parent_id for b in await Batch.filter(code__in=[bag1, bag2])} == {
        bag1: None,
        bag2: None,
    }


async def test_an_undo_whose_crate_was_boxed_meanwhile_does_not_deadlock(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two bags in crate C; box X was tagged before C (a lower id). Phone 1 syncs the undoing
    of bag 1's packing: it reads C's containers (none: C is loose). Phone 3 then packs C into X
    (committed). Phone 2 syncs the undoing of bag 2's packing: it reads {C, X} and locks
    bag 2, X, C in id order. Had phone 1 kept bag 1 and C locked and climbed to X last, out of
    order, each would wait for the other (a 409 for a valid sync). Phone 1 reads the
    containers again once its batches are locked, finds X, and takes its locks again with it,
    in id order (`repository.load`): both undos are applied."""
    carrier = world.orgs["carrier"].id
    bag1, bag2 = [
        (await tag_bag(client, world, carrier_organization_id=carrier))["code"] for _ in range(2)
    ]
    box, crate = [
        (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
        for _ in range(2)
    ]
    await collect(client, world, bag1, bag2, minutes=2)
    await recorded(
        client, world, "carrier", event("aggregated", crate, minutes=3, children=[bag1, bag2])
    )
    first = await _own_event(client, world, bag1, "aggregated")
    second = await _own_event(client, world, bag2, "aggregated")
    ids = {b.code: b.id for b in await Batch.filter(code__in=[bag1, bag2, box, crate])}
    assert ids[bag1] < ids[box] < ids[crate] and ids[bag2] < ids[box]

    phone1_read, boxed, phone1_climbs, phone2_locks = (asyncio.Event() for _ in range(4))
    read = repository.containers_of
    climb = transitions.locked_container

    async def containers_of(codes: list[str]) -> set[str]:
        found = await read(codes)
        if codes == [bag1]:  # phone 1: read before the crate is boxed, locked after
            phone1_read.set()
            await asyncio.wait_for(boxed.wait(), 10)
        elif codes == [bag2]:  # phone 2: its LOAD follows at once
            phone2_locks.set()
        return found

    async def climbing(work: Any, batch_id: int) -> Any:
        if bag1 in work.batches and batch_id == ids[box]:  # phone 1, climbing to the box
            phone1_climbs.set()
            await asyncio.wait_for(phone2_locks.wait(), 10)
            await asyncio.sleep(0.5)  # phone 2's lock requests are in
        return await climb(work, batch_id)

    monkeypatch.setattr(repository, "containers_of", containers_of)
    monkeypatch.setattr(transitions, "locked_container", climbing)

    async def phone1() -> httpx.Response:
        return await client.post(
            "/m/v1/sync", json={"events": [_undo(bag1, first)]}, headers=world.headers("carrier")
        )

    async def phone3() -> httpx.Response:
        await asyncio.wait_for(phone1_read.wait(), 10)
        try:
            return await client.post(
                "/m/v1/sync",
                json={"events": [event("aggregated", box, minutes=20, children=[crate])]},
                headers=world.headers("carrier"),
            )
        finally:
            boxed.set()

    async def phone2() -> httpx.Response:
        await asyncio.wait_for(phone1_climbs.wait(), 10)
        return await client.post(
            "/m/v1/sync",
            json={"events": [_undo(bag2, second, minutes=31)]},
            headers=world.headers("carrier"),
        )

    one, three, two = await asyncio.gather(phone1(), phone3(), phone2())
    assert three.status_code == 200, three.text
    assert [r["status"] for r in three.json()["results"]] == ["applied"], three.text
    assert (one.status_code, two.status_code) == (200, 200), (one.text, two.text)
    assert [r["status"] for r in one.json()["results"]] == ["applied"], one.text
    assert [r["status"] for r in two.json()["results"]] == ["applied"], two.text
