"""Statements kept as SQL functions: installed from the code's text, replaced when what is
installed differs (an older release's body, settings, parameters or result), and called in one
round trip with their own settings."""

import json
import re
from dataclasses import replace
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from tests.factories import World
from wastetrack.core.sqlfunctions import SqlFunction
from wastetrack.custody import repository
from wastetrack.rollups import facts


async def _installed(name: str) -> list[dict]:
    return await connections.get("default").execute_query_dict(
        "SELECT pg_get_function_identity_arguments(oid) AS arguments, prosrc, proconfig"
        " FROM pg_proc WHERE proname = $1",
        [name],
    )


async def test_a_function_is_installed_as_defined_and_replaced_when_it_differs(
    orm: list[str],
) -> None:
    function = SqlFunction(
        name="wastetrack_test_add",
        parameters=("int", "int[]"),
        returns="int",
        body="SELECT $1 + coalesce(sum(x), 0)::int FROM unnest($2::int[]) AS x"
        " WHERE current_setting('plan_cache_mode') = 'force_generic_plan'",
        settings=("plan_cache_mode=force_generic_plan",),
    )
    database = connections.get("default")
    # What an older release left: another body, and an overload with other parameters.
    await database.execute_script(
        "CREATE OR REPLACE FUNCTION wastetrack_test_add(int, int[]) RETURNS int"
        " LANGUAGE sql AS 'SELECT 0';"
        " CREATE OR REPLACE FUNCTION wastetrack_test_add(text) RETURNS int"
        " LANGUAGE sql AS 'SELECT 0'"
    )
    try:
        assert await function.ensure() is True
        (installed,) = await _installed(function.name)
        assert installed["arguments"] == "integer, integer[]"
        assert (installed["prosrc"], installed["proconfig"]) == (
            function.body,
            ["plan_cache_mode=force_generic_plan"],
        )
        assert await function.ensure() is False  # as defined: left alone
        # The same body, settings and parameters with another result is another function
        # (pg_proc's body and settings would not show it; the definition's fingerprint does).
        assert await replace(function, returns="bigint").ensure() is True
        assert await function.ensure() is True
        assert await function.ensure() is False
        # The same body and settings over other parameters is another function.
        await database.execute_script(
            "DROP FUNCTION wastetrack_test_add(int, int[]);"
            " CREATE FUNCTION wastetrack_test_add(bigint, int[]) RETURNS int LANGUAGE sql"
            " SET plan_cache_mode = force_generic_plan"
            f" AS $body${function.body}$body$"
        )
        assert await function.ensure() is True
        (installed,) = await _installed(function.name)
        assert installed["arguments"] == "integer, integer[]"
        # Called with its parameters, it runs with its own settings (the body checks them),
        # which do not leak into the session.
        rows = await database.execute_query_dict(function.call + " AS n", [2, [3, 4]])
        assert rows[0]["n"] == 9
        (setting,) = await database.execute_query_dict("SHOW plan_cache_mode")
        assert setting["plan_cache_mode"] == "auto"
    finally:
        await database.execute_script("DROP FUNCTION IF EXISTS wastetrack_test_add(int, int[])")


async def test_start_up_installs_the_recording_statements_on_their_generic_plans(
    orm: list[str],
) -> None:
    for function in (*repository.FUNCTIONS, facts.APPLY):
        (installed,) = await _installed(function.name)
        assert installed["prosrc"] == function.body
        assert "plan_cache_mode=force_generic_plan" in installed["proconfig"]
        assert await function.ensure() is False  # installed as defined: not replaced again
    assert repository.WRITE.body.startswith("WITH issued AS (INSERT INTO label")


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan."""
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def _by_key(node: dict[str, Any]) -> bool:
    """Whether a plan node that reads a table reaches its rows by key: no sequential scan, and
    an index searched by equality (a bitmap heap scan is as good as its bitmap index scans,
    which are nodes of their own). PostgreSQL 18 may search an index by equality on a later
    column, skipping through the values of the first; on empty partitions it does (an
    organization's index looked up by batch), and with real statistics it takes the index
    that the key leads, re-planning after each analyze. That choice is the planner's, made
    from statistics, and not checked here."""
    if node["Node Type"] == "Seq Scan":
        return False
    if "Index Name" not in node:
        return True
    return re.search(r"\(\(?\w+\)?(::[a-z ]+)? = ", node.get("Index Cond", "")) is not None


async def _reached_other_than_by_key() -> tuple[dict[str, list[str]], dict[str, str]]:
    """Each recording statement's generic plan on the statistics of the moment: the nodes that
    reach a table other than by key, and the plans as text."""
    whole: dict[str, list[str]] = {}
    plans: dict[str, str] = {}
    # A PL/pgSQL body's statements are planned one by one.
    assert repository._LOCK_AND_READ in repository.LOAD.body
    assert repository._KNOWN in repository.LOAD.body
    # So are a SQL body's, each on a snapshot of its own.
    assert facts.APPLY.body == f"{facts._LOCK};\n{facts._INCREMENT}"
    statements = {
        repository.LOAD: (repository._LOCK_AND_READ, repository._KNOWN),
        repository.WRITE: (repository.WRITE.body,),
        facts.APPLY: (facts._LOCK, facts._INCREMENT),
    }
    assert set(statements) == {*repository.FUNCTIONS, facts.APPLY}
    for function, bodies in statements.items():
        nulls = ", ".join(["NULL"] * len(function.parameters))
        for number, body in enumerate(bodies):
            name = f"{function.name}.{number}"
            async with in_transaction() as connection:
                for setting in function.settings:
                    key, value = setting.split("=")
                    await connection.execute_script(f"SET LOCAL {key} = {value}")
                await connection.execute_script(
                    f"PREPARE recording_statement ({', '.join(function.parameters)}) AS {body}"
                )
                (row,) = await connection.execute_query_dict(
                    f"EXPLAIN (FORMAT JSON) EXECUTE recording_statement ({nulls})"
                )
                text = await connection.execute_query_dict(
                    f"EXPLAIN EXECUTE recording_statement ({nulls})"
                )
                await connection.execute_script("DEALLOCATE recording_statement")
                plans[name] = "\n".join(line["QUERY PLAN"] for line in text)
                whole[name] = [
                    f"{node['Node Type']} {node.get('Index Name', '')}"
                    f" on {node.get('Relation Name', '')}"
                    for node in _nodes(json.loads(row["QUERY PLAN"])[0]["Plan"])
                    if not _by_key(node)
                ]
    return whole, plans


async def test_the_recording_statements_reach_every_table_by_key_on_young_statistics(
    orm: list[str],
) -> None:
    """A function's generic plan is made from the statistics of the moment (at its first call
    on a connection, and again after the tables are analyzed); they cannot know that the
    recording touches one to four batches. On a young database's statistics, as here, every
    table must still be reached through an index by key: a plan that scans a table (or a whole
    index) to join a handful of batches costs in proportion to the data."""
    whole, plans = await _reached_other_than_by_key()
    assert whole == {name: [] for name in plans}, plans


async def test_the_recording_statements_reach_every_table_by_key_when_few_batches_have_parents(
    world: World,
) -> None:
    """Statistics that the suite's earlier tests can leave behind: thousands of batches, a
    handful of them in a container or split from another. A filter on a parent or a source
    (`parent_id IS NOT NULL`) then looks so selective that the planner walks that index's
    whole non-null range; the statements must read the touched batches by their own key."""
    await connections.get("default").execute_query(
        "INSERT INTO batch (code, region_path, quantity, unit, state, tagged_at, created_at,"
        " updated_at, last_seq, last_hash, category_id, holder_id, producer_id, stream_id)"
        " SELECT 'STATS-' || g, r.path, 1, 'kg', 'tagged', now(), now(), now(), 1, '',"
        " c.key, o.id, o.id, c.stream_id"
        " FROM generate_series(1, 5000) AS g, organization o JOIN region r ON r.id = o.region_id,"
        " (SELECT key, stream_id FROM waste_category ORDER BY key LIMIT 1) AS c"
        " WHERE o.id = $1",
        [world.orgs["clinic"].id],
    )
    await connections.get("default").execute_script(
        "UPDATE batch SET parent_id = (SELECT min(id) FROM batch) WHERE id % 1000 = 7;"
        " UPDATE batch SET split_from_id = (SELECT min(id) FROM batch) WHERE id % 1000 = 8;"
        " ANALYZE batch"
    )
    whole, plans = await _reached_other_than_by_key()
    # Young statistics again for the tests after this one (the clean-up empties the tables,
    # not their statistics).
    await connections.get("default").execute_script(
        "DELETE FROM batch WHERE code LIKE 'STATS-%'; ANALYZE batch"
    )
    assert whole == {name: [] for name in plans}, plans
