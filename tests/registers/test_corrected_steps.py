"""A correction moves nothing: what it corrects is read into the step it corrects, at that
step's time (a receipt's outcome, a treatment's method), as the registers read an undone
aggregation as never having happened (docs/registers.md)."""

from datetime import datetime
from typing import Any

import httpx

from tests.custody.helpers import advance, tag_bag
from tests.factories import World, event
from tests.registers.test_movement_parties import posted, rows


def _moves(found: list[dict[str, Any]], code: str) -> list[tuple[str, datetime]]:
    return [(r["how"], datetime.fromisoformat(r["time"])) for r in found if r["code"] == code]


async def _receipt(
    client: httpx.AsyncClient, world: World, outcome: str, **fields: Any
) -> tuple[str, dict[str, Any], datetime]:
    """A clinic's bag the carrier delivers, received an hour in with `outcome`: its code, the
    receipt as recorded and its time."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="in_transit")
    body = event("received", bag["code"], minutes=60, outcome=outcome, **fields)
    return bag["code"], await posted(client, world, "facility", body), _at(body)


def _at(body: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(body["device_time"])


async def _correct(
    client: httpx.AsyncClient, world: World, code: str, receipt: dict[str, Any], **fields: Any
) -> None:
    """The facility corrects its receipt ten minutes later (and later than the day it came)."""
    body = event(
        "corrected", code, minutes=70, corrects=receipt["event_id"], reason="checked", **fields
    )
    await posted(client, world, "facility", body)


async def test_an_acceptance_corrected_into_a_rejection_was_never_the_facilitys(
    client: httpx.AsyncClient, world: World
) -> None:
    """Accepted on the gate's scan, corrected to a rejection once the paperwork was checked:
    the facility never held the bag (no row in, none out, not in its inventory or handover
    register); the carrier never gave it up, its storage running on from the collection."""
    code, receipt, _ = await _receipt(client, world, "accepted", weight_kg="3.4")
    await _correct(client, world, code, receipt, outcome="rejected")
    for kind in ("incoming", "outgoing", "medical-handover"):
        assert _moves(await rows(client, world, "facility", kind), code) == [], kind
    stock = await rows(client, world, "facility", "inventory")
    assert code not in [b["code"] for b in stock["batches"]]
    assert _moves(await rows(client, world, "carrier", "outgoing"), code) == []
    carried = await rows(client, world, "carrier", "inventory")
    (held,) = [b for b in carried["batches"] if b["code"] == code]
    (collected,) = _moves(await rows(client, world, "carrier", "incoming"), code)
    assert collected[0] == "collected" and datetime.fromisoformat(held["since"]) == collected[1]


async def test_a_rejection_corrected_into_an_acceptance_came_in_when_the_waste_did(
    client: httpx.AsyncClient, world: World
) -> None:
    code, receipt, at = await _receipt(client, world, "rejected", reason="leaking")
    await _correct(client, world, code, receipt, outcome="accepted", weight_kg="3.4")
    assert _moves(await rows(client, world, "facility", "incoming"), code) == [("received", at)]
    assert _moves(await rows(client, world, "carrier", "outgoing"), code) == [("received", at)]
    stock = await rows(client, world, "facility", "inventory")
    (held,) = [b for b in stock["batches"] if b["code"] == code]
    assert datetime.fromisoformat(held["since"]) == at


async def test_a_part_refused_by_a_correction_goes_back_when_the_receipt_was_made(
    client: httpx.AsyncClient, world: World
) -> None:
    code, receipt, at = await _receipt(client, world, "accepted", weight_kg="3.4")
    await _correct(client, world, code, receipt, outcome="partially_accepted", weight_kg="2.0")
    back = [
        r
        for r in await rows(client, world, "carrier", "incoming")
        if r["how"] == "refused_remainder"
    ]
    assert [datetime.fromisoformat(r["time"]) for r in back] == [at]
    (refused,) = [
        r
        for r in await rows(client, world, "facility", "medical-handover")
        if r["how"] == "refused_remainder"
    ]
    assert datetime.fromisoformat(refused["time"]) == at


async def _treated(
    client: httpx.AsyncClient, world: World, method: str
) -> tuple[str, dict[str, Any], datetime]:
    """A bag accepted an hour in and treated by `method` half an hour later."""
    code, _, _ = await _receipt(client, world, "accepted", weight_kg="3.4")
    body = event("treated", code, minutes=90, method=method)
    return code, await posted(client, world, "facility", body), _at(body)


async def test_a_treatment_corrected_into_pending_storage_leaves_the_waste_in_stock(
    client: httpx.AsyncClient, world: World
) -> None:
    """Recorded as incinerated (D10), corrected to storage pending treatment (D15): the
    facility still holds the bag since it came in; no row took it out, none brought it back."""
    code, treated, _ = await _treated(client, world, "D10")
    body = event("corrected", code, minutes=95, corrects=treated["event_id"], method="D15")
    await posted(client, world, "facility", body)
    assert _moves(await rows(client, world, "facility", "outgoing"), code) == []
    (came,) = _moves(await rows(client, world, "facility", "incoming"), code)
    stock = await rows(client, world, "facility", "inventory")
    (held,) = [b for b in stock["batches"] if b["code"] == code]
    assert (came[0], datetime.fromisoformat(held["since"])) == ("received", came[1])


async def test_a_pending_storage_corrected_into_a_treatment_leaves_when_it_was_treated(
    client: httpx.AsyncClient, world: World
) -> None:
    code, treated, at = await _treated(client, world, "D15")
    body = event("corrected", code, minutes=95, corrects=treated["event_id"], method="D10")
    await posted(client, world, "facility", body)
    assert _moves(await rows(client, world, "facility", "outgoing"), code) == [("treated", at)]
    stock = await rows(client, world, "facility", "inventory")
    assert code not in [b["code"] for b in stock["batches"]]


async def test_a_note_on_a_bag_in_a_load_later_taken_out_again_moves_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    """A bag scanned into the carrier's load, annotated there, then taken out again (the scan
    undone): it never left the carrier, note or no note."""
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    code = bag["code"]
    await advance(client, world, code, until="collected")
    box = await tag_bag(client, world, "carrier", producer_organization_id=carrier)
    into = event("aggregated", box["code"], minutes=65, children=[code])
    await posted(client, world, "carrier", into)
    listed = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("carrier"))
    steps = {e["event_type"]: e["id"] for e in listed.json()}
    note = event("corrected", code, minutes=70, corrects=steps["collected"], note="seal checked")
    await posted(client, world, "carrier", note)
    undo = event("corrected", code, minutes=75, corrects=steps["aggregated"], aggregated=False)
    await posted(client, world, "carrier", undo)
    incoming = await rows(client, world, "carrier", "incoming")
    assert [how for how, _ in _moves(incoming, code)] == ["collected"]
    assert _moves(await rows(client, world, "carrier", "outgoing"), code) == []
