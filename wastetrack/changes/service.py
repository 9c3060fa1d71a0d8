"""Reading the change feed: the changes a user may see, in commit order, one page at a time.

Rows are written by triggers in the changing transaction (migration 0022) and carry its
transaction id. A page holds only rows of transactions older than every transaction still
running, ordered by (txid, id): a transaction still in flight may hold a lower txid than rows
already committed, and its rows must not fall behind a cursor that has moved past them. So the
feed waits for it, and then returns its rows after that cursor: no gaps, no repeats."""

import base64
import binascii
import json
import re
from typing import Any

from tortoise import connections

from wastetrack.auth.models import Role
from wastetrack.batches.service import PARTY_COLUMNS
from wastetrack.changes.models import START, Change, ChangeKind, Position
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.principal import Principal

MAX_LIMIT = 500
_CURSOR = re.compile(r"^([0-9]{1,20})\.([0-9]{1,19})$")
_BAD_CURSOR = "after is not a cursor this server issued"


def encode_cursor(position: Position) -> str:
    """The opaque, URL-safe cursor for a position in the feed."""
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


def _readable(principal: Principal, param: Any) -> str:
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
    """The changes `principal` may see after `after`, oldest commit first, at most `limit`;
    with the position to read from next (`after` itself when nothing new is readable yet)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must lie between 1 and {MAX_LIMIT}", field="limit")
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    # One statement, so one snapshot: the page and the horizon (the last row of a finished
    # transaction) are judged against the same set of finished transactions. A page shorter
    # than `limit` has looked at every row up to the horizon, so the next read may start
    # there: a reader who sees little does not rescan others' changes on every poll.
    sql = (
        "WITH finished AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),"
        " page AS (SELECT c.id, c.txid, c.kind, c.occurred_at, c.data FROM change_log c"
        " WHERE c.txid < (SELECT xmin FROM finished)"
        f" AND (c.txid, c.id) > ({param(str(after.txid))}::text::xid8,"
        f" {param(after.id)}::bigint)"
        f" AND ({_readable(principal, param)})"
        f" ORDER BY c.txid, c.id LIMIT {param(limit)}),"
        " horizon AS (SELECT c.id, c.txid FROM change_log c"
        " WHERE c.txid < (SELECT xmin FROM finished) ORDER BY c.txid DESC, c.id DESC LIMIT 1)"
        " SELECT horizon, id, txid::text AS txid, kind, occurred_at, data FROM ("
        " SELECT FALSE AS horizon, id, txid, kind, occurred_at, data FROM page"
        " UNION ALL SELECT TRUE, id, txid, NULL, NULL, NULL FROM horizon) AS found"
        " ORDER BY found.horizon, found.txid, found.id"
    )
    rows = await connections.get("default").execute_query_dict(sql, params)
    changes = [
        Change(
            position=Position(txid=int(row["txid"]), id=int(row["id"])),
            kind=ChangeKind(row["kind"]),
            occurred_at=row["occurred_at"],
            data=json.loads(row["data"]) if isinstance(row["data"], str) else row["data"],
        )
        for row in rows
        if not row["horizon"]
    ]
    if len(changes) == limit:
        return changes, changes[-1].position
    horizon = [Position(txid=int(r["txid"]), id=int(r["id"])) for r in rows if r["horizon"]]
    if horizon and (horizon[0].txid, horizon[0].id) > (after.txid, after.id):
        return changes, horizon[0]
    return changes, after
