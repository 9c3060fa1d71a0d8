"""Reading a log that transactions append to, one page at a time, without gaps or repeats.

A log read this way (change_log, audit_entry) has an `id` and a `txid`: the id of the writing
transaction (xid8, `pg_current_xact_id()` by default). Ids are handed out as rows are inserted,
not as their transactions commit, so a reader paging by id alone skips a row whose transaction
commits after a later one's row was read. So a page holds only rows of transactions older than
every transaction still running (txid below the snapshot's xmin), in (txid, id) order, after a
cursor of the same two: a transaction still in flight may hold a lower txid than rows already
committed, and its rows must not fall behind a cursor that has moved past them. The reader
waits for it, and then gets its rows after that cursor."""

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from typing import Any

from tortoise import connections

from wastetrack.changes.models import START, Position
from wastetrack.core.errors import ValidationFailed

Param = Callable[[object], str]
"""Adds a value to a statement's parameters and gives its placeholder ($n)."""


def placeholders(*first: object) -> tuple[list[object], Param]:
    """A statement's parameters, starting with `first` ($1…), and the `Param` that adds more."""
    params = list(first)

    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    return params, param


_CURSOR = re.compile(r"^([0-9]{1,20})\.([0-9]{1,19})$")
_BAD_CURSOR = "after is not a cursor this server issued"


def encode_cursor(position: Position) -> str:
    """The opaque, URL-safe cursor for a position in a log."""
    raw = f"{position.txid}.{position.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "after") -> Position:
    """The position a cursor names; anything this server did not issue is refused."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationFailed(_BAD_CURSOR, field=field) from None
    found = _CURSOR.match(raw)
    if found is None or encode_cursor(Position(int(found[1]), int(found[2]))) != cursor:
        raise ValidationFailed(_BAD_CURSOR, field=field)
    txid, row_id = int(found[1]), int(found[2])
    if txid >= 2**64 or row_id >= 2**63:
        raise ValidationFailed(_BAD_CURSOR, field=field)
    return Position(txid=txid, id=row_id)


def _position(row: dict[str, Any]) -> Position:
    return Position(txid=int(row["txid"]), id=int(row["id"]))


def _horizon_sql(table: str) -> str:
    """The last row of a finished transaction (older than every one still running). Ordered
    by the row's own columns: a bare `txid` in ORDER BY would name the text the row's id is
    given out as, which puts 999 after 1001."""
    return (
        f"SELECT t.txid::text AS txid, t.id FROM {table} t"
        " WHERE t.txid < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY t.txid DESC, t.id DESC LIMIT 1"
    )


async def horizon(table: str) -> Position:
    """Where a reader that has read everything readable now stands: the last row of a finished
    transaction (START when there is none). A new reader starting there gets every row of the
    transactions still running, whenever they commit — unlike a position taken from the
    reader's own transaction id, which rows of a transaction begun earlier and committed later
    would fall behind."""
    rows = await connections.get("default").execute_query_dict(_horizon_sql(table))
    return _position(rows[0]) if rows else START


async def read_page(
    *,
    table: str,
    columns: Sequence[str],
    where: Callable[[Param], str],
    after: Position,
    limit: int,
) -> tuple[list[tuple[Position, dict[str, Any]]], Position]:
    """The rows of `table` (aliased `c` in `where`, the SQL condition a row must meet, built
    with the placeholders `Param` gives) after `after`, at most `limit`, each with its position
    and `columns`; with the position to read from next (`after` itself when nothing new is
    readable yet). A position in a transaction not begun yet was never issued: refused,
    naming `after`, rather than read as an empty feed until ids catch up with it."""
    if after != START:
        ((issued,),) = (
            await connections.get("default").execute_query(
                "SELECT $1::text::xid8 < pg_snapshot_xmax(pg_current_snapshot())",
                [str(after.txid)],
            )
        )[1]
        if not issued:
            raise ValidationFailed(_BAD_CURSOR, field="after")
    params, param = placeholders()
    chosen = "".join(f", c.{name}" for name in columns)
    named = "".join(f", {name}" for name in columns)
    # One statement, so one snapshot: the page and the horizon (the last row of a finished
    # transaction) are judged against the same set of finished transactions. A page shorter
    # than `limit` has looked at every row up to the horizon, so the next read may start
    # there: a reader who sees little does not rescan others' rows on every poll.
    sql = (
        "WITH finished AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),"
        f" page AS (SELECT c.id, c.txid{chosen} FROM {table} c"
        " WHERE c.txid < (SELECT xmin FROM finished)"
        f" AND (c.txid, c.id) > ({param(str(after.txid))}::text::xid8,"
        f" {param(after.id)}::bigint)"
        f" AND ({where(param)})"
        f" ORDER BY c.txid, c.id LIMIT {param(limit)}),"
        f" horizon AS (SELECT c.id, c.txid FROM {table} c"
        " WHERE c.txid < (SELECT xmin FROM finished) ORDER BY c.txid DESC, c.id DESC LIMIT 1)"
        f" SELECT horizon, id, txid::text AS txid{named} FROM ("
        f" SELECT FALSE AS horizon, id, txid{named} FROM page"
        f" UNION ALL SELECT TRUE, id, txid{', NULL' * len(columns)} FROM horizon) AS found"
        " ORDER BY found.horizon, found.txid, found.id"
    )
    rows = await connections.get("default").execute_query_dict(sql, params)
    page = [(_position(row), row) for row in rows if not row["horizon"]]
    if len(page) == limit:
        return page, page[-1][0]
    horizon = [_position(row) for row in rows if row["horizon"]]
    if horizon and (horizon[0].txid, horizon[0].id) > (after.txid, after.id):
        return page, horizon[0]
    return page, after


async def committed_after(*, table: str, where: Callable[[Param], str], after: Position) -> bool:
    """Whether `table` holds a row meeting `where` after `after` that is committed now, whether
    `read_page` gives it yet or holds it back behind a transaction still running: a reader
    given everything up to `after` is told that more remain (its next read from `after` finds
    them, once read_page does). A fresh look, so a transaction that ended after the page was
    read counts too."""
    params, param = placeholders()
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM {table} c"
        f" WHERE (c.txid, c.id) > ({param(str(after.txid))}::text::xid8, {param(after.id)}::bigint)"
        f" AND ({where(param)}))"
    )
    ((found,),) = (await connections.get("default").execute_query(sql, params))[1]
    return bool(found)
