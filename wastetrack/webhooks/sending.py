"""Sending: the deliveries that are due are leased (no other deliverer sends them meanwhile)
and go out, at most one per batch and subscription at a time, and each outcome is recorded as
soon as it is known: delivered, or retried later with a growing delay; a subscription whose
rounds fail too often in a row is disabled, with an alert for its organization. Whatever goes
wrong with one delivery fails that delivery only: the round's other outcomes are recorded all
the same. Only the first REPLY_BYTES of a reply are read, never decompressed.

Deliveries go out through one aiohttp session (`sender()`), keep-alive per receiver: it spends
about a tenth of the CPU per delivery that httpx did, which matters where the deliverer shares
the machine with the workers whose sync it must not slow."""

import asyncio
import logging
import socket
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from tortoise import connections
from tortoise.transactions import in_transaction

from wastetrack.alerts import service as alerts
from wastetrack.auth import service as auth
from wastetrack.auth.models import User
from wastetrack.changes import service as changes
from wastetrack.core.settings import Settings
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.models import WebhookSubscription

log = logging.getLogger(__name__)
SEND_BATCH = 500
SEND_CONCURRENCY = 16
# Receivers' names resolved at once when a round checks its targets.
RESOLVE_CONCURRENCY = 8
# How much of a receiver's reply is read (undecoded): its status is all that counts, and a reply
# is the receiver's to make as large as it likes (5 MB of gzipped zeros are gigabytes).
REPLY_BYTES = 4096
# How long a round's deliveries are leased: no other round sends them meanwhile. A round sends
# nothing once too little of it is left for one more POST (what is left goes back, due again).
LEASE_SECONDS = 600.0
_ERROR_CHARS = 500


@dataclass(slots=True)
class DispatchRound:
    """What one round did: deliveries created, delivered, failed (to be retried), and withheld
    (their owner may no longer see their change)."""

    enqueued: int = 0
    delivered: int = 0
    failed: int = 0
    withheld: int = 0
    disabled: list[int] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.enqueued or self.delivered or self.failed or self.withheld)


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery_id: int
    subscription_id: int
    ok: bool
    status_code: int | None
    error: str | None


# The round's work, leased: the first pending delivery of each (subscription, order key), when
# it is due, its next attempt moved to the lease's end ($3) in the statement that picks it, with
# what sending it needs. A later delivery of the same batch waits for the earlier one (in order
# per batch: by the event's seq, the batch's own order, as `webhooks.WebhookEvent` says; not by
# id, which follows the order the deliveries were written in). While leased, a delivery is not
# due, so no other deliverer's round picks it (nor the later ones of its batch) until its
# outcome is recorded or the lease runs out (a deliverer that died mid-round); FOR UPDATE SKIP
# LOCKED, whose conditions are checked again on a row another round has just leased, keeps two
# rounds at the same moment from leasing one row. Only subscriptions that are enabled and whose
# owner is active. One pass over the pending rows of those subscriptions, whatever the planner
# believes of the table's size (an anti-join of the table with itself turned quadratic on a plan
# made before its statistics caught up).
_LEASE_DUE = """
WITH head AS (
  SELECT first.id FROM (
    SELECT DISTINCT ON (d.subscription_id, d.order_key) d.id, d.next_attempt_at
    FROM webhook_delivery d
    WHERE d.status = 'pending'
      AND d.subscription_id IN (
        SELECT s.id FROM webhook_subscription s JOIN app_user u ON u.id = s.owner_id
        WHERE s.active AND u.is_active
      )
    ORDER BY d.subscription_id, d.order_key, d.seq, d.id
  ) AS first
  WHERE first.next_attempt_at <= $1
  ORDER BY first.id LIMIT $2
), claimed AS (
  SELECT w.id FROM webhook_delivery w
  WHERE w.id IN (SELECT id FROM head) AND w.status = 'pending' AND w.next_attempt_at <= $1
  FOR UPDATE SKIP LOCKED
)
UPDATE webhook_delivery d SET next_attempt_at = $3
FROM claimed WHERE d.id = claimed.id
RETURNING d.id, d.subscription_id, d.change_id, d.event_id, d.event_type, d.body, d.attempts
"""
# An outcome is written only while the row is still this round's lease (pending, its next
# attempt the lease's end): never over what another deliverer did once the lease ran out, nor
# over a replay asked for meanwhile.
_DELIVERED = """
UPDATE webhook_delivery SET status = 'delivered', attempts = attempts + 1, delivered_at = $1,
                            last_status_code = $2
WHERE id = $3 AND status = 'pending' AND next_attempt_at = $4
"""
_FAILED = """
UPDATE webhook_delivery SET attempts = attempts + 1, last_status_code = $1, last_error = $2,
                            next_attempt_at = $3
WHERE id = $4 AND status = 'pending' AND next_attempt_at = $5
"""
_WITHHELD = """
UPDATE webhook_delivery SET status = 'withheld', last_error = $1
WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3
"""
_RELEASED = """
UPDATE webhook_delivery SET next_attempt_at = $1
WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3
"""


@dataclass(frozen=True, slots=True)
class _Due:
    id: int
    subscription_id: int
    change_id: int
    event_id: str
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


class RefusedAddress(OSError):
    """A receiver's name resolved, as the sender connected, to no address webhooks may go to."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)  # the message as strerror, which aiohttp's error shows


class CheckedResolver(AbstractResolver):
    """The sender's resolver: the system's (getaddrinfo in a thread, as `check_target` uses)
    less every address `webhooks.refused_address` refuses, unless private targets are allowed.
    aiohttp connects only to addresses this returned, and its DNS cache keeps only what this
    returned, so the address checked is the address connected however a name answers from
    one lookup to the next (DNS rebinding). An IP literal in a URL is not resolved: it is the
    address `check_target` checks at send time."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._system = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._system.resolve(host, port, family)
        if self.allow_private:
            return found
        kept = [r for r in found if not webhooks.refused_address(r["host"])]
        if not kept:
            # The addresses in the server's log only (`webhooks.NOT_ALLOWED` says why).
            dropped = ", ".join(dict.fromkeys(r["host"] for r in found))
            log.info("webhook target %s refused at connection: it resolves to %s", host, dropped)
            raise RefusedAddress(f"refused: {webhooks.NOT_ALLOWED}")
        return kept

    async def close(self) -> None:
        await self._system.close()


def sender(*, allow_private: bool) -> aiohttp.ClientSession:
    """The HTTP session deliveries are sent with (open it inside the event loop, in `async
    with`): keep-alive, SEND_CONCURRENCY * 2 connections at most, no cookies kept between
    deliveries, connecting to public addresses only unless `allow_private` (the setting
    webhooks_allow_private; `CheckedResolver`), replies never decompressed (only their first
    REPLY_BYTES are read, as sent: `_glance`). Proxy variables and ~/.netrc are not read: with
    them aiohttp reads both again in a thread for every request, which cost more CPU than the
    request itself."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=SEND_CONCURRENCY * 2, resolver=CheckedResolver(allow_private=allow_private)
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


async def _glance(response: aiohttp.ClientResponse) -> None:
    """Read the reply's first REPLY_BYTES at most, as sent: a short reply is read to its end,
    so that its connection serves the next delivery; a longer one's connection is closed
    instead of read on, as is one whose body breaks off or stalls: only the reply's status
    counts, and the receiver has given it."""
    left = REPLY_BYTES
    try:
        while left > 0:
            chunk = await response.content.read(left)
            if not chunk:
                return
            left -= len(chunk)
    except (aiohttp.ClientError, TimeoutError):
        pass
    if not response.content.at_eof():
        response.close()


async def _post(
    client: aiohttp.ClientSession,
    delivery: _Due,
    subscription: WebhookSubscription,
    *,
    settings: Settings,
    secret: str,
) -> _Outcome:
    def outcome(ok: bool, code: int | None, error: str | None) -> _Outcome:
        return _Outcome(delivery.id, subscription.id, ok, code, _kept(error))

    timestamp = int(time.time())  # this attempt's: a retry is signed afresh
    signature = webhooks.sign(delivery.event_id, timestamp, delivery.body, secret)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "wastetrack-webhooks/1",
        webhooks.ID_HEADER: delivery.event_id,
        webhooks.TIMESTAMP_HEADER: str(timestamp),
        webhooks.SIGNATURE_HEADER: signature,
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
            await _glance(response)
    except (aiohttp.ClientError, TimeoutError) as error:
        return outcome(False, None, _described(error))
    if 200 <= response.status < 300:
        return outcome(True, response.status, None)
    return outcome(False, response.status, f"HTTP {response.status}")


async def _refusals(
    subscriptions: dict[int, WebhookSubscription], settings: Settings
) -> dict[int, str]:
    """Each subscription's target checked again at send time, once per round (the name may
    resolve elsewhere now than when it was checked): the refused ones, with why. Each host is
    resolved once however many subscriptions it receives for, RESOLVE_CONCURRENCY at a time (a
    slow name server delays its own hosts, not the round by as many times)."""
    refused: dict[int, str] = {}
    by_host: dict[str, list[WebhookSubscription]] = defaultdict(list)
    for subscription in subscriptions.values():
        try:
            by_host[webhooks.target_host(subscription.url)].append(subscription)
        except webhooks.TargetRefused as refusal:
            refused[subscription.id] = f"refused: {refusal}"
    if settings.webhooks_allow_private:
        return refused
    gate = asyncio.Semaphore(RESOLVE_CONCURRENCY)

    async def check(owned: list[WebhookSubscription]) -> None:
        async with gate:
            try:
                await webhooks.check_target(owned[0].url, allow_private=False)
            except webhooks.TargetRefused as refusal:
                refused.update((s.id, f"refused: {refusal}") for s in owned)

    await asyncio.gather(*(check(owned) for owned in by_host.values()))
    return refused


_WITHHELD_WHY = "not sent: its owner may no longer see this change"


async def _unseen(
    deliveries: list[_Due], subscriptions: dict[int, WebhookSubscription]
) -> set[int]:
    """The deliveries whose change their subscription's owner may no longer see (read rights
    are checked as the change is queued and again as it is sent: one query per owner)."""
    by_owner: dict[int, list[_Due]] = defaultdict(list)
    for delivery in deliveries:
        subscription = subscriptions.get(delivery.subscription_id)
        if subscription is not None:
            by_owner[subscription.owner_id].append(delivery)
    unseen: set[int] = set()
    for owner in await User.filter(id__in=list(by_owner)):
        due = by_owner[owner.id]
        seen = await changes.readable(
            principal=await auth.principal_for(owner), change_ids=[d.change_id for d in due]
        )
        unseen.update(d.id for d in due if d.change_id not in seen)
    return unseen


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _kept(error: str | None) -> str | None:
    """A delivery's error as it is recorded (and shown to the organization in the
    webhook_disabled alert): any URL in it masked, since aiohttp's messages name the whole URL,
    whose path or query may carry the receiver's token; cut short."""
    return None if error is None else webhooks.masked_urls(error)[:_ERROR_CHARS]


def _failed(delivery: _Due, error: str) -> _Outcome:
    return _Outcome(delivery.id, delivery.subscription_id, False, None, _kept(error))


async def send_due(
    *, settings: Settings, client: aiohttp.ClientSession, now: datetime
) -> DispatchRound:
    """Lease the deliveries that are due (at most one per batch and subscription), send them,
    and record each outcome as soon as it is known: a round cut short (a deliverer killed
    mid-way) loses only the outcomes not yet known, whose lease then runs out."""
    result = DispatchRound()
    leased_until = now + timedelta(seconds=LEASE_SECONDS)
    # Nothing is sent later than this (monotonic): its outcome might come after the lease.
    send_by = time.monotonic() + LEASE_SECONDS - settings.webhooks_timeout_seconds - 60
    rows = await connections.get("default").execute_query_dict(
        _LEASE_DUE, [now, SEND_BATCH, leased_until]
    )
    if not rows:
        return result
    deliveries = sorted(
        (
            _Due(
                r["id"],
                r["subscription_id"],
                r["change_id"],
                str(r["event_id"]),
                r["event_type"],
                r["body"].encode(),
                r["attempts"],
            )
            for r in rows
        ),
        key=lambda d: d.id,
    )
    subscriptions = {
        s.id: s
        for s in await WebhookSubscription.filter(id__in={d.subscription_id for d in deliveries})
    }
    refused = await _refusals(subscriptions, settings)
    unseen = await _unseen(deliveries, subscriptions)
    gate = asyncio.Semaphore(SEND_CONCURRENCY)
    # Each subscription's outcomes in this round, counted once its last one is recorded.
    left: dict[int, int] = defaultdict(int)
    for delivery in deliveries:
        left[delivery.subscription_id] += 1
    seen: dict[int, list[_Outcome]] = defaultdict(list)

    async def attempt(delivery: _Due) -> _Outcome | None:
        subscription = subscriptions.get(delivery.subscription_id)
        if subscription is None:  # deleted since the due deliveries were read
            return _failed(delivery, "not sent: the subscription was deleted")
        if subscription.id in refused:
            return _failed(delivery, refused[subscription.id])
        try:
            secret = _secret(subscription, settings)
        except Exception as error:
            log.warning("webhook %s: its signing secret cannot be unsealed", subscription.id)
            return _failed(
                delivery,
                f"not sent: the signing secret cannot be unsealed ({type(error).__name__})",
            )
        async with gate:
            if time.monotonic() > send_by:
                return None
            return await _post(client, delivery, subscription, settings=settings, secret=secret)

    async def send(delivery: _Due) -> None:
        """Send the delivery and record its outcome: whatever sending raises fails this
        delivery only."""
        if delivery.id in unseen:  # neither sent nor failed: the receiver is not at fault
            await connections.get("default").execute_query(
                _WITHHELD, [_WITHHELD_WHY, delivery.id, leased_until]
            )
            result.withheld += 1
        else:
            try:
                outcome = await attempt(delivery)
            except Exception as error:
                # Where it was raised, and its message with any URL masked.
                log.error(
                    "webhook delivery %s not sent: %s\n%s",
                    delivery.id,
                    _kept(_described(error)),
                    "".join(traceback.format_tb(error.__traceback__)),
                )
                outcome = _failed(delivery, f"not sent: {_described(error)}")
            if outcome is None:  # not sent: due again at once, for the next round
                await connections.get("default").execute_query(
                    _RELEASED, [now, delivery.id, leased_until]
                )
            elif await _record(outcome, delivery, settings, now=now, leased_until=leased_until):
                seen[outcome.subscription_id].append(outcome)
        left[delivery.subscription_id] -= 1
        subscription = subscriptions.get(delivery.subscription_id)
        if not left[delivery.subscription_id] and subscription and seen[subscription.id]:
            async with in_transaction():  # disabled with its alert, or neither
                await _count_failures(
                    subscription, seen[subscription.id], settings, result, now=now
                )

    for failure in await asyncio.gather(*(send(d) for d in deliveries), return_exceptions=True):
        if isinstance(failure, BaseException):
            raise failure  # recording failed (the database): the round fails, as it used to
    for outcomes in seen.values():
        result.delivered += sum(o.ok for o in outcomes)
        result.failed += sum(not o.ok for o in outcomes)
    return result


async def _record(
    outcome: _Outcome,
    delivery: _Due,
    settings: Settings,
    *,
    now: datetime,
    leased_until: datetime,
) -> bool:
    """Write one delivery's outcome: delivered, or its attempt counted and its next one after
    its back-off. False when the row is no longer this round's lease (deleted, replayed, or
    taken by another deliverer once the lease ran out): nothing is written."""
    db = connections.get("default")
    if outcome.ok:
        written = await db.execute_query(
            _DELIVERED, [datetime.now(UTC), outcome.status_code, delivery.id, leased_until]
        )
    else:
        attempts = delivery.attempts + 1
        delay = backoff(
            attempts, settings.webhooks_retry_seconds, settings.webhooks_retry_max_seconds
        )
        written = await db.execute_query(
            _FAILED,
            [
                outcome.status_code,
                outcome.error,
                now + timedelta(seconds=delay),
                delivery.id,
                leased_until,
            ],
        )
    return bool(written[0])


def backoff(attempts: int, first: float, longest: float) -> float:
    """The wait after a delivery's `attempts`-th failure: `first`, doubling with each, at most
    `longest` — however many attempts (a delivery one receiver always refuses is retried for
    weeks; `first * 2 ** n` overflows a float past n = 1023)."""
    delay = first
    for _ in range(attempts - 1):
        if delay >= longest:
            break
        delay *= 2
    return min(delay, longest)


async def _count_failures(
    subscription: WebhookSubscription,
    seen: list[_Outcome],
    settings: Settings,
    result: DispatchRound,
    *,
    now: datetime,
) -> None:
    """Keep the subscription's count of failed rounds in a row, and since when it fails, given
    its outcomes in this round: a round in which none of its deliveries got through counts one
    failure, however many it sent (they failed for the same cause at the same moment, and each
    is retried with its own back-off); one that got through resets both. A subscription is
    disabled, with an alert for its organization, once it has failed that many rounds in a row
    and for `webhooks_disable_after_hours` as well: back-to-back rounds of new deliveries during
    a receiver's short outage do not disable it. Judged on the subscription's row as it is now,
    locked as its owner's enabling and deleting lock it: one deleted during the round is not
    counted, alerted or audited, one enabled is counted from its fresh start."""
    locked = await WebhookSubscription.filter(id=subscription.id).select_for_update().first()
    if locked is None:
        return  # deleted while its deliveries were sent: nothing of it is kept
    subscription = locked
    failures = 0 if any(o.ok for o in seen) else subscription.consecutive_failures + 1
    since = (subscription.failing_since or now) if failures else None
    reached = (
        since is not None
        and failures >= settings.webhooks_max_failures
        and now - since >= timedelta(hours=settings.webhooks_disable_after_hours)
    )
    if failures == subscription.consecutive_failures and not reached:
        return  # nothing to write (the usual case: all delivered, none failed before)
    updates: dict[str, Any] = {"consecutive_failures": failures, "failing_since": since}
    if reached and subscription.active:
        updates.update(
            active=False, disabled_at=now, times_disabled=subscription.times_disabled + 1
        )
        owner = await User.get(id=subscription.owner_id)
        principal = await auth.principal_for(owner)
        await alerts.flag_webhook_disabled(
            subscription_id=subscription.id,
            times_disabled=subscription.times_disabled + 1,
            # The owner's organization now, as its region: one it left hears no more of it.
            organization_id=principal.organization_id,
            region_path=principal.region_path,
            url=webhooks.masked_url(subscription.url),
            failures=failures,
            last_error=next((o.error for o in reversed(seen) if not o.ok), None),
            now=now,
        )
        await webhooks.audit_disabled(principal, subscription, updates)
        result.disabled.append(subscription.id)
        log.warning("webhook %s disabled after %s failures", subscription.id, failures)
    await WebhookSubscription.filter(id=subscription.id).update(**updates)
