"""Who may read port records (port calls, deliveries, clean-ups, float replacements).

The roles come from the registry's one answer (`registry.access.read_scope`). Port records
differ from registry rows in one way: a record stays readable by the organizations it names
(the port, the vessel's owner, the team that cleaned up) even when a manager's region does not
cover where it happened, so a region reader sees their region's records *and* their own."""

from datetime import datetime
from typing import Any, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from wastetrack.core import paging
from wastetrack.core.principal import Principal
from wastetrack.registry.access import read_scope

M = TypeVar("M", bound=Model)

NEWEST_STARTED = paging.Order("started_at", datetime)
"""Deliveries and clean-ups, the latest begun first."""


def reasons(principal: Principal, *, organization: tuple[str, ...], region: str) -> list[Q]:
    """The ways `principal` comes to read a port record: naming their organization in one of
    the `organization` id fields (one reason each) and, for region readers, having its `region`
    path in their subtree; admins read every record (one reason that holds for all)."""
    scope = read_scope(principal)
    if scope.everything:
        return [Q()]
    own: list[dict[str, Any]] = [{name: principal.organization_id} for name in organization]
    found = [Q(**where) for where in own]
    if scope.region_path is not None:
        found.append(Q(**{f"{region}__startswith": scope.region_path}))
    return found


def readable(query: QuerySet[M], met: list[Q]) -> QuerySet[M]:
    """`query` narrowed to the records read for any of `met` (a user's `reasons`)."""
    return query.filter(paging.any_of(met))
