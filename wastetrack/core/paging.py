"""Keyset paging, the one way every list is read page by page.

A page is ordered by one column and then by id, so rows sharing the column's value keep a fixed
order; the cursor names the last row given (its column value and id) and the next page starts
strictly after it. Rows written between two requests neither repeat nor shift a page, as an
offset would make them do, and no page reads the rows of the pages before it."""

import base64
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from wastetrack.core.commands import Day, Id, Moment, Text
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


_ADAPTERS: dict[type, TypeAdapter[Any]] = {
    datetime: TypeAdapter(tuple[Moment, Id]),
    date: TypeAdapter(tuple[Day, Id]),
    int: TypeAdapter(tuple[Id, Id]),
    str: TypeAdapter(tuple[Text, Id]),
}


_PARSERS = {datetime: datetime.fromisoformat, date: date.fromisoformat}


def decode(cursor: str, kind: type, *, longest: int | None = None) -> tuple[Any, int]:
    """A cursor a client sent back, checked as any other input: (column value, id); a text
    value is as its column holds one, 1 to `longest` characters."""
    try:
        text, _, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().rpartition("|")
        value: object = _PARSERS[kind](text) if kind in _PARSERS else text
        decoded: tuple[Any, int] = _ADAPTERS[kind].validate_python((value, int(row_id)))
        if kind is str and not 0 < len(text) <= (longest or len(text)):
            raise ValueError(text)
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
    value, row_id = decode(cursor, order.kind, longest=getattr(column, "max_length", None))
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


async def page(query: QuerySet[M], order: Order, *, limit: int, cursor: str | None) -> Page[M]:
    """One page of `query` in `order` and the cursor of the next."""
    return cut(list(await after(query, order, cursor).limit(limit + 1)), order, limit=limit)


def cut(rows: list[M], order: Order, *, limit: int) -> Page[M]:
    """The page of `rows`, read with one row more than `limit` to learn whether another page
    follows, and the cursor after its last row in `order`."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode(getattr(last, order.column), last.pk)
