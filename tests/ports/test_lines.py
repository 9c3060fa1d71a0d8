"""A delivery line is never counted as nothing: a correction that would move a line weighed
in kg alone into the group counted in m³ (sewage) is refused, naming the category."""

import httpx

from tests.custody.helpers import post_event
from tests.factories import World, event
from tests.ports.test_ports import Harbour, arrive, deliver, delivery
from wastetrack.batches.models import Batch

WEIGHED_PLASTICS = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"}


async def delivered_batch(client: httpx.AsyncClient, world: World, harbour: Harbour, line: dict):
    """The line's batch code and the id of its tagging, which a correction names."""
    await arrive(client, world, harbour.small)
    response = await deliver(client, world, delivery(harbour, harbour.small, line))
    assert response.status_code == 201, response.text
    code = response.json()["lines"][0]["batch_code"]
    history = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("port"))
    return code, history.json()[0]["id"]


async def test_a_kg_line_cannot_be_corrected_into_sewage_without_its_m3(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    code, tagging = await delivered_batch(client, world, harbour, WEIGHED_PLASTICS)
    fix = event("corrected", code, minutes=1, corrects=tagging, category="marine.sewage")
    refused = await post_event(client, world, "port", fix)
    assert (refused.status_code, refused.json()["field"]) == (422, "category"), refused.text
    batch = await Batch.get(code=code)
    assert (batch.category_id, batch.unit) == ("marpol2018.A", "kg")


async def test_a_kg_line_corrected_into_sewage_with_its_m3_is_kept(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    code, tagging = await delivered_batch(client, world, harbour, WEIGHED_PLASTICS)
    fix = event(
        "corrected",
        code,
        minutes=1,
        corrects=tagging,
        category="marine.sewage",
        unit="m3",
        quantity="0.03",
    )
    response = await post_event(client, world, "port", fix)
    assert response.status_code == 201, response.text
    batch = await Batch.get(code=code)
    assert (batch.category_id, batch.unit) == ("marine.sewage", "m3")
