"""Overdue-storage alerts of the release before (subject `CODE:<epoch of the clock's start>`)
through the upgrade: migration 0060 names each open one as the rule now does (the batch, and
`:contents` for a container whose waste sets its clock), 0061 and 0062 clear those that can
only have measured the other clock. An alert whose clock lasted keeps its acknowledgement.
The scenarios of the defects 0061 had were first written by an independent review."""

import importlib
from datetime import datetime

import httpx
from tortoise import connections

from tests.alerts.test_storage_clock import (
    HOUR,
    LIMIT,
    START,
    acknowledged,
    at,
    overdue,
    pack,
    subject,
)
from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event
from wastetrack.alerts.models import Alert


async def upgrade() -> None:
    """The three migrations' SQL, in their order, with no refresh between them."""
    scripts = {
        "0060_storage_alert_subjects": ("REWRITE",),
        "0061_storage_alert_clock_kind": ("CLEAR",),
        "0062_storage_alert_clock_kind_again": ("REOPEN", "CLEAR"),
    }
    for name, parts in scripts.items():
        module = importlib.import_module(f"migrations.{name}")
        for part in parts:
            await connections.get("default").execute_script(getattr(module, part))


async def release_before(alert: Alert, since: datetime) -> None:
    """Give the alert the subject the release before wrote."""
    await Alert.filter(id=alert.id).update(
        subject=f"{alert.details['code']}:{int(since.timestamp())}"
    )


def standing(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if "cleared_at" not in a.details]


async def test_a_bag_a_box_never_filled_and_a_filled_box_keep_their_alerts(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, device_time=at(0))
    empty = await tag_bag(client, world, category="med.sharps", device_time=at(0.5))
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(1))
    box = await tag_bag(client, world, category="med.sharps", device_time=at(2))
    await pack(client, world, box, needle, 3)
    now = START + LIMIT + 4 * HOUR
    written = await overdue(now)
    assert [a.subject for a in written] == [
        subject(bag),
        subject(empty),
        subject(box, contents=True),
    ]
    for alert in written:
        await acknowledged(client, world, alert)
        await release_before(alert, datetime.fromisoformat(alert.details["since"]))
    await upgrade()
    after = await overdue(now + HOUR)
    assert [(a.id, a.subject, a.raised_at) for a in after] == [
        (a.id, a.subject, a.raised_at) for a in written
    ]
    assert all(a.acknowledged_at is not None and "cleared_at" not in a.details for a in after)


async def test_a_bag_whose_tagging_time_was_corrected_before_the_upgrade_keeps_its_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    """The same clock, moved: overdue throughout, one alert, still acknowledged."""
    bag = await tag_bag(client, world, device_time=at(10))
    (alert,) = await overdue(START + LIMIT + 11 * HOUR)
    await acknowledged(client, world, alert)
    await release_before(alert, START + 10 * HOUR)
    (tagging,) = (
        await client.get(f"/m/v1/batches/{bag['code']}/events", headers=world.headers("clinic"))
    ).json()
    fix = event("corrected", bag["code"], corrects=tagging["id"], event_time=at(9))
    assert (await post_event(client, world, "clinic", {**fix, "device_time": at(58)})).is_success
    await upgrade()
    (kept,) = standing(await overdue(START + LIMIT + 12 * HOUR))
    assert (kept.id, kept.subject, kept.raised_at) == (alert.id, subject(bag), alert.raised_at)
    assert kept.acknowledged_at is not None
    assert datetime.fromisoformat(kept.details["since"]) == START + 9 * HOUR


async def test_a_box_whose_waste_was_tagged_with_it_keeps_its_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    """Its `since` is the box's tagging time and its waste's alike: it measured the waste."""
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(1))
    box = await tag_bag(client, world, category="med.sharps", device_time=at(1))
    await pack(client, world, box, needle, 2)
    now = START + LIMIT + 4 * HOUR
    (alert,) = await overdue(now)
    await acknowledged(client, world, alert)
    await release_before(alert, START + HOUR)
    await upgrade()
    (kept,) = standing(await overdue(now + HOUR))
    assert (kept.id, kept.raised_at) == (alert.id, alert.raised_at)
    assert kept.acknowledged_at is not None


async def test_an_empty_boxs_alert_filled_before_the_upgrade_does_not_stand_for_its_waste(
    client: httpx.AsyncClient, world: World
) -> None:
    """An empty box's alert (its clock the box's own tagging), acknowledged; the box filled with
    an overdue needle before the upgrade: the alert is cleared, its acknowledgement kept, and the
    waste raises an alert of its own, unacknowledged."""
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(0))
    box = await tag_bag(client, world, category="med.sharps", device_time=at(1))
    now = START + 50 * HOUR
    alerts = [a for a in await overdue(now - HOUR / 2) if a.details["code"] == box["code"]]
    (empty,) = alerts
    await acknowledged(client, world, empty)
    await release_before(empty, START + HOUR)
    await pack(client, world, box, needle, 49.5)
    await upgrade()
    await empty.refresh_from_db()
    assert "cleared_at" in empty.details and empty.acknowledged_at is not None
    after = [a for a in standing(await overdue(now)) if a.details["code"] == box["code"]]
    assert [(a.subject, a.acknowledged_at) for a in after] == [(subject(box, contents=True), None)]
    assert datetime.fromisoformat(after[0].details["since"]) == START


async def test_a_box_emptied_before_the_upgrade_raises_its_own_clocks_alert_anew(
    client: httpx.AsyncClient, world: World
) -> None:
    """The box's waste alerted and acknowledged, the needle taken out before the upgrade: the
    alert measured the waste, so it is cleared; the empty box and the loose needle raise
    theirs, unacknowledged."""
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(0))
    box = await tag_bag(client, world, category="med.sharps", device_time=at(1))
    await pack(client, world, box, needle, 2)
    now = START + LIMIT + 4 * HOUR
    (alert,) = await overdue(now)
    await acknowledged(client, world, alert)
    await release_before(alert, START)
    steps = await client.get(
        f"/m/v1/batches/{needle['code']}/events", headers=world.headers("clinic")
    )
    packing = next(e["id"] for e in steps.json() if e["event_type"] == "aggregated")
    undo = event("corrected", needle["code"], corrects=packing, aggregated=False)
    assert (await post_event(client, world, "clinic", {**undo, "device_time": at(52)})).is_success
    await upgrade()
    after = standing(await overdue(now + HOUR))
    assert sorted((a.subject, a.acknowledged_at) for a in after) == sorted(
        [(subject(box), None), (subject(needle), None)]
    )
