"""The webhook dispatcher: one round turns the changes each subscription has not seen yet into
deliveries, then sends the deliveries that are due.

Enqueueing reads the change feed as the subscription's owner (so it hears only what the owner
may see) from the cursor kept in the subscription, and writes the deliveries and the new
cursor in one transaction: a round that dies half-way leaves the cursor where the last
committed page ended, and the unique (subscription, change) key makes a repeated page a no-op.
Sending happens outside any request: a slow or failing receiver never slows the change that
caused the delivery. The app runs rounds in the background on the worker holding the cluster
lock; tests and the bench call `dispatch_once` directly."""

import asyncio
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tortoise import connections
from tortoise.transactions import in_transaction

from wastetrack.alerts import service as alerts
from wastetrack.auth import service as auth
from wastetrack.auth.models import User
from wastetrack.changes import service as changes
from wastetrack.changes.models import Position
from wastetrack.core.settings import Settings
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.models import WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)
PAGE = 500
SEND_BATCH = 200
SEND_CONCURRENCY = 16
_ERROR_CHARS = 500


@dataclass(slots=True)
class DispatchRound:
    """What one round did: deliveries created, delivered, and failed (to be retried)."""

    enqueued: int = 0
    delivered: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.enqueued or self.delivered or self.failed)


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery_id: int
    subscription_id: int
    ok: bool
    status_code: int | None
    error: str | None


async def enqueue(*, subscription: WebhookSubscription) -> int:
    """Turn the changes after the subscription's cursor into its deliveries; returns how many."""
    owner = await User.get_or_none(id=subscription.owner_id)
    if owner is None or not owner.is_active:
        return 0
    principal = await auth.principal_for(owner)
    after = Position(txid=subscription.cursor_txid, id=subscription.cursor_id)
    made = 0
    while True:
        async with in_transaction():
            page, next_position = await changes.read_changes(
                principal=principal, after=after, limit=PAGE
            )
            rows = []
            for change in page:
                event = webhooks.event_for(change)
                if event is None or event.type not in subscription.events:
                    continue
                event_id = uuid.uuid4()
                body = {
                    "id": str(event_id),
                    "type": event.type,
                    "occurred_at": change.occurred_at.isoformat(),
                    "data": change.data,
                }
                rows.append(
                    WebhookDelivery(
                        subscription_id=subscription.id,
                        change_id=change.position.id,
                        event_id=event_id,
                        event_type=event.type,
                        order_key=event.order_key,
                        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                        next_attempt_at=change.occurred_at,
                    )
                )
            if rows:
                await WebhookDelivery.bulk_create(rows, ignore_conflicts=True)
            if next_position != after:
                await WebhookSubscription.filter(id=subscription.id).update(
                    cursor_txid=next_position.txid, cursor_id=next_position.id
                )
        made += len(rows)
        after = next_position
        if len(page) < PAGE:
            break
    subscription.cursor_txid, subscription.cursor_id = after.txid, after.id
    return made


# The earliest pending delivery of each (subscription, order key), when it is due: a later
# delivery of the same batch waits for the earlier one (in order per batch).
_DUE = """
SELECT d.id FROM webhook_delivery d
JOIN webhook_subscription s ON s.id = d.subscription_id
WHERE d.status = 'pending' AND s.active AND d.next_attempt_at <= $1
  AND NOT EXISTS (SELECT 1 FROM webhook_delivery e
                  WHERE e.subscription_id = d.subscription_id AND e.order_key = d.order_key
                    AND e.status = 'pending' AND e.id < d.id)
ORDER BY d.id LIMIT $2
"""


async def _post(
    client: httpx.AsyncClient,
    delivery: WebhookDelivery,
    subscription: WebhookSubscription,
    *,
    settings: Settings,
    secret: str,
) -> _Outcome:
    def outcome(ok: bool, code: int | None, error: str | None) -> _Outcome:
        return _Outcome(delivery.id, subscription.id, ok, code, error)

    try:
        # Again at send time: the name may resolve elsewhere now than when it was checked.
        await webhooks.check_target(subscription.url, allow_private=settings.webhooks_allow_private)
    except webhooks.TargetRefused as refused:
        return outcome(False, None, f"refused: {refused}")
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "wastetrack-webhooks/1",
        webhooks.SIGNATURE_HEADER: webhooks.sign(body, secret),
        webhooks.DELIVERY_HEADER: str(delivery.id),
        webhooks.EVENT_HEADER: delivery.event_type,
    }
    try:
        response = await client.post(
            subscription.url,
            content=body,
            headers=headers,
            timeout=settings.webhooks_timeout_seconds,
            follow_redirects=False,
        )
    except httpx.HTTPError as error:
        return outcome(False, None, f"{type(error).__name__}: {error}"[:_ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return outcome(True, response.status_code, None)
    return outcome(False, response.status_code, f"HTTP {response.status_code}")


async def send_due(
    *, settings: Settings, client: httpx.AsyncClient, now: datetime
) -> DispatchRound:
    """Send the deliveries that are due, at most one per batch and subscription at a time."""
    result = DispatchRound()
    rows = await connections.get("default").execute_query_dict(_DUE, [now, SEND_BATCH])
    if not rows:
        return result
    deliveries = await WebhookDelivery.filter(id__in=[r["id"] for r in rows]).order_by("id")
    subscriptions = {
        s.id: s
        for s in await WebhookSubscription.filter(id__in={d.subscription_id for d in deliveries})
    }
    secrets = {
        s.id: webhooks.secret_of(s, master=settings.secret_key) for s in subscriptions.values()
    }
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(delivery: WebhookDelivery) -> _Outcome:
        subscription = subscriptions[delivery.subscription_id]
        async with gate:
            return await _post(
                client, delivery, subscription, settings=settings, secret=secrets[subscription.id]
            )

    outcomes = await asyncio.gather(*(send(d) for d in deliveries))
    await _record(outcomes, {d.id: d for d in deliveries}, subscriptions, settings, now, result)
    return result


async def _record(
    outcomes: list[_Outcome],
    deliveries: dict[int, WebhookDelivery],
    subscriptions: dict[int, WebhookSubscription],
    settings: Settings,
    now: datetime,
    result: DispatchRound,
) -> None:
    finished = datetime.now(UTC)
    by_subscription: dict[int, list[_Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_subscription[outcome.subscription_id].append(outcome)
    async with in_transaction() as conn:
        delivered = [o for o in outcomes if o.ok]
        if delivered:
            await conn.execute_query(
                "UPDATE webhook_delivery d SET status = 'delivered', attempts = d.attempts + 1,"
                " delivered_at = $1, last_status_code = v.code"
                " FROM unnest($2::bigint[], $3::int[]) AS v (id, code) WHERE d.id = v.id",
                [finished, [o.delivery_id for o in delivered], [o.status_code for o in delivered]],
            )
            result.delivered += len(delivered)
        for outcome in outcomes:
            if outcome.ok:
                continue
            delivery = deliveries[outcome.delivery_id]
            attempts = delivery.attempts + 1
            delay = min(
                settings.webhooks_retry_seconds * 2 ** (attempts - 1),
                settings.webhooks_retry_max_seconds,
            )
            await WebhookDelivery.filter(id=delivery.id).update(
                attempts=attempts,
                last_status_code=outcome.status_code,
                last_error=outcome.error,
                next_attempt_at=now + timedelta(seconds=delay),
            )
            result.failed += 1
        for subscription_id, seen in by_subscription.items():
            await _count_failures(subscription_id, seen, subscriptions, settings, result)


async def _count_failures(
    subscription_id: int,
    seen: list[_Outcome],
    subscriptions: dict[int, WebhookSubscription],
    settings: Settings,
    result: DispatchRound,
) -> None:
    """Keep the subscription's count of failures in a row; at the limit, disable it and raise
    an alert for its organization."""
    subscription = subscriptions[subscription_id]
    failures = subscription.consecutive_failures
    reached = False
    for outcome in seen:
        failures = 0 if outcome.ok else failures + 1
        reached = reached or failures >= settings.webhooks_max_failures
    updates: dict[str, Any] = {"consecutive_failures": failures}
    if reached and subscription.active:
        now = datetime.now(UTC)
        updates.update(
            active=False, disabled_at=now, times_disabled=subscription.times_disabled + 1
        )
        owner = await User.get(id=subscription.owner_id)
        principal = await auth.principal_for(owner)
        await alerts.flag_webhook_disabled(
            subscription_id=subscription.id,
            times_disabled=subscription.times_disabled + 1,
            organization_id=subscription.organization_id,
            region_path=principal.region_path,
            url=subscription.url,
            failures=failures,
            last_error=next((o.error for o in reversed(seen) if not o.ok), None),
            now=now,
        )
        result.disabled.append(subscription.id)
        log.warning("webhook %s disabled after %s failures", subscription.id, failures)
    await WebhookSubscription.filter(id=subscription.id).update(**updates)


async def dispatch_once(
    *, settings: Settings, client: httpx.AsyncClient, now: datetime | None = None
) -> DispatchRound:
    """One round: enqueue every subscription's new changes, then send what is due by `now`."""
    now = now or datetime.now(UTC)
    result = DispatchRound()
    for subscription in await WebhookSubscription.all().order_by("id"):
        result.enqueued += await enqueue(subscription=subscription)
    sent = await send_due(settings=settings, client=client, now=now)
    result.delivered, result.failed, result.disabled = sent.delivered, sent.failed, sent.disabled
    return result


async def run(settings: Settings, client: httpx.AsyncClient, *, leader: Any) -> None:
    """Rounds back to back while there is work, then one every webhooks_dispatch_seconds;
    only while `leader()` says this process holds the cluster lock."""
    while True:
        busy = False
        try:
            if await leader():
                busy = (await dispatch_once(settings=settings, client=client)).busy
        except Exception:  # a failed round must not end the loop
            log.exception("webhook dispatch failed")
        if not busy:
            await asyncio.sleep(settings.webhooks_dispatch_seconds)
