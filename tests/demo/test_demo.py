"""The demo loads on an empty database and builds the same world every time: the fingerprint of
its rows, users, batches and the dashboard's key figures is fixed in `demo_fingerprint.json`.

Only what does not depend on the day the demo is loaded is fingerprinted: the demo is placed
relative to now, so figures over calendar months (and the manifest left past its 5 working days,
which a public holiday can delay) are left out; roll-ups are taken over a window holding it all.
"""

import json
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tortoise import connections

from wastetrack.auth import service as auth
from wastetrack.auth.models import User
from wastetrack.cells import service as cells
from wastetrack.core.errors import RuleViolation
from wastetrack.core.settings import Settings
from wastetrack.demo import CITY_CODE, DEMO_USERS, PASSWORDS, load_demo
from wastetrack.household import service as household
from wastetrack.registry.models import Region
from wastetrack.rollups import service as rollups

EXPECTED = Path(__file__).with_name("demo_fingerprint.json")
# Rows the demo writes whose number depends on the day it is loaded. Only the tables in the
# fingerprint are counted: not the custody log's partitions, nor `rollup_definition`, which the
# schema's set-up writes and other tests' clean-up empties, not the demo.
DATE_DEPENDENT = {"alert"}
CITY_TIMEZONE = "Asia/Shanghai"


async def test_the_demo_builds_the_same_world_on_an_empty_database(orm: list[str]) -> None:
    lines: list[str] = []
    logins = await load_demo(
        secret="demo-test-secret-" + "x" * 32, echo=lines.append, environment="test"
    )
    assert logins == {
        role: {"username": username, "password": PASSWORDS[role]}
        for role, (username, _, _) in DEMO_USERS.items()
    }
    assert lines == [
        "regions: 1 city, 22 towns, 8 villages/communities",
        "loaded 17 organizations and 388 batches with their custody chains",
    ]
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    fingerprint = await _fingerprint(list(expected["tables"]))
    for part, value in expected.items():
        assert fingerprint[part] == value, part
    again: list[str] = []
    assert await load_demo(secret="other", echo=again.append, environment="test") == logins
    assert again == ["demo data already loaded; nothing changed"]
    assert await _table_counts(list(expected["tables"])) == expected["tables"]
    # Run again once an account is deactivated, and another's password changed: it prints the
    # logins that still work, not the ones that no longer do.
    (manager, carrier) = (DEMO_USERS[role][0] for role in ("manager", "carrier"))
    gone = await User.get(username=manager)
    await auth.deactivate_user(user_id=gone.id)
    await User.filter(username=carrier).update(
        password_hash=auth.hash_password(secrets.token_urlsafe(16))
    )
    left = await load_demo(secret="other", echo=[].append, environment="test")
    assert left == {r: v for r, v in logins.items() if v["username"] not in (manager, carrier)}


async def test_the_demo_is_never_loaded_in_production(orm: list[str]) -> None:
    """Its logins are published (the README's walkthrough uses them), an admin's among them."""
    lines: list[str] = []
    for environment in ("production", " Production", "prod"):
        with pytest.raises(RuleViolation) as refused:
            await load_demo(secret="s" * 48, echo=lines.append, environment=environment)
        assert refused.value.field == "WASTETRACK_ENVIRONMENT"
    assert lines == []


async def test_the_demo_is_not_loaded_where_other_machines_reach_the_service(
    orm: list[str],
) -> None:
    """`serve` refuses to serve other machines while the demo's published logins work; loaded
    after `serve` started on an empty database, the demo planted them there unchecked."""
    lines: list[str] = []
    reached = Settings(secret_key=secrets.token_hex(24), host="0.0.0.0").reached_by_others()
    with pytest.raises(RuleViolation) as refused:
        await load_demo(secret="s" * 48, echo=lines.append, environment="test", reached=reached)
    assert refused.value.field == "host"
    assert "--allow-demo-logins" in refused.value.detail
    assert lines == [] and not await Region.exists(code=CITY_CODE)


async def _table_counts(tables: list[str]) -> dict[str, int]:
    conn = connections.get("default")
    counts = {}
    for table in sorted(set(tables) - DATE_DEPENDENT):
        rows = await conn.execute_query_dict(f'SELECT count(*) AS n FROM "{table}"')
        counts[table] = rows[0]["n"]
    return counts


async def _fingerprint(tables: list[str]) -> dict[str, Any]:
    conn = connections.get("default")
    users = await User.all().order_by("username").prefetch_related("organization")
    batches = await conn.execute_query_dict(
        "SELECT stream_id, state, count(*) AS n FROM batch GROUP BY 1, 2 ORDER BY 1, 2"
    )
    amounts = await conn.execute_query_dict(
        "SELECT category_id, unit, count(*) AS n, sum(quantity)::text AS quantity"
        " FROM batch GROUP BY 1, 2 ORDER BY 1, 2"
    )
    events = await conn.execute_query_dict(
        "SELECT event_type, count(*) AS n FROM custody_event GROUP BY 1 ORDER BY 1"
    )
    city = await Region.get(code="371082")
    today = datetime.now(ZoneInfo(CITY_TIMEZONE)).date()
    wide = {"region_path": city.path, "date_from": today - timedelta(days=400), "date_to": today}
    manager = await auth.principal_for(next(u for u in users if u.username == "demo_manager"))
    sorting = await household.sorting_metrics(
        principal=manager,
        date_from=wide["date_from"],
        date_to=today,
        timezone=CITY_TIMEZONE,
    )
    return _plain(
        {
            "tables": await _table_counts(tables),
            "users": [[u.username, str(u.role.value), u.organization.name] for u in users],
            "batches": [[r["stream_id"], r["state"], r["n"]] for r in batches],
            "amounts": [[r["category_id"], r["unit"], r["n"], r["quantity"]] for r in amounts],
            "events": [[r["event_type"], r["n"]] for r in events],
            "utilization": (await rollups.utilization(**wide))["streams"],
            "mass_balance": (await rollups.mass_balance(**wide))["categories"],
            # The period is the day it runs: only what the demo put in it is fingerprinted.
            "sorting": {k: v for k, v in sorting.items() if k not in ("date_from", "date_to")},
            "cells": {
                k: v
                for k, v in (await cells.achievement(principal=manager, today=today)).items()
                if k != "today"
            },
        }
    )


def _plain(value: Any) -> Any:
    """JSON's view of a value: decimals and dates as text."""
    return json.loads(json.dumps(value, default=str))
