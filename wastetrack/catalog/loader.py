"""Loads one edition of the catalog data files into the database (used by data migrations).

An edition is a frozen set of files in `data/editions/catalog.<yyyy-mm>/`: `streams.json`, one
`categories_<stream>.json` per stream and `treatment_methods.json`. Migrations are history, so
each data migration loads an edition by name and a fresh database gets exactly what every
migration loaded when it was written: a change to the catalog is a new edition (new files, the
old ones kept) and a new data migration that loads it with `edition=` its name."""

import json
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from wastetrack.core.data import read_data_file

PINNED_EDITION = "catalog.2026-11"
"""The edition migrations 0002, 0004 and 0006 load (they call these loaders without naming one).
Never change it, nor its files: that would change what a fresh database gets from them."""

CURRENT_EDITION = PINNED_EDITION
"""The edition a fully migrated database holds (the one the latest catalog data migration
loads), for readers that check the files against the database; a new edition moves it."""


def category_file(stream: str) -> str:
    """Each stream's categories are in their own file, named after the stream's code: a new
    stream is a `streams.json` entry and its categories file, with no list to extend here."""
    return f"categories_{stream}.json"


def read_edition(name: str, edition: str = CURRENT_EDITION) -> dict[str, Any]:
    """The file `name` of a catalog edition, parsed."""
    return read_data_file("wastetrack.catalog", f"editions/{edition}/{name}")


async def load_catalog(client: BaseDBAsyncClient, edition: str = PINNED_EDITION) -> None:
    """Insert or update every stream, category and method of the edition."""
    streams = read_edition("streams.json", edition)
    await client.execute_many(
        "INSERT INTO waste_stream (code, name_zh, name_en, default_unit, source, edition)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET"
        " name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,"
        " default_unit = EXCLUDED.default_unit, source = EXCLUDED.source,"
        " edition = EXCLUDED.edition",
        [
            [
                s["code"],
                s["name_zh"],
                s["name_en"],
                s["default_unit"],
                streams["source"],
                streams["version"],
            ]
            for s in streams["items"]
        ],
    )
    rows = []
    for stream in streams["items"]:
        doc = read_edition(category_file(stream["code"]), edition)
        for item in doc["items"]:
            rows.append(
                [
                    item["key"],
                    doc["stream"],
                    item.get("parent"),
                    item["code"],
                    item["name_zh"],
                    item["name_en"],
                    item.get("colour"),
                    json.dumps(item.get("hazard", [])),
                    item.get("storage_limit_hours"),
                    item.get("density_kg_m3"),
                    item.get("level"),
                    item.get("scheme", doc["source"].split(";")[0][:64]),
                    item.get("scheme_version", doc["version"]),
                    doc["source"][:255],
                    doc["version"],
                ]
            )
    await client.execute_many(
        "INSERT INTO waste_category (key, stream_id, parent_key, code, name_zh, name_en, colour,"
        " hazard, storage_limit_hours, density_kg_m3, level, scheme, scheme_version, source,"
        " edition)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)"
        " ON CONFLICT (key) DO UPDATE SET stream_id = EXCLUDED.stream_id,"
        " parent_key = EXCLUDED.parent_key, code = EXCLUDED.code, name_zh = EXCLUDED.name_zh,"
        " name_en = EXCLUDED.name_en, colour = EXCLUDED.colour, hazard = EXCLUDED.hazard,"
        " storage_limit_hours = EXCLUDED.storage_limit_hours,"
        " density_kg_m3 = EXCLUDED.density_kg_m3, level = EXCLUDED.level, scheme = EXCLUDED.scheme,"
        " scheme_version = EXCLUDED.scheme_version, source = EXCLUDED.source,"
        " edition = EXCLUDED.edition",
        rows,
    )
    methods = read_edition("treatment_methods.json", edition)
    await client.execute_many(
        "INSERT INTO treatment_method (code, name_zh, name_en, mode, source, edition)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET"
        " name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, mode = EXCLUDED.mode,"
        " source = EXCLUDED.source, edition = EXCLUDED.edition",
        [
            [
                m["code"],
                m["name_zh"],
                m["name_en"],
                m["mode"],
                methods["source"][:255],
                methods["version"],
            ]
            for m in methods["items"]
        ],
    )


async def load_stream_rules(client: BaseDBAsyncClient, edition: str = PINNED_EDITION) -> None:
    """Each stream's rules in the edition (treatment methods, fields required at tagging,
    manifest). Apart from load_catalog, which older migrations run before the rules column
    exists."""
    streams = read_edition("streams.json", edition)
    await client.execute_many(
        "UPDATE waste_stream SET rules = $2::jsonb WHERE code = $1",
        [[s["code"], json.dumps(s["rules"], ensure_ascii=False)] for s in streams["items"]],
    )


async def unload_catalog(client: BaseDBAsyncClient) -> None:
    """Reverse of load_catalog: empties the catalog tables."""
    await client.execute_script(
        "DELETE FROM treatment_method; DELETE FROM waste_category; DELETE FROM waste_stream;"
    )
