"""Recording a change in the audit log, in the transaction that makes it, and reading it back.

Who acts comes from the request (bound once by authentication with `bind_actor`), so the
services that change the registry need no extra argument; the CLI and background jobs act as
nobody (a null actor). Snapshots never carry secrets or password hashes. Readers page through
the log as through the change feed (wastetrack.changes.paging), so an entry whose transaction
commits late is not skipped by a reader who has already seen later ones."""

import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import structlog
from tortoise import connections
from tortoise.models import Model

from wastetrack.audit.models import AuditEntry
from wastetrack.changes import paging
from wastetrack.changes.models import START, Position
from wastetrack.changes.paging import Param
from wastetrack.core.cityday import in_city
from wastetrack.core.errors import ValidationFailed
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


def plain(value: Any) -> Any:
    """A value as JSON holds it (dates and times ISO 8601, decimals and ids as text)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def snapshot(row: Model, *, without: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The row's stored columns as JSON values, secrets left out."""
    names = row._meta.fields_db_projection.keys()
    return {
        name: plain(getattr(row, name))
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
        request_id=str(request_id) if request_id else None,
    )


def _scope(within: Organization | Region) -> tuple[int | None, str]:
    """Who may read an entry: the organization a row belongs to (its region must be loaded),
    or, for a region, the region itself."""
    if isinstance(within, Organization):
        return within.id, within.region.path
    return None, within.path


async def created(action: str, row: Model, *, within: Organization | Region) -> AuditEntry:
    """The entry for a row just created: nothing before, its snapshot after. `within` is the
    organization the row belongs to (its region must be loaded), or the region itself for a
    region: it decides who may read the entry."""
    organization_id, region_path = _scope(within)
    return await record(
        action=action,
        subject=row,
        organization_id=organization_id,
        region_path=region_path,
        after=snapshot(row),
    )


async def updated(
    action: str, row: Model, *, within: Organization | Region, **changes: Any
) -> AuditEntry:
    """Set `changes` on a row, save those fields, and append the entry with the row as it was
    and as it is; `within` as for `created`."""
    before = snapshot(row)
    for name, value in changes.items():
        setattr(row, name, value)
    await row.save(update_fields=list(changes))
    organization_id, region_path = _scope(within)
    return await record(
        action=action,
        subject=row,
        organization_id=organization_id,
        region_path=region_path,
        before=before,
        after=snapshot(row),
    )


async def legacy_position(entry_id: int) -> Position:
    """Where a plain entry id reads on from: the `next` pages gave before they were paged by
    transaction, so every entry up to it was written before then (transaction 0) and reading
    on from it skips none. An id no such page gave (beyond the last entry written before) is
    refused naming `after`, rather than read as an old position that replays the whole log."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT max(id) AS last FROM audit_entry WHERE txid = '0'::xid8"
    )
    last = rows[0]["last"]
    if last is None or entry_id > last:
        raise ValidationFailed(
            "after is not a cursor this server issued (an entry id is read only as the `next`"
            " of a page given before pages followed transactions)",
            field="after",
        )
    return Position(txid=0, id=entry_id)


def _readable(
    principal: Principal, subject_type: str | None, actor: int | None
) -> Callable[[Param], str]:
    """SQL for 'principal may read entry c' (admins all, managers and auditors the entries
    about their region subtree's organizations and regions), narrowed to a subject type and
    an actor if given."""

    def where(param: Param) -> str:
        scope = access.read_scope(principal)
        if scope.everything:
            ways = ["TRUE"]
        elif scope.region_path:
            ways = [f"starts_with(c.region_path, {param(scope.region_path)})"]
        else:
            ways = ["FALSE"]
        if subject_type is not None:
            ways.append(f"c.subject_type = {param(subject_type)}")
        if actor is not None:
            ways.append(f"c.actor_user_id = {param(actor)}")
        return " AND ".join(ways)

    return where


async def list_entries(
    *,
    principal: Principal,
    after: Position = START,
    limit: int = 100,
    subject_type: str | None = None,
    actor: int | None = None,
) -> tuple[list[AuditEntry], Position]:
    """Entries the principal may read after `after`, in the order of their transactions
    (wastetrack.changes.paging: an entry whose transaction commits late is not skipped), at
    most `limit`; with the position to read from next."""
    page, next_position = await paging.read_page(
        table="audit_entry",
        columns=(),
        where=_readable(principal, subject_type, actor),
        after=after,
        limit=min(limit, MAX_LIMIT),
    )
    found = {e.id: e for e in await AuditEntry.filter(id__in=[p.id for p, _ in page])}
    return [found[p.id] for p, _ in page], next_position


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


def _csv_row(entry: AuditEntry, timezone: str) -> list[Any]:
    return [
        entry.id,
        in_city(entry.at, timezone).isoformat(),
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


async def export_rows(
    *,
    principal: Principal,
    timezone: str,
    after: Position = START,
    subject_type: str | None = None,
    actor: int | None = None,
) -> tuple[list[list[Any]], Position | None]:
    """The entries `list_entries` gives after `after`, at most MAX_EXPORT, as CSV rows of
    CSV_HEADERS with times on the city's clock (`timezone`); with the position the next file
    starts from when more remain, or entries committed are held back behind a transaction
    still running (None when these are every entry committed so far)."""
    rows: list[list[Any]] = []
    while len(rows) < MAX_EXPORT:
        wanted = min(MAX_LIMIT, MAX_EXPORT - len(rows))
        page, after = await list_entries(
            principal=principal, after=after, limit=wanted, subject_type=subject_type, actor=actor
        )
        rows += [_csv_row(entry, timezone) for entry in page]
        if len(page) < wanted:
            break
    more = await paging.committed_after(
        table="audit_entry", where=_readable(principal, subject_type, actor), after=after
    )
    return rows, after if more else None
