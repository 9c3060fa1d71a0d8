"""Subscribe through the API and run the dispatcher until it has nothing left to do."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx

from tests.factories import World
from wastetrack.core.settings import Settings
from wastetrack.webhooks.dispatcher import dispatch_once
from wastetrack.webhooks.sending import DispatchRound


async def subscribe(
    client: httpx.AsyncClient, world: World, who: str, url: str, events: list[str]
) -> dict:
    response = await client.post(
        "/m/v1/webhooks", json={"url": url, "events": events}, headers=world.headers(who)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def drain(
    settings: Settings, sender: aiohttp.ClientSession, *, now: datetime | None = None
) -> DispatchRound:
    """Rounds until one does nothing (one delivery per batch goes out per round); the sum."""
    total = DispatchRound()
    for _ in range(50):
        done = await dispatch_once(settings=settings, client=sender, now=now or datetime.now(UTC))
        if not done.busy:
            return total
        total.enqueued += done.enqueued
        total.delivered += done.delivered
        total.failed += done.failed
        total.withheld += done.withheld
        total.disabled += done.disabled
    raise AssertionError("the dispatcher never ran out of work")


async def receiver_at(
    client: httpx.AsyncClient,
    world: World,
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, dict[str, Any]]:
    """A receiver on a free local port answering with `handle` (serving once the server is
    entered), and the manager's subscription to batch events sent there."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hook = await subscribe(
        client, world, "manager", f"http://127.0.0.1:{port}/hooks", ["batch.event_recorded"]
    )
    return server, hook
