"""Roll-ups kept in the recording transaction agree exactly with a rebuild from the log."""

from datetime import timedelta
from typing import Any

import httpx
from tortoise import connections

from tests.custody.helpers import advance, collect, post_event, tag_bag
from tests.factories import (
    CITY_TODAY,
    World,
    event,
)
from wastetrack.core.settings import Settings
from wastetrack.rollups import facts
from wastetrack.rollups import service as rollups


async def build_history(client: httpx.AsyncClient, world: World) -> None:
    carrier = world.orgs["carrier"].id
    treated = await tag_bag(client, world, carrier_organization_id=carrier)
    await advance(client, world, treated["code"], until="treated")  # D10, weighed 3.4 kg
    pending = await tag_bag(client, world, carrier_organization_id=carrier, quantity="2")
    await advance(client, world, pending["code"], until="received")
    await post_event(
        client, world, "facility", event("treated", pending["code"], minutes=90, method="D15")
    )
    _, load = await loaded_bags(client, world, bag_kg="1.5", load_kg="3")
    await advance(client, world, load, until="treated")
    await tag_bag(client, world, stream="household", category="hh.recyclable.paper", quantity="20")


async def loaded_bags(
    client: httpx.AsyncClient, world: World, *, bag_kg: str, load_kg: str
) -> tuple[list[str], str]:
    """Two bags of the clinic's loaded by the carrier: their codes and the load's."""
    carrier = world.orgs["carrier"].id
    bags = [
        (await tag_bag(client, world, carrier_organization_id=carrier, quantity=bag_kg))["code"]
        for _ in range(2)
    ]
    load = await tag_bag(
        client,
        world,
        "carrier",
        producer_organization_id=carrier,
        category="med.hw01",
        quantity=load_kg,
    )
    await collect(client, world, *bags, minutes=2)
    packed = await post_event(
        client, world, "carrier", event("aggregated", load["code"], minutes=3, children=bags)
    )
    assert packed.status_code == 201, packed.text
    return bags, load["code"]


async def received_load(client: httpx.AsyncClient, world: World) -> tuple[str, str, str]:
    """Two 5 kg bags loaded and the load received (weighed 3.4 kg): the first bag's code and
    tagging event id, and the load's code."""
    bags, load = await loaded_bags(client, world, bag_kg="5", load_kg="3.5")
    await advance(client, world, load, until="received")
    events = await client.get(f"/m/v1/batches/{bags[0]}/events", headers=world.headers("clinic"))
    return bags[0], events.json()[0]["id"], load


async def test_incremental_rollups_equal_a_rebuild(client: httpx.AsyncClient, world: World) -> None:
    await build_history(client, world)
    incremental = await rollups.snapshot()
    assert incremental
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_utilization_comes_with_its_counts(client: httpx.AsyncClient, world: World) -> None:
    await build_history(client, world)
    day = CITY_TODAY.isoformat()
    answer = (
        await client.get(
            "/m/v1/metrics/utilization",
            headers=world.headers("manager"),
            params={"date_from": day, "date_to": day},
        )
    ).json()
    medical = {c["category"]: c for c in answer["categories"]}
    infectious = medical["med.infectious"]
    # One mass per batch: the two weighed bags count 3.4 kg each (their receipt), the two bags
    # in the load their declared 1.5 kg; the load itself is a container, counted through them.
    assert infectious["generated_kg"] == "9.800"
    assert infectious["batches"] == 4
    assert infectious["treated_kg"] == {"disposal": "6.400", "pending": "3.400"}
    assert infectious["harmless_treatment_rate"]["numerator"] == "6.400"
    assert infectious["harmless_treatment_rate"]["denominator"] == "9.800"
    assert infectious["harmless_treatment_rate"]["definition"]["source"]
    assert infectious["fates"]["pending"]["numerator"] == "3.400"
    assert infectious["utilization_rate"]["rate"] == "0.0000"
    assert "med.hw01" not in medical
    paper = medical["hh.recyclable.paper"]
    assert paper["harmless_treatment_rate"]["rate"] == "0.0000"
    assert (
        await client.get(
            "/m/v1/metrics/utilization",
            headers=world.headers("clinic"),
            params={"date_from": day, "date_to": day},
        )
    ).status_code == 403


async def test_a_cohort_says_how_many_of_its_batches_have_no_mass(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """Of three bags of infectious waste — one in kg, one in m³ (estimated from the density of
    its parent category, med.hw01) and one in items, for which no medical category has a unit
    mass — the last has no mass: it is one of the cohort's batches, and in no mass, numerator
    or denominator. Facts kept by the rules before are rebuilt with it. Weighed on an accepted
    receipt, it has one, and counts it."""
    carrier = world.orgs["carrier"].id
    await tag_bag(client, world, carrier_organization_id=carrier, quantity="3.5")
    await tag_bag(client, world, carrier_organization_id=carrier, quantity="0.02", unit="m3")
    items = await tag_bag(
        client, world, carrier_organization_id=carrier, quantity="4", unit="count"
    )
    day = CITY_TODAY.isoformat()
    city = world.regions["city"].path
    month = CITY_TODAY.replace(day=1)

    async def figures() -> tuple[dict[str, Any], dict[str, Any], int]:
        answer = await client.get(
            "/m/v1/metrics/utilization",
            headers=world.headers("manager"),
            params={"date_from": day, "date_to": day},
        )
        assert answer.status_code == 200, answer.text
        (category,) = answer.json()["categories"]
        (stream,) = answer.json()["streams"]
        series = await rollups.monthly_series(region_path=city, months=[month])
        return category, stream, series["medical"][month.isoformat()]["batches_without_mass"]

    category, stream, in_the_month = await figures()
    for cohort in (category, stream):
        assert (cohort["batches"], cohort["batches_without_mass"]) == (3, 1)
        # 3.5 kg declared and 0.02 m³ × 150 kg/m³ estimated; the items count nothing.
        assert cohort["generated_kg"] == "6.500"
        assert cohort["estimated_share"]["numerator"] == "3.000"
        assert cohort["fates"]["in_progress"]["denominator"] == "6.500"
    assert in_the_month == 1

    # As kept before the count existed (migration 0043's defaults, the rules of cohorts-7): the
    # next start-up rebuilds the facts and sums, and the count with them.
    await facts.ensure_current(timezone=settings.timezone)  # whatever was stored before
    await connections.get("default").execute_script(
        "UPDATE batch_fact SET mass_unknown = false;"
        " UPDATE cohort_delta SET batches_without_mass = 0;"
        " UPDATE cohort_daily SET batches_without_mass = 0;"
        " UPDATE cohort_monthly SET batches_without_mass = 0;"
        " UPDATE cohort_city_monthly SET batches_without_mass = 0;"
        " UPDATE rollup_definition"
        f" SET basis = replace(basis, '{facts.DEFINITION_VERSION}', '2026-12-cohorts-7');"
    )
    assert (await figures())[0]["batches_without_mass"] == 0
    assert await facts.ensure_current(timezone=settings.timezone)
    category, stream, in_the_month = await figures()
    assert (category["batches_without_mass"], stream["batches_without_mass"], in_the_month) == (
        1,
        1,
        1,
    )

    await advance(client, world, items["code"], until="received")  # weighed 3.4 kg
    category, stream, in_the_month = await figures()
    for cohort in (category, stream):
        assert (cohort["batches"], cohort["batches_without_mass"]) == (3, 0)
        assert cohort["generated_kg"] == "9.900"
        assert cohort["estimated_share"]["numerator"] == "3.000"
    assert in_the_month == 0
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_every_layer_gives_the_same_answer(client: httpx.AsyncClient, world: World) -> None:
    await build_history(client, world)
    first = CITY_TODAY.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    assert rollups.whole_months(first, last)
    # Whole months of the city read its monthly sums, of a town the towns' sums, of a village
    # the daily ones; one more day before the month makes the period partial: daily again.
    for area, layer in (
        ("city", "cohort_city_monthly"),
        ("town", "cohort_monthly"),
        ("village", "cohort_daily"),
    ):
        path = world.regions[area].path
        assert rollups.layer(path, first, last)._meta.db_table == layer
        monthly = await rollups.utilization(region_path=path, date_from=first, date_to=last)
        daily = await rollups.utilization(
            region_path=path, date_from=first - timedelta(days=1), date_to=last
        )
        assert rollups.layer(path, first - timedelta(days=1), last)._meta.db_table == "cohort_daily"
        assert monthly["categories"] == daily["categories"]
        assert monthly["categories"]
        series = await rollups.monthly_series(region_path=path, months=[first])
        assert {
            stream: cell[first.isoformat()]["generated"] for stream, cell in series.items()
        } == {s["stream"]: s["generated_kg"] for s in monthly["streams"]}


async def test_mass_balance_compares_declared_and_weighed_kilograms(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier = world.orgs["carrier"].id
    for _ in range(2):  # declared 3.5 kg each, weighed 3.4 kg on receipt
        bag = await tag_bag(client, world, carrier_organization_id=carrier)
        await advance(client, world, bag["code"], until="received")
    await tag_bag(client, world)  # not received: not in the balance
    day = CITY_TODAY.isoformat()
    answer = (
        await client.get(
            "/m/v1/metrics/mass-balance",
            headers=world.headers("manager"),
            params={"date_from": day, "date_to": day},
        )
    ).json()
    (infectious,) = answer["categories"]
    assert (infectious["declared_kg"], infectious["weighed_kg"]) == ("7.000", "6.800")
    assert infectious["difference_kg"] == "-0.200"
    assert infectious["weighed_over_declared"]["rate"] == "0.9714"
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_a_load_with_bags_in_other_units_is_not_set_against_its_weighing(
    client: httpx.AsyncClient, world: World
) -> None:
    """A load holding a bag counted in items: its weighing covers that bag too, so setting it
    against the kg bags alone would overstate the balance. The load is not compared."""
    carrier = world.orgs["carrier"].id
    kg_bag = await tag_bag(client, world, carrier_organization_id=carrier, quantity="2")
    items = await tag_bag(
        client, world, carrier_organization_id=carrier, quantity="40", unit="count"
    )
    load = await tag_bag(
        client, world, "carrier", producer_organization_id=carrier, category="med.hw01"
    )
    children = [kg_bag["code"], items["code"]]
    await collect(client, world, *children, minutes=2)
    packed = await post_event(
        client, world, "carrier", event("aggregated", load["code"], minutes=3, children=children)
    )
    assert packed.status_code == 201, packed.text
    await advance(client, world, load["code"], until="received")  # weighed 3.4 kg
    day = CITY_TODAY.isoformat()
    answer = await client.get(
        "/m/v1/metrics/mass-balance",
        headers=world.headers("manager"),
        params={"date_from": day, "date_to": day},
    )
    assert answer.json()["categories"] == []
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_a_bag_corrected_in_its_load_updates_the_loads_balance(
    client: httpx.AsyncClient, world: World
) -> None:
    """The load's declared mass is its bags': correcting a bag's quantity after it was loaded
    changes the load's mass balance as a rebuild counts it."""
    bag, tagging, _ = await received_load(client, world)
    corrected = await post_event(
        client,
        world,
        "clinic",
        event("corrected", bag, minutes=90, corrects=tagging, quantity="7"),
    )
    assert corrected.status_code == 201, corrected.text
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_the_parts_refused_from_a_batch_are_declared_once_in_the_mass_balance(
    client: httpx.AsyncClient, world: World
) -> None:
    """A partial acceptance weighs the accepted part; the refused part becomes a remainder that
    declares its own kg. The original's declared kg leaves that part out, so the balance of the
    two is the whole declaration set against the whole weighing."""
    carrier = world.orgs["carrier"].id
    unstated = await tag_bag(client, world, carrier_organization_id=carrier)  # 3.5 kg
    stated = await tag_bag(client, world, carrier_organization_id=carrier)
    for bag, refused in ((unstated, None), (stated, "1.0")):
        await advance(client, world, bag["code"], until="in_transit")
        receipt = event(
            "received",
            bag["code"],
            minutes=60,
            outcome="partially_accepted",
            weight_kg="2.0",
            reason="一袋破损",
            **({"refused_kg": refused} if refused else {}),
        )
        answer = await post_event(client, world, "facility", receipt)
        assert answer.status_code == 201, answer.text
    day = CITY_TODAY.isoformat()

    async def balance() -> tuple[str, str]:
        answer = await client.get(
            "/m/v1/metrics/mass-balance",
            headers=world.headers("manager"),
            params={"date_from": day, "date_to": day},
        )
        (category,) = answer.json()["categories"]
        return category["declared_kg"], category["weighed_kg"]

    # 2.0 weighed of 3.5 − 1.5 (the remainder the receiver left unstated), and of 3.5 − 1.0.
    assert await balance() == ("4.500", "4.000")
    # The first remainder goes elsewhere and is weighed: 1.5 declared once, 1.4 weighed.
    (rest,) = (
        await client.get(f"/m/v1/batches/{unstated['code']}", headers=world.headers("carrier"))
    ).json()["remainders"]
    onward = event(
        "in_transit",
        rest,
        minutes=70,
        destination_organization_id=world.orgs["facility"].id,
    )
    assert (await post_event(client, world, "carrier", onward)).status_code == 201
    accepted = event("received", rest, minutes=80, outcome="accepted", weight_kg="1.4")
    answer = await post_event(client, world, "facility", accepted)
    assert answer.status_code == 201, answer.text
    assert await balance() == ("6.000", "5.400")
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_a_loads_weighing_is_compared_where_its_bags_were_produced(
    client: httpx.AsyncClient, world: World
) -> None:
    """A load is in no cohort; its bags are. Its weighing is shared among them by their declared
    kg, so the comparison counts in the bags' town and category, not in the carrier's."""
    _, _, load = await received_load(client, world)  # two 5 kg bags of the clinic, 3.4 kg
    day = CITY_TODAY.isoformat()
    for region, expected in (
        ("town", [("med.infectious", "10.000", "3.400")]),
        ("other_town", []),
    ):
        answer = await client.get(
            "/m/v1/metrics/mass-balance",
            headers=world.headers("manager"),
            params={"date_from": day, "date_to": day, "region_id": world.regions[region].id},
        )
        assert answer.status_code == 200, answer.text
        rows = [
            (c["category"], c["declared_kg"], c["weighed_kg"]) for c in answer.json()["categories"]
        ]
        assert rows == expected, region
    # 3.4 kg weighed against 10 declared: one alert, on the load that was weighed.
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    assert [(a["kind"], a["details"]["code"]) for a in listed] == [("weight_discrepancy", load)]
