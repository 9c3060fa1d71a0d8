"""Adding a stream is catalog data: a textile stream (废旧纺织品) with two categories and its
allowed methods, a catalog edition whose files are in `tests/streams/data/editions/`, loaded by
name by the catalog loader as a data migration would, is tagged, collected, handed over,
received and treated through the API, and counted in the metrics, the dashboard and the
registers, with no code of its own. (A rule module is added only for a record of the stream's
own, as the household pickup is.)"""

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tortoise import connections

from tests.dashboard.test_pages import login
from tests.factories import CITY_TODAY, World, event, make_user
from wastetrack.auth.models import Role
from wastetrack.catalog import loader
from wastetrack.catalog import service as catalog
from wastetrack.core.data import read_data_file
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind
from wastetrack.rollups import service as rollups

TEXTILE = "textile"
TEXTILE_EDITION = "catalog.textile"
# The textile edition's own files are in this folder's data, laid out as the shipped editions;
# its treatment methods are the shipped edition's (a new stream picks from them).
DATA_PACKAGE = "tests.streams"
METHODS_FILE = "treatment_methods.json"
TODAY = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}


def _textile_edition(package: str, name: str) -> dict[str, Any]:
    """A file of the textile edition, as the loader asks for it by its path."""
    if name == f"editions/{TEXTILE_EDITION}/{METHODS_FILE}":
        return read_data_file(package, f"editions/{loader.CURRENT_EDITION}/{METHODS_FILE}")
    return read_data_file(DATA_PACKAGE, name)


@pytest.fixture(scope="module")
async def textile(orm: list[str]) -> AsyncIterator[None]:
    """The textile stream in the catalog for this module, loaded by the loader's own functions
    given the textile edition by name; removed at the end (after the last test's batches are
    gone), so every other test sees the shipped catalog. The catalog is cached in memory
    because only a migration changes it: the cache starts empty here, and the one from before
    comes back."""
    client = connections.get("default")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loader, "read_data_file", _textile_edition)
        await loader.load_catalog(client, edition=TEXTILE_EDITION)
        await loader.load_stream_rules(client, edition=TEXTILE_EDITION)
        patch.setattr(catalog, "_snapshot", None)
        yield
        await client.execute_query("DELETE FROM waste_category WHERE stream_id = $1", [TEXTILE])
        await client.execute_query("DELETE FROM waste_stream WHERE code = $1", [TEXTILE])


pytestmark = pytest.mark.usefixtures("textile")


async def recycler(world: World) -> int:
    """A textile recycler licensed for both categories, for the stream's methods and for
    landfill (D1), which the stream's rule still refuses; with a user, `recycler`."""
    org = await registry.create_organization(
        name="荣成废旧纺织品回收利用有限公司",
        kind=OrganizationKind.treatment_facility,
        region_id=world.regions["city"].id,
    )
    for category in ("tx.clothing", "tx.home"):
        await registry.add_licence(
            organization_id=org.id, category_key=category, method_codes=["RU", "R3", "D10", "D1"]
        )
    await make_user(world, "recycler", Role.facility_operator, org)
    return org.id


async def tag(client: httpx.AsyncClient, world: World, category: str, kg: str) -> str:
    """A batch of the community's textiles, tagged by its collector; its code."""
    body = event("tagged", stream=TEXTILE, category=category, quantity=kg, unit="kg")
    body.pop("event_type")
    response = await client.post("/m/v1/batches", json=body, headers=world.headers("collector"))
    assert response.status_code == 201, response.text
    assert response.json()["stream"] == TEXTILE
    return str(response.json()["code"])


async def record(
    client: httpx.AsyncClient, world: World, who: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/m/v1/events", json=body, headers=world.headers(who))


async def deliver(
    client: httpx.AsyncClient, world: World, code: str, to: int, weight_kg: str
) -> None:
    """Collection, hand-over to the recycler, and its accepted, weighed receipt."""
    for who, body in (
        ("collector", event("collected", code, minutes=10)),
        ("collector", event("handed_over", code, minutes=30, to_organization_id=to)),
        ("recycler", event("received", code, minutes=60, outcome="accepted", weight_kg=weight_kg)),
    ):
        response = await record(client, world, who, body)
        assert response.status_code == 201, response.text


async def textile_history(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    """Clothing reused (12 kg declared, 11.5 weighed); household textiles incinerated (8 kg,
    8.2 weighed) after landfill was refused; 5 kg of household textiles collected, not yet
    delivered. Returns the batch codes by story."""
    to = await recycler(world)
    codes = {
        "reused": await tag(client, world, "tx.clothing", "12"),
        "incinerated": await tag(client, world, "tx.home", "8"),
        "collected": await tag(client, world, "tx.home", "5"),
    }
    await deliver(client, world, codes["reused"], to, "11.5")
    await deliver(client, world, codes["incinerated"], to, "8.2")
    landfill = await record(
        client, world, "recycler", event("treated", codes["incinerated"], minutes=90, method="D1")
    )
    assert (landfill.status_code, landfill.json()["field"]) == (409, "method")
    assert "textile waste may only be treated by RU, R3, D10" in landfill.json()["detail"]
    for story, method in (("reused", "RU"), ("incinerated", "D10")):
        treated = await record(
            client, world, "recycler", event("treated", codes[story], minutes=120, method=method)
        )
        assert treated.status_code == 201, treated.text
    collected = await record(client, world, "collector", event("collected", codes["collected"]))
    assert collected.status_code == 201, collected.text
    return codes


async def test_the_catalog_serves_the_new_stream_and_its_categories(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.headers("collector")
    streams = (await client.get("/m/v1/catalog/streams", headers=headers)).json()
    assert {s["code"]: s["name_zh"] for s in streams}[TEXTILE] == "废旧纺织品"
    categories = (
        await client.get("/m/v1/catalog/categories", params={"stream": TEXTILE}, headers=headers)
    ).json()
    assert [c["key"] for c in categories] == ["tx.clothing", "tx.home"]
    body = event("tagged", stream="household", category="tx.clothing", quantity="1", unit="kg")
    body.pop("event_type")
    wrong = await client.post("/m/v1/batches", json=body, headers=headers)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "category")


async def test_the_new_stream_is_counted_in_the_metrics(
    client: httpx.AsyncClient, world: World
) -> None:
    await textile_history(client, world)
    headers = world.headers("manager")
    answer = (await client.get("/m/v1/metrics/utilization", params=TODAY, headers=headers)).json()
    [stream] = answer["streams"]
    assert stream["stream"] == TEXTILE
    # The cohort: 11.5 kg reused + 8.2 kg incinerated (both as weighed) + 5 kg declared.
    assert (stream["batches"], stream["generated_kg"]) == (3, "24.700")
    assert stream["treated_kg"] == {"disposal": "8.200", "reuse": "11.500"}
    assert stream["fates"]["in_progress"]["numerator"] == "5.000"
    utilization = stream["utilization_rate"]
    assert (utilization["numerator"], utilization["denominator"]) == ("11.500", "24.700")
    assert utilization["rate"] == "0.4656"
    harmless = stream["harmless_treatment_rate"]
    assert (harmless["numerator"], harmless["rate"]) == ("19.700", "0.7976")
    by_category = {c["category"]: c for c in answer["categories"]}
    assert by_category["tx.clothing"]["utilization_rate"]["rate"] == "1.0000"
    assert by_category["tx.home"]["generated_kg"] == "13.200"
    balance = (await client.get("/m/v1/metrics/mass-balance", params=TODAY, headers=headers)).json()
    assert [
        (c["stream"], c["category"], c["declared_kg"], c["weighed_kg"])
        for c in balance["categories"]
    ] == [(TEXTILE, "tx.clothing", "12.000", "11.500"), (TEXTILE, "tx.home", "8.000", "8.200")]
    # The sums kept while recording agree with a rebuild from the log.
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone=world.settings.timezone)
    assert await rollups.snapshot() == incremental


async def test_the_new_stream_shows_on_the_dashboard(
    client: httpx.AsyncClient, world: World
) -> None:
    await textile_history(client, world)
    await login(client, "manager")
    page = await client.get("/dashboard")
    assert page.status_code == 200
    # Its row of the per-stream table: generated and harmlessly treated kg, the harmless
    # treatment and utilization rates, declared / weighed kg and their balance.
    row = page.text[page.text.index("<td>废旧纺织品</td>") :].split("</tr>")[0]
    assert [cell.strip() for cell in re.findall(r"<td>([^<]*)", row)] == [
        "废旧纺织品",
        "24.700",
        "19.700",
        "79.8%",
        "46.6%",
        "20.000 / 19.700",
        "98.5%",
    ]
    # Its line of the monthly utilization chart: the rate of the month it was tagged in, in
    # per cent (in the city's first hours of a month, the suite's day is still the last one's).
    chart = json.loads(page.text.split("const data = ")[1].split(";\n")[0])["utilization"]
    tagged_in = chart["months"].index(CITY_TODAY.strftime("%Y-%m"))
    point = chart["streams"]["废旧纺织品"][tagged_in]
    assert (point["value"], point["text"]) == (46.6, "46.6%")
    assert (point["numerator"], point["denominator"]) == ("11.500", "24.700")


async def test_the_new_stream_enters_and_leaves_the_registers(
    client: httpx.AsyncClient, world: World
) -> None:
    codes = await textile_history(client, world)
    headers = world.headers("recycler")
    incoming = (await client.get("/m/v1/registers/incoming", params=TODAY, headers=headers)).json()
    assert sorted((r["code"], r["how"], r["mass_kg"]) for r in incoming) == sorted(
        [(codes["reused"], "handed_over", "11.500"), (codes["incinerated"], "handed_over", "8.200")]
    )
    outgoing = (await client.get("/m/v1/registers/outgoing", params=TODAY, headers=headers)).json()
    assert sorted((r["code"], r["fate"]) for r in outgoing) == sorted(
        [(codes["reused"], "recovered"), (codes["incinerated"], "disposed_harmless")]
    )
    stock = (
        await client.get(
            "/m/v1/registers/inventory", params=TODAY, headers=world.headers("collector")
        )
    ).json()
    assert [b["code"] for b in stock["batches"]] == [codes["collected"]]
    closing = {c["category"]: c["closing"] for c in stock["balance"]}
    assert closing == {
        "tx.clothing": {"batches": 0, "kg": "0", "without_mass": 0},
        "tx.home": {"batches": 1, "kg": "5.000", "without_mass": 0},
    }
