"""The pesticide-packaging recovery rate by shop and by town, and in kg (docs/streams/pesticide.md,
docs/metrics.md §6): a shop's returns count for the shop and its town, a recovery point's for
its town alone; in kg, a line weighed and not counted counts with its weight."""

import csv
import io
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.factories import CITY_TODAY, NOW, World, make_user
from tests.pesticide.test_take_back import a_return, points, post
from wastetrack.auth.models import Role
from wastetrack.catalog import service as catalog
from wastetrack.core.cityday import day_start
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

__all__ = ["points"]  # the fixture used here

DAY = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
PLACES = Decimal("0.0001")


async def sell(
    client: httpx.AsyncClient, world: World, who: str, material: str, count: int
) -> None:
    sale = {
        "client_event_id": str(uuid.uuid4()),
        "sold_on": CITY_TODAY.isoformat(),
        "material": material,
        "count": count,
    }
    response = await post(client, world, sale, who, "/m/v1/pesticide/sales")
    assert response.status_code == 201, response.text


async def bring_back(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    *lines: dict[str, Any],
    at: datetime | None = None,
) -> None:
    body = a_return(lines=list(lines), returned_at=(at or NOW - timedelta(hours=1)).isoformat())
    response = await post(client, world, body, who)
    assert response.status_code == 201, response.text


async def metrics(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    response = await client.get(
        "/m/v1/metrics/pesticide", params=DAY, headers=world.headers("manager")
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def counts_of(row: dict[str, str]) -> tuple[int, int, str | None]:
    """A spreadsheet row's counts, as `counts` reads them from the JSON."""
    assert (row["recovery_rate.numerator"], row["recovery_rate.denominator"]) == (
        row["returned"],
        row["sold"],
    )
    return int(row["returned"]), int(row["sold"]), row["recovery_rate.rate"] or None


def counts(figure: dict[str, Any]) -> tuple[int, int, str | None]:
    rate = figure["recovery_rate"]
    assert (rate["numerator"], rate["denominator"]) == (
        str(figure["returned"]),
        str(figure["sold"]),
    )
    return figure["returned"], figure["sold"], rate["rate"]


async def unit_mass(material: str) -> Decimal:
    factor = (await catalog.snapshot()).mass_factor(material, "count")
    assert factor is not None
    return factor


@pytest.fixture
async def towns(points: World) -> World:
    """Two shops in two towns — one registered at a village, one at its town itself — the
    recovery point beside the first shop, and one registered at the city's own region."""
    away = await registry.create_organization(
        name="石岛农资店",
        kind=OrganizationKind.agri_input_shop,
        region_id=points.regions["other_town"].id,
    )
    city_point = await registry.create_organization(
        name="荣成市农药包装回收中心",
        kind=OrganizationKind.recovery_point,
        region_id=points.regions["city"].id,
    )
    points.orgs.update({"away": away, "city_point": city_point})
    await make_user(points, "away", Role.generator, away)
    await make_user(points, "city_point", Role.collector, city_point)
    return points


async def test_by_shop_and_by_town_a_recovery_point_counts_for_its_town(
    client: httpx.AsyncClient, towns: World
) -> None:
    bottle, drum = "agri.plastic_bottle", "agri.drum"
    await sell(client, towns, "shop", bottle, 100)
    await sell(client, towns, "away", bottle, 50)
    await bring_back(
        client, towns, "shop", {"material": bottle, "count": 12}, {"material": drum, "count": 1}
    )
    # The city's day, not the server's: a minute into it is in, a minute before it is not.
    today = day_start(CITY_TODAY, towns.settings.timezone)
    await bring_back(
        client, towns, "station", {"material": bottle, "count": 8}, at=today + timedelta(minutes=1)
    )
    await bring_back(
        client, towns, "station", {"material": bottle, "count": 5}, at=today - timedelta(minutes=1)
    )
    # Older packaging coming back: more than the shop sold in the period.
    await bring_back(client, towns, "away", {"material": bottle, "count": 60})
    await bring_back(client, towns, "city_point", {"material": drum, "count": 2})

    answer = await metrics(client, towns)
    whole = answer["recovery_rate"]
    assert (whole["numerator"], whole["denominator"], whole["rate"]) == ("83", "150", "0.5533")

    shops = {s["organization_id"]: s for s in answer["by_shop"]}
    # Only shops: a recovery point sold nothing its returns could be measured against.
    assert set(shops) == {towns.orgs["shop"].id, towns.orgs["away"].id}
    shop, away = shops[towns.orgs["shop"].id], shops[towns.orgs["away"].id]
    assert counts(shop) == (13, 100, "0.1300")
    assert shop["town_id"] == towns.regions["town"].id
    materials = {m["material"]: counts(m) for m in shop["materials"]}
    assert materials == {bottle: (12, 100, "0.1200"), drum: (1, 0, None)}
    # A flow ratio: not capped at 100 %, and its definition says so.
    assert counts(away) == (60, 50, "1.2000")
    assert "may exceed 100 %" in away["recovery_rate"]["definition"]["formula"]
    assert away["town_id"] == towns.regions["other_town"].id

    by_town = {t["region_id"]: t for t in answer["by_town"]}
    town = by_town[towns.regions["town"].id]
    assert (town["level"], town["shops"], town["points"]) == ("town", 1, 1)
    assert counts(town) == (21, 100, "0.2100")
    other = by_town[towns.regions["other_town"].id]
    assert (other["level"], other["shops"], other["points"]) == ("town", 1, 0)
    assert counts(other) == (60, 50, "1.2000")
    # Registered above any town: an entry of its own, so every return is in one entry.
    city = by_town[towns.regions["city"].id]
    assert (city["level"], counts(city)) == ("city", (2, 0, None))
    assert sum(t["returned"] for t in answer["by_town"]) == 83
    assert sum(t["sold"] for t in answer["by_town"]) == 150
    assert not any(t["partial"] for t in answer["by_town"])
    # Asked for the first shop's village: its town's entry is that village's part, and says so.
    narrowed = await client.get(
        "/m/v1/metrics/pesticide",
        params={**DAY, "region_id": towns.orgs["shop"].region_id},
        headers=towns.headers("manager"),
    )
    assert narrowed.status_code == 200, narrowed.text
    (part,) = narrowed.json()["by_town"]
    assert (part["region_id"], part["partial"]) == (towns.regions["town"].id, True)
    # The spreadsheet of each table says what the JSON says, row by row.
    for table, key, entries in (
        ("shops", "organization_id", shops),
        ("towns", "region_id", by_town),
    ):
        sheet = await client.get(
            "/m/v1/metrics/pesticide",
            params={**DAY, "format": "csv", "table": table},
            headers=towns.headers("manager"),
        )
        assert sheet.status_code == 200, sheet.text
        assert f"pesticide-recovery-{table}.csv" in sheet.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(sheet.content.decode("utf-8-sig"))))
        assert {int(r[key]): counts_of(r) for r in rows} == {
            i: counts(entry) for i, entry in entries.items()
        }
    refused = await client.get(
        "/m/v1/metrics/pesticide",
        params={**DAY, "format": "csv", "table": "farmers"},
        headers=towns.headers("manager"),
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "table")


async def test_kg_counts_what_came_back_weighed_and_not_counted(
    client: httpx.AsyncClient, towns: World
) -> None:
    drum, bottle = "agri.drum", "agri.plastic_bottle"
    per_drum = await unit_mass(drum)
    await sell(client, towns, "shop", drum, 100)
    await bring_back(client, towns, "shop", {"material": drum, "count": 0, "weight_kg": "12"})

    answer = await metrics(client, towns)
    shop = next(s for s in answer["by_shop"] if s["organization_id"] == towns.orgs["shop"].id)
    town = next(t for t in answer["by_town"] if t["region_id"] == towns.regions["town"].id)
    drums = next(m for m in answer["materials"] if m["material"] == drum)
    whole = answer["recovery_rate"]
    assert (whole["numerator"], whole["denominator"], whole["rate"]) == ("0", "100", "0.0000")
    for figure in (shop, town, drums, answer):
        # Nothing counted came back: 0 of 100 containers; in kg, 12 of 100 × a drum's mass.
        if figure is not answer:
            assert counts(figure) == (0, 100, "0.0000")
        kg = figure["kg"]
        assert kg["omitted"] is None
        rate = kg["recovery_rate"]
        assert (Decimal(rate["numerator"]), Decimal(rate["denominator"])) == (
            Decimal(12),
            100 * per_drum,
        )
        assert Decimal(rate["rate"]) == (12 / (100 * per_drum)).quantize(PLACES)
        assert rate["unit"] == "kg"
        assert Decimal(kg["returned_estimated_kg"]) == 0
        assert "unit mass" in rate["definition"]["formula"]

    # One mass per line: weighed kg where weighed, else the count × unit mass, marked estimated.
    await bring_back(
        client,
        towns,
        "station",
        {"material": bottle, "count": 10, "weight_kg": "0.9"},
        {"material": drum, "count": 2},
    )
    town = next(
        t
        for t in (await metrics(client, towns))["by_town"]
        if t["region_id"] == towns.regions["town"].id
    )
    assert counts(town) == (12, 100, "0.1200")
    kg = town["kg"]
    returned_kg = 12 + Decimal("0.9") + 2 * per_drum
    assert Decimal(kg["recovery_rate"]["numerator"]) == returned_kg
    assert Decimal(kg["recovery_rate"]["rate"]) == (returned_kg / (100 * per_drum)).quantize(PLACES)
    assert Decimal(kg["returned_estimated_kg"]) == 2 * per_drum


async def test_a_material_without_a_unit_mass_leaves_the_kg_rate_out_saying_why(
    client: httpx.AsyncClient, towns: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    basis = await catalog.snapshot()
    paper = "agri.paper"
    for category in basis.ancestors(paper):
        monkeypatch.setattr(basis.categories[category], "unit_mass_kg", None)
    await sell(client, towns, "shop", "agri.drum", 10)
    await sell(client, towns, "away", paper, 20)
    # Weighed, a line needs no unit mass; counted and not weighed, it does.
    await bring_back(client, towns, "shop", {"material": paper, "count": 0, "weight_kg": "1"})
    answer = await metrics(client, towns)
    reason = f"no unit mass in the catalog for {paper}"
    assert (answer["kg"]["recovery_rate"], answer["kg"]["omitted"]) == (None, reason)
    shops = {s["organization_id"]: s["kg"] for s in answer["by_shop"]}
    assert shops[towns.orgs["away"].id]["omitted"] == reason
    assert shops[towns.orgs["shop"].id]["omitted"] is None
    assert Decimal(shops[towns.orgs["shop"].id]["recovery_rate"]["numerator"]) == 1
    materials = {m["material"]: m["kg"] for m in answer["materials"]}
    assert materials[paper]["omitted"] == reason
    assert materials["agri.drum"]["omitted"] is None


async def test_the_materials_spreadsheet_leads_with_the_regions_own_figure(
    client: httpx.AsyncClient, towns: World
) -> None:
    """The region's rate — the one the plan judges, in containers and in kg — is the first row
    of the default table (`material` empty), as in the cells' and sorting's spreadsheets; the
    JSON gives its counts and what came back weighed and not counted beside it too."""
    await sell(client, towns, "shop", "agri.drum", 100)
    await sell(client, towns, "away", "agri.plastic_bottle", 50)
    await bring_back(
        client,
        towns,
        "shop",
        {"material": "agri.drum", "count": 20},
        {"material": "agri.drum", "count": 0, "weight_kg": "3"},
    )
    await bring_back(client, towns, "away", {"material": "agri.plastic_bottle", "count": 10})
    answer = await metrics(client, towns)
    assert counts(answer) == (30, 150, "0.2000")
    assert Decimal(answer["returned_uncounted_kg"]) == 3
    sheet = await client.get(
        "/m/v1/metrics/pesticide",
        params={**DAY, "format": "csv"},
        headers=towns.headers("manager"),
    )
    assert sheet.status_code == 200, sheet.text
    rows = list(csv.DictReader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert [r["material"] for r in rows] == ["", "agri.drum", "agri.plastic_bottle"]
    headline = rows[0]
    assert counts_of(headline) == (30, 150, "0.2000")
    assert Decimal(headline["returned_uncounted_kg"]) == 3
    assert headline["kg.recovery_rate.numerator"] == answer["kg"]["recovery_rate"]["numerator"]
    assert headline["kg.recovery_rate.rate"] == answer["kg"]["recovery_rate"]["rate"]
    assert [counts_of(r) for r in rows[1:]] == [(20, 100, "0.2000"), (10, 50, "0.2000")]
