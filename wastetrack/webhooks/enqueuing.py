"""Enqueueing: the changes each subscription has not seen yet become its deliveries.

The change feed is read as the subscription's owner (so it hears only what the owner may see)
from the cursor kept in the subscription, and the deliveries and the new cursor are written in
one transaction: a round that dies half-way leaves the cursor where the last committed page
ended, and the unique (subscription, change) key makes a repeated page a no-op."""

import json
import uuid
from collections import defaultdict
from datetime import datetime

from pydantic_core import to_jsonable_python
from tortoise.transactions import in_transaction

from wastetrack.auth import service as auth
from wastetrack.auth.models import User
from wastetrack.changes import paging
from wastetrack.changes import service as changes
from wastetrack.changes.models import Position
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.models import WebhookSubscription

PAGE = 500


def _after(subscription: WebhookSubscription) -> Position:
    return Position(txid=subscription.cursor_txid, id=subscription.cursor_id)


def _key(position: Position) -> tuple[int, int]:
    return (position.txid, position.id)


# One delivery to write: subscription, change, event id, type, order key, seq, body, first
# attempt.
_Row = tuple[int, int, str, str, str, int | None, str, datetime]
# A page's deliveries in one statement, column by column (building a model per row cost the
# deliverer more CPU than sending them); a (subscription, change) already there is skipped.
_INSERT_DELIVERIES = """
INSERT INTO webhook_delivery (subscription_id, change_id, event_id, event_type, order_key, seq,
                              body, next_attempt_at, status, attempts, created_at)
SELECT v.*, 'pending', 0, now()
FROM unnest($1::int[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::int[], $7::text[],
            $8::timestamptz[]) AS v
ON CONFLICT DO NOTHING
"""


async def enqueue(*, subscriptions: list[WebhookSubscription]) -> int:
    """Turn the changes after each subscription's cursor into its deliveries; returns how many.

    Subscriptions of one owner share their reads: the feed is read once, as the owner, from the
    earliest of their cursors, and every page's deliveries and cursors are written in one
    transaction. Each change's body is built once; only its event id differs per delivery."""
    made = 0
    by_owner: dict[int, list[WebhookSubscription]] = defaultdict(list)
    for subscription in subscriptions:
        by_owner[subscription.owner_id].append(subscription)
    for owner_id, owned in by_owner.items():
        owner = await User.get_or_none(id=owner_id)
        if owner is None or not owner.is_active:
            continue
        principal = await auth.principal_for(owner)
        after = min((_after(s) for s in owned), key=_key)
        while True:
            async with in_transaction() as conn:
                page, next_position = await changes.read_changes(
                    principal=principal, after=after, limit=PAGE
                )
                rows: list[_Row] = []
                for change in page:
                    event = webhooks.event_for(change)
                    if event is None:
                        continue
                    rest: str | None = None
                    for subscription in owned:
                        if event.type not in subscription.events or _key(change.position) <= _key(
                            _after(subscription)
                        ):
                            continue
                        if rest is None:  # `{"id":…,` is added per delivery
                            rest = json.dumps(
                                {
                                    "type": event.type,
                                    # as the feed's answer writes it (`…Z`)
                                    "occurred_at": to_jsonable_python(change.occurred_at),
                                    "data": change.data,
                                },
                                ensure_ascii=False,
                                separators=(",", ":"),
                            )[1:]
                        event_id = str(uuid.uuid4())
                        rows.append(
                            (
                                subscription.id,
                                change.position.id,
                                event_id,
                                event.type,
                                event.order_key,
                                event.seq,
                                f'{{"id":"{event_id}",{rest}',
                                change.occurred_at,
                            )
                        )
                if rows:
                    await conn.execute_query(
                        _INSERT_DELIVERIES, [list(c) for c in zip(*rows, strict=True)]
                    )
                moved = [s for s in owned if _key(_after(s)) < _key(next_position)]
                if moved:
                    await conn.execute_query(
                        "UPDATE webhook_subscription SET cursor_txid = $1, cursor_id = $2"
                        " WHERE id = ANY($3::int[])",
                        [next_position.txid, next_position.id, [s.id for s in moved]],
                    )
            made += len(rows)
            for subscription in moved:
                subscription.cursor_txid = next_position.txid
                subscription.cursor_id = next_position.id
            after = next_position
            if len(page) < PAGE:
                break
    return made


async def behind(subscriptions: list[WebhookSubscription]) -> list[WebhookSubscription]:
    """The subscriptions that may have changes to read (one cheap query for all): a cursor at
    the feed's horizon (the last change of a finished transaction) has nothing new to read."""
    if not subscriptions:
        return []
    horizon = await paging.horizon("change_log")
    return [s for s in subscriptions if _key(_after(s)) < _key(horizon)]
