"""The mass of what is not weighed is estimated by one rule in two languages: the roll-up
facts' SQL (`MASS_BASIS`, the masses cast to numeric(14, 3)) and the catalog's
`mass_factor` / `estimated_kg`, which deliveries and remainders use. They agree on every
category of the catalog, and round alike."""

from decimal import Decimal

from tortoise import connections

from wastetrack.catalog import service as catalog
from wastetrack.rollups.facts import MASS_BASIS


async def test_every_category_has_the_same_factors_in_sql_and_in_the_catalog(
    orm: list[str],
) -> None:
    rows = await connections.get("default").execute_query_dict(MASS_BASIS)
    snap = await catalog.snapshot()
    assert {row["key"] for row in rows} == set(snap.categories)
    for row in rows:
        for unit, column in (("count", "unit_mass_kg"), ("m3", "density_kg_m3")):
            sql = row[column]
            assert snap.mass_factor(row["key"], unit) == (None if sql is None else Decimal(sql)), (
                row["key"],
                unit,
            )


async def test_an_estimate_rounds_as_the_facts_do(orm: list[str]) -> None:
    snap = await catalog.snapshot()
    key = "marine.sewage"
    density = snap.mass_factor(key, "m3")
    assert density == 1000
    for volume in (Decimal("0.0000005"), Decimal("0.0000015"), Decimal("0.0000025")):
        # 0.5, 1.5 and 2.5 g: on a half gram, where rounding half even would differ.
        (row,) = await connections.get("default").execute_query_dict(
            "SELECT ($1::numeric * $2::numeric)::numeric(14, 3) AS kg", [volume, density]
        )
        assert snap.estimated_kg(key, "m3", volume) == row["kg"], (volume, density)
