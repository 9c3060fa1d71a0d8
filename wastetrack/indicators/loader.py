"""Loads the plan's indicators into the database (used by a data migration)."""

from tortoise.backends.base.client import BaseDBAsyncClient

from wastetrack.core.data import read_data_file


async def load_indicators(client: BaseDBAsyncClient) -> None:
    """Insert or update every indicator from indicators.json."""
    doc = read_data_file("wastetrack.indicators", "indicators.json")
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
