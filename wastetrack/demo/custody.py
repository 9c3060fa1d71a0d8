"""The demo's plain custody chains and its messy histories: batches tagged and carried to
treatment as custody events, the way the phones record them."""

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from wastetrack.batches.models import Batch
from wastetrack.custody import chain
from wastetrack.demo.scenario import SCENARIO, Demo, after, event


async def load_chains(demo: Demo) -> int:
    """Some 300 batches over the last 60 days, most treated, some still on their way; the
    number of batches tagged."""
    spec = SCENARIO["chains"]
    rng = random.Random(spec["seed"])
    now = datetime.now(UTC)
    count = 0
    for plan in spec["plans"]:
        for _ in range(plan["count"]):
            await _one_chain(demo, spec, plan, rng, now)
            count += 1
    return count


async def _one_chain(
    demo: Demo, spec: dict[str, Any], plan: dict[str, Any], rng: random.Random, now: datetime
) -> None:
    """One batch tagged and, step by step, carried, received and treated. The plant weighs near
    the declared kg, or near the estimate from the catalog's unit mass or density."""
    start = now - timedelta(
        days=rng.uniform(*spec["tagged_days_ago"]), hours=rng.uniform(*spec["tagged_hours_earlier"])
    )
    # Every unit's draw is taken, whichever the plan uses, so each chain uses the generator alike.
    drawn = {
        unit: Decimal(rng.randint(*q["between"])) / q["divided_by"]
        for unit, q in spec["quantity"].items()
    }
    unit = plan["unit"]
    quantity = drawn[unit]
    code = await demo.tag(
        plan["producer"],
        start,
        stream=plan["stream"],
        category=plan["category"],
        quantity=quantity,
        unit=unit,
        **demo.fields(spec["producer_fields"].get(plan["producer"])),
    )
    base = quantity * Decimal(spec["weighed_kg_per_unit"][unit])
    share = Decimal(str(round(rng.uniform(*spec["weighed_share"]), 3)))
    weight = (base * share).quantize(Decimal("0.001"))
    operator = SCENARIO["plant_operators"][plan["facility"]]
    steps = [
        (
            plan["mover"] if step["by"] == "mover" else operator,
            event(
                step["event"],
                code,
                start + after(step["after"]),
                **demo.fields(
                    step.get("fields"),
                    facility=demo.orgs[plan["facility"]].id,
                    weight=weight,
                    method=plan["method"],
                ),
            ),
        )
        for step in spec["steps"]
    ]
    # Recent batches are still on their way; nothing is recorded ahead of the clock.
    recent = start >= now - timedelta(days=spec["still_moving_days"])
    stop = rng.randint(0, len(steps)) if recent else len(steps)
    for who, submission in steps[:stop]:
        if submission.device_time > now:
            break
        await demo.post(who, submission)


async def load_messy_histories(demo: Demo) -> int:
    """What a real month also holds, so the dashboard shows how the definitions treat it: a
    cancelled bag, a rejected load delivered elsewhere, a partial acceptance whose refused
    remainder is treated elsewhere, and corrections of a tagging, a weighing and a treatment
    (docs/metrics.md); the number of batches tagged."""
    spec = SCENARIO["messy_histories"]
    start = datetime.now(UTC) + after(spec["start"])
    for step in spec["steps"]:
        await STEPS[step["kind"]](demo, step, start)
    return int(spec["batches"])


async def _tag(demo: Demo, step: dict[str, Any], start: datetime) -> None:
    """Tag a new batch; its code is saved under the step's `as`."""
    when = start + after(step["at"])
    demo.saved[step["as"]] = await demo.tag(step["who"], when, **demo.fields(step["fields"]))


async def _events(demo: Demo, step: dict[str, Any], start: datetime) -> None:
    """Record events together as one user; an event's id is saved under its `as`."""
    submissions = [
        event(
            spec["event"],
            demo.resolve(spec["batch"]),
            start + after(spec["at"]),
            **demo.fields(spec.get("fields")),
        )
        for spec in step["events"]
    ]
    outcomes = await demo.post(step["who"], *submissions)
    for spec, outcome in zip(step["events"], outcomes, strict=True):
        if "as" in spec:
            demo.saved[spec["as"]] = outcome.result.event_id


async def _remainder(demo: Demo, step: dict[str, Any], start: datetime) -> None:
    """The remainder batch split from a partly accepted one; its code is saved."""
    demo.saved[step["as"]] = (await Batch.get(split_from__code=demo.resolve(step["of"]))).code


async def _first_event(demo: Demo, step: dict[str, Any], start: datetime) -> None:
    """The id of a batch's first event (its tagging), read as the user sees the chain."""
    _, events = await chain.history(
        principal=demo.principals[step["who"]], code=demo.resolve(step["of"])
    )
    demo.saved[step["as"]] = events[0].id


# A step kind per thing a history does, as the data file names it.
STEPS: dict[str, Callable[[Demo, dict[str, Any], datetime], Awaitable[None]]] = {
    "tag": _tag,
    "events": _events,
    "remainder": _remainder,
    "first_event": _first_event,
}
