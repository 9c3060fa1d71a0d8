"""What a recording call reads before it decides anything, in one round trip: the batches and
labels it touches (locked), the organizations and sites it names, and fresh batch ids; and the
events already recorded under its client ids, read by a second statement after the locks."""

import asyncio
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
from tortoise.transactions import in_transaction

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event
from wastetrack.batches.models import Batch, Label, Unit
from wastetrack.core import cityday, codes
from wastetrack.core.settings import Settings
from wastetrack.custody import recorder, repository
from wastetrack.custody.commands import EventCommand
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, RegionLevel
from wastetrack.rollups import service as rollups


async def test_one_round_trip_reads_and_locks_what_a_call_touches(
    client: httpx.AsyncClient, world: World, database_url: str
) -> None:
    tagged = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    code = tagged["code"]
    collected = event("collected", code, minutes=10)
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    spare = codes.new_code()
    await Label.create(
        code=spare,
        organization=world.orgs["clinic"],
        stream_id="medical",
        issued_by=world.users["clinic"],
        issued_at=datetime.fromisoformat(collected["device_time"]),
    )
    clinic, carrier = world.orgs["clinic"], world.orgs["carrier"]
    site = await registry.create_site(
        organization_id=clinic.id, name="诊室", region_id=None, latitude=37.16, longitude=122.42
    )

    async with in_transaction():
        loaded = await repository.load(
            codes={code, spare, "NOSUCHCODE"},
            undoing=[],
            organization_ids={clinic.id, carrier.id},
            site_ids={site.id},
            new_batches=2,
            client_event_ids=[uuid.UUID(collected["client_event_id"]), uuid.uuid4()],
        )
        # Locked until the call's transaction ends: another connection cannot take them.
        other = await asyncpg.connect(database_url)
        try:
            for table, key in (("batch", code), ("label", spare)):
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await other.fetch(
                        f"SELECT 1 FROM {table} WHERE code = $1 FOR UPDATE NOWAIT", key
                    )
        finally:
            await other.close()

    (batch,) = loaded.batches
    assert (batch.code, batch.state, batch.last_seq) == (code, "collected", 2)
    assert batch.unit is Unit.KG and batch.quantity == Decimal(tagged["quantity"])
    assert isinstance(batch.quantity, Decimal) and batch.tagged_at.tzinfo is not None
    assert batch.hazard == tagged["hazard"]
    # The bag's own label is bound to it: only the spare one is read as a label.
    assert [label.code for label in loaded.labels] == [spare]
    read = {org.id: (org.kind, org.region.path) for org in loaded.organizations}
    assert read == {
        clinic.id: (OrganizationKind.clinic, world.regions["village"].path),
        carrier.id: (OrganizationKind.carrier, world.regions["city"].path),
    }
    assert {i: (s.organization_id, s.region.path) for i, s in loaded.sites.items()} == {
        site.id: (clinic.id, world.regions["village"].path)
    }
    first, second = loaded.batch_ids
    assert second > first > batch.id
    # Of the client ids, the one recorded, with what a resend is told.
    (seen,) = loaded.known.values()
    assert list(loaded.known) == [uuid.UUID(collected["client_event_id"])]
    assert (seen["state_after"], seen["batch__code"]) == ("collected", code)
    assert isinstance(seen["id"], uuid.UUID) and len(seen["payload_digest"]) == 64


async def test_a_call_that_touches_nothing_reads_nothing(orm: list[str]) -> None:
    async with in_transaction():
        loaded = await repository.load(
            codes=set(),
            undoing=[],
            organization_ids=set(),
            site_ids=set(),
            new_batches=0,
            client_event_ids=[],
        )
    assert loaded == repository.Loaded([], [], [], {}, [], {})


async def test_a_resend_that_waited_for_its_original_is_a_duplicate(
    client: httpx.AsyncClient, world: World, settings: Settings, database_url: str
) -> None:
    """A phone that timed out resends while its first request still holds the batch: the
    resend waits for the lock, and once the original commits it must see it recorded."""
    tagged = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    collected = EventCommand.model_validate(event("collected", tagged["code"], minutes=10))
    carrier = world.principals["carrier"]
    holding, released = asyncio.Event(), asyncio.Event()

    async def original() -> list[recorder.Recorded]:
        async with in_transaction():
            recorded = await recorder.record_events(
                principal=carrier, submissions=[collected], secret=settings.secret_key
            )
            holding.set()
            await released.wait()
            return recorded

    async def resend() -> list[recorder.Recorded]:
        await holding.wait()
        async with in_transaction():
            return await recorder.record_events(
                principal=carrier, submissions=[collected], secret=settings.secret_key
            )

    first_task, second_task = asyncio.create_task(original()), asyncio.create_task(resend())
    try:
        await holding.wait()
        # Release the original only once the resend waits for the batch's lock (else the
        # test would not test the wait).
        watcher = await asyncpg.connect(database_url)
        try:
            for _ in range(200):
                if await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the resend never waited for the original's lock")
        finally:
            await watcher.close()
        assert not second_task.done()
    finally:
        released.set()  # never leave the original holding its locks
    (first,), (second,) = await first_task, await second_task
    assert first.result.status == "applied"
    assert (second.result.status, second.result.event_id) == ("duplicate", first.result.event_id)


async def test_a_batch_tagged_at_a_site_counts_under_the_sites_region(
    client: httpx.AsyncClient, world: World
) -> None:
    """A site may lie below its organization's region (a town's clinic with a room in a
    village): what is tagged there counts under the site's region, pinned in the tagging's
    hashed details as any batch's region is; one tagged without a site, under the
    producer's."""
    town, village = (
        world.regions["other_town"],
        await registry.create_region(
            code="371082101201",
            name="东山村",
            level=RegionLevel.village,
            parent_id=world.regions["other_town"].id,
        ),
    )
    site = await registry.create_site(
        organization_id=world.orgs["other_clinic"].id,
        name="东山村服务点",
        region_id=village.id,
        latitude=36.9,
        longitude=122.4,
    )
    at_site = await tag_bag(client, world, "other_clinic", origin_site_id=site.id)
    elsewhere = await tag_bag(client, world, "other_clinic")
    regions = dict(
        await Batch.filter(code__in=[at_site["code"], elsewhere["code"]]).values_list(
            "code", "region_path"
        )
    )
    assert regions == {at_site["code"]: village.path, elsewhere["code"]: town.path}
    verdict = await client.get(
        f"/m/v1/batches/{at_site['code']}/verify", headers=world.headers("other_clinic")
    )
    assert verdict.json()["valid"] is True, verdict.text
    # The village's figures count it, and it alone: the village's own cohort holds the batch.
    today = cityday.today(world.settings.timezone)
    counted = await rollups.utilization(
        region_path=village.path, date_from=today - timedelta(days=2), date_to=today
    )
    assert [s["batches"] for s in counted["streams"]] == [1], counted
