"""Subscribe through the API and run the dispatcher until it has nothing left to do."""

from datetime import UTC, datetime

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
