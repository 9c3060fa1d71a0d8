"""Loads one edition of the named sea areas into the database (used by data migrations).

An edition is a frozen file, `data/editions/sea_areas.<yyyy-mm>.json`: a data migration loads
one by name, so a fresh database gets what each migration loaded when it was written; new
boundaries are a new edition (a new file, the old one kept) and a new data migration that
loads it with `edition=` its name."""

import json

from tortoise.backends.base.client import BaseDBAsyncClient

from wastetrack.core.data import read_data_file

PINNED_EDITION = "sea_areas.2026-11"
"""The edition migration 0004 loads (it calls load_sea_areas without naming one). Never change
it, nor its file: that would change what a fresh database gets from it."""


async def load_sea_areas(client: BaseDBAsyncClient, edition: str = PINNED_EDITION) -> None:
    """Insert or update every sea area of the edition."""
    doc = read_data_file("wastetrack.ports", f"editions/{edition}.json")
    await client.execute_many(
        "INSERT INTO sea_area (code, name_zh, name_en, zero_waste, polygon, source, edition)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (code) DO UPDATE SET"
        " name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,"
        " zero_waste = EXCLUDED.zero_waste, polygon = EXCLUDED.polygon,"
        " source = EXCLUDED.source, edition = EXCLUDED.edition",
        [
            [
                a["code"],
                a["name_zh"],
                a["name_en"],
                a["zero_waste"],
                json.dumps(a["polygon"]),
                doc["source"][:255],
                doc["version"],
            ]
            for a in doc["items"]
        ],
    )


async def unload_sea_areas(client: BaseDBAsyncClient) -> None:
    await client.execute_script("DELETE FROM sea_area;")
