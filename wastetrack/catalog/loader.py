"""Loads the versioned catalog data files into the database (used by a data migration)."""

import json

from tortoise.backends.base.client import BaseDBAsyncClient

from wastetrack.core.data import read_data_file


def category_file(stream: str) -> str:
    """Each stream's categories are in their own file, named after the stream's code: a new
    stream is a `streams.json` entry and its categories file, with no list to extend here."""
    return f"categories_{stream}.json"


async def load_catalog(client: BaseDBAsyncClient) -> None:
    """Insert or update every stream, category and method from the data files."""
    streams = read_data_file("wastetrack.catalog", "streams.json")
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
        doc = read_data_file("wastetrack.catalog", category_file(stream["code"]))
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
    methods = read_data_file("wastetrack.catalog", "treatment_methods.json")
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


async def load_stream_rules(client: BaseDBAsyncClient) -> None:
    """Each stream's rules (treatment methods, fields required at tagging, manifest). Apart
    from load_catalog, which older migrations run before the rules column exists."""
    streams = read_data_file("wastetrack.catalog", "streams.json")
    await client.execute_many(
        "UPDATE waste_stream SET rules = $2::jsonb WHERE code = $1",
        [[s["code"], json.dumps(s["rules"], ensure_ascii=False)] for s in streams["items"]],
    )


async def unload_catalog(client: BaseDBAsyncClient) -> None:
    """Reverse of load_catalog: empties the catalog tables."""
    await client.execute_script(
        "DELETE FROM treatment_method; DELETE FROM waste_category; DELETE FROM waste_stream;"
    )
