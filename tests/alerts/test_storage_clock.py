"""The 48-hour storage clock at the producer: exactly 48 h is not overdue, a moment later is;
a container's clock is its oldest child's tagging, recursively."""

from datetime import UTC, datetime, timedelta

import httpx

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert

LIMIT = timedelta(hours=48)
START = (datetime.now(UTC) - timedelta(hours=100)).replace(microsecond=0)


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


async def overdue(now: datetime) -> list[Alert]:
    await alerts.refresh(now=now)
    return await Alert.filter(kind=alerts.OVERDUE_STORAGE).order_by("id")


async def test_a_bag_is_overdue_only_after_exactly_48_hours(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, device_time=at(0))
    assert await overdue(START + LIMIT) == []
    (alert,) = await overdue(START + LIMIT + timedelta(seconds=1))
    assert (alert.subject, alert.due_at) == (bag["code"], START + LIMIT)


async def test_a_containers_clock_is_its_oldest_childs_tagging_recursively(
    client: httpx.AsyncClient, world: World
) -> None:
    oldest = await tag_bag(client, world, device_time=at(0))
    newer = await tag_bag(client, world, device_time=at(10))
    box = await tag_bag(client, world, category="med.hw01", device_time=at(40))
    aggregated = event(
        "aggregated", box["code"], device_time=at(41), children=[oldest["code"], newer["code"]]
    )
    assert (await post_event(client, world, "clinic", aggregated)).status_code == 201
    crate = await tag_bag(client, world, category="med.hw01", device_time=at(45))
    nested = event("aggregated", crate["code"], device_time=at(46), children=[box["code"]])
    assert (await post_event(client, world, "clinic", nested)).status_code == 201
    # The crate was tagged 3 hours before: its clock is still the oldest bag's.
    assert await overdue(START + LIMIT) == []
    (alert,) = await overdue(START + LIMIT + timedelta(minutes=1))
    assert (alert.subject, alert.due_at) == (crate["code"], START + LIMIT)
    assert datetime.fromisoformat(alert.details["since"]) == START
