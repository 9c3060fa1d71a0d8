"""The custody log's partitions: one per million batch ids (migration 0029), made ahead of the
batch id sequence so that a new batch's events always have a partition to go to.

There is no DEFAULT partition: rows landing there would have to be moved out (under a lock on
the whole log) before a partition for their range could be attached. Instead the background
job keeps `ahead` empty partitions beyond the one the sequence is in, and an insert past the
last partition fails loudly rather than landing somewhere it would have to be moved from."""

from dataclasses import dataclass
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of custody_event: the batch ids from `low` up to, not including, `high`."""

    name: str
    low: int
    high: int


async def ensure_ahead(conn: BaseDBAsyncClient | None = None, *, ahead: int) -> list[str]:
    """Make the partitions covering the batch ids from the sequence's current value through
    `ahead` partitions beyond it, where missing; returns the names made (none when already
    ahead). Idempotent, safe from several processes at once, and callable by the service's own
    role (the database function runs as the schema's owner)."""
    client = conn or connections.get("default")
    rows: list[dict[str, Any]] = await client.execute_query_dict(
        "SELECT wastetrack_custody_partitions_ahead($1) AS made", [ahead]
    )
    return list(rows[0]["made"])


async def partitions(conn: BaseDBAsyncClient | None = None) -> list[Partition]:
    """The partitions of the custody log, lowest batch ids first."""
    client = conn or connections.get("default")
    rows = await client.execute_query_dict(
        "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'custody_event'::regclass"
    )
    found = [Partition(row["name"], *_range(row["bound"])) for row in rows]
    return sorted(found, key=lambda p: p.low)


def missing(error: BaseException) -> bool:
    """Whether a failed write found no partition for its batch id: the background job has not
    kept up with the batch id sequence (PostgreSQL's check violation on the log itself), which
    is the service's condition to fix, not a conflict between requests."""
    seen: list[BaseException] = [error]
    while seen:
        cause = seen.pop()
        if getattr(cause, "sqlstate", None) == "23514" and "no partition" in str(cause):
            return True
        # Tortoise wraps the driver's error as its first argument.
        seen.extend(e for e in (cause.__cause__, *cause.args[:1]) if isinstance(e, BaseException))
    return False


def _range(bound: str) -> tuple[int, int]:
    # "FOR VALUES FROM ('0') TO ('1000000')"
    low, high = (part.split(")")[0].strip("' ") for part in bound.split("(")[1:3])
    return int(low), int(high)
