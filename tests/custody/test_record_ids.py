"""A phone's id names one record (docs/custody.md, "Exactly once: sync"): sent again for
another kind of record it is a conflict that records nothing, as a resend with other content
is; each kind keeps its own ids, so this is looked up across them."""

import asyncio
import uuid
from datetime import timedelta

import httpx

from tests.custody.helpers import tag_bag
from tests.factories import NOW, World, event, medical_bag
from tests.household.test_sorting import pickup, point_url
from tests.pesticide.test_take_back import BOTTLES_AND_DRUMS, a_return, a_sale, points, post, send
from tests.ports.test_ports import cleanup, harbour
from wastetrack.batches.models import Batch, Label
from wastetrack.custody.models import CustodyEvent
from wastetrack.household.models import Pickup
from wastetrack.pesticide.models import PackageSale, PackagingReturn
from wastetrack.ports.models import CleanUp

__all__ = ["harbour", "point_url", "points"]  # the fixtures the records need


async def results(client: httpx.AsyncClient, world: World, who: str, *entries: dict) -> list:
    answer = await client.post(
        "/m/v1/sync", json={"events": list(entries)}, headers=world.headers(who)
    )
    assert answer.status_code == 200, answer.text
    return [(r["status"], (r["error"] or {}).get("field")) for r in answer.json()["results"]]


async def test_a_clean_ups_id_sent_again_as_a_pickup_is_a_conflict(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    first = {**cleanup(world), "kind": "cleanup"}
    again = {**pickup(point_url), "kind": "pickup", "client_event_id": first["client_event_id"]}
    got = await results(client, world, "collector", first, again)
    assert got == [("applied", None), ("conflict", "client_event_id")]
    assert await Pickup.all().count() == 0 and await Batch.all().count() == 1
    single = await client.post("/m/v1/pickups", json=again, headers=world.headers("collector"))
    assert (single.status_code, single.json()["field"]) == (409, "client_event_id"), single.text


async def test_an_events_id_then_a_pickup_with_it_in_one_sync_is_a_conflict_as_in_two(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """A tagging and then a pickup sent with its id: in one body as in two syncs the pickup is
    a conflict and records nothing, though a sync writes its records before its events (first
    written by an independent review)."""
    for together in (False, True):
        tagging = {
            **event("tagged", stream="household", category="hh.food.household"),
            "quantity": "2",
            "unit": "kg",
        }
        again = {
            **pickup(point_url),
            "kind": "pickup",
            "client_event_id": tagging["client_event_id"],
        }
        if together:
            got = await results(client, world, "collector", tagging, again)
        else:
            got = [
                *await results(client, world, "collector", tagging),
                *await results(client, world, "collector", again),
            ]
        assert got == [("applied", None), ("conflict", "client_event_id")], together
        assert await Pickup.all().count() == 0


def at(seconds: int) -> str:
    return (NOW - timedelta(hours=1) + timedelta(seconds=seconds)).isoformat()


async def labels(client: httpx.AsyncClient, world: World, count: int) -> list[str]:
    before = {label.code for label in await Label.filter(organization=world.orgs["clinic"])}
    printed = await client.post(
        "/m/v1/labels",
        headers=world.headers("manager"),
        json={"organization_id": world.orgs["clinic"].id, "stream": "medical", "count": count},
    )
    assert printed.status_code == 201, printed.text
    return sorted(
        label.code
        for label in await Label.filter(organization=world.orgs["clinic"])
        if label.code not in before
    )


async def clinic_sync(client: httpx.AsyncClient, world: World, entries: list) -> list[str]:
    answer = await client.post(
        "/m/v1/sync", json={"events": entries}, headers=world.headers("clinic")
    )
    assert answer.status_code == 200, answer.text
    return [r["status"] for r in answer.json()["results"]]


async def test_a_tagging_sent_after_a_clashing_record_still_goes_before_its_labels_events(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """docs/custody.md: "a tagging goes before its label's other events ... wherever in the body
    the tagging is". A handover of BAG sent before its tagging is applied after it, whether or
    not a record reusing another event's id sits between them in the body (the record waits
    for the events; first written by an independent review)."""
    carrier = world.orgs["carrier"].id
    for clash in (False, True):
        bag, other = await labels(client, world, 2)
        handover = event("handed_over", bag, to_organization_id=carrier) | {"device_time": at(10)}
        other_tagging = medical_bag(batch=other) | {"device_time": at(0)}
        record = {
            **pickup(point_url),
            "kind": "pickup",
            "client_event_id": other_tagging["client_event_id"],
        }
        bag_tagging = medical_bag(batch=bag) | {"device_time": at(0)}
        body = [handover, other_tagging, *([record] if clash else []), bag_tagging]
        got = await clinic_sync(client, world, body)
        events_only = [s for i, s in enumerate(got) if not (clash and i == 2)]
        chain = [e.event_type for e in await CustodyEvent.filter(batch__code=bag).order_by("seq")]
        assert (events_only, chain) == (["applied"] * 3, ["tagged", "handed_over"]), (clash, got)


async def test_events_after_a_clashing_record_still_apply_in_device_time_order(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """docs/custody.md: "the events apply in device-time order (a backlog may come in any
    order)". The box is packed at +10 s and handed on at +200 s (more than the minute a clock
    is trusted), sent the other way round: the packing goes first, whether or not a record
    reusing the handover's id sits between them (first written by an independent review)."""
    carrier = world.orgs["carrier"].id
    for clash in (False, True):
        bag, box = await labels(client, world, 2)
        tags = [
            medical_bag(batch=bag) | {"device_time": at(0)},
            medical_bag(batch=box) | {"device_time": at(1)},
        ]
        handover = event("handed_over", box, to_organization_id=carrier) | {"device_time": at(200)}
        packing = event("aggregated", box, children=[bag]) | {"device_time": at(10)}
        record = {
            **pickup(point_url),
            "kind": "pickup",
            "client_event_id": handover["client_event_id"],
        }
        body = [*tags, handover, *([record] if clash else []), packing]
        got = await clinic_sync(client, world, body)
        events_only = [s for i, s in enumerate(got) if not (clash and i == 3)]
        packed = await Batch.get(code=bag)
        assert (events_only, packed.state) == (["applied"] * 4, "aggregated"), (clash, got)


async def test_a_clean_ups_id_sent_again_as_a_return_is_a_conflict(
    client: httpx.AsyncClient, points: World
) -> None:
    """A return makes no custody event: nothing but the lookup across kinds catches it."""
    first = {**cleanup(points), "kind": "cleanup"}
    again = {**a_return(), "kind": "return", "client_event_id": first["client_event_id"]}
    got = await results(client, points, "station", first, again)
    assert got == [("applied", None), ("conflict", "client_event_id")]
    assert await PackagingReturn.all().count() == 0


async def test_one_id_sent_at_once_as_two_kinds_makes_one_record(
    client: httpx.AsyncClient, points: World
) -> None:
    """Two phones' syncs (or a retry on another connection) carrying one id at the same moment,
    as a clean-up and as a return: they take turns, and the second is the conflict."""

    async def send(entry: dict) -> str:
        answer = await client.post(
            "/m/v1/sync", json={"events": [entry]}, headers=points.headers("station")
        )
        status: str = answer.json()["results"][0]["status"]
        return status

    for _ in range(5):
        shared = str(uuid.uuid4())
        statuses = await asyncio.gather(
            send({**cleanup(points), "kind": "cleanup", "client_event_id": shared}),
            send({**a_return(), "kind": "return", "client_event_id": shared}),
        )
        assert sorted(statuses) == ["applied", "conflict"], statuses
        records = await CleanUp.filter(client_event_id=shared).count()
        records += await PackagingReturn.filter(client_event_id=shared).count()
        assert records == 1


SALES = "/m/v1/pesticide/sales"


async def test_a_sales_id_sent_again_as_a_return_or_a_consignment_is_a_conflict(
    client: httpx.AsyncClient, points: World
) -> None:
    """A sale is a tally kept by its id, as a float replacement is: its id names it among the
    records too, and a record's among the tallies."""
    sale = a_sale()
    assert (await post(client, points, sale, path=SALES)).status_code == 201
    as_return = await post(client, points, a_return(client_event_id=sale["client_event_id"]))
    sent = await send(
        client, points, *BOTTLES_AND_DRUMS, who="shop", client_event_id=sale["client_event_id"]
    )
    for refused in (as_return, sent):
        assert (refused.status_code, refused.json()["field"]) == (409, "client_event_id")
    assert await PackagingReturn.all().count() == 0 and await Batch.all().count() == 0
    returned = a_return()
    assert (await post(client, points, returned, who="station")).status_code == 201
    as_sale = await post(
        client, points, {**a_sale(), "client_event_id": returned["client_event_id"]}, path=SALES
    )
    assert (as_sale.status_code, as_sale.json()["field"]) == (409, "client_event_id")
    assert await PackageSale.all().count() == 1


async def test_a_custody_events_id_sent_again_as_a_sale_is_a_conflict(
    client: httpx.AsyncClient, points: World
) -> None:
    bag = await tag_bag(client, points)
    history = await client.get(
        f"/m/v1/batches/{bag['code']}/events", headers=points.headers("clinic")
    )
    taken = history.json()[0]["client_event_id"]
    as_sale = await post(client, points, {**a_sale(), "client_event_id": taken}, path=SALES)
    assert (as_sale.status_code, as_sale.json()["field"]) == (409, "client_event_id")
    assert await PackageSale.all().count() == 0
