"""Port figures: a delivery and its lines fall in the same period, the day of its lines'
tagging after corrections."""

from datetime import date, datetime, time, timedelta

import httpx

from tests.custody.helpers import post_event
from tests.factories import CITY_TODAY, CITY_ZONE, World, event
from tests.ports.test_ports import Harbour, arrive, deliver, delivery


async def figures(client: httpx.AsyncClient, world: World, day: date) -> tuple[int, str, int]:
    """The port's deliveries and garbage delivered on the day, and the vessels of 石岛东南
    with a delivery on it."""
    period = {"date_from": day.isoformat(), "date_to": day.isoformat()}
    ports = await client.get("/m/v1/metrics/ports", headers=world.headers("manager"), params=period)
    port = next(p for p in ports.json()["ports"] if p["port_id"] == world.orgs["port"].id)
    garbage = next(g for g in port["groups"] if g["group"] == "garbage")
    areas = await client.get(
        "/m/v1/metrics/sea-areas", headers=world.headers("manager"), params=period
    )
    shidao = next(a for a in areas.json()["areas"] if a["code"] == "shidao_se")
    return port["deliveries"], garbage["delivered"], shidao["vessels_with_deliveries"]


async def test_a_delivery_moves_with_its_lines_corrected_tagging_day(
    client: httpx.AsyncClient, world: World, harbour: Harbour
) -> None:
    """The discharge's end typed after the city's midnight: corrected to the evening before,
    the lines, the delivery and the vessel's sea-area delivery all move to that day; the
    receipt number keeps the day it was issued on."""
    await arrive(client, world, harbour.small)
    line = {"annex_v": "A", "scheme_version": "2018", "mass_kg": "30"}
    response = await deliver(client, world, delivery(harbour, harbour.small, line))
    assert response.status_code == 201, response.text
    made = response.json()
    assert await figures(client, world, CITY_TODAY) == (1, "30.000", 1)
    code = made["lines"][0]["batch_code"]
    history = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("port"))
    evening = datetime.combine(CITY_TODAY, time(), CITY_ZONE) - timedelta(minutes=10)
    fix = event(
        "corrected",
        code,
        minutes=1,
        corrects=history.json()[0]["id"],
        event_time=evening.isoformat(),
    )
    assert (await post_event(client, world, "port", fix)).status_code == 201
    yesterday = CITY_TODAY - timedelta(days=1)
    assert await figures(client, world, yesterday) == (1, "30.000", 1)
    assert await figures(client, world, CITY_TODAY) == (0, "0", 0)
    read = await client.get(f"/m/v1/deliveries/{made['id']}", headers=world.headers("port"))
    assert read.json()["receipt_number"] == made["receipt_number"]
