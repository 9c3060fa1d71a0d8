"""What the change feed holds. The rows live in change_log, written by the triggers of
migrations 0022 and 0038 in the transaction that makes each change; the table has no
Tortoise model (its txid column is PostgreSQL's xid8), so it is read with SQL
(wastetrack.changes.paging) and returned as these."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class ChangeKind(StrEnum):
    """The kinds of change a subscriber can see, as the triggers name them."""

    batch_event_recorded = "batch.event_recorded"
    manifest_changed = "manifest.changed"
    alert_raised = "alert.raised"
    alert_changed = "alert.changed"
    delivery_recorded = "delivery.recorded"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader stands in the feed (or the audit log): after the row `id` of transaction
    `txid`."""

    txid: int
    id: int


START = Position(txid=0, id=0)


@dataclass(frozen=True, slots=True)
class Change:
    """One change: its place in the feed, its kind, when it happened, and the few ids and
    codes a subscriber needs to decide whether to fetch more."""

    position: Position
    kind: ChangeKind
    occurred_at: datetime
    data: dict[str, Any]
