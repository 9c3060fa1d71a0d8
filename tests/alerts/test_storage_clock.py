"""The 48-hour storage clock at the producer: exactly 48 h is not overdue, a moment later is;
a container's clock is its oldest child's tagging, recursively, never the empty box's own; a
category without a limit of its own keeps its class's. The clinic's inventory (`overdue`)
counts the same as the alert."""

import importlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from tortoise import connections

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.catalog.models import WasteCategory
from wastetrack.registers import service as registers
from wastetrack.registers.movements import Scope
from wastetrack.registry.models import Site

HOUR = timedelta(hours=1)
LIMIT = 48 * HOUR
START = (datetime.now(UTC) - timedelta(hours=100)).replace(microsecond=0)


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


def subject(batch: dict[str, Any], *, contents: bool = False) -> str:
    """An overdue-storage alert's subject: the batch, and whether its clock is the waste put
    into it (the clock's start is in `due_at` and `details.since`)."""
    return f"{batch['code']}:contents" if contents else batch["code"]


async def pack(
    client: httpx.AsyncClient,
    world: World,
    box: dict[str, Any],
    child: dict[str, Any],
    hours: float,
) -> None:
    """The clinic puts `child` into `box` `hours` after START."""
    packed = event("aggregated", box["code"], device_time=at(hours), children=[child["code"]])
    assert (await post_event(client, world, "clinic", packed)).status_code == 201


async def overdue(now: datetime) -> list[Alert]:
    await alerts.refresh(now=now)
    return await Alert.filter(kind=alerts.OVERDUE_STORAGE).order_by("id")


async def test_a_bag_is_overdue_only_after_exactly_48_hours(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, device_time=at(0))
    assert await overdue(START + LIMIT) == []
    (alert,) = await overdue(START + LIMIT + timedelta(seconds=1))
    assert (alert.subject, alert.due_at) == (subject(bag), START + LIMIT)


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
    assert (alert.subject, alert.due_at) == (subject(crate, contents=True), START + LIMIT)
    assert datetime.fromisoformat(alert.details["since"]) == START


CITY = "Asia/Shanghai"


async def clinic_stock(world: World, now: datetime) -> dict[str, dict[str, Any]]:
    """The clinic's inventory as it stands at `now`, by batch code."""
    days = [moment.astimezone(ZoneInfo(CITY)).date() for moment in (START, now)]
    stock = await registers.inventory(
        scope=Scope(organization=world.orgs["clinic"]),
        date_from=days[0],
        date_to=days[1],
        timezone=CITY,
        now=now,
    )
    return {b["code"]: b for b in stock["batches"]}


async def test_an_empty_boxs_tagging_starts_no_clock_in_the_alert_or_the_inventory(
    client: httpx.AsyncClient, world: World
) -> None:
    """A sharps box tagged on Monday and first filled on Wednesday has stored waste since
    Wednesday (docs/registers.md): the inventory's `overdue` and the alert agree."""
    box = await tag_bag(client, world, category="med.sharps", device_time=at(0))
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(47))
    await pack(client, world, box, needle, 47.5)
    two_days_after_the_box = START + timedelta(hours=50)
    (held,) = (await clinic_stock(world, two_days_after_the_box)).values()
    assert (held["code"], held["since"], held["overdue"]) == (box["code"], START + 47 * HOUR, False)
    assert await overdue(two_days_after_the_box) == []
    due = START + 47 * HOUR + LIMIT
    assert (await clinic_stock(world, due))[box["code"]]["overdue"] is False
    assert await overdue(due) == []
    a_moment_later = due + timedelta(seconds=1)
    assert (await clinic_stock(world, a_moment_later))[box["code"]]["overdue"] is True
    (alert,) = await overdue(a_moment_later)
    assert (alert.subject, alert.due_at) == (subject(box, contents=True), due)
    assert datetime.fromisoformat(alert.details["since"]) == held["since"]


async def test_an_empty_box_packed_into_a_crate_starts_no_clock_either(
    client: httpx.AsyncClient, world: World
) -> None:
    """Down through containers of containers: a box tagged empty, then filled and packed into
    a crate, gives the crate its needle's clock, in the alert and in the inventory alike."""
    box = await tag_bag(client, world, category="med.sharps", device_time=at(0))
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(20))
    crate = await tag_bag(client, world, category="med.hw01", device_time=at(21))
    for container, child, hours in ((box, needle, 22), (crate, box, 23)):
        packed = event(
            "aggregated", container["code"], device_time=at(hours), children=[child["code"]]
        )
        assert (await post_event(client, world, "clinic", packed)).status_code == 201
    due = START + 20 * HOUR + LIMIT
    (held,) = (await clinic_stock(world, due)).values()
    assert (held["code"], held["since"], held["overdue"]) == (
        crate["code"],
        START + 20 * HOUR,
        False,
    )
    assert await overdue(due) == []
    (alert,) = await overdue(due + timedelta(seconds=1))
    assert (alert.subject, alert.due_at) == (subject(crate, contents=True), due)


@pytest.fixture
async def sharps_without_a_limit_of_their_own(orm: list[str]) -> AsyncIterator[None]:
    """Sharps (841-002-01) keep the 48 h of their class, 医疗废物 (med.hw01), only by
    inheritance: the catalogue is reference data kept across tests, so it is put back."""
    sharps = await WasteCategory.get(key="med.sharps")
    own = sharps.storage_limit_hours
    await WasteCategory.filter(key="med.sharps").update(storage_limit_hours=None)
    try:
        yield
    finally:
        await WasteCategory.filter(key="med.sharps").update(storage_limit_hours=own)


async def test_a_category_without_a_limit_of_its_own_keeps_its_classs_in_both(
    client: httpx.AsyncClient, world: World, sharps_without_a_limit_of_their_own: None
) -> None:
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(0))
    assert (await clinic_stock(world, START + LIMIT))[needle["code"]]["overdue"] is False
    assert await overdue(START + LIMIT) == []
    later = START + LIMIT + timedelta(seconds=1)
    held = (await clinic_stock(world, later))[needle["code"]]
    assert (held["storage_limit_hours"], held["overdue"]) == (48, True)
    (alert,) = await overdue(later)
    assert (alert.subject, alert.due_at, alert.details["limit_hours"]) == (
        subject(needle),
        START + LIMIT,
        48,
    )


async def test_a_box_alerted_while_empty_is_alerted_again_once_its_waste_is_overdue(
    client: httpx.AsyncClient, world: World
) -> None:
    """An empty box counts from its own tagging: alerted after 48 h, and acknowledged ("still
    empty"). Filled later, its clock starts with the waste put in: the acknowledged alert does
    not stand for the new one, which comes when that waste is overdue."""
    box = await tag_bag(client, world, category="med.sharps", device_time=at(0))
    (empty,) = await overdue(START + LIMIT + HOUR)
    await Alert.filter(id=empty.id).update(acknowledged_at=START + LIMIT + HOUR)
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(50))
    await pack(client, world, box, needle, 50.5)
    due = START + 50 * HOUR + LIMIT
    assert [a.subject for a in await overdue(due) if a.acknowledged_at is None] == []
    raised = [a for a in await overdue(due + HOUR) if a.acknowledged_at is None]
    assert [(a.subject, a.due_at) for a in raised] == [(subject(box, contents=True), due)]


async def test_a_bag_packed_before_its_box_was_tagged_by_a_slower_clock_keeps_its_clock(
    client: httpx.AsyncClient, world: World
) -> None:
    """Two phones a few minutes apart: the bag is put into the box at 10:00 by one, the box
    tagged at 10:05 by the other (within the clock skew allowed). Packing does not restart the
    bag's clock in the inventory either: the box has stored waste since the bag's tagging."""
    bag = await tag_bag(client, world, device_time=at(0))
    box = await tag_bag(client, world, category="med.hw01", device_time=at(10 + 5 / 60))
    await pack(client, world, box, bag, 10)
    held = (await clinic_stock(world, START + 20 * HOUR))[box["code"]]
    assert held["since"] == START
    (alert,) = await overdue(START + LIMIT + timedelta(seconds=1))
    assert alert.subject == subject(box, contents=True)


async def test_a_sites_inventory_counts_a_box_from_the_waste_of_another_site_put_in_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """A box tagged at one site holds bags from another of the clinic's sites: asked for the
    box's site, the inventory counts from the bags' tagging, as for the whole clinic."""
    clinic = world.orgs["clinic"]
    sites = [
        await Site.create(
            organization=clinic,
            name=name,
            region=world.regions["village"],
            latitude=37.16,
            longitude=122.42,
        )
        for name in ("门诊楼", "住院楼")
    ]
    bag = await tag_bag(client, world, device_time=at(0), origin_site_id=sites[1].id)
    box = await tag_bag(
        client, world, category="med.hw01", device_time=at(20), origin_site_id=sites[0].id
    )
    await pack(client, world, box, bag, 21)
    days = [moment.astimezone(ZoneInfo(CITY)).date() for moment in (START, START + 30 * HOUR)]
    for scope in (Scope(organization=clinic), Scope(organization=clinic, site=sites[0])):
        stock = await registers.inventory(
            scope=scope, date_from=days[0], date_to=days[1], timezone=CITY, now=START + 30 * HOUR
        )
        assert [(b["code"], b["since"]) for b in stock["batches"]] == [(box["code"], START)]


async def acknowledged(client: httpx.AsyncClient, world: World, alert: Alert) -> None:
    answer = await client.post(f"/m/v1/alerts/{alert.id}/ack", headers=world.headers("manager"))
    assert answer.status_code == 200, answer.text


async def test_a_corrected_tagging_time_that_stays_overdue_keeps_the_alert_and_its_ack(
    client: httpx.AsyncClient, world: World
) -> None:
    """The bag was overdue before the correction and after it: one alert throughout, still
    acknowledged, its details and due time taking the corrected start (docs/streams/medical.md:
    an acknowledgement covers the alert while its condition lasts)."""
    bag = await tag_bag(client, world, device_time=at(10))
    (alert,) = await overdue(START + LIMIT + 11 * HOUR)
    await acknowledged(client, world, alert)
    (tagging,) = (
        await client.get(f"/m/v1/batches/{bag['code']}/events", headers=world.headers("clinic"))
    ).json()
    fix = event("corrected", bag["code"], corrects=tagging["id"], event_time=at(9))
    assert (await post_event(client, world, "clinic", {**fix, "device_time": at(58)})).is_success
    (kept,) = await overdue(START + LIMIT + 12 * HOUR)
    assert (kept.id, kept.subject) == (alert.id, subject(bag))
    assert kept.acknowledged_at is not None and "cleared_at" not in kept.details
    assert (datetime.fromisoformat(kept.details["since"]), kept.due_at) == (
        START + 9 * HOUR,
        START + 9 * HOUR + LIMIT,
    )
    assert (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json() == []


async def test_an_older_bag_packed_into_an_overdue_box_keeps_its_alert_and_its_ack(
    client: httpx.AsyncClient, world: World
) -> None:
    """A box whose waste is overdue, acknowledged, and then given an older bag: overdue
    throughout, one alert, now counting from the older bag."""
    newer = await tag_bag(client, world, device_time=at(5))
    older = await tag_bag(client, world, device_time=at(0))
    box = await tag_bag(client, world, category="med.hw01", device_time=at(6))
    for child, hours in ((newer, 7), (older, 58)):
        await pack(client, world, box, child, hours)
        if child is newer:  # the older bag, loose, has its own alert
            (alert,) = [
                a for a in await overdue(START + LIMIT + 6 * HOUR) if a.subject != older["code"]
            ]
            await acknowledged(client, world, alert)
    # The older bag's own alert clears once it is in the box, which counts from it.
    (kept,) = [a for a in await overdue(START + LIMIT + 11 * HOUR) if "cleared_at" not in a.details]
    assert (kept.id, kept.subject) == (alert.id, subject(box, contents=True))
    assert kept.acknowledged_at is not None and "cleared_at" not in kept.details
    assert datetime.fromisoformat(kept.details["since"]) == START
    assert (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json() == []


async def test_an_open_storage_alert_of_the_release_before_is_rewritten_in_place(
    client: httpx.AsyncClient, world: World
) -> None:
    """Migration 0060 gives an open overdue-storage alert the subject the rule now writes: a
    refresh neither clears it nor raises a second one beside it, and it stays acknowledged."""
    rewrite = importlib.import_module("migrations.0060_storage_alert_subjects").REWRITE
    bag = await tag_bag(client, world, device_time=at(0))
    needle = await tag_bag(client, world, category="med.sharps", device_time=at(1))
    box = await tag_bag(client, world, category="med.sharps", device_time=at(2))
    await pack(client, world, box, needle, 3)
    now = START + LIMIT + 4 * HOUR
    written = await overdue(now)
    assert sorted(a.subject for a in written) == sorted([subject(bag), subject(box, contents=True)])
    for alert, since in zip(written, (START, START + HOUR), strict=True):
        await acknowledged(client, world, alert)
        await Alert.filter(id=alert.id).update(
            subject=f"{alert.details['code']}:{int(since.timestamp())}"
        )
    # A cleared alert of the release before keeps its subject.
    old = await Alert.create(
        kind=alerts.OVERDUE_STORAGE,
        subject=f"{bag['code']}:1",
        batch_id=written[0].batch_id,
        organization_id=world.orgs["clinic"].id,
        region_path=written[0].region_path,
        raised_at=START,
        details={"code": bag["code"], "cleared_at": START.isoformat()},
    )
    await connections.get("default").execute_script(rewrite)
    after = await overdue(now + HOUR)
    assert [(a.id, a.subject) for a in after] == [
        *[(a.id, a.subject) for a in written],
        (old.id, old.subject),
    ]
    assert all(a.acknowledged_at is not None and "cleared_at" not in a.details for a in after[:2])
