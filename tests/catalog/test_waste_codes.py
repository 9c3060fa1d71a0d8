"""Waste codes validated per category, as catalog data: the exact code a medical class fixes,
the HW class pattern, ASCII digits only, matched in full."""

import httpx
import pytest

from tests.factories import World, medical_bag
from wastetrack.batches.models import Batch
from wastetrack.catalog import loader
from wastetrack.catalog import service as catalog
from wastetrack.core.errors import ValidationFailed


async def tag(client: httpx.AsyncClient, world: World, **fields: str) -> httpx.Response:
    body = medical_bag(**fields)
    body.pop("event_type")
    return await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))


@pytest.mark.parametrize(
    ("category", "waste_code", "accepted"),
    [
        ("med.infectious", "841-001-01", True),
        ("med.infectious", "841-002-01", False),  # the sharps code
        ("med.infectious", "900-999-01", False),  # right class, not the class's code
        ("med.sharps", "841-002-01", True),
        ("med.sharps", "841-001-01", False),
        ("med.pathological", "841-003-01", True),
        ("med.chemical", "841-004-01", True),
        ("med.pharmaceutical", "841-005-01", True),
        ("med.hw01", "841-003-01", True),  # a mixed container: any of the five
        ("med.hw01", "841-006-01", False),
        ("med.hw01", "900-999-01", False),
    ],
)
async def test_a_medical_class_fixes_its_code(
    client: httpx.AsyncClient, world: World, category: str, waste_code: str, accepted: bool
) -> None:
    response = await tag(client, world, category=category, waste_code=waste_code)
    if accepted:
        assert response.status_code == 201, response.text
        assert (await Batch.get(code=response.json()["code"])).waste_code == waste_code
    else:
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == "waste_code"
        assert category in response.json()["detail"]


async def test_a_bag_of_infectious_waste_with_the_sharps_code_is_refused_naming_the_rule(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await tag(client, world, category="med.infectious", waste_code="841-002-01")
    problem = response.json()
    assert (response.status_code, problem["field"]) == (422, "waste_code")
    assert "841-001-01" in problem["detail"]
    assert await Batch.all().count() == 0


@pytest.mark.parametrize(
    ("category", "waste_code", "hazard", "kept"),
    [
        ("med.sharps", "841-002-01", None, ["In"]),  # the class's, when none are named
        ("med.sharps", "841-002-01", ["In"], ["In"]),
        ("med.sharps", "841-002-01", ["C"], None),  # another: the label's pictogram lies
        ("med.chemical", "841-004-01", ["T", "C"], ["T", "C"]),  # the ones it has
        ("med.chemical", "841-004-01", ["T", "In"], None),
    ],
)
async def test_a_medical_bag_has_some_of_its_class_hazards(
    client: httpx.AsyncClient,
    world: World,
    category: str,
    waste_code: str,
    hazard: list[str] | None,
    kept: list[str] | None,
) -> None:
    """A bag inherits its class's hazard characteristics (docs/streams/medical.md): named at
    tagging, they are some of the class's, as a chemical waste names its own of T, C, I, R."""
    named = {"hazard": hazard} if hazard is not None else {}
    response = await tag(client, world, category=category, waste_code=waste_code, **named)
    if kept is None:
        assert (response.status_code, response.json()["field"]) == (422, "hazard"), response.text
        assert await Batch.all().count() == 0
    else:
        assert response.status_code == 201, response.text
        assert (await Batch.get(code=response.json()["code"])).hazard == kept


@pytest.mark.parametrize(
    "waste_code",
    [
        "841-001-01\n",
        "８４１-００１-０１",  # full-width digits
        "841-001-0１",
        "٨٤١-٠٠١-٠١",  # Arabic-Indic digits
        "841-001-01 x",
        "841001-01",
        " 841-001-01",
    ],
)
async def test_only_ascii_digits_in_full_are_a_code(orm: list[str], waste_code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await catalog.validate_waste_code(category="med.infectious", waste_code=waste_code)
    assert refused.value.field == "waste_code"


async def test_full_width_digits_are_refused_through_the_api(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await tag(client, world, category="med.infectious", waste_code="８４１-００１-０１")
    assert (response.status_code, response.json()["field"]) == (422, "waste_code")


@pytest.mark.parametrize(
    ("category", "waste_code", "accepted"),
    [
        ("hw.08", "900-249-08", True),
        ("hw.08", "251-001-08", True),
        ("hw.08", "900-249-09", False),
        ("hw.49", "900-041-49", True),
        ("hw.49", "900-041-08", False),
    ],
)
async def test_a_hazardous_class_fixes_the_last_two_digits(
    orm: list[str], category: str, waste_code: str, accepted: bool
) -> None:
    if accepted:
        await catalog.validate_waste_code(category=category, waste_code=waste_code)
        return
    with pytest.raises(ValidationFailed) as refused:
        await catalog.validate_waste_code(category=category, waste_code=waste_code)
    assert refused.value.field == "waste_code"
    assert f"[0-9]{{3}}-[0-9]{{3}}-{category[-2:]}" in refused.value.detail


async def test_the_rules_reach_the_database_and_the_api(
    client: httpx.AsyncClient, world: World
) -> None:
    medical = (
        await client.get(
            "/m/v1/catalog/categories",
            params={"stream": "medical"},
            headers=world.headers("clinic"),
        )
    ).json()
    by_key = {c["key"]: c for c in medical}
    assert [by_key[k]["waste_code"] for k in ("med.infectious", "med.sharps")] == [
        "841-001-01",
        "841-002-01",
    ]
    assert by_key["med.hw01"]["waste_code_pattern"] == "841-00[1-5]-01"
    snap = await catalog.snapshot()
    assert snap.categories["hw.50"].waste_code_pattern == "[0-9]{3}-[0-9]{3}-50"
    assert sum(1 for c in snap.categories.values() if c.waste_code or c.waste_code_pattern) == 51


async def test_the_catalog_files_and_the_migrated_rules_agree(orm: list[str]) -> None:
    """A change to a code in the data files needs a migration that loads it."""
    snap = await catalog.snapshot()
    for name in ("categories_medical.json", "categories_hazardous.json"):
        for item in loader.read_edition(name)["items"]:
            found = snap.categories[item["key"]]
            assert (found.waste_code, found.waste_code_pattern) == (
                item.get("waste_code"),
                item.get("waste_code_pattern"),
            ), item["key"]
