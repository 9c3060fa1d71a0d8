"""Recording appends the changes to the sums; a fold moves them into the layers. Readers see
the same figures before and after a fold, and concurrent recordings never wait on each other's
sums."""

import asyncio
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from tortoise import connections
from tortoise.transactions import in_transaction

from schemas.events import EventCreate
from tests.custody.helpers import tag_bag
from tests.factories import CITY_TODAY, World, event, medical_bag
from tests.rollups.test_rollups import build_history, received_load
from wastetrack.batches.models import Batch
from wastetrack.core.settings import Settings
from wastetrack.custody import recorder
from wastetrack.rollups import facts
from wastetrack.rollups import service as rollups
from wastetrack.rollups.models import (
    BatchFact,
    CityMonthlyRollup,
    CohortDelta,
    DailyRollup,
    MonthlyRollup,
)


async def _figures(world: World) -> list[dict[str, object]]:
    """Utilization for today and for this whole month, city-wide (daily and city layers)."""
    first = CITY_TODAY.replace(day=1)
    last = rollups._month_end(first)
    city = world.regions["city"].path
    answers = []
    for date_from, date_to in ((CITY_TODAY, CITY_TODAY), (first, last)):
        answers.append(
            await rollups.utilization(region_path=city, date_from=date_from, date_to=date_to)
        )
    return answers


async def test_figures_are_the_same_before_and_after_a_fold(
    client: httpx.AsyncClient, world: World
) -> None:
    await build_history(client, world)
    assert await CohortDelta.all().count() > 0
    for model in (DailyRollup, MonthlyRollup, CityMonthlyRollup):
        assert await model.all().count() == 0  # nothing folded yet: readers add the changes
    before = await _figures(world)
    assert before[0]["categories"] and before[1]["categories"]
    assert await rollups.fold() > 0
    assert await CohortDelta.all().count() == 0
    assert await rollups.fold() == 0
    assert await _figures(world) == before
    await tag_bag(client, world, quantity="2")  # half folded, half pending
    after_one_more = await _figures(world)
    assert after_one_more != before
    await rollups.fold()
    assert await _figures(world) == after_one_more


async def test_concurrent_recordings_do_not_wait_on_each_others_sums(world: World) -> None:
    """Two taggings of the same cohort (same day, region, category) in two open transactions:
    the second records and commits while the first is still open."""
    secret = world.settings.secret_key
    principal = world.principals["clinic"]
    first_recorded, second_done = asyncio.Event(), asyncio.Event()

    async def record(then_wait: bool) -> None:
        async with in_transaction():
            body = medical_bag()
            submission = EventCreate.model_validate(body)
            (result,) = await recorder.record_events(
                principal=principal, submissions=[submission], secret=secret
            )
            assert result.result.status == "applied"
            if then_wait:
                first_recorded.set()
                await asyncio.wait_for(second_done.wait(), timeout=10)

    async def second() -> None:
        await first_recorded.wait()
        await record(then_wait=False)
        second_done.set()

    await asyncio.gather(record(then_wait=True), second())
    await rollups.fold()
    (row,) = await DailyRollup.filter(category_id="med.infectious").values("batches")
    assert row["batches"] == 2


async def test_start_up_installs_the_recording_function_as_the_code_defines_it(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    database = connections.get("default")
    # A function left by other code (an older release): replaced at the next start-up.
    await database.execute_script(
        "DROP FUNCTION wastetrack_apply_facts(text, text[], int[]);"
        " CREATE FUNCTION wastetrack_apply_facts(text, text[], int[])"
        " RETURNS int LANGUAGE sql AS 'SELECT 0'"
    )
    await facts.ensure_current(timezone=settings.timezone)
    rows = await database.execute_query_dict(
        "SELECT prosrc, proconfig FROM pg_proc WHERE proname = 'wastetrack_apply_facts'"
    )
    assert len(rows) == 1
    assert "INSERT INTO cohort_delta" in rows[0]["prosrc"]
    assert "plan_cache_mode=force_generic_plan" in rows[0]["proconfig"]
    # And recording goes through it: a tagging's fact is there.
    bag = await tag_bag(client, world)
    batch = await Batch.get(code=bag["code"])
    assert await BatchFact.filter(batch_id=batch.id).exists()


async def test_stored_facts_are_rebuilt_when_what_they_were_computed_on_changes(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """The facts depend on more than the counting rules: the city's time zone gives their days
    and the catalog their estimated masses and fates. Another WASTETRACK_TIMEZONE, a later
    edition's density or a new edition marker makes the next start-up rebuild them; nothing
    changed, it does not."""
    # Tagged at one in the morning in the city, yesterday: the day before in UTC.
    tagged_at = datetime.combine(
        CITY_TODAY - timedelta(days=1), time(1), tzinfo=ZoneInfo(settings.timezone)
    )
    bag = await tag_bag(
        client,
        world,
        device_time=tagged_at.isoformat(),
        category="med.sharps",
        quantity="2",
        unit="m3",
    )
    batch = await Batch.get(code=bag["code"])
    await facts.ensure_current(timezone=settings.timezone)  # whatever was stored before
    assert not await facts.ensure_current(timezone=settings.timezone)
    fact = await BatchFact.get(batch_id=batch.id)
    assert fact.day == CITY_TODAY - timedelta(days=1)

    assert await facts.ensure_current(timezone="UTC")
    assert (await BatchFact.get(batch_id=batch.id)).day == CITY_TODAY - timedelta(days=2)
    assert not await facts.ensure_current(timezone="UTC")
    assert await facts.ensure_current(timezone=settings.timezone)

    database = connections.get("default")
    (sharps,) = await database.execute_query_dict(
        "SELECT density_kg_m3, mass_basis_source FROM waste_category WHERE key = 'med.sharps'"
    )
    (d10,) = await database.execute_query_dict(
        "SELECT edition FROM treatment_method WHERE code = 'D10'"
    )
    try:
        # A later edition's density for sharps (the catalog is reference data, kept across
        # tests: restored below).
        await database.execute_query(
            "UPDATE waste_category SET density_kg_m3 = 321.5, mass_basis_source = 'test 2027-01'"
            " WHERE key = 'med.sharps'"
        )
        assert await facts.ensure_current(timezone=settings.timezone)
        assert (await BatchFact.get(batch_id=batch.id)).mass_kg == Decimal("643.000")
        assert not await facts.ensure_current(timezone=settings.timezone)
        # A new edition marker alone (a method's edition): rebuilt too.
        await database.execute_query(
            "UPDATE treatment_method SET edition = 'test 2027-02' WHERE code = 'D10'"
        )
        assert await facts.ensure_current(timezone=settings.timezone)
    finally:
        await database.execute_query(
            "UPDATE waste_category SET density_kg_m3 = $1, mass_basis_source = $2"
            " WHERE key = 'med.sharps'",
            [sharps["density_kg_m3"], sharps["mass_basis_source"]],
        )
        await database.execute_query(
            "UPDATE treatment_method SET edition = $1 WHERE code = 'D10'", [d10["edition"]]
        )
    assert await facts.ensure_current(timezone=settings.timezone)
    assert (await BatchFact.get(batch_id=batch.id)).mass_kg != Decimal("643.000")


async def test_a_load_treated_while_one_of_its_bags_is_corrected_counts_both(
    client: httpx.AsyncClient, world: World
) -> None:
    """The facility treats a load while, at the same moment, the clinic corrects the quantity
    of a bag in it: the two recordings share the bag's fact. Whichever waits computes it after
    the other committed, so the bag ends treated with its corrected mass, as a rebuild counts
    it, and no sum goes negative."""
    bag, tagging, load = await received_load(client, world)
    secret = world.settings.secret_key
    treated, released = asyncio.Event(), asyncio.Event()

    async def treat() -> None:
        async with in_transaction():
            submission = EventCreate.model_validate(
                event("treated", load, minutes=120, method="D10")
            )
            (result,) = await recorder.record_events(
                principal=world.principals["facility"], submissions=[submission], secret=secret
            )
            assert result.result.status == "applied", result.result
            treated.set()
            await asyncio.wait_for(released.wait(), timeout=10)

    async def correct() -> None:
        await treated.wait()
        async with in_transaction():
            submission = EventCreate.model_validate(
                event("corrected", bag, minutes=121, corrects=tagging, quantity="7")
            )
            (result,) = await recorder.record_events(
                principal=world.principals["clinic"], submissions=[submission], secret=secret
            )
            assert result.result.status == "applied", result.result

    async def release_once_the_correction_waits() -> None:
        await treated.wait()
        watcher = connections.get("default")
        for _ in range(500):
            # A row lock is waited for on the holder's transaction id: no database on it.
            waiting = await watcher.execute_query_dict(
                "SELECT count(*) AS n FROM pg_locks WHERE NOT granted"
            )
            if waiting[0]["n"]:
                break
            await asyncio.sleep(0.01)
        released.set()

    await asyncio.gather(treat(), correct(), release_once_the_correction_waits())
    fact = await BatchFact.get(batch_id=(await Batch.get(code=bag)).id)
    assert (fact.fate, fact.mass_kg) == ("disposed_harmless", 7)
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental
