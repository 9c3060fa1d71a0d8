"""An aggregation undone by a correction (`aggregated: false` on the bag's own `aggregated`
event, docs/custody.md) in the registers: the bag was never in that container, so it never left
its holder's custody — no `aggregated` row out, no correction coming back in, its storage clock
its own and the container's not set back by it — and the container carries it nowhere. A later
aggregation counts as any other."""

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx

from tests.custody.helpers import collect, recorded, tag_bag
from tests.factories import World, event
from tests.registers.test_registers import rows, today


async def _undo(client: httpx.AsyncClient, world: World, who: str, code: str, minutes: int) -> None:
    """Take the bag out of the container its latest `aggregated` event put it into."""
    listed = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("manager"))
    assert listed.status_code == 200, listed.text
    scan = [e for e in listed.json() if e["event_type"] == "aggregated"][-1]
    undo = event("corrected", code, minutes=minutes, corrects=scan["id"], aggregated=False)
    await recorded(client, world, who, undo)


def _out(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["code"], r["how"], r["into"]) for r in found]


def _in(found: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((r["code"], r["how"]) for r in found)


async def _stock(client: httpx.AsyncClient, world: World, who: str, **kw: Any) -> dict[str, Any]:
    return cast(dict[str, Any], await rows(client, world, who, "inventory", **kw))


def _counts(stock: dict[str, Any]) -> dict[str, int]:
    (balance,) = stock["balance"]
    return {part: balance[part]["batches"] for part in ("incoming", "outgoing", "closing")}


async def test_a_bag_taken_out_of_a_load_stays_with_its_holder_as_the_load_moves_on(
    client: httpx.AsyncClient, world: World
) -> None:
    """A carrier scans two bags into its load and takes one out again; the load goes to the
    facility. The bag taken out never left the carrier: it is in its inventory, in none of its
    outgoing rows, and came in once (collected); the facility received the load alone."""
    carrier = world.orgs["carrier"].id
    right, wrong = [
        (await tag_bag(client, world, carrier_organization_id=carrier))["code"] for _ in range(2)
    ]
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    await collect(client, world, right, wrong, minutes=2)
    scan = event("aggregated", load, minutes=3, children=[right, wrong])
    await recorded(client, world, "carrier", scan)
    await _undo(client, world, "carrier", wrong, minutes=4)
    facility = world.orgs["facility"].id
    for who, body in (
        ("carrier", event("collected", load, minutes=8)),
        ("carrier", event("in_transit", load, minutes=10, destination_organization_id=facility)),
        ("facility", event("received", load, minutes=15, outcome="accepted", weight_kg="7")),
    ):
        await recorded(client, world, who, body)

    outgoing = await rows(client, world, "carrier", "outgoing")
    assert _out(outgoing) == [(right, "aggregated", load), (load, "received", None)]
    incoming = await rows(client, world, "carrier", "incoming")
    assert _in(incoming) == sorted([(load, "tagged"), (right, "collected"), (wrong, "collected")])
    stock = await _stock(client, world, "carrier")
    assert [b["code"] for b in stock["batches"]] == [wrong]
    assert _counts(stock) == {"incoming": 3, "outgoing": 2, "closing": 1}
    handovers = await rows(client, world, "carrier", "medical-handover")
    assert sorted((r["code"], r["how"], r["direction"]) for r in handovers) == sorted(
        [(right, "collected", "in"), (wrong, "collected", "in"), (load, "received", "out")]
    )
    facility_in = await rows(client, world, "facility", "incoming")
    assert _in(facility_in) == [(load, "received")]


async def test_a_bag_taken_out_of_a_box_keeps_its_own_storage_clock_and_not_the_boxs(
    client: httpx.AsyncClient, world: World
) -> None:
    """A clinic packs a three-day-old bag and a new one into a box, then takes the old one out:
    the box has been stored as long as the new bag, not the old one, and the old bag is stored
    since its tagging. The box goes to the carrier without it."""
    three_days_ago = datetime.now(UTC) - timedelta(days=3, hours=1)
    old = (await tag_bag(client, world, device_time=three_days_ago.isoformat()))["code"]
    carrier = world.orgs["carrier"].id
    new = (await tag_bag(client, world))["code"]
    box = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    await recorded(
        client, world, "clinic", event("aggregated", box, minutes=5, children=[old, new])
    )
    await _undo(client, world, "clinic", old, minutes=6)
    days = (today() - timedelta(days=10), today())

    stock = await _stock(client, world, "clinic", days=days)
    held = [(b["code"], b["storage_days"], b["overdue"]) for b in stock["batches"]]
    assert held == [(old, 3, True), (box, 0, False)]
    assert datetime.fromisoformat(stock["batches"][0]["since"]) == three_days_ago

    await recorded(client, world, "carrier", event("collected", box, minutes=10))
    outgoing = await rows(client, world, "clinic", "outgoing", days=days)
    assert _out(outgoing) == [(new, "aggregated", box), (box, "collected", None)]
    stock = await _stock(client, world, "clinic", days=days)
    assert [b["code"] for b in stock["batches"]] == [old]
    assert _counts(stock) == {"incoming": 3, "outgoing": 2, "closing": 1}
    assert _in(await rows(client, world, "carrier", "incoming")) == [(box, "collected")]


async def test_a_bag_taken_out_and_scanned_into_another_load_left_once_into_that_one(
    client: httpx.AsyncClient, world: World
) -> None:
    """Taken out of the first load and scanned into the second: the carrier's register has the
    bag leave once, into the second load, at that scan."""
    carrier = world.orgs["carrier"].id
    bag = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    first, second = [
        (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
        for _ in range(2)
    ]
    await collect(client, world, bag, minutes=2)
    await recorded(client, world, "carrier", event("aggregated", first, minutes=3, children=[bag]))
    await _undo(client, world, "carrier", bag, minutes=4)
    await recorded(client, world, "carrier", event("aggregated", second, minutes=5, children=[bag]))

    outgoing = await rows(client, world, "carrier", "outgoing")
    assert _out(outgoing) == [(bag, "aggregated", second)]
    incoming = await rows(client, world, "carrier", "incoming")
    assert _in(incoming) == sorted([(first, "tagged"), (second, "tagged"), (bag, "collected")])
    stock = await _stock(client, world, "carrier")
    assert sorted(b["code"] for b in stock["batches"]) == sorted([first, second])


async def test_a_bag_taken_out_idles_from_its_own_latest_step(
    client: httpx.AsyncClient, world: World
) -> None:
    """The undone scan was no step: the bag's idle clock (`last_device_time`, read by the
    idle and in-transit alerts) goes back to its collection, not the scan's time."""
    from tortoise import connections

    from wastetrack.alerts import service as alerts
    from wastetrack.batches.models import Batch
    from wastetrack.core.settings import Settings

    carrier = world.orgs["carrier"].id
    (bag,) = [(await tag_bag(client, world, carrier_organization_id=carrier))["code"]]
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    await collect(client, world, bag, minutes=2)
    await recorded(client, world, "carrier", event("aggregated", load, minutes=30, children=[bag]))
    await _undo(client, world, "carrier", bag, minutes=31)
    collected = datetime.fromisoformat(event("collected", bag, minutes=2)["device_time"])
    assert (await Batch.get(code=bag)).last_device_time == collected
    # An hour idle, counted from the collection: due 62 minutes in, not 90.
    await alerts.refresh(
        now=collected + timedelta(minutes=70), settings=Settings(idle_batch_hours=1)
    )
    raised = await connections.get("default").execute_query_dict(
        "SELECT details->>'since' AS since FROM alert a JOIN batch b ON b.id = a.batch_id"
        " WHERE a.kind = 'idle_batch' AND b.code = $1",
        [bag],
    )
    assert [datetime.fromisoformat(r["since"]) for r in raised] == [collected]
