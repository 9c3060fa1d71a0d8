"""Manifest rules that read what a concurrent request changes hold when two run at once, not
only one by one: a manifest's quantity against its batches' declarations (docs/streams/
hazardous.md, "The manifest" 1.), and the arrival against its batches' custody ("so the
decision, which receives every batch, can always close it"). Each test holds both requests at
the check until both have passed it (or a second has gone by): a request that waits on a lock
before its check lets the other finish first."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.factories import World, event
from tests.manifests.test_custody_rules import post, tag_oil
from tests.manifests.test_manifests import (  # noqa: F401 (the fixture)
    NOW,
    Parties,
    call,
    parties,
    sign_leg,
    sign_producer,
)
from wastetrack.batches.models import Batch
from wastetrack.custody import corrections, repository, transitions
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import EventType
from wastetrack.manifests import receiving, revisions
from wastetrack.manifests.models import Manifest


def _held_at_the_check(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, expected: int
) -> None:
    """Each call of `module.name` (a check) returns only once `expected` calls have passed it
    or a second has gone by: two requests judged at the same moment, as two phones syncing at
    once are. A request that waits on a lock before its check simply lets the other finish."""
    original: Callable[..., Awaitable[Any]] = getattr(module, name)
    passed = 0
    all_in = asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> Any:
        nonlocal passed
        result = await original(*args, **kwargs)
        passed += 1
        if passed >= expected:
            all_in.set()
        try:
            await asyncio.wait_for(all_in.wait(), timeout=1.0)
        except TimeoutError:
            pass
        return result

    monkeypatch.setattr(module, name, held)


async def _tagging(client: httpx.AsyncClient, world: World, code: str) -> str:
    events = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("maker"))
    assert events.status_code == 200, events.text
    return events.json()[0]["id"]


async def _sync(client: httpx.AsyncClient, world: World, body: dict) -> httpx.Response:
    """One phone's sync of one record: two phones' syncs run at once (single posts of one
    worker take turns in its group commit; syncs and other workers do not)."""
    return await client.post("/m/v1/sync", json={"events": [body]}, headers=world.headers("maker"))


def _status(answer: httpx.Response) -> str:
    if answer.status_code != 200 or "results" not in answer.json():
        return str(answer.status_code)
    return answer.json()["results"][0]["status"]


def _off(quantity: Decimal, declared: Decimal) -> bool:
    return abs(quantity - declared) / declared > Decimal("0.05")


async def test_two_drums_corrected_at_once_keep_the_manifests_quantity_borne_out(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """800 kg for two drums of 400: each drum corrected to 430 alone is within 5 % (830 kg), both
    are not (860 kg, 7.5 % off). Sent at once, both were taken (the manifest printed 800 kg for
    batches of 860, the very state the rule refuses): now the second is judged on the first's
    correction and refused."""
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    assert (await sign_producer(client, world, made.json()["id"])).status_code == 200
    bodies = [
        event(
            "corrected",
            code,
            minutes=-50,
            corrects=await _tagging(client, world, code),
            quantity="430",
        )
        for code in parties.batches
    ]
    _held_at_the_check(monkeypatch, corrections, "_check_manifest_quantity", expected=2)
    answers = await asyncio.gather(*(_sync(client, world, b) for b in bodies))
    statuses = sorted(_status(a) for a in answers)
    declared = sum([b.quantity for b in await Batch.filter(code__in=parties.batches)], Decimal(0))
    manifest = await Manifest.get(id=made.json()["id"])
    assert not _off(manifest.quantity_kg, declared), (
        f"manifest {manifest.quantity_kg} kg for batches of {declared} kg after {statuses}:"
        f" {[a.text for a in answers]}"
    )
    assert statuses == ["applied", "rejected"], [a.text for a in answers]


async def test_a_revision_applied_while_a_drum_is_corrected_keeps_the_quantity_borne_out(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A revision to 820 kg (within 5 % of the drums' 800) gets its last approval while drum 1 is
    corrected from 400 to 370 (770 kg: 3.9 % off the manifest's 800, 6.5 % off 820). Each was
    judged against what the other had not yet written, both were taken, and the manifest
    printed 820 kg for batches of 770; now whichever is judged second sees the first."""
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    assert (await sign_producer(client, world, mid)).status_code == 200
    change = {"changes": {"quantity_kg": "820"}, "reason": "复核称重"}
    proposed = await call(client, world, "maker", f"/{mid}/revisions", change)
    assert proposed.status_code == 201, proposed.text
    rid = proposed.json()["id"]
    for who in ("carrier", "second"):
        approved = await call(client, world, who, f"/{mid}/revisions/{rid}/approve")
        assert approved.status_code == 200, approved.text
    code = parties.batches[0]
    body = event(
        "corrected", code, minutes=-50, corrects=await _tagging(client, world, code), quantity="370"
    )
    _held_at_the_check(monkeypatch, corrections, "_check_manifest_quantity", expected=2)
    _held_at_the_check(monkeypatch, revisions, "_check_quantity", expected=2)
    answers = await asyncio.gather(
        _sync(client, world, body),
        call(client, world, "plant", f"/{mid}/revisions/{rid}/approve"),
    )
    declared = sum([b.quantity for b in await Batch.filter(code__in=parties.batches)], Decimal(0))
    manifest = await Manifest.get(id=mid)
    assert not _off(manifest.quantity_kg, declared), (
        f"manifest {manifest.quantity_kg} kg for batches of {declared} kg after"
        f" {[a.status_code for a in answers]}: {[a.text for a in answers]}"
    )


async def test_an_arrival_and_a_handover_back_to_a_carrier_at_once_leave_the_manifest_closable(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every leg signed, the second carrier's phone syncs a handover of drum 1 back to the first
    carrier (allowed before the arrival: "once every leg is signed, to its receiver or one of
    its carriers") while the receiver records the arrival. Each was judged on what the other
    had not yet written and both were taken: the manifest `arrived` with drum 1 in the first
    carrier's hands, which the arrival's rule exists to prevent, and the decision refused. The
    arrival now locks the batches it judges."""
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    assert (await sign_producer(client, world, mid, NOW - timedelta(hours=2))).status_code == 200
    for seq, who in ((1, "carrier"), (2, "second")):
        signed = await sign_leg(client, world, mid, seq, who, NOW - timedelta(hours=3 - seq))
        assert signed.status_code == 200, signed.text
    back = event(
        "handed_over",
        parties.batches[0],
        to_organization_id=world.orgs["carrier"].id,
        device_time=(NOW - timedelta(minutes=30)).isoformat(),
    )
    _held_at_the_check(monkeypatch, repository, "on_signed_manifest", expected=2)
    _held_at_the_check(monkeypatch, receiving, "decision_due", expected=2)
    handover, arrival = await asyncio.gather(
        client.post("/m/v1/sync", json={"events": [back]}, headers=world.headers("second")),
        call(client, world, "plant", f"/{mid}/arrival", {"arrived_at": NOW.isoformat()}),
    )
    manifest = await Manifest.get(id=mid)
    drum = await Batch.get(code=parties.batches[0])
    taken = handover.status_code == 200 and handover.json()["results"][0]["status"] == "applied"
    decided = await call(
        client,
        world,
        "plant",
        f"/{mid}/decision",
        {"decision": "accepted", "received_quantity_kg": "800", "method": "R9"},
    )
    assert not (manifest.arrived_at is not None and taken), (
        f"both taken: decision then {decided.status_code} {decided.text[:300]};"
        f" manifest {manifest.state}, drum {drum.state} with organization"
        f" {drum.holder_id} (the first carrier is {world.orgs['carrier'].id}):"
        f" {handover.text} / {arrival.text}"
    )


async def test_a_packing_undone_while_its_load_is_being_drafted_waits_for_the_draft(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/custody.md: a packing is not undone while a manifest lists the load it is packed
    in, a draft included. The producer's office drafts a manifest of the load; while the draft
    is being written (judged, not yet committed), the producer's phone syncs the undoing of a
    drum's packing. The undo locked only the drum, saw no manifest yet and took the drum out:
    the manifest listed a load no longer holding the drum it was judged with. The undo locks
    the containers it judges with its own batches: it waits for the draft, and is refused."""
    drum = await tag_oil(client, world, quantity="100")
    load = await tag_oil(client, world, quantity="100")
    packed = event("aggregated", load, minutes=-58, children=[drum])
    assert (await post(client, world, "maker", packed)).status_code == 201
    packing = await CustodyEvent.get(
        batch__code=drum, event_type=EventType.aggregated, related_batch_id__not_isnull=True
    )
    undo = event("corrected", drum, minutes=-50, corrects=str(packing.id), aggregated=False)
    judged = asyncio.Event()
    check = transitions.receivable_methods

    async def draft_judged(*args: Any, **kwargs: Any) -> Any:
        result = await check(*args, **kwargs)
        judged.set()
        await asyncio.sleep(1.0)  # the draft is still being written
        return result

    monkeypatch.setattr(transitions, "receivable_methods", draft_judged)

    async def undo_meanwhile() -> httpx.Response:
        await asyncio.wait_for(judged.wait(), 10)
        return await _sync(client, world, undo)

    draft = {**parties.body, "batches": [load], "quantity_kg": "100"}
    drafted, synced = await asyncio.gather(
        call(client, world, "maker", "", draft), undo_meanwhile()
    )
    assert drafted.status_code == 201, drafted.text
    result = synced.json()["results"][0]
    assert result["status"] == "rejected", synced.text  # it was applied
    assert result["error"]["field"] == "aggregated", synced.text
    assert (await Batch.get(code=drum)).parent_id is not None
