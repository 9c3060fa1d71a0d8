"""A phone's id names one record (docs/custody.md, "Exactly once: sync"): sent again for
another kind of record it is a conflict that records nothing, as a resend with other content
is; each kind keeps its own ids, so this is looked up across them."""

import httpx

from tests.factories import World
from tests.household.test_sorting import pickup, point_url
from tests.pesticide.test_take_back import a_return, points
from tests.ports.test_ports import cleanup, harbour
from wastetrack.batches.models import Batch
from wastetrack.household.models import Pickup
from wastetrack.pesticide.models import PackagingReturn

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


async def test_a_clean_ups_id_sent_again_as_a_return_is_a_conflict(
    client: httpx.AsyncClient, points: World
) -> None:
    """A return makes no custody event: nothing but the lookup across kinds catches it."""
    first = {**cleanup(points), "kind": "cleanup"}
    again = {**a_return(), "kind": "return", "client_event_id": first["client_event_id"]}
    got = await results(client, points, "station", first, again)
    assert got == [("applied", None), ("conflict", "client_event_id")]
    assert await PackagingReturn.all().count() == 0
