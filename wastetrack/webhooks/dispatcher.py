"""The webhook dispatcher: one round turns the changes each subscription has not seen yet into
deliveries (wastetrack.webhooks.enqueuing), then sends the deliveries that are due
(wastetrack.webhooks.sending).

Sending happens outside any request: a slow or failing receiver never slows the change that
caused the delivery. The deliverer process (wastetrack.webhooks.deliverer, started by
`wastetrack serve`, never inside an HTTP worker) runs rounds while it holds the cluster's webhook
lock, paced so that a burst of recording keeps the cores (wastetrack.webhooks.pace); tests call
`dispatch_once` directly."""

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from tortoise import connections

from wastetrack.core.settings import Settings
from wastetrack.webhooks.enqueuing import behind, enqueue
from wastetrack.webhooks.models import WebhookSubscription
from wastetrack.webhooks.pace import Pace
from wastetrack.webhooks.sending import DispatchRound, send_due

log = logging.getLogger(__name__)


async def dispatch_once(
    *, settings: Settings, client: aiohttp.ClientSession, now: datetime | None = None
) -> DispatchRound:
    """One round: enqueue the new changes of every enabled subscription (a disabled one's
    cursor waits where it stopped: nothing piles up while it is off, and enabling it catches
    up from there; one whose owner is inactive is skipped by `enqueue`), then send what is due
    by `now`."""
    now = now or datetime.now(UTC)
    subscriptions = await WebhookSubscription.filter(active=True).order_by("id")
    enqueued = await enqueue(subscriptions=await behind(subscriptions))
    sent = await send_due(settings=settings, client=client, now=now)
    sent.enqueued = enqueued
    return sent


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
