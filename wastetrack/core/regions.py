"""A region subtree as a condition that a list can read in its own order.

A record names its region by the region's materialized path, copied when it is written:
"/1/4/17/" is village 17 of town 4 of city 1 (region ids; `registry.models.Region.path`). A
manager or auditor reads the records of their region's subtree: those whose path starts with
the path of their region. As a prefix match, that condition's index is ordered by path, not by
the list's order, so the newest page of a region's records sorted all of the region's records,
or walked the whole list newest first and filtered: either way it grew with the table.

`subtree` asks the same thing as an equality: the component of the path at the depth of the
subtree's root is the root's id, `split_part(region_path, '/', depth + 1) = 'id'`. An index
on (that expression, the list's order column, id), one per level of division below the city
(migration 0054), reads a region's page from the cursor in order and stops after it, as a
party's index does. A city's subtree is read in the list's own order, as its instance's
whole list (docs/scale-out.md: an instance per city); were a second city registered in the
same instance, its manager's page would pass over the other city's newer rows.
The two conditions hold for the same records: a region's id is unique and its path never
changes (a region is made under its parent and never moved), so a path whose component at
the root's depth is the root's id lies under the root's path."""

import re

from pypika_tortoise.terms import Function, LiteralValue, ValueWrapper
from tortoise.exceptions import FieldError
from tortoise.expressions import Q, ResolveContext
from tortoise.query_utils import QueryModifier

PATH = re.compile(r"(/[0-9]+)+/")
"""A region's materialized path: its ancestors' ids and its own, from the city down."""


NEXT_ID = "SELECT nextval(pg_get_serial_sequence('region', 'id'))"
"""Draws a region's id before it is written, so that it is written once, with its path."""


def path_of(region_id: int, parent_path: str | None) -> str:
    """The path of region `region_id` made under the region at `parent_path` (a city: none)."""
    return f"{parent_path or '/'}{region_id}/"


def lineage(path: str) -> list[str]:
    """The paths of the region at `path` and of every region above it, from the city down:
    "/1/4/17/" → ["/1/", "/1/4/", "/1/4/17/"]."""
    ids = path.strip("/").split("/")
    return ["/" + "/".join(ids[: n + 1]) + "/" for n in range(len(ids))]


def path_check_sql() -> str:
    """The database CHECK on a region's stored path: the form of `PATH` (also a POSIX regular
    expression), ending in the region's own id; the ancestors are the service's to write."""
    return f"path ~ '^{PATH.pattern}$' AND path LIKE ('%/' || id || '/')"


class _Subtree(Q):
    """The records whose `column` holds a path in the subtree of the region at `path`."""

    __slots__ = ("_column", "_part", "_path", "_root")

    def __init__(self, column: str, path: str) -> None:
        super().__init__()
        if not PATH.fullmatch(path):
            raise ValueError(f"not a region path: {path!r}")
        ids = path.strip("/").split("/")
        self._column, self._path = column, path
        # split_part counts from 1, and a path's first part is the empty text before its "/".
        self._part = len(ids) + 1
        self._root = ids[-1]

    def __bool__(self) -> bool:
        return True  # Q's is "has children or filters", which this has none of

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Subtree) and (
            (self._column, self._path, self._is_negated)
            == (other._column, other._path, other._is_negated)
        )

    def __invert__(self) -> Q:
        # Q's own builds a plain Q of the children and filters, which this has none of.
        negated = _Subtree(self._column, self._path)
        negated._is_negated = not self._is_negated
        return negated

    def resolve(self, resolve_context: ResolveContext) -> QueryModifier:
        if self._column not in resolve_context.model._meta.fields_db_projection.values():
            raise FieldError(f"{resolve_context.model.__name__} has no column {self._column}")
        # The separator and the part's number are literals, not parameters: an expression index
        # serves a statement whose expression is the index's own, also in a generic plan.
        part = Function(
            "split_part",
            resolve_context.table[self._column],
            LiteralValue("'/'"),
            LiteralValue(str(self._part)),
        )
        modifier = QueryModifier(where_criterion=part == ValueWrapper(self._root))
        return ~modifier if self._is_negated else modifier


def subtree(path: str, column: str = "region_path") -> Q:
    """The records whose `column` names a region in the subtree of the region at `path` (the
    region itself and every region below it)."""
    return _Subtree(column, path)
