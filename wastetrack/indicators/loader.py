"""Loads one edition of the plan's indicators into the database (used by data migrations).

An edition is a frozen file, `data/editions/indicators.<yyyy-mm>.json`: a data migration loads
one by name, so a fresh database gets what each migration loaded when it was written; a
correction is a new edition (a new file, the old one kept) and a new data migration that loads
it with `edition=` its name."""

from typing import Any, Literal

from tortoise.backends.base.client import BaseDBAsyncClient

from wastetrack.core.data import read_data_file

PINNED_EDITION = "indicators.2026-11"
"""The edition migrations 0010 and 0012 load (they call load_indicators without naming one).
Never change it, nor its file: that would change what a fresh database gets from them."""

CURRENT_EDITION = PINNED_EDITION
"""The edition a fully migrated database holds (the one the latest indicator data migration
loads), for readers that check the file against the database; a new edition moves it."""


Direction = Literal["at_least", "at_most"]
DIRECTIONS: dict[str, int] = {"at_least": 1, "at_most": -1}
"""Which way an indicator improves (its `direction` in the edition): +1 when higher is better,
-1 when lower is (a landfill share). `service.status` reads it, so a cap is never judged as a
floor; an edition naming another direction is refused when read, not a 500 when shown."""


def read_edition(edition: str = CURRENT_EDITION) -> dict[str, Any]:
    """An edition of the indicators, parsed; every indicator's direction one of DIRECTIONS."""
    doc: dict[str, Any] = read_data_file("wastetrack.indicators", f"editions/{edition}.json")
    unknown = [i["code"] for i in doc["items"] if i["direction"] not in DIRECTIONS]
    if unknown:
        raise ValueError(
            f"indicators edition {edition}: {', '.join(unknown)} improve in a direction other"
            f" than {' or '.join(DIRECTIONS)}"
        )
    return doc


async def load_indicators(client: BaseDBAsyncClient, edition: str = PINNED_EDITION) -> None:
    """Insert or update every indicator of the edition."""
    doc = read_edition(edition)
    await client.execute_many(
        "INSERT INTO indicator (code, name_zh, name_en, unit, baseline, target, target_text,"
        " direction, computed_by, section, source)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (code) DO UPDATE"
        " SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,"
        " baseline = EXCLUDED.baseline, target = EXCLUDED.target,"
        " target_text = EXCLUDED.target_text, direction = EXCLUDED.direction,"
        " computed_by = EXCLUDED.computed_by, section = EXCLUDED.section,"
        " source = EXCLUDED.source",
        [
            [
                i["code"],
                i["name_zh"],
                i["name_en"],
                i["unit"],
                i["baseline"],
                i["target"],
                i["target_text"],
                i["direction"],
                i["computed_by"],
                i["section"],
                doc["source"][:255],
            ]
            for i in doc["items"]
        ],
    )


async def unload_indicators(client: BaseDBAsyncClient) -> None:
    await client.execute_script("DELETE FROM indicator_value; DELETE FROM indicator;")
