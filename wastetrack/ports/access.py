"""Who may read port records (port calls, deliveries, clean-ups, float replacements).

The roles come from the registry's one answer (`registry.access.read_scope`). Port records
differ from registry rows in one way: a record stays readable by the organizations it names
(the port, the vessel's owner, the team that cleaned up) even when a manager's region does not
cover where it happened, so a region reader sees their region's records *and* their own."""

from datetime import datetime
from typing import TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from wastetrack.core import paging
from wastetrack.core.principal import Principal
from wastetrack.registry.access import read_scope

M = TypeVar("M", bound=Model)

NEWEST_STARTED = paging.Order("started_at", datetime)
"""Deliveries and clean-ups, the latest begun first."""


def readable(
    query: QuerySet[M], principal: Principal, *, organization: tuple[str, ...], region: str
) -> QuerySet[M]:
    """`query` narrowed to the port records `principal` may read: those naming their
    organization in any of the `organization` id fields, and, for region readers, those whose
    `region` path lies in their subtree; admins read everything."""
    scope = read_scope(principal)
    if scope.everything:
        return query
    own = Q(*(Q(**{name: principal.organization_id}) for name in organization), join_type="OR")  # type: ignore[arg-type]
    if scope.region_path is not None:
        own |= Q(**{f"{region}__startswith": scope.region_path})
    return query.filter(own)
