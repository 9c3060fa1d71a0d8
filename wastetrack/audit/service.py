"""Recording a change in the audit log, in the transaction that makes it, and reading it back.

Who acts comes from the request (bound once by authentication with `bind_actor`), so the
services that change the registry need no extra argument; the CLI and background jobs act as
nobody (a null actor). Snapshots never carry secrets or password hashes."""

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import structlog
from tortoise.models import Model

from wastetrack.audit.models import AuditEntry
from wastetrack.core.principal import Principal
from wastetrack.registry import access
from wastetrack.registry.models import Organization, Region

# Never copied into before/after, whatever the model.
SECRET_FIELDS = frozenset(
    {"password_hash", "secret_hash", "secret", "secret_encrypted", "encrypted_secret", "token"}
)
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None = None
    api_key_id: int | None = None


_actor: ContextVar[Actor | None] = ContextVar("wastetrack_audit_actor", default=None)


def bind_actor(*, user_id: int, api_key_id: int | None = None) -> None:
    """Name who acts for the rest of the request (called by authentication)."""
    _actor.set(Actor(user_id=user_id, api_key_id=api_key_id))


def current_actor() -> Actor:
    return _actor.get() or Actor()


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def snapshot(row: Model, *, without: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The row's stored columns as JSON values, secrets left out."""
    names = row._meta.fields_db_projection.keys()
    return {
        name: _plain(getattr(row, name))
        for name in names
        if name not in SECRET_FIELDS and name not in without
    }


async def record(
    *,
    action: str,
    subject: Model,
    region_path: str,
    organization_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry (`action` like `organization.updated`) about `subject`, in the caller's
    transaction: it commits, or rolls back, with the change it describes."""
    actor = current_actor()
    subject_type = action.partition(".")[0]
    clean_before = {k: v for k, v in (before or {}).items() if k not in SECRET_FIELDS}
    clean_after = {k: v for k, v in (after or {}).items() if k not in SECRET_FIELDS}
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return await AuditEntry.create(
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject.pk),
        organization_id=organization_id,
        region_path=region_path,
        before=clean_before if before is not None else None,
        after=clean_after if after is not None else None,
        request_id=str(request_id)[:64] if request_id else None,
    )


async def created(action: str, row: Model, *, within: Organization | Region) -> AuditEntry:
    """The entry for a row just created: nothing before, its snapshot after. `within` is the
    organization the row belongs to (its region must be loaded), or the region itself for a
    region: it decides who may read the entry."""
    if isinstance(within, Organization):
        organization_id: int | None = within.id
        region_path = within.region.path
    else:
        organization_id, region_path = None, within.path
    return await record(
        action=action,
        subject=row,
        organization_id=organization_id,
        region_path=region_path,
        after=snapshot(row),
    )


async def list_entries(
    *,
    principal: Principal,
    after: int | None = None,
    limit: int = 100,
    subject_type: str | None = None,
    actor: int | None = None,
) -> list[AuditEntry]:
    """Entries the principal may read, oldest first, after an entry id: admins read all,
    managers and auditors the entries about their region subtree's organizations and regions."""
    query = AuditEntry.all()
    scope = access.read_scope(principal)
    if not scope.everything:
        query = query.filter(region_path__startswith=scope.region_path or "\x00")
    if after is not None:
        query = query.filter(id__gt=after)
    if subject_type is not None:
        query = query.filter(subject_type=subject_type)
    if actor is not None:
        query = query.filter(actor_user_id=actor)
    return await query.order_by("id").limit(min(limit, MAX_LIMIT))


CSV_HEADERS = (
    "id",
    "at",
    "actor_user_id",
    "actor_api_key_id",
    "action",
    "subject_type",
    "subject_id",
    "organization_id",
    "before",
    "after",
    "request_id",
)
MAX_EXPORT = 100_000


async def export_rows(
    *, principal: Principal, subject_type: str | None = None, actor: int | None = None
) -> list[list[Any]]:
    """Every entry the principal may read (at most MAX_EXPORT), as CSV rows of CSV_HEADERS."""
    rows: list[list[Any]] = []
    after: int | None = None
    while len(rows) < MAX_EXPORT:
        page = await list_entries(
            principal=principal,
            after=after,
            limit=MAX_LIMIT,
            subject_type=subject_type,
            actor=actor,
        )
        for entry in page:
            rows.append(
                [
                    entry.id,
                    entry.at.isoformat(),
                    entry.actor_user_id,
                    entry.actor_api_key_id,
                    entry.action,
                    entry.subject_type,
                    entry.subject_id,
                    entry.organization_id,
                    None if entry.before is None else json.dumps(entry.before, ensure_ascii=False),
                    None if entry.after is None else json.dumps(entry.after, ensure_ascii=False),
                    entry.request_id,
                ]
            )
        if len(page) < MAX_LIMIT:
            break
        after = page[-1].id
    return rows[:MAX_EXPORT]
