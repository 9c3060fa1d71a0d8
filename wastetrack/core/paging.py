"""Keyset paging, the one way every list is read page by page.

A page is ordered by one column and then by id, so rows sharing the column's value keep a fixed
order; the cursor names the last row given (its column value and id) and the next page starts
strictly after it. Rows written between two requests neither repeat nor shift a page, as an
offset would make them do, and no page reads the rows of the pages before it."""

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from annotated_types import Interval
from pydantic import StringConstraints, TypeAdapter
from pypika_tortoise.terms import Parameterizer
from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from wastetrack.core.commands import Day, Id, Moment
from wastetrack.core.errors import ValidationFailed

M = TypeVar("M", bound=Model)
R = TypeVar("R")

Page = tuple[list[R], str | None]
"""A page's rows and the cursor of the next page (None after the last)."""

MAX_LIMIT = 500
"""The most rows one page holds."""
DEFAULT_LIMIT = 50
FILE_LIMIT = 100_000
"""The most rows one downloaded file of a list holds; a `Link` names the next file."""


@dataclass(frozen=True)
class Order:
    """A list's order: by `column` (then id), newest or greatest first when `descending`;
    `kind` is the column's Python type, which a cursor's value is checked against."""

    column: str = "id"
    kind: type = int
    descending: bool = True


NEWEST_ID = Order()
"""By id alone, highest first: the latest made first."""
OLDEST_ID = Order(descending=False)
"""By id alone, lowest first: the order rows were made in."""


def encode(value: object, row_id: int) -> str:
    """The cursor after a row whose order column holds `value`."""
    text = value.isoformat() if isinstance(value, date) else str(value)
    return base64.urlsafe_b64encode(f"{text}|{row_id}".encode()).decode()


# A text value as a column holds one, not as input must be now (`Text`): a row stored before
# an input rule tightened (a control character the API once let in) still pages on.
# PostgreSQL stores no NUL in text.
_Stored = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]

BIGINT_MAX = 2**63 - 1
_BigId = Annotated[int, Interval(ge=1, le=BIGINT_MAX)]
"""A row id of a table keyed by a bigint (a webhook's deliveries, the audit log)."""

_ADAPTERS: dict[tuple[type, bool], TypeAdapter[Any]] = {
    (datetime, False): TypeAdapter(tuple[Moment, Id]),
    (date, False): TypeAdapter(tuple[Day, Id]),
    (int, False): TypeAdapter(tuple[Id, Id]),
    (str, False): TypeAdapter(tuple[_Stored, Id]),
    (datetime, True): TypeAdapter(tuple[Moment, _BigId]),
    (date, True): TypeAdapter(tuple[Day, _BigId]),
    (int, True): TypeAdapter(tuple[_BigId, _BigId]),
    (str, True): TypeAdapter(tuple[_Stored, _BigId]),
}


def wide_ids(model: type[Model]) -> bool:
    """Whether `model`'s rows are keyed by a bigint: its cursors carry ids past 2**31 - 1."""
    return isinstance(model._meta.pk, fields.BigIntField)


_PARSERS = {datetime: datetime.fromisoformat, date: date.fromisoformat}


def decode(
    cursor: str, kind: type, *, longest: int | None = None, wide: bool = False
) -> tuple[Any, int]:
    """A cursor a client sent back, checked as any other input: (column value, id); a text
    value is as its column holds one, 1 to `longest` characters, an id as the table's key
    holds one (a bigint when `wide`, else 32 bits). Only a cursor this server could have
    issued is one: it encodes back to itself (a digit of another script, `+7`, `07`, a week
    date or a time written otherwise is none)."""
    try:
        text, _, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().rpartition("|")
        value: object = _PARSERS[kind](text) if kind in _PARSERS else text
        decoded: tuple[Any, int] = _ADAPTERS[kind, wide].validate_python((value, int(row_id)))
        if kind is str and not 0 < len(text) <= (longest or len(text)):
            raise ValueError(text)
        if encode(*decoded) != cursor:
            raise ValueError(cursor)
    except (ValueError, UnicodeDecodeError):  # a ValidationError is a ValueError
        raise ValidationFailed("cursor is not one this server issued", field="cursor") from None
    return decoded


def after(query: QuerySet[M], order: Order, cursor: str | None) -> QuerySet[M]:
    """`query` in `order`, from the row after `cursor` on (from the first without one)."""
    direction = "-" if order.descending else ""
    ordered = (
        query.order_by(f"{direction}id")
        if order.column == "id"
        else query.order_by(f"{direction}{order.column}", f"{direction}id")
    )
    if cursor is None:
        return ordered
    column = query.model._meta.fields_map[order.column]
    value, row_id = decode(
        cursor,
        order.kind,
        longest=getattr(column, "max_length", None),
        wide=wide_ids(query.model),
    )
    beyond = "lt" if order.descending else "gt"
    if order.column == "id":
        return ordered.filter(**{f"id__{beyond}": row_id})
    # The first condition is implied by the second; it lets an index on the order column
    # start at the cursor rather than at the top of the list.
    return ordered.filter(
        Q(**{f"{order.column}__{beyond}e": value}),
        Q(**{f"{order.column}__{beyond}": value})
        | Q(**{order.column: value, f"id__{beyond}": row_id}),
    )


async def page(
    query: QuerySet[M],
    order: Order,
    *,
    limit: int,
    cursor: str | None,
    reasons: Sequence[Q] | None = None,
) -> Page[M]:
    """One page of `query` in `order` and the cursor of the next. With `reasons` (the ways a
    user may come to read a row), only the rows that meet at least one of them: for two or
    more, each reason read on its own and merged (`merged`), except a file's worth of rows,
    which is read whole anyway."""
    if reasons is not None and len(reasons) > 1 and limit <= MAX_LIMIT:
        return await _merged_page(query, order, reasons, limit=limit, cursor=cursor)
    if reasons is not None:
        query = query.filter(any_of(reasons))
    return cut(list(await after(query, order, cursor).limit(limit + 1)), order, limit=limit)


async def _merged_page(
    query: QuerySet[M], order: Order, reasons: Sequence[Q], *, limit: int, cursor: str | None
) -> Page[M]:
    sql, params, connection = _merged(query, order, reasons, limit=limit + 1, cursor=cursor)
    keys = [tuple(row) for row in (await connection.execute_query(sql, params))[1]]
    # The next cursor comes from the merged keys, not from the rows read after them: a row that
    # leaves the list in between (acknowledged, moved on, deleted) is not shown, and must not
    # end the walk before the rows after it.
    following = None
    if len(keys) > limit:
        last = keys[limit - 1]
        following = encode(last[-1], last[0])  # (id, column value), or (id,) by id alone
        keys = keys[:limit]
    ids = [key[0] for key in keys]
    found = {row.pk: row for row in await query.filter(id__in=ids)} if ids else {}
    return [found[i] for i in ids if i in found], following


def any_of(reasons: Sequence[Q]) -> Q:
    """The rows read for at least one of `reasons`, as one condition: for a lookup or a count,
    where no page is read."""
    return Q(*_given(reasons), join_type=Q.OR)


def merged(
    query: QuerySet[M], order: Order, reasons: Sequence[Q], *, limit: int, cursor: str | None
) -> tuple[str, list[Any]]:
    """SQL and parameters for the keys (id, then the order column's value unless the order is
    by id) of the first `limit` rows of `query` in `order` after `cursor` that meet any of
    `reasons`: each reason's rows read on their own, stopping after `limit` rows, then merged (a
    row met for two reasons comes once).

    The OR of the reasons in one query leaves the planner one choice for all of them: walk the
    whole list in order and filter (slow for a user whose rows are few and old), or read all
    the user's rows and sort (slow for a user with many). Apart, a reason on a party column
    with an index on (that column, order column, id) reads at most `limit` rows whatever the
    table's size, and so does a region subtree asked as an equality with an index of its own
    (`regions.subtree`); a reason through a join is still the planner's choice of the two, for
    that reason alone."""
    sql, params, _ = _merged(query, order, reasons, limit=limit, cursor=cursor)
    return sql, params


def _merged(
    query: QuerySet[M], order: Order, reasons: Sequence[Q], *, limit: int, cursor: str | None
) -> tuple[str, list[Any], BaseDBAsyncClient]:
    """`merged`, and the connection its statement was built for."""
    query = after(query, order, cursor)
    columns = ("id",) if order.column == "id" else ("id", order.column)
    parameterizer = Parameterizer()
    branches = []
    for reason in _given(reasons):
        branch = query.filter(reason).limit(limit).values_list(*columns)
        # Each branch keeps its own ORDER BY and LIMIT (QuerySet.union cannot: it leaves the
        # branches unbracketed); one parameterizer numbers the parameters of all of them.
        branch._choose_db_if_not_chosen()
        branch._make_query()
        context = branch.query.QUERY_CLS.SQL_CONTEXT.copy(
            parameterizer=parameterizer, subquery=True
        )
        branches.append(branch.query.get_sql(context))
    direction = "DESC" if order.descending else "ASC"
    keys = f"1 {direction}" if order.column == "id" else f"2 {direction}, 1 {direction}"
    page_size = parameterizer.create_param(limit).get_sql(context)
    sql = f"SELECT * FROM ({' UNION '.join(branches)}) AS met ORDER BY {keys} LIMIT {page_size}"
    return sql, parameterizer.values, branch._db


def _given(reasons: Sequence[Q]) -> Sequence[Q]:
    """`reasons`, which must not be empty: an empty OR would read every row."""
    if not reasons:
        raise ValueError("a user with no reason to read a row reads none; give at least one")
    return reasons


def cut(rows: list[M], order: Order, *, limit: int) -> Page[M]:
    """The page of `rows`, read with one row more than `limit` to learn whether another page
    follows, and the cursor after its last row in `order`."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode(getattr(last, order.column), last.pk)
