"""A delivery line is never counted as nothing: a correction that would move a line weighed
in kg alone into the group counted in m³ (sewage) is refused, naming the category."""

import httpx

from tests.custody.helpers import post_event
from tests.factories import World, event
from tests.ports.test_ports import Harbour, arrive, deliver, delivery
from wastetrack.batches.models import Batch
from wastetrack.core.cityday import local_date

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


async def test_a_line_corrected_into_a_count_shows_the_m3_the_figures_count(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """Sewage measured at 1.2 m³, its batch corrected into a count: the port figures still
    count the line's measured m³ (metrics.md §6), so the delivery, its receipt and its public
    check show them too, not an empty volume."""
    code, tagging = await delivered_batch(
        client, world, harbour, {"category": "marine.sewage", "volume_m3": "1.2"}
    )
    fix = event("corrected", code, minutes=1, corrects=tagging, unit="count", quantity="3")
    assert (await post_event(client, world, "port", fix)).status_code == 201
    day = local_date((await Batch.get(code=code)).tagged_at, world.settings.timezone).isoformat()
    period = {"date_from": day, "date_to": day}
    figures = await client.get(
        "/m/v1/metrics/ports", params=period, headers=world.headers("manager")
    )
    (port,) = [p for p in figures.json()["ports"] if p["port_id"] == world.orgs["port"].id]
    (sewage,) = [g for g in port["groups"] if g["group"] == "sewage"]
    listed = await client.get("/m/v1/deliveries", headers=world.headers("port"))
    (shown,) = listed.json()[0]["lines"]
    assert (
        (shown["volume_m3"], shown["corrected"]) == (sewage["delivered"], True) == ("1.200", True)
    )
