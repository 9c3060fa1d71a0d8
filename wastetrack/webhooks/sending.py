"""Sending: the deliveries that are due go out, at most one per batch and subscription at a
time, and each outcome is recorded: delivered, or retried later with a growing delay; a
subscription whose rounds fail too often in a row is disabled, with an alert for its
organization. Whatever goes wrong with one delivery fails that delivery only: the round's other
outcomes are recorded all the same.

Deliveries go out through one aiohttp session (`sender()`), keep-alive per receiver: it spends
about a tenth of the CPU per delivery that httpx did, which matters where the deliverer shares
the machine with the workers whose sync it must not slow."""

import asyncio
import logging
import socket
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
from wastetrack.core.settings import Settings
from wastetrack.webhooks import service as webhooks
from wastetrack.webhooks.models import WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)
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


# The first pending delivery of each (subscription, order key), when it is due: a later
# delivery of the same batch waits for the earlier one (in order per batch: by the event's seq,
# the batch's own order, as `webhooks.WebhookEvent` says; not by id, which follows the order the
# deliveries were written in). With what sending it needs, so that one statement fetches the
# round's work. One pass over the pending rows of active subscriptions, whatever the planner
# believes of the table's size (an anti-join of the table with itself turned quadratic on a
# plan made before its statistics caught up).
_DUE = """
SELECT id, subscription_id, event_type, body, attempts FROM (
  SELECT DISTINCT ON (d.subscription_id, d.order_key)
         d.id, d.subscription_id, d.event_type, d.body, d.attempts, d.next_attempt_at
  FROM webhook_delivery d
  WHERE d.status = 'pending'
    AND d.subscription_id IN (SELECT s.id FROM webhook_subscription s WHERE s.active)
  ORDER BY d.subscription_id, d.order_key, d.seq, d.id
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
            dropped = ", ".join(dict.fromkeys(r["host"] for r in found))
            raise RefusedAddress(
                f"refused: {host} resolves to a private, loopback, link-local or reserved"
                f" address ({dropped})"
            )
        return kept

    async def close(self) -> None:
        await self._system.close()


def sender(*, allow_private: bool) -> aiohttp.ClientSession:
    """The HTTP session deliveries are sent with (open it inside the event loop, in `async
    with`): keep-alive, SEND_CONCURRENCY * 2 connections at most, no cookies kept between
    deliveries, connecting to public addresses only unless `allow_private` (the setting
    webhooks_allow_private; `CheckedResolver`). Proxy variables and ~/.netrc are not read: with
    them aiohttp reads both again in a thread for every request, which cost more CPU than the
    request itself."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=SEND_CONCURRENCY * 2, resolver=CheckedResolver(allow_private=allow_private)
        ),
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
        return _Outcome(delivery.id, subscription.id, ok, code, _kept(error))

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
        return outcome(False, None, _described(error))
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

    async def attempt(delivery: _Due) -> _Outcome:
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
            return await _post(client, delivery, subscription, settings=settings, secret=secret)

    async def send(delivery: _Due) -> _Outcome:
        """The delivery's outcome: whatever it raises fails this delivery only."""
        try:
            return await attempt(delivery)
        except Exception as error:
            # Where it was raised, and its message with any URL masked.
            log.error(
                "webhook delivery %s not sent: %s\n%s",
                delivery.id,
                _kept(_described(error)),
                "".join(traceback.format_tb(error.__traceback__)),
            )
            return _failed(delivery, f"not sent: {_described(error)}")

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
            if subscription_id in subscriptions:  # not one deleted before the round read it
                await _count_failures(
                    subscriptions[subscription_id], seen, settings, result, now=now
                )


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
    a receiver's short outage do not disable it."""
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
            organization_id=subscription.organization_id,
            region_path=principal.region_path,
            url=webhooks.masked_url(subscription.url),
            failures=failures,
            last_error=next((o.error for o in reversed(seen) if not o.ok), None),
            now=now,
        )
        result.disabled.append(subscription.id)
        log.warning("webhook %s disabled after %s failures", subscription.id, failures)
    await WebhookSubscription.filter(id=subscription.id).update(**updates)
