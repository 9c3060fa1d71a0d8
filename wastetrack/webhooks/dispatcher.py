"""The webhook dispatcher: one round turns the changes each subscription has not seen yet into
deliveries, then sends the deliveries that are due.

Enqueueing reads the change feed as the subscription's owner (so it hears only what the owner
may see) from the cursor kept in the subscription, and writes the deliveries and the new
cursor in one transaction: a round that dies half-way leaves the cursor where the last
committed page ended, and the unique (subscription, change) key makes a repeated page a no-op.
Sending happens outside any request: a slow or failing receiver never slows the change that
caused the delivery. The deliverer process (wastetrack.webhooks.deliverer, started by
`wastetrack serve`, never inside an HTTP worker) runs rounds while it holds the cluster's webhook
lock; tests call `dispatch_once` directly.

Deliveries go out through one aiohttp session (`sender()`), keep-alive per receiver: it spends
about a tenth of the CPU per delivery that httpx did, which matters where the deliverer shares
the machine with the workers whose sync it must not slow."""

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
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
SEND_BATCH = 500
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


def _after(subscription: WebhookSubscription) -> Position:
    return Position(txid=subscription.cursor_txid, id=subscription.cursor_id)


def _key(position: Position) -> tuple[int, int]:
    return (position.txid, position.id)


# One delivery to write: subscription, change, event id, type, order key, body, first attempt.
_Row = tuple[int, int, str, str, str, str, datetime]
# A page's deliveries in one statement, column by column (building a model per row cost the
# deliverer more CPU than sending them); a (subscription, change) already there is skipped.
_INSERT_DELIVERIES = """
INSERT INTO webhook_delivery (subscription_id, change_id, event_id, event_type, order_key, body,
                              next_attempt_at, status, attempts, created_at)
SELECT v.*, 'pending', 0, now()
FROM unnest($1::int[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::text[],
            $7::timestamptz[]) AS v
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
                                    "occurred_at": change.occurred_at.isoformat(),
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


# The last change of a finished transaction: a subscription whose cursor is there has
# nothing new to read (the feed's own horizon, wastetrack.changes.service.read_changes).
_HORIZON = """
SELECT txid::text AS txid, id FROM change_log
WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid DESC, id DESC LIMIT 1
"""


async def _behind(subscriptions: list[WebhookSubscription]) -> list[WebhookSubscription]:
    """The subscriptions that may have changes to read (one cheap query for all)."""
    if not subscriptions:
        return []
    rows = await connections.get("default").execute_query_dict(_HORIZON)
    if not rows:
        return []
    horizon = (int(rows[0]["txid"]), int(rows[0]["id"]))
    return [s for s in subscriptions if _key(_after(s)) < horizon]


# The earliest pending delivery of each (subscription, order key), when it is due: a later
# delivery of the same batch waits for the earlier one (in order per batch). With what sending
# it needs, so that one statement fetches the round's work. One pass over the pending rows of
# active subscriptions, whatever the planner believes of the table's size (an anti-join of the
# table with itself turned quadratic on a plan made before its statistics caught up).
_DUE = """
SELECT id, subscription_id, event_type, body, attempts FROM (
  SELECT DISTINCT ON (d.subscription_id, d.order_key)
         d.id, d.subscription_id, d.event_type, d.body, d.attempts, d.next_attempt_at
  FROM webhook_delivery d
  WHERE d.status = 'pending'
    AND d.subscription_id IN (SELECT s.id FROM webhook_subscription s WHERE s.active)
  ORDER BY d.subscription_id, d.order_key, d.id
) AS head
WHERE head.next_attempt_at <= $1
ORDER BY head.id LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    subscription_id: int
    event_type: str
    body: bytes
    attempts: int


# Decrypted signing secrets by (subscription, sealed secret): one decryption per process.
_secrets: dict[tuple[int, bytes], str] = {}


def _secret(subscription: WebhookSubscription, settings: Settings) -> str:
    key = (subscription.id, bytes(subscription.secret_ciphertext))
    if key not in _secrets:
        _secrets[key] = webhooks.secret_of(subscription, master=settings.secret_key)
    return _secrets[key]


def sender() -> aiohttp.ClientSession:
    """The HTTP session deliveries are sent with (open it inside the event loop, in `async
    with`): keep-alive, SEND_CONCURRENCY * 2 connections at most, no cookies kept between
    deliveries. Proxy variables and ~/.netrc are not read: with them aiohttp reads both again
    in a thread for every request, which cost more CPU than the request itself."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SEND_CONCURRENCY * 2),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def _post(
    client: aiohttp.ClientSession,
    delivery: _Due,
    subscription: WebhookSubscription,
    *,
    settings: Settings,
    secret: str,
) -> _Outcome:
    def outcome(ok: bool, code: int | None, error: str | None) -> _Outcome:
        return _Outcome(delivery.id, subscription.id, ok, code, error)

    headers = {
        "Content-Type": "application/json",
        "User-Agent": "wastetrack-webhooks/1",
        webhooks.SIGNATURE_HEADER: webhooks.sign(delivery.body, secret),
        webhooks.DELIVERY_HEADER: str(delivery.id),
        webhooks.EVENT_HEADER: delivery.event_type,
    }
    try:
        async with client.post(
            subscription.url,
            data=delivery.body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=settings.webhooks_timeout_seconds),
            allow_redirects=False,
        ) as response:
            await response.read()  # to the end, so that the connection is kept for the next
    except (aiohttp.ClientError, TimeoutError) as error:
        return outcome(False, None, f"{type(error).__name__}: {error}"[:_ERROR_CHARS])
    if 200 <= response.status < 300:
        return outcome(True, response.status, None)
    return outcome(False, response.status, f"HTTP {response.status}")


async def _refusals(
    subscriptions: dict[int, WebhookSubscription], settings: Settings
) -> dict[int, str]:
    """Each subscription's target checked again at send time, once per round (the name may
    resolve elsewhere now than when it was checked): the refused ones, with why."""
    refused: dict[int, str] = {}
    for subscription in subscriptions.values():
        try:
            await webhooks.check_target(
                subscription.url, allow_private=settings.webhooks_allow_private
            )
        except webhooks.TargetRefused as refusal:
            refused[subscription.id] = f"refused: {refusal}"
    return refused


async def send_due(
    *, settings: Settings, client: aiohttp.ClientSession, now: datetime
) -> DispatchRound:
    """Send the deliveries that are due, at most one per batch and subscription at a time."""
    result = DispatchRound()
    rows = await connections.get("default").execute_query_dict(_DUE, [now, SEND_BATCH])
    if not rows:
        return result
    deliveries = [
        _Due(r["id"], r["subscription_id"], r["event_type"], r["body"].encode(), r["attempts"])
        for r in rows
    ]
    subscriptions = {
        s.id: s
        for s in await WebhookSubscription.filter(id__in={d.subscription_id for d in deliveries})
    }
    refused = await _refusals(subscriptions, settings)
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(delivery: _Due) -> _Outcome:
        subscription = subscriptions[delivery.subscription_id]
        if subscription.id in refused:
            return _Outcome(delivery.id, subscription.id, False, None, refused[subscription.id])
        async with gate:
            return await _post(
                client,
                delivery,
                subscription,
                settings=settings,
                secret=_secret(subscription, settings),
            )

    outcomes = await asyncio.gather(*(send(d) for d in deliveries))
    await _record(outcomes, {d.id: d for d in deliveries}, subscriptions, settings, now, result)
    return result


async def _record(
    outcomes: list[_Outcome],
    deliveries: dict[int, _Due],
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
    if failures == subscription.consecutive_failures and not reached:
        return  # nothing to write (the usual case: all delivered, none failed before)
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
    *, settings: Settings, client: aiohttp.ClientSession, now: datetime | None = None
) -> DispatchRound:
    """One round: enqueue every subscription's new changes, then send what is due by `now`."""
    now = now or datetime.now(UTC)
    result = DispatchRound()
    subscriptions = await WebhookSubscription.all().order_by("id")
    result.enqueued = await enqueue(subscriptions=await _behind(subscriptions))
    sent = await send_due(settings=settings, client=client, now=now)
    result.delivered, result.failed, result.disabled = sent.delivered, sent.failed, sent.disabled
    return result


@dataclass(slots=True)
class Pace:
    """Deliveries yield to recording. While changes are committed faster than `limit` a second
    (a burst of syncs; the rate measured over `window` seconds or more), the deliverer holds its
    rounds back, for at most `longest` seconds; then it drains: it runs rounds whatever the rate
    until one finds nothing to do (`drained`), and only then may hold again. So a burst keeps
    the cores for recording, deliveries wait at most `longest` seconds plus the drain, and a
    steady high rate cannot starve them. `limit` 0 never holds."""

    limit: float
    longest: float
    window: float = 1.0
    head: int | None = None
    at: float = 0.0
    busy: bool = False
    since: float | None = None
    draining: bool = False

    def hold(self, *, head: int, now: float) -> bool:
        """Whether to skip this round, given the feed's last change id and a monotonic time."""
        if self.head is None or now - self.at >= self.window:
            if self.head is not None:
                self.busy = (head - self.head) / (now - self.at) > self.limit > 0
            self.head, self.at = head, now
        if not self.busy or self.draining:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        if now - self.since < self.longest:
            return True
        self.since, self.draining = None, True
        return False

    def drained(self) -> None:
        """A round found nothing to send: the backlog is gone, holding may start again."""
        self.draining = False


async def _head() -> int:
    rows = await connections.get("default").execute_query_dict(
        "SELECT COALESCE(max(id), 0) AS head FROM change_log"
    )
    return int(rows[0]["head"])


async def run(settings: Settings, client: aiohttp.ClientSession, *, leader: Any) -> None:
    """Rounds back to back while there is work, then one every webhooks_dispatch_seconds;
    only while `leader()` says this process holds the cluster lock, and not while recording
    runs a burst (`Pace`)."""
    pace = Pace(
        limit=settings.webhooks_yield_changes_per_second, longest=settings.webhooks_yield_seconds
    )
    while True:
        busy = False
        try:
            if await leader() and not pace.hold(head=await _head(), now=time.monotonic()):
                busy = (await dispatch_once(settings=settings, client=client)).busy
                if not busy:
                    pace.drained()
        except Exception:  # a failed round must not end the loop
            log.exception("webhook dispatch failed")
        if not busy:
            await asyncio.sleep(settings.webhooks_dispatch_seconds)
