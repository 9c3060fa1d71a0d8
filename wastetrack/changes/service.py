"""Reading the change feed: the changes a user may see, one page at a time, in the order of
their transactions (wastetrack.changes.paging: no gaps, no repeats), each batch's events in
their order (seq).

Rows are written by triggers in the changing transaction (migrations 0022 and 0038). A batch
event's row takes the later of its transaction's id and that of the batch's previous event:
a transaction's id is given at its first write, not at its commit, so a sync that began
before another recorded an event of the same batch (and waited for the batch's lock) would
otherwise list its later event before the earlier one."""

import json

from tortoise import connections

from wastetrack.auth.models import Role
from wastetrack.batches.service import PARTY_COLUMNS
from wastetrack.changes import paging
from wastetrack.changes.models import START, Change, ChangeKind, Position
from wastetrack.changes.paging import decode_cursor as decode_cursor
from wastetrack.changes.paging import encode_cursor as encode_cursor
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.principal import Principal

MAX_LIMIT = 500


def _readable(principal: Principal, param: paging.Param) -> str:
    """SQL for 'principal may see change c': the read rules of the batch list (a party of the
    batch), the manifest list (producer, receiver or a leg's carrier) and the alert list (the
    alert's organization); managers and auditors add their region subtree, admins see all."""
    if principal.role == Role.admin:
        return "TRUE"
    org = param(principal.organization_id)
    batch_party = " OR ".join(f"b.{column} = {org}" for column in PARTY_COLUMNS)
    # Alerts and port deliveries (migration 0023) are scoped to one organization.
    alerts = param(
        [
            ChangeKind.alert_raised.value,
            ChangeKind.alert_changed.value,
            ChangeKind.delivery_recorded.value,
        ]
    )
    ways = [
        f"(c.kind = {param(ChangeKind.batch_event_recorded.value)} AND EXISTS ("
        f"SELECT 1 FROM batch b WHERE b.id = c.batch_id AND ({batch_party})))",
        f"(c.kind = {param(ChangeKind.manifest_changed.value)} AND EXISTS ("
        f"SELECT 1 FROM manifest m WHERE m.id = c.manifest_id AND (m.producer_id = {org}"
        f" OR m.receiver_id = {org} OR EXISTS (SELECT 1 FROM manifest_leg l"
        f" WHERE l.manifest_id = m.id AND l.carrier_id = {org}))))",
        f"(c.kind = ANY({alerts}::text[]) AND c.organization_id = {org})",
    ]
    if principal.sees_region:
        escaped = principal.region_path.translate({ord(c): f"\\{c}" for c in "\\%_"})
        ways.append(f"c.region_path LIKE {param(escaped + '%')}")
    return " OR ".join(ways)


async def read_changes(
    *, principal: Principal, after: Position = START, limit: int = 100
) -> tuple[list[Change], Position]:
    """The changes `principal` may see after `after`, at most `limit`; with the position to
    read from next (`after` itself when nothing new is readable yet)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must lie between 1 and {MAX_LIMIT}", field="limit")
    page, next_position = await paging.read_page(
        table="change_log",
        columns=("kind", "occurred_at", "data"),
        where=lambda param: _readable(principal, param),
        after=after,
        limit=limit,
    )
    changes = [
        Change(
            position=position,
            kind=ChangeKind(row["kind"]),
            occurred_at=row["occurred_at"],
            data=json.loads(row["data"]) if isinstance(row["data"], str) else row["data"],
        )
        for position, row in page
    ]
    return changes, next_position


async def readable(*, principal: Principal, change_ids: list[int]) -> set[int]:
    """Which of these changes `principal` may see now (the read rules of `read_changes`, as
    they stand today: a webhook's owner may have lost sight of a change queued for it)."""
    params, param = paging.placeholders(change_ids)
    rows = await connections.get("default").execute_query_dict(
        "SELECT c.id FROM change_log c WHERE c.id = ANY($1::bigint[])"
        f" AND ({_readable(principal, param)})",
        params,
    )
    return {row["id"] for row in rows}
