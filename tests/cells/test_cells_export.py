"""The zero-waste cells as a spreadsheet: the headline share judged against the target, each
type's, the day they stand on and the target, and the period in X-Period."""

import csv
import io

import httpx

from tests.factories import World
from wastetrack.core import cityday


async def register(client: httpx.AsyncClient, world: World, cell_type: str, name: str) -> None:
    made = await client.post(
        "/m/v1/cells",
        headers=world.headers("manager"),
        json={"cell_type": cell_type, "name": name, "region_id": world.regions["village"].id},
    )
    assert made.status_code == 201, made.text


async def test_the_export_carries_the_headline_share_its_day_and_the_target(
    client: httpx.AsyncClient, world: World
) -> None:
    await register(client, world, "community", "北山社区")
    await register(client, world, "school", "北山小学")
    today = cityday.today(world.settings.timezone).isoformat()
    url, manager = "/m/v1/metrics/cells", world.headers("manager")
    answer = (await client.get(url, headers=manager)).json()
    exported = await client.get(url, params={"format": "csv"}, headers=manager)
    assert exported.status_code == 200, exported.text
    # A standing on the day, said as sorting's export says its period.
    assert exported.headers["x-period"] == f"{today}/{today}"
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [r["cell_type"] for r in rows] == ["", "community", "school"]
    headline = rows[0]
    assert (
        (headline["share.numerator"], headline["share.denominator"])
        == (
            answer["share"]["numerator"],
            answer["share"]["denominator"],
        )
        == ("0", "2")
    )
    assert headline["share.definition.formula"] == answer["share"]["definition"]["formula"]
    for row in rows:
        assert (
            (row["today"], row["target_share"])
            == (today, answer["target_share"])
            == (
                today,
                "0.70",
            )
        )
    assert [r["share.denominator"] for r in rows[1:]] == ["1", "1"]


async def test_the_json_answer_names_its_day_in_x_period_too(
    client: httpx.AsyncClient, world: World
) -> None:
    today = cityday.today(world.settings.timezone).isoformat()
    answer = await client.get("/m/v1/metrics/cells", headers=world.headers("manager"))
    assert answer.headers["x-period"] == f"{today}/{today}"
    assert answer.json()["today"] == today
