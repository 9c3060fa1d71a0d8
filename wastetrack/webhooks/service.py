"""Webhook subscriptions: who may subscribe to what, where deliveries may go, the signing
secret, and the deliveries' log (replay, re-enabling).

The secret is shown once, at creation; the service keeps it AES-GCM encrypted under the key
ring's webhook key (`wastetrack.core.keys`), since it must sign every delivery with it."""

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import yarl
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wastetrack.alerts import service as alerts
from wastetrack.audit import service as audit
from wastetrack.changes import paging as feed
from wastetrack.changes.models import Change, ChangeKind
from wastetrack.core import keys, paging
from wastetrack.core.errors import Conflict, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.manifests.models import CANCELLED
from wastetrack.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSubscription

BATCH_EVENT_RECORDED = "batch.event_recorded"
MANIFEST_SIGNED = "manifest.signed"
MANIFEST_DECIDED = "manifest.decided"
MANIFEST_CANCELLED = "manifest.cancelled"
ALERT_RAISED = "alert.raised"
DELIVERY_RECORDED = "delivery.recorded"
EVENT_TYPES = (
    BATCH_EVENT_RECORDED,
    MANIFEST_SIGNED,
    MANIFEST_DECIDED,
    MANIFEST_CANCELLED,
    ALERT_RAISED,
    DELIVERY_RECORDED,
)
# The manifest states a signature leads to (producer: submitted; carrier n: in_transit_leg_n)
# and the receiver's decisions (wastetrack.manifests.signing and receiving); a cancellation
# (wastetrack.manifests.cancelling) is the manifest's CANCELLED state.
_SIGNED_STATES = ("submitted",)
_SIGNED_PREFIX = "in_transit_leg_"
_DECISIONS = ("accepted", "partially_accepted", "rejected")
_SECRET_AAD = b"wastetrack/webhook-secret"
# Standard Webhooks' headers (standardwebhooks.com): the event id, when the attempt was signed,
# and the signature of both with the body, so that a captured delivery stops verifying once its
# timestamp is older than the receiver's window.
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# The window docs/integrations.md tells receivers to apply to webhook-timestamp, either way.
FRESHNESS_SECONDS = 300
DELIVERY_HEADER = "X-Wastetrack-Delivery"
EVENT_HEADER = "X-Wastetrack-Event"
# Not in the audit log: the sealed secret, and the feed position that moves with every round.
_UNAUDITED = frozenset({"secret_ciphertext", "secret_key_version", "cursor_txid", "cursor_id"})

log = logging.getLogger(__name__)

# The longest a target's name may take to resolve when it is checked: a subscription is checked
# before its request's transaction opens (`checked_url`), and each round checks its targets
# before sending.
RESOLVE_SECONDS = 5.0
# What a manager is told of a target refused for where its name leads, whatever the reason (it
# resolves to a private address, does not resolve, or not in time): telling them apart, or
# naming the addresses, would let any manager map internal names through the server's
# resolver. The reason and the addresses go to the server's log only.
NOT_ALLOWED = "not an allowed webhook target: it must resolve to public addresses only"


class TargetRefused(ValueError):
    """A webhook URL this service will not call."""


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL `checked_url` let through: what `create_subscription` takes, so that no caller can
    subscribe a target it has not checked (before its transaction, as the route does)."""

    url: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """What a change becomes for a subscriber: its event type, and what orders it. The events
    of one key (a batch, a manifest, a port delivery) go out one at a time: a batch's custody
    events in their order (`seq`), then those without one (an alert about it, a manifest's
    changes) in the order they were read from the feed."""

    type: str
    order_key: str
    seq: int | None = None


def event_for(change: Change) -> WebhookEvent | None:
    """The webhook event a change of the feed stands for, if any."""
    data = change.data
    if change.kind == ChangeKind.batch_event_recorded:
        return WebhookEvent(BATCH_EVENT_RECORDED, f"batch:{data['batch_id']}", data["seq"])
    if change.kind == ChangeKind.manifest_changed:
        state, before = data.get("state"), data.get("previous_state")
        if state == before:
            return None
        key = f"manifest:{data['manifest_id']}"
        if state in _SIGNED_STATES or str(state).startswith(_SIGNED_PREFIX):
            return WebhookEvent(MANIFEST_SIGNED, key)
        if state in _DECISIONS:
            return WebhookEvent(MANIFEST_DECIDED, key)
        if state == CANCELLED:
            return WebhookEvent(MANIFEST_CANCELLED, key)
        return None
    if change.kind == ChangeKind.alert_raised:
        batch = data.get("batch_id")
        return WebhookEvent(
            ALERT_RAISED, f"batch:{batch}" if batch is not None else f"alert:{data['alert_id']}"
        )
    if change.kind == ChangeKind.delivery_recorded:
        return WebhookEvent(DELIVERY_RECORDED, f"delivery:{data['delivery_id']}")
    return None


def sign(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The webhook-signature value, as Standard Webhooks signs: `v1,` and the base64 HMAC-SHA256
    of `<webhook-id>.<webhook-timestamp>.<raw body>`, keyed with the secret's UTF-8 bytes (all of
    it, `whsec_` too). The timestamp is signed with the body: a receiver that refuses one
    older than FRESHNESS_SECONDS refuses a captured delivery sent again later."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _encrypt(secret: str, master: str) -> tuple[bytes, int]:
    ring = keys.ring(master)
    nonce = os.urandom(12)
    sealed = AESGCM(ring.key(keys.WEBHOOK)).encrypt(nonce, secret.encode(), _SECRET_AAD)
    return nonce + sealed, ring.current


def secret_of(subscription: WebhookSubscription, *, master: str) -> str:
    """The subscription's signing secret, decrypted with the key version that sealed it."""
    key = keys.ring(master).key(keys.WEBHOOK, subscription.secret_key_version)
    sealed = bytes(subscription.secret_ciphertext)
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], _SECRET_AAD).decode()


# RFC 6052's well-known NAT64 prefix: the IPv4 address it translates to is its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215's local-use NAT64 prefix: a network's own translator, where the IPv4 address may sit
# anywhere after the prefix; not global.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def refused_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether webhooks may not go to this address: private, loopback, link-local, site-local,
    reserved, unspecified or multicast. An IPv6 address that is an IPv4 address translated
    (IPv4-mapped, NAT64) is judged as that IPv4 address; one that tunnels to IPv4 addresses
    (6to4, Teredo) is refused when any of them is. The one rule, for `check_target` and for the
    sender's resolver (wastetrack.webhooks.sending)."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return refused_address(address.ipv4_mapped)
        if address in _NAT64:
            return refused_address(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
        tunnelled = [address.sixtofour, *(address.teredo or ())]
        if any(ipv4 is not None and refused_address(ipv4) for ipv4 in tunnelled):
            return True
        if address.is_site_local or address in _LOCAL_NAT64:
            return True
    # IPv4-compatible (::a.b.c.d, deprecated) addresses are reserved: all refused.
    return not address.is_global or address.is_multicast or address.is_reserved


def _parts(url: str) -> tuple[SplitResult, str, int]:
    """The URL's parts, its host and its port (the scheme's by default); a URL that is not
    http(s) with a host and a valid port (an unclosed or bogus [IPv6] host) is refused."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        # As the sender (aiohttp) reads it too: where the two readings part (a backslash in
        # the host, which urlsplit takes for a path), the URL could never be delivered.
        yarl.URL(url)
    except ValueError:
        raise TargetRefused("the URL's host is not a valid name or [IPv6] address") from None
    if parts.scheme not in ("http", "https") or not host:
        raise TargetRefused("the URL must be http:// or https:// with a host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # out of range, or 0: no receiver listens there
        raise TargetRefused("the URL's port is not a number between 1 and 65535")
    return parts, host, port or (443 if parts.scheme == "https" else 80)


def target_host(url: str) -> str:
    """The URL's host, as `check_target` resolves it; TargetRefused for a URL it refuses as
    written."""
    return _parts(url)[1]


def masked_url(url: str) -> str:
    """The URL as others may read it (the audit log, the webhook_disabled alert): scheme,
    host, port and the path's first segment, without the credentials or tokens its userinfo,
    rest of the path (a chat bot's hook ends in its token), query or fragment may carry; with
    a short fingerprint of the whole URL when anything is left out, so entries still tell
    subscriptions apart."""
    try:
        parts, host, _ = _parts(url)
    except TargetRefused:
        return "(not a valid URL)"
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    segments = parts.path.split("/")[1:]  # "/a/b": ["a", "b"]; "/": [""]; "": []
    if len(segments) > 1:
        path = f"/{segments[0]}/…"
    elif segments and segments[0]:
        path = "/…"
    else:
        path = parts.path
    shown = urlunsplit((parts.scheme, netloc, path, "", ""))
    if shown == url:
        return shown
    return f"{shown} [{hashlib.sha256(url.encode()).hexdigest()[:8]}]"


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+", re.IGNORECASE)


def masked_urls(text: str) -> str:
    """`text` with every URL in it masked as `masked_url` masks it: an error's message, which
    may name the whole URL it failed on (aiohttp's do), before it is kept or logged."""
    return _URL_IN_TEXT.sub(lambda found: masked_url(found[0]), text)


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL that is not http(s), or whose host is or resolves to a private, loopback,
    link-local or reserved address (SSRF) unless private targets are allowed. A refusal for
    where the host leads says `NOT_ALLOWED` only; why, and the addresses, are logged."""
    _, host, port = _parts(url)
    if allow_private:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                found = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except TimeoutError:
            log.info("webhook target %s refused: it did not resolve in time", host)
            raise TargetRefused(NOT_ALLOWED) from None
        except (OSError, UnicodeError) as error:  # UnicodeError: a label IDNA cannot encode
            log.info("webhook target %s refused: it does not resolve (%s)", host, error)
            raise TargetRefused(NOT_ALLOWED) from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    refused = [str(a) for a in addresses if refused_address(a)]
    if refused:
        log.info("webhook target %s refused: it resolves to %s", host, ", ".join(refused))
        raise TargetRefused(NOT_ALLOWED)


async def checked_url(url: str, *, allow_private: bool) -> CheckedUrl:
    """`url` checked as a subscription's target (`check_target`), or a 422 naming `url`. Call
    it before the request's transaction opens: resolving a name may take RESOLVE_SECONDS, which
    must not hold a database connection."""
    try:
        await check_target(url, allow_private=allow_private)
    except TargetRefused as refused:
        raise ValidationFailed(str(refused), field="url") from None
    return CheckedUrl(url)


async def create_subscription(
    *, principal: Principal, target: CheckedUrl, events: list[str], master: str
) -> tuple[WebhookSubscription, str]:
    """Subscribe `target` (checked by `checked_url`, outside the transaction) to `events` as
    `principal` (who hears what they may see, from now on); returns the subscription and its
    signing secret, which is never shown again."""
    url = target.url
    unknown = [name for name in events if name not in EVENT_TYPES]
    if unknown or not events:
        raise ValidationFailed(f"events must name some of {', '.join(EVENT_TYPES)}", field="events")
    secret = "whsec_" + secrets.token_urlsafe(32)
    sealed, version = _encrypt(secret, master)
    # Starts at the feed's horizon: every change of a transaction still running is new to it,
    # whenever that transaction began (a phone's sync open across this subscription's).
    start = await feed.horizon("change_log")
    subscription = await WebhookSubscription.create(
        owner_id=principal.user_id,
        organization_id=principal.organization_id,
        url=url,
        events=list(dict.fromkeys(events)),
        secret_ciphertext=sealed,
        secret_key_version=version,
        cursor_txid=start.txid,
        cursor_id=start.id,
    )
    await _audit("webhook.created", principal, subscription, before=None)
    return subscription, secret


def _snapshot(subscription: WebhookSubscription) -> dict[str, Any]:
    """The subscription as the audit log keeps it: no secret, its URL masked."""
    kept = audit.snapshot(subscription, without=_UNAUDITED)
    return {**kept, "url": masked_url(subscription.url)}


async def _audit(
    action: str,
    principal: Principal,
    subscription: WebhookSubscription,
    *,
    before: dict[str, Any] | None,
    gone: bool = False,
) -> None:
    """The audit log's entry for a change of a subscription."""
    await audit.record(
        action=action,
        subject=subscription,
        # The owner's (who alone acts on it) organization now: not one it has left.
        organization_id=principal.organization_id,
        region_path=principal.region_path,
        before=before,
        after=None if gone else _snapshot(subscription),
    )


async def audit_disabled(
    principal: Principal, subscription: WebhookSubscription, updates: Mapping[str, Any]
) -> None:
    """The audit log's entry for the deliverer disabling a failing subscription with `updates`
    (no person acts: the entry names no actor), in its owner's organization as it is now; the
    round's copy of the subscription takes the updates."""
    before = _snapshot(subscription)
    for name, value in updates.items():
        setattr(subscription, name, value)
    await _audit("webhook.disabled", principal, subscription, before=before)


async def list_subscriptions(*, principal: Principal) -> list[WebhookSubscription]:
    """The principal's own subscriptions, oldest first."""
    return await WebhookSubscription.filter(owner_id=principal.user_id).order_by("id")


async def get_subscription(
    *, principal: Principal, subscription_id: int, for_update: bool = False
) -> WebhookSubscription:
    """One of the principal's own subscriptions; anybody else's is not found."""
    query = WebhookSubscription.filter(id=subscription_id, owner_id=principal.user_id)
    if for_update:
        query = query.select_for_update()
    found = await query.first()
    if found is None:
        raise NotFound(f"no webhook {subscription_id}", field="webhook_id")
    return found


async def delete_subscription(*, principal: Principal, subscription_id: int) -> None:
    """Stop and forget a subscription with its deliveries' log. Locked, as enabling locks it:
    of two deletes at once, the second finds nothing (404) and is not audited."""
    subscription = await get_subscription(
        principal=principal, subscription_id=subscription_id, for_update=True
    )
    before = _snapshot(subscription)
    await subscription.delete()
    await alerts.clear_webhook_disabled(subscription_id=subscription_id, now=datetime.now(UTC))
    await _audit("webhook.deleted", principal, subscription, before=before, gone=True)


async def enable_subscription(*, principal: Principal, subscription_id: int) -> WebhookSubscription:
    """Re-enable a disabled subscription; its waiting deliveries are tried again at once, and
    the next round enqueues the changes since it was disabled (its cursor waited). An active
    one is left as it is: its deliveries may be leased by a round under way, whose outcomes
    are saved only while the lease is the round's (`sending`), so resetting their next
    attempt would drop a receiver's 200 and send the event again; their back-off stands."""
    subscription = await get_subscription(
        principal=principal, subscription_id=subscription_id, for_update=True
    )
    if subscription.active:
        return subscription
    now = datetime.now(UTC)
    before = _snapshot(subscription)
    subscription.active = True
    subscription.consecutive_failures = 0
    subscription.failing_since = None
    subscription.disabled_at = None
    await subscription.save(
        update_fields=["active", "consecutive_failures", "failing_since", "disabled_at"]
    )
    await WebhookDelivery.filter(
        subscription_id=subscription.id, status=DeliveryStatus.pending
    ).update(next_attempt_at=now)
    await alerts.clear_webhook_disabled(subscription_id=subscription.id, now=now)
    await _audit("webhook.enabled", principal, subscription, before=before)
    return subscription


async def list_deliveries(
    *,
    principal: Principal,
    subscription_id: int,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[WebhookDelivery]:
    """A page of a subscription's deliveries, newest first."""
    await get_subscription(principal=principal, subscription_id=subscription_id)
    query = WebhookDelivery.filter(subscription_id=subscription_id)
    return await paging.page(query, paging.NEWEST_ID, limit=limit, cursor=cursor)


async def replay_delivery(
    *, principal: Principal, subscription_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again (same event id, same body), as soon as the dispatcher runs. Not
    on a disabled subscription: nothing would go out until it is enabled, and enabling tries
    its waiting deliveries at once (a 409 naming `webhook_id`, nothing changed). Locked, as
    enabling locks it, so the two never cross."""
    subscription = await get_subscription(
        principal=principal, subscription_id=subscription_id, for_update=True
    )
    if not subscription.active:
        raise Conflict(
            f"webhook {subscription_id} is disabled: nothing is sent until it is enabled"
            f" (POST /m/v1/webhooks/{subscription_id}/enable), which tries its waiting"
            " deliveries at once",
            field="webhook_id",
        )
    delivery = (
        await WebhookDelivery.filter(id=delivery_id, subscription_id=subscription_id)
        .select_for_update()
        .first()
    )
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", field="delivery_id")
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = datetime.now(UTC)
    delivery.delivered_at = None
    await delivery.save(update_fields=["status", "next_attempt_at", "delivered_at"])
    return delivery
