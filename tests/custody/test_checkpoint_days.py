"""Sealing reads a day's events by an index on the time the server recorded them, never by a
scan of the whole custody log (which at ten million events took seconds each round)."""

import json
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.transactions import in_transaction

from wastetrack.custody import checkpoints, partitions


async def _plan(sql: str, params: list[object]) -> object:
    async with in_transaction() as conn:
        # The test database is small enough for a scan to win on cost; what matters is that an
        # index can serve the read once the log is large.
        await conn.execute_script("SET LOCAL enable_seqscan = off")
        rows = await conn.execute_query_dict(f"EXPLAIN (FORMAT JSON) {sql}", params)
    plan = rows[0]["QUERY PLAN"]
    return json.loads(plan) if isinstance(plan, str) else plan


def _read(plan: object, node_type: str, name: str = "Relation Name") -> set[str]:
    """The custody log's relations (or indexes) that nodes of this type read in the plan."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("Node Type") == node_type:
                found.add(str(node.get(name)))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return {name for name in found if name.startswith("custody_event")}


async def test_a_days_events_and_the_days_to_seal_are_read_by_index(orm: list[str]) -> None:
    made = {p.name for p in await partitions.partitions()}
    assert len(made) >= 2
    start = datetime(2026, 11, 30, 16, tzinfo=UTC)
    day = checkpoints.day_events(start, start + timedelta(days=1))
    for plan in (
        await _plan(day.sql(params_inline=True), []),
        await _plan(checkpoints.DAYS_WITH_EVENTS, ["Asia/Shanghai", start]),
    ):
        assert _read(plan, "Seq Scan") == set()
        assert _read(plan, "Bitmap Heap Scan") == made  # every partition, each by its index
        # ... the partitions' copies of migration 0044's BRIN index, not some other index.
        used = _read(plan, "Bitmap Index Scan", "Index Name")
        rows = await connections.get("default").execute_query_dict(
            "SELECT i.relname, a.amname, p.relname AS parent FROM pg_class i"
            " JOIN pg_am a ON a.oid = i.relam JOIN pg_inherits h ON h.inhrelid = i.oid"
            " JOIN pg_class p ON p.oid = h.inhparent WHERE i.relname = ANY($1::text[])",
            [sorted(used)],
        )
        assert len(used) == len(made)
        assert {(r["relname"], r["amname"], r["parent"]) for r in rows} == {
            (index, "brin", "custody_event_server_time_brin") for index in used
        }
