"""The alert rules beside a manifest under way, and the settings they read: a batch on an
arrived manifest waits for the receiver's decision, not idle; `POST /m/v1/alerts/refresh`
judges by the app's thresholds and counts the decision's days in the app's time zone."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from mobile_api.app import create_app
from tests.factories import World, event
from tests.manifests.test_custody_rules import tag_oil
from tests.manifests.test_manifests import (  # noqa: F401 (the fixture)
    NOW,
    Parties,
    call,
    drive_to_arrival,
    parties,
    sign_leg,
    sign_producer,
)
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.batches.models import Batch
from wastetrack.core.settings import Settings, get_settings
from wastetrack.manifests.models import Manifest
from wastetrack.manifests.receiving import decision_due

CITY = ZoneInfo("Asia/Shanghai")


async def drums_tagged(client: httpx.AsyncClient, world: World, at: datetime) -> list[str]:
    """Two drums of waste oil the maker tagged at `at`, for a manifest to list."""
    return [await tag_oil(client, world, device_time=at.isoformat()) for _ in range(2)]


async def test_a_batch_on_an_arrived_manifest_is_not_idle_while_the_decision_is_due(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """Arrived on 30 September, decided by the end of 13 October (National Day, and the
    Saturday worked after it): a week on, the drums are still `in_transit` (an arrival writes
    no custody event), and the manifest's own deadline watches them, not idle_batch."""
    parties.body["batches"] = await drums_tagged(
        client, world, datetime(2026, 9, 29, 8, tzinfo=CITY)
    )
    arrived = await drive_to_arrival(
        client, world, parties, arrived=datetime(2026, 9, 30, 8, tzinfo=CITY)
    )
    assert datetime.fromisoformat(arrived["decision_due_at"]) == datetime(2026, 10, 14, tzinfo=CITY)
    states = await Batch.filter(code__in=parties.body["batches"]).values_list("state", flat=True)
    assert set(states) == {"in_transit"}
    await alerts.refresh(now=datetime(2026, 10, 7, 8, tzinfo=CITY))
    assert await Alert.filter(kind=alerts.IDLE_BATCH).count() == 0
    await alerts.refresh(now=datetime(2026, 10, 14, 8, tzinfo=CITY))
    assert await Alert.filter(acknowledged_at=None).values_list("kind", flat=True) == [
        alerts.MANIFEST_OVERDUE
    ]


@pytest.mark.parametrize("decision", ["accepted", "partially_accepted"])
async def test_a_decided_manifests_batches_are_idle_from_the_decision_not_the_arrival(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
    decision: str,
) -> None:
    """Arrived nine days ago and decided now: the decision's receipts are timed at the arrival,
    but the days the manifest watched the drums (arrived, the decision due) are no idleness.
    The round right after the decision found the drums (and the refused part back with the
    carrier) idle for nine days at once; they are idle a week after the decision."""
    parties.body["batches"] = await drums_tagged(client, world, NOW - timedelta(days=10))
    arrived = await drive_to_arrival(client, world, parties, arrived=NOW - timedelta(days=9))
    body = {"decision": decision, "method": "R9", "received_quantity_kg": "800"}
    if decision == "partially_accepted":
        body |= {"received_quantity_kg": "500", "reason": "一桶渗漏"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", body)
    assert decided.status_code == 200, decided.text
    signed = (await Manifest.get(id=arrived["id"])).receiver_signed_at
    assert signed is not None
    await alerts.refresh(now=signed + timedelta(hours=1))
    assert await Alert.filter(kind=alerts.IDLE_BATCH).count() == 0
    await alerts.refresh(now=signed + timedelta(hours=169))
    idle = await Alert.filter(kind=alerts.IDLE_BATCH).values_list("details", flat=True)
    stored = set(parties.batches)  # the fixture's own drums, tagged and kept at the maker
    moved = [d for d in idle if d["code"] not in stored]
    assert {d["state"] for d in moved} == (
        {"received"} if decision == "accepted" else {"received", "rejected"}
    )
    assert {datetime.fromisoformat(d["since"]) for d in moved} == {signed}, moved


async def test_a_batch_handed_over_on_a_submitted_manifest_no_carrier_signed_is_idle(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """The producer signed (the drums handed over to the first carrier), the carrier never
    signed its leg: no manifest alert watches them yet (leg_overdue needs a signed leg), so
    idle_batch does, once they have lain a week."""
    made = (await call(client, world, "maker", "", parties.body)).json()
    handed = NOW - timedelta(hours=2)
    assert (await sign_producer(client, world, made["id"], handed)).status_code == 200
    assert (await Manifest.get(id=made["id"])).state == "submitted"
    week = timedelta(hours=get_settings().idle_batch_hours)
    await alerts.refresh(now=handed + week - timedelta(minutes=1))
    assert await Alert.filter(kind=alerts.IDLE_BATCH).count() == 0
    await alerts.refresh(now=handed + week + timedelta(minutes=1))
    idle = await Alert.filter(kind=alerts.IDLE_BATCH).values_list("details", flat=True)
    assert sorted(d["code"] for d in idle) == sorted(parties.body["batches"])  # type: ignore[index]
    assert await Alert.filter(kind=alerts.LEG_OVERDUE).count() == 0


async def _on_the_last_leg(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture's value)
    start: datetime,
) -> tuple[int, list[str]]:
    """Two drums on a two-leg manifest whose producer and legs signed at `start`: with the
    second carrier."""
    parties.body["batches"] = codes = await drums_tagged(client, world, start - timedelta(hours=1))
    mid = (await call(client, world, "maker", "", parties.body)).json()["id"]
    assert (await sign_producer(client, world, mid, start)).status_code == 200
    for seq, who in ((1, "carrier"), (2, "second")):
        signed = await sign_leg(client, world, mid, seq, who, start + timedelta(minutes=seq))
        assert signed.status_code == 200, signed.text
    return mid, codes


async def _handed(
    client: httpx.AsyncClient, world: World, code: str, at: datetime, to: str = "plant"
) -> None:
    """The last leg's carrier hands the drum over by scan: to the plant, or `to`."""
    given = event(
        "handed_over", code, to_organization_id=world.orgs[to].id, device_time=at.isoformat()
    )
    posted = await client.post("/m/v1/events", json=given, headers=world.headers("second"))
    assert posted.status_code == 201, posted.text


async def test_the_last_leg_ends_when_its_carrier_has_handed_every_drum_over(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """The last leg is overdue and its carrier acknowledged it; it scans one drum over to the
    plant, later the other, and the plant never records the arrival. The leg waited for the
    arrival only, so the carrier that had delivered everything stayed overdue while the
    plant, holding the drums with no decision due, was watched by nobody (alerts review); and
    ended at the first drum, the acknowledged journey was raised again on the other (diff
    review). The leg lasts while its carrier holds waste of it, its alert and acknowledgement
    kept; a drum the plant holds is idle a week after its handover, the plant's alert."""
    start = NOW - timedelta(days=6)
    mid, codes = await _on_the_last_leg(client, world, parties, start)
    number = (await Manifest.get(id=mid)).number
    second, plant = world.orgs["second"].id, world.orgs["plant"].id
    await alerts.refresh(now=start + timedelta(days=3))
    (leg,) = await Alert.filter(kind=alerts.LEG_OVERDUE)
    assert (leg.organization_id, leg.subject) == (second, f"{number}:2")
    leg.acknowledged_at = start + timedelta(days=3, hours=1)
    await leg.save()

    first = NOW - timedelta(hours=2)
    await _handed(client, world, codes[0], first)
    await alerts.refresh(now=NOW)
    kept = [(a.id, a.acknowledged_at) for a in await _standing()]
    assert kept == [(leg.id, leg.acknowledged_at)]  # the carrier still holds a drum

    await _handed(client, world, codes[1], NOW - timedelta(hours=1))
    await alerts.refresh(now=NOW)
    assert await _standing() == []

    week = timedelta(hours=get_settings().idle_batch_hours)
    await alerts.refresh(now=first + week + timedelta(minutes=1))
    idle = [(a.kind, a.organization_id, a.details.get("code")) for a in await _standing()]
    assert [i for i in idle if i[2] in codes] == [(alerts.IDLE_BATCH, plant, codes[0])]


async def test_the_last_leg_stands_while_drums_are_with_an_earlier_carrier(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """The last carrier scans both drums over to the first leg's carrier (custody lets any of
    the manifest's carriers take them): the waste has not arrived. Read as "its carrier
    holds none", the leg's alert cleared and nothing watched the drums (diff review); the
    leg's alert stands."""
    start = NOW - timedelta(days=6)
    mid, codes = await _on_the_last_leg(client, world, parties, start)
    number = (await Manifest.get(id=mid)).number
    for code in codes:
        await _handed(client, world, code, NOW - timedelta(hours=2), to="carrier")
    await alerts.refresh(now=NOW)
    standing = [(a.kind, a.subject) for a in await _standing()]
    assert (alerts.LEG_OVERDUE, f"{number}:2") in standing


async def _standing() -> list[Alert]:
    """The alerts whose condition lasts (a cleared one says when it cleared)."""
    return [a for a in await Alert.all().order_by("id") if "cleared_at" not in a.details]


def _touched(plan: Any, alias: str) -> float:
    """Rows a plan read of the relation under `alias` (returned and filtered out, all loops)."""
    total = 0.0
    if isinstance(plan, dict):
        if plan.get("Alias") == alias:
            loops = plan.get("Actual Loops", 1)
            total += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
        for child in plan.get("Plans", []):
            total += _touched(child, alias)
    return total


async def test_the_last_leg_reads_its_own_drums_not_what_the_carrier_holds(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """Whether the last leg's carrier still holds waste of it is read per listed code: asked as
    `m.batch_codes ? h.code` (no index serves it), the round read every batch a holder keeps,
    per manifest, every round (diff review). 20,000 batches the carrier holds, two drums
    listed: two look-ups by code."""
    _, codes = await _on_the_last_leg(client, world, parties, NOW - timedelta(days=4))
    conn = connections.get("default")
    await conn.execute_query(
        "INSERT INTO batch SELECT (jsonb_populate_record(NULL::batch, to_jsonb(b)"
        " || jsonb_build_object('id', 9000000 + g, 'code', 'ZZ' || g, 'identifier', NULL))).*"
        " FROM batch b, generate_series(1, 20000) g WHERE b.code = $1",
        [codes[0]],
    )
    await conn.execute_query("ANALYZE batch")
    params = [alerts.LEG_OVERDUE, NOW, get_settings().leg_overdue_hours]
    async with in_transaction() as tx:
        # The planner may rightly read a small table whole: ruled out, the plan shows the index
        # that serves the look-up (as the registers' index test does).
        await tx.execute_query("SET LOCAL enable_seqscan = off")
        rows = await tx.execute_query_dict(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {alerts._RULES[alerts.LEG_OVERDUE]}", params
        )
        await tx.rollback()
    plan = rows[0]["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read = _touched(plan[0]["Plan"], "h")
    assert 0 < read <= 2 * len(codes), f"the leg round read {read:.0f} of the carrier's batches"


async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def hourly(settings: Settings, orm: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose legs are overdue after an hour, where the process's settings say 48."""
    assert get_settings().leg_overdue_hours != 1
    async for c in client_of(settings.model_copy(update={"leg_overdue_hours": 1})):
        yield c


@pytest.fixture
async def in_utc(settings: Settings, orm: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose city keeps UTC, where the process's settings say Asia/Shanghai."""
    assert get_settings().timezone != "UTC"
    async for c in client_of(settings.model_copy(update={"timezone": "UTC"})):
        yield c


async def test_the_refresh_route_judges_legs_by_the_apps_threshold(
    hourly: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    made = (await call(hourly, world, "maker", "", parties.body)).json()
    assert (await sign_producer(hourly, world, made["id"])).status_code == 200
    signed = await sign_leg(hourly, world, made["id"], 1, "carrier", NOW - timedelta(hours=2))
    assert signed.status_code == 200, signed.text
    refreshed = await hourly.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    assert refreshed.status_code == 200, refreshed.text
    (alert,) = await Alert.filter(kind=alerts.LEG_OVERDUE)
    assert alert.subject == f"{made['number']}:1"


async def test_the_refresh_route_keeps_the_deadline_the_apps_time_zone_set(
    in_utc: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811 (the fixture)
) -> None:
    """An arrival at 16:30 UTC is on one day in UTC and on the next in Shanghai: the round
    counts the receiver's 5 working days from the app's day, as the arrival did."""
    day = (NOW - timedelta(days=3)).date()
    at = datetime(day.year, day.month, day.day, 16, 30, tzinfo=UTC)
    parties.body["batches"] = await drums_tagged(in_utc, world, at - timedelta(days=1))
    arrived = await drive_to_arrival(in_utc, world, parties, arrived=at)
    due, _ = await decision_due(arrived_at=at, timezone="UTC")
    assert datetime.fromisoformat(arrived["decision_due_at"]) == due
    refreshed = await in_utc.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    assert refreshed.status_code == 200, refreshed.text
    assert (await Manifest.get(id=arrived["id"])).decision_due_at == due
