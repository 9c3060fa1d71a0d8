"""Loads the named sea areas into the database (used by a data migration)."""

import json

from tortoise.backends.base.client import BaseDBAsyncClient

from wastetrack.core.data import read_data_file


async def load_sea_areas(client: BaseDBAsyncClient) -> None:
    """Insert or update every sea area from sea_areas.json."""
    doc = read_data_file("wastetrack.ports", "sea_areas.json")
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
