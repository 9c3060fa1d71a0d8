"""A partial acceptance counts the accepted part at the receiver; the refused part leaves as a
remainder batch of its own (same cohort, rejected, back with whoever delivered it) that follows
its own fate, so the declared mass is counted once (docs/metrics.md §3)."""

import asyncio
import json
import os
import sys
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from tortoise.transactions import in_transaction

from schemas.events import EventCreate
from tests.custody.helpers import collect, post_event, recorded, tag_bag
from tests.factories import CITY_TODAY, World, event
from wastetrack.auth import service as auth
from wastetrack.batches.models import Batch
from wastetrack.cosign import service as cosign
from wastetrack.cosign.models import PinList
from wastetrack.custody import recorder, remainders
from wastetrack.custody.models import CustodyEvent
from wastetrack.registry import agreements
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind
from wastetrack.rollups import service as rollups

JSON = {"Accept": "application/json"}


async def _delivered(
    client: httpx.AsyncClient, world: World, quantity: str = "3.5", unit: str = "kg"
) -> str:
    bag = await tag_bag(
        client,
        world,
        quantity=quantity,
        unit=unit,
        carrier_organization_id=world.orgs["carrier"].id,
    )
    code: str = bag["code"]
    for body in (
        event("collected", code, minutes=10),
        event(
            "in_transit", code, minutes=20, destination_organization_id=world.orgs["facility"].id
        ),
    ):
        response = await post_event(client, world, "carrier", body)
        assert response.status_code == 201, response.text
    return code


def _partial(code: str, weight: str, **fields: Any) -> dict[str, Any]:
    return event(
        "received",
        code,
        minutes=60,
        outcome="partially_accepted",
        weight_kg=weight,
        reason="two bags torn",
        **fields,
    )


async def _receive_in_part(
    client: httpx.AsyncClient, world: World, code: str, weight: str, **fields: Any
) -> dict[str, Any]:
    response = await post_event(client, world, "facility", _partial(code, weight, **fields))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _batch(client: httpx.AsyncClient, world: World, who: str, code: str) -> dict[str, Any]:
    response = await client.get(f"/m/v1/batches/{code}", headers=world.headers(who))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _remainder_of(client: httpx.AsyncClient, world: World, code: str) -> dict[str, Any]:
    (remainder,) = (await _batch(client, world, "clinic", code))["remainders"]
    return await _batch(client, world, "carrier", remainder)


async def _utilization(
    client: httpx.AsyncClient, world: World, category: str = "med.infectious"
) -> dict[str, Any]:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    response = await client.get(
        "/m/v1/metrics/utilization",
        params={"date_from": (today - timedelta(days=1)).isoformat(), "date_to": today.isoformat()},
        headers=world.headers("manager"),
    )
    assert response.status_code == 200, response.text
    (cell,) = [c for c in response.json()["categories"] if c["category"] == category]
    return dict(cell)


async def test_partial_acceptance_splits_the_refused_part_into_a_rejected_remainder(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    receipt = await _receive_in_part(client, world, code, "2.0")
    assert receipt["state"] == "received"
    original = await _batch(client, world, "clinic", code)
    remainder = await _remainder_of(client, world, code)
    assert remainder["code"] != code and remainder["split_from"] == code
    assert Decimal(remainder["quantity"]) == Decimal("1.5") and remainder["unit"] == "kg"
    assert remainder["state"] == "rejected"
    assert remainder["tagged_at"] == original["tagged_at"]  # the same cohort
    assert (remainder["stream"], remainder["category"]) == ("medical", "med.infectious")
    assert remainder["producer_id"] == world.orgs["clinic"].id
    assert remainder["holder_id"] == world.orgs["carrier"].id
    events = (
        await client.get(
            f"/m/v1/batches/{remainder['code']}/events", headers=world.headers("carrier")
        )
    ).json()
    assert [(e["event_type"], e["state_after"], e["outcome"]) for e in events] == [
        ("tagged", "tagged", None),
        ("received", "rejected", "rejected"),
    ]
    assert events[0]["details"]["split_from"] == code
    assert {e["organization_id"] for e in events} == {world.orgs["facility"].id}
    verified = await client.get(
        f"/m/v1/batches/{remainder['code']}/verify", headers=world.headers("carrier")
    )
    assert verified.json()["valid"] is True
    history = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
    ).json()
    assert history[-1]["details"]["remainder"] == remainder["code"]
    assert history[-1]["details"]["refused_kg"] == "1.500"


async def test_the_link_shows_both_ways_on_scan_and_public_pages(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    await _receive_in_part(client, world, code, "2.0")
    remainder = await _remainder_of(client, world, code)
    scanned = await client.get(
        "/m/v1/scan", params={"qr": remainder["qr_url"]}, headers=world.headers("carrier")
    )
    assert scanned.json()["batch"]["split_from"] == code
    original = await client.get("/m/v1/scan", params={"qr": code}, headers=world.headers("clinic"))
    assert original.json()["batch"]["remainders"] == [remainder["code"]]
    public = await client.get(remainder["qr_url"].removeprefix("http://testserver"), headers=JSON)
    assert public.json()["split_from"] == code
    page = await client.get(
        (await _batch(client, world, "clinic", code))["qr_url"].removeprefix("http://testserver")
    )
    assert remainder["code"] in page.text and "拒收部分" in page.text


async def test_a_stated_refused_mass_wins_and_a_partial_acceptance_refuses_a_part(
    client: httpx.AsyncClient, world: World
) -> None:
    """A partial acceptance weighed at or above the 3.5 kg declared, no part stated, refused
    nothing: it was kept as `partially_accepted` with no remainder, a receipt saying part was
    refused of a batch received whole (custody review). It is a 422 naming `weight_kg` (an
    acceptance says so), nothing written; stating the part refused splits it off."""
    stated = await _delivered(client, world)
    await _receive_in_part(client, world, stated, "2.0", refused_kg="1.2")
    assert Decimal((await _remainder_of(client, world, stated))["quantity"]) == Decimal("1.2")
    heavier = await _delivered(client, world)
    for weight in ("3.5", "3.6"):
        response = await post_event(client, world, "facility", _partial(heavier, weight))
        assert (response.status_code, response.json()["field"]) == (422, "weight_kg")
        assert "refuses nothing" in response.json()["detail"]
    assert (await _batch(client, world, "clinic", heavier))["state"] == "in_transit"
    await _receive_in_part(client, world, heavier, "3.6", refused_kg="0.4")
    assert Decimal((await _remainder_of(client, world, heavier))["quantity"]) == Decimal("0.4")
    # Corrected so, a partial receipt refuses nothing either: its part stays as it was.
    weighed = await _delivered(client, world)
    receipt = await _receive_in_part(client, world, weighed, "2.0")
    fix = event("corrected", weighed, minutes=70, corrects=receipt["event_id"], weight_kg="3.5")
    response = await post_event(client, world, "facility", fix)
    assert (response.status_code, response.json()["field"]) == (422, "weight_kg")
    assert "correct the outcome to accepted" in response.json()["detail"]
    assert Decimal((await _remainder_of(client, world, weighed))["quantity"]) == Decimal("1.5")
    # An acceptance corrected into a partial one at its weight: the refusal says what to do
    # (it told the user to correct the outcome to accepted, as it was: diff review).
    whole = await _delivered(client, world)
    taken = event("received", whole, minutes=60, outcome="accepted", weight_kg="3.6")
    receipt = await post_event(client, world, "facility", taken)
    assert receipt.status_code == 201, receipt.text
    fix = event(
        "corrected", whole, minutes=70, corrects=receipt.json()["event_id"], reason="two bags torn"
    )
    response = await post_event(client, world, "facility", {**fix, "outcome": "partially_accepted"})
    assert (response.status_code, response.json()["field"]) == (422, "weight_kg")
    assert "leave the outcome as it is" in response.json()["detail"]


async def test_refused_kg_belongs_to_a_partial_acceptance_only(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    body = event("received", code, minutes=60, outcome="accepted", weight_kg="3.5", refused_kg="1")
    response = await post_event(client, world, "facility", body)
    assert response.status_code == 422
    assert response.json()["field"] == "refused_kg"


async def test_a_part_is_lighter_than_the_declaration_it_is_refused_from(
    client: httpx.AsyncClient, world: World
) -> None:
    """Refusing all 3.5 kg declared, or more, is a rejection: as a part it would leave nothing
    declared for the accepted weighing to be set against. Nothing is written."""
    code = await _delivered(client, world)
    for refused in ("3.5", "9"):
        response = await post_event(
            client, world, "facility", _partial(code, "2.0", refused_kg=refused)
        )
        assert (response.status_code, response.json()["field"]) == (422, "refused_kg")
    assert (await _batch(client, world, "clinic", code))["state"] == "in_transit"


async def test_a_partial_acceptance_accepts_more_than_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    """Weighed at 0 kg, a "partial" acceptance would split off the whole declaration and leave
    the batch received at nothing: it is a rejection, received or corrected so. Nothing is
    written."""
    code = await _delivered(client, world)
    for fields in ({}, {"refused_kg": "1.2"}):
        response = await post_event(client, world, "facility", _partial(code, "0", **fields))
        assert (response.status_code, response.json()["field"]) == (422, "weight_kg")
    assert (await _batch(client, world, "clinic", code))["state"] == "in_transit"
    receipt = await _receive_in_part(client, world, code, "2.0")
    fix = event("corrected", code, minutes=70, corrects=receipt["event_id"], weight_kg="0")
    response = await post_event(client, world, "facility", fix)
    assert (response.status_code, response.json()["field"]) == (422, "weight_kg")
    remainder = await _remainder_of(client, world, code)
    assert Decimal(remainder["quantity"]) == Decimal("1.5")


async def test_a_load_is_not_accepted_in_part(client: httpx.AsyncClient, world: World) -> None:
    """Its mass is its bags': a part refused from the load would be counted beside them."""
    carrier = world.orgs["carrier"].id
    bags = [
        await tag_bag(client, world, carrier_organization_id=carrier, quantity="5")
        for _ in range(2)
    ]
    load = (
        await tag_bag(
            client,
            world,
            "carrier",
            producer_organization_id=carrier,
            category="med.hw01",
            quantity="9",
        )
    )["code"]
    await collect(client, world, *(b["code"] for b in bags), minutes=2)
    for body in (
        event("aggregated", load, minutes=3, children=[b["code"] for b in bags]),
        event("collected", load, minutes=10),
        event(
            "in_transit", load, minutes=20, destination_organization_id=world.orgs["facility"].id
        ),
    ):
        response = await post_event(client, world, "carrier", body)
        assert response.status_code == 201, response.text
    in_transit = response.json()["event_id"]
    refused = await post_event(client, world, "facility", _partial(load, "6"))  # 3 kg refused
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "outcome"
    # Refused beside another post that writes the load in the same call: the load is written
    # as that post left it, not as the refused receipt began to change it.
    fix = event("corrected", load, minutes=30, corrects=in_transit, latitude=37.2, longitude=122.4)
    async with in_transaction():
        first, second = await recorder.record_posts(
            [
                (world.principals["facility"], EventCreate.model_validate(_partial(load, "6"))),
                (world.principals["carrier"], EventCreate.model_validate(fix)),
            ],
            secret=world.settings.secret_key,
        )
    assert (first.result.status, second.result.status) == ("rejected", "applied")
    row = await Batch.get(code=load)
    assert (row.state, row.holder_id, row.destination_id) == (
        "in_transit",
        carrier,
        world.orgs["facility"].id,
    )
    assert await Batch.filter(split_from_id__isnull=False).count() == 0


async def test_a_batch_is_accepted_in_part_once(client: httpx.AsyncClient, world: World) -> None:
    """A second partial acceptance would be set against the whole declared mass again,
    counting the first refused part twice."""
    code = await _delivered(client, world, quantity="10")
    await _receive_in_part(client, world, code, "6")
    stored = await post_event(client, world, "facility", event("stored", code, minutes=70))
    assert stored.status_code == 201, stored.text
    again = await post_event(
        client,
        world,
        "facility",
        {**_partial(code, "5"), "device_time": event("x", minutes=80)["device_time"]},
    )
    assert again.status_code == 409, again.text
    assert again.json()["field"] == "outcome"
    assert "partially accepted before" in again.json()["detail"]
    assert len((await _batch(client, world, "clinic", code))["remainders"]) == 1


async def test_a_part_refused_against_an_estimate_is_an_estimate(
    client: httpx.AsyncClient, world: World
) -> None:
    """A bag counted in m³ is set against the catalog's estimate (0.02 m³ × 150 kg/m³ = 3 kg):
    the part refused from it is as much an estimate, and no declaration for the mass balance or
    a weight alert, unless the receiver stated it."""
    estimated = await _delivered(client, world, quantity="0.02", unit="m3")
    await _receive_in_part(client, world, estimated, "2.0")
    stated = await _delivered(client, world, quantity="0.02", unit="m3")
    await _receive_in_part(client, world, stated, "2.0", refused_kg="0.5")
    parts = [await _remainder_of(client, world, code) for code in (estimated, stated)]
    assert [Decimal(part["quantity"]) for part in parts] == [Decimal("1"), Decimal("0.5")]
    cell = await _utilization(client, world)
    assert Decimal(cell["generated_kg"]) == Decimal("5.5")  # 2.0 + 1.0 + 2.0 + 0.5
    assert Decimal(cell["estimated_share"]["numerator"]) == Decimal("1")
    # The part now weighed is no estimate, and its weighing has no declaration to meet.
    for who, body in (
        (
            "carrier",
            event(
                "in_transit",
                parts[0]["code"],
                minutes=80,
                destination_organization_id=world.orgs["facility"].id,
            ),
        ),
        (
            "facility",
            event("received", parts[0]["code"], minutes=90, outcome="accepted", weight_kg="0.5"),
        ),
    ):
        response = await post_event(client, world, who, body)
        assert response.status_code == 201, response.text
    cell = await _utilization(client, world)
    assert Decimal(cell["estimated_share"]["numerator"]) == 0
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    balance = await client.get(
        "/m/v1/metrics/mass-balance",
        params={"date_from": (today - timedelta(days=1)).isoformat(), "date_to": today.isoformat()},
        headers=world.headers("manager"),
    )
    assert balance.status_code == 200, balance.text
    assert balance.json()["categories"] == [], balance.text
    # Nor is it a declaration the weighing could differ from (0.5 kg against 1 kg estimated).
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    alerts = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    assert [a for a in alerts if a["kind"] == "weight_discrepancy"] == []
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental


async def test_a_part_of_a_batch_of_no_known_mass_is_stated_or_the_receipt_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """Five items of a category without a unit mass declare no mass to set a weighing
    against: a partial acceptance without `refused_kg` was recorded with no part split off,
    the refused waste counted nowhere. It is refused naming `refused_kg`, as is a correction
    into one naming `outcome`; nothing is written. With the part stated, it is split off."""
    code = await _delivered(client, world, quantity="5", unit="count")
    events = await CustodyEvent.filter(batch__code=code).count()
    refused = await post_event(client, world, "facility", _partial(code, "2.0"))
    assert (refused.status_code, refused.json()["field"]) == (422, "refused_kg"), refused.text
    assert await CustodyEvent.filter(batch__code=code).count() == events
    assert (await _batch(client, world, "carrier", code))["state"] == "in_transit"
    await _receive_in_part(client, world, code, "2.0", refused_kg="1.5")
    assert Decimal((await _remainder_of(client, world, code))["quantity"]) == Decimal("1.5")
    whole = await _delivered(client, world, quantity="5", unit="count")
    accepted = event("received", whole, minutes=60, outcome="accepted", weight_kg="2.0")
    receipt = await post_event(client, world, "facility", accepted)
    assert receipt.status_code == 201, receipt.text
    into_part = event(
        "corrected",
        whole,
        minutes=70,
        corrects=receipt.json()["event_id"],
        outcome="partially_accepted",
        reason="two bags torn",
    )
    fixed = await post_event(client, world, "facility", into_part)
    assert (fixed.status_code, fixed.json()["field"]) == (422, "outcome"), fixed.text
    assert (await _batch(client, world, "facility", whole))["remainders"] == []


async def test_a_weight_correction_of_a_partial_receipt_recorded_before_that_rule_stands(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial receipt of items of no known mass recorded before the rule split nothing off;
    correcting its weight, which splits nothing off either, still stands (a correction cannot
    state the part the rule asks for)."""
    code = await _delivered(client, world, quantity="5", unit="count")
    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr(remainders, "refused_kg", lambda *args, **kwargs: None)
        receipt = await _receive_in_part(client, world, code, "2.0")
    fix = event("corrected", code, minutes=70, corrects=receipt["event_id"], weight_kg="2.4")
    fixed = await post_event(client, world, "facility", fix)
    assert fixed.status_code == 201, fixed.text
    # A form sends the outcome again with the weight: still no change into a partial one.
    again = event(
        "corrected",
        code,
        minutes=75,
        corrects=receipt["event_id"],
        outcome="partially_accepted",
        weight_kg="2.3",
    )
    fixed = await post_event(client, world, "facility", again)
    assert fixed.status_code == 201, fixed.text
    assert (await _batch(client, world, "facility", code))["remainders"] == []


async def test_a_remainder_re_delivered_elsewhere_is_counted_once_where_it_is_treated(
    client: httpx.AsyncClient, world: World, tmp_path: Path, database_url: str
) -> None:
    await registry.add_licence(
        organization_id=world.orgs["unlicensed"].id,
        category_key="med.hw01",
        method_codes=["D10"],
    )
    code = await _delivered(client, world)
    await _receive_in_part(client, world, code, "2.0")
    remainder = (await _remainder_of(client, world, code))["code"]
    cell = await _utilization(client, world)
    assert cell["batches"] == 2
    assert Decimal(cell["generated_kg"]) == Decimal("3.5")  # 2.0 accepted + 1.5 refused
    assert Decimal(cell["fates"]["rejected"]["numerator"]) == Decimal("1.5")
    for who, body in (
        (
            "carrier",
            event(
                "in_transit",
                remainder,
                minutes=80,
                destination_organization_id=world.orgs["unlicensed"].id,
            ),
        ),
        (
            "unlicensed",
            event("received", remainder, minutes=90, outcome="accepted", weight_kg="1.4"),
        ),
        ("unlicensed", event("treated", remainder, minutes=100, method="D10")),
        ("facility", event("treated", code, minutes=110, method="D10")),
    ):
        response = await post_event(client, world, who, body)
        assert response.status_code == 201, response.text
    cell = await _utilization(client, world)
    assert cell["batches"] == 2
    assert Decimal(cell["generated_kg"]) == Decimal("3.4")  # each part as weighed where treated
    assert Decimal(cell["harmless_treatment_rate"]["numerator"]) == Decimal("3.4")
    assert Decimal(cell["fates"].get("rejected", {}).get("numerator", 0)) == 0
    incremental = await rollups.snapshot()
    rebuild = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wastetrack.cli",
        "rollups-rebuild",
        env={
            **os.environ,
            "WASTETRACK_DATABASE_URL": database_url,
            "WASTETRACK_DATA_DIR": str(tmp_path),
            "WASTETRACK_SECRET_KEY": "cli-test-secret-" + "z" * 32,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(rebuild.communicate(), timeout=120)
    assert rebuild.returncode == 0, stderr.decode()
    assert json.loads(stdout.decode().strip().splitlines()[-1])["rollup_rows"] > 0
    assert await rollups.snapshot() == incremental


async def test_a_weight_correction_resizes_the_remainder_and_an_acceptance_cancels_it(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    receipt = await _receive_in_part(client, world, code, "2.0")
    remainder = (await _remainder_of(client, world, code))["code"]
    fix = event("corrected", code, minutes=70, corrects=receipt["event_id"], weight_kg="2.5")
    assert (await post_event(client, world, "facility", fix)).status_code == 201
    assert Decimal((await _batch(client, world, "carrier", remainder))["quantity"]) == Decimal(
        "1.0"
    )
    assert Decimal((await _utilization(client, world))["generated_kg"]) == Decimal("3.5")
    accept = event("corrected", code, minutes=75, corrects=receipt["event_id"], outcome="accepted")
    assert (await post_event(client, world, "facility", accept)).status_code == 201
    assert (await _batch(client, world, "carrier", remainder))["state"] == "cancelled"
    cell = await _utilization(client, world)
    assert (cell["batches"], Decimal(cell["generated_kg"])) == (1, Decimal("2.5"))
    assert await CustodyEvent.filter(batch__code=remainder).count() == 4


async def test_a_correction_is_refused_once_the_remainder_has_moved_on(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    receipt = await _receive_in_part(client, world, code, "2.0")
    remainder = (await _remainder_of(client, world, code))["code"]
    moved = event(
        "in_transit", remainder, minutes=80, destination_organization_id=world.orgs["unlicensed"].id
    )
    assert (await post_event(client, world, "carrier", moved)).status_code == 201
    fix = event("corrected", code, minutes=90, corrects=receipt["event_id"], weight_kg="2.5")
    refused = await post_event(client, world, "facility", fix)
    assert refused.status_code == 409
    assert refused.json()["field"] == "weight_kg"
    assert remainder in refused.json()["detail"]
    assert Decimal((await _batch(client, world, "carrier", remainder))["quantity"]) == Decimal(
        "1.5"
    )
    unchanged = event("corrected", code, minutes=95, corrects=receipt["event_id"], note="ok")
    assert (await post_event(client, world, "facility", unchanged)).status_code == 201
    # A part the receiver stated stays as it is whatever the weight: the correction that
    # changes nothing of it stands.
    stated = await _delivered(client, world)
    receipt = await _receive_in_part(client, world, stated, "2.0", refused_kg="1.2")
    part = (await _remainder_of(client, world, stated))["code"]
    moved = event(
        "in_transit", part, minutes=80, destination_organization_id=world.orgs["unlicensed"].id
    )
    assert (await post_event(client, world, "carrier", moved)).status_code == 201
    fix = event("corrected", stated, minutes=90, corrects=receipt["event_id"], weight_kg="2.2")
    assert (await post_event(client, world, "facility", fix)).status_code == 201
    assert Decimal((await _batch(client, world, "carrier", part))["quantity"]) == Decimal("1.2")


async def test_a_replayed_sync_makes_the_remainder_once(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    body = _partial(code, "2.0")
    for expected in ("applied", "duplicate"):
        response = await client.post(
            "/m/v1/sync", json={"events": [body]}, headers=world.headers("facility")
        )
        assert response.json()["results"][0]["status"] == expected
    original = await Batch.get(code=code)
    assert await Batch.filter(split_from_id=original.id).count() == 1
    cell = await _utilization(client, world)
    assert (cell["batches"], Decimal(cell["generated_kg"])) == (2, Decimal("3.5"))


async def test_a_corrected_tagging_time_moves_the_remainder_with_its_original(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    await _receive_in_part(client, world, code, "2.0")
    remainder = (await _remainder_of(client, world, code))["code"]
    history = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
    ).json()
    for wrong in ("1999-12-31T15:59:59+00:00", "2999-01-01T00:00:00+08:00"):  # a clock's error
        refused = event("corrected", code, minutes=70, corrects=history[0]["id"], event_time=wrong)
        answer = await post_event(client, world, "clinic", refused)
        assert (answer.status_code, answer.json()["field"]) == (422, "event_time"), answer.text
    earlier = datetime.fromisoformat(history[0]["device_time"]) - timedelta(days=1)
    fix = event(
        "corrected", code, minutes=70, corrects=history[0]["id"], event_time=earlier.isoformat()
    )
    assert (await post_event(client, world, "clinic", fix)).status_code == 201
    moved = await _batch(client, world, "carrier", remainder)
    assert datetime.fromisoformat(moved["tagged_at"]) == earlier
    assert datetime.fromisoformat((await _batch(client, world, "clinic", code))["tagged_at"]) == (
        earlier
    )


async def test_a_remainders_own_tagging_time_is_not_corrected(
    client: httpx.AsyncClient, world: World
) -> None:
    """The refused part was tagged when its original was, in the same cohort: the receiver
    that recorded its tagging cannot move it to another day, away from the accepted part."""
    code = await _delivered(client, world)
    await _receive_in_part(client, world, code, "2.0")
    remainder = await _remainder_of(client, world, code)
    tagging = (
        await client.get(
            f"/m/v1/batches/{remainder['code']}/events", headers=world.headers("carrier")
        )
    ).json()[0]
    earlier = datetime.fromisoformat(remainder["tagged_at"]) - timedelta(days=1)
    fix = event(
        "corrected",
        remainder["code"],
        minutes=70,
        corrects=tagging["id"],
        event_time=earlier.isoformat(),
    )
    refused = await post_event(client, world, "facility", fix)
    assert (refused.status_code, refused.json()["field"]) == (409, "event_time"), refused.text
    kept = await _batch(client, world, "carrier", remainder["code"])
    assert kept["tagged_at"] == remainder["tagged_at"]


async def test_a_remainder_takes_its_originals_corrected_category_and_keeps_its_size(
    client: httpx.AsyncClient, world: World
) -> None:
    """The remainder is the same waste: a corrected category carries over to it. The refused
    part was sized against the declared quantity, so the declaration is no longer corrected
    (the receipt is, which resizes the remainder)."""
    code = await _delivered(client, world)
    await _receive_in_part(client, world, code, "2.0")
    remainder = (await _remainder_of(client, world, code))["code"]
    tagging = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
    ).json()[0]["id"]
    fix = event("corrected", code, minutes=70, corrects=tagging, category="med.sharps")
    assert (await post_event(client, world, "clinic", fix)).status_code == 201
    assert (await _batch(client, world, "carrier", remainder))["category"] == "med.sharps"
    resized = event("corrected", code, minutes=71, corrects=tagging, quantity="5")
    refused = await post_event(client, world, "clinic", resized)
    assert (refused.status_code, refused.json()["field"]) == (409, "quantity"), refused.text
    assert Decimal((await _batch(client, world, "clinic", code))["quantity"]) == Decimal("3.5")


async def test_a_remainders_own_category_stays_when_only_its_originals_time_is_corrected(
    client: httpx.AsyncClient, world: World
) -> None:
    """A refused part in kg may take a category of its own; correcting only its original's
    tagging time carries the time over, not the original's category: it moved the part's
    kilograms back into the original's category in every figure. Restating the category as
    it is (a form sends every field again) corrects only the time too."""
    code = await _delivered(client, world)
    await _receive_in_part(client, world, code, "2.0")
    remainder = (await _remainder_of(client, world, code))["code"]
    own = (
        await client.get(f"/m/v1/batches/{remainder}/events", headers=world.headers("manager"))
    ).json()[0]["id"]
    fix = event("corrected", remainder, minutes=70, corrects=own, category="med.sharps")
    assert (await post_event(client, world, "manager", fix)).status_code == 201
    history = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
    ).json()
    earlier = datetime.fromisoformat(history[0]["device_time"]) - timedelta(minutes=10)
    moved = event(
        "corrected", code, minutes=71, corrects=history[0]["id"], event_time=earlier.isoformat()
    )
    assert (await post_event(client, world, "clinic", moved)).status_code == 201
    restated = {**moved, "client_event_id": str(uuid.uuid4()), "category": "med.infectious"}
    restated["event_time"] = (earlier - timedelta(minutes=1)).isoformat()
    earlier -= timedelta(minutes=1)
    assert (await post_event(client, world, "clinic", restated)).status_code == 201
    part = await _batch(client, world, "manager", remainder)
    assert (part["category"], datetime.fromisoformat(part["tagged_at"])) == ("med.sharps", earlier)
    original = await _batch(client, world, "clinic", code)
    assert original["category"] != "med.sharps"
    sharps = await _utilization(client, world, "med.sharps")
    assert Decimal(sharps["generated_kg"]) == Decimal(part["quantity"])
    accepted = await _utilization(client, world, original["category"])
    assert Decimal(accepted["generated_kg"]) == Decimal("2.0")


async def _correct_category(
    client: httpx.AsyncClient, world: World, code: str, category: str, minutes: int
) -> None:
    tagging = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("manager"))
    ).json()[0]["id"]
    fix = event("corrected", code, minutes=minutes, corrects=tagging, category=category)
    answer = await post_event(client, world, "manager", fix)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("middle_held", ["its own", "the original's"])
async def test_a_corrected_category_reaches_a_remainders_remainder(
    client: httpx.AsyncClient, world: World, middle_held: str
) -> None:
    """A → B (its refused part) → C (a part refused of B delivered again), C with a category
    of its own: the original corrected, the whole line takes its category, whether or not B
    held it already (the walk stopped at a B that did)."""
    a = await _delivered(client, world)
    await _receive_in_part(client, world, a, "2.0")
    b = (await _remainder_of(client, world, a))["code"]
    if middle_held == "its own":
        await _correct_category(client, world, b, "med.sharps", 70)
    onward = event(
        "in_transit", b, minutes=80, destination_organization_id=world.orgs["facility"].id
    )
    again = event(
        "received", b, minutes=90, outcome="partially_accepted", weight_kg="1.0", reason="torn"
    )
    for who, body in (("carrier", onward), ("facility", again)):
        answer = await post_event(client, world, who, body)
        assert answer.status_code == 201, answer.text
    (c,) = (await _batch(client, world, "manager", b))["remainders"]
    await _correct_category(client, world, c, "med.pathological", 95)
    await _correct_category(client, world, a, "med.sharps", 100)
    held = [(await _batch(client, world, "manager", code))["category"] for code in (a, b, c)]
    assert held == ["med.sharps"] * 3


async def test_a_receipt_corrected_to_partial_after_later_steps_returns_the_part_to_its_deliverer(
    client: httpx.AsyncClient, world: World
) -> None:
    """The refused part goes back to whoever delivered the batch, as the receipt recorded it,
    not to whoever holds the batch when the correction comes."""
    code = await _delivered(client, world)
    accepted = event("received", code, minutes=60, outcome="accepted", weight_kg="3.5")
    receipt = await post_event(client, world, "facility", accepted)
    assert receipt.status_code == 201, receipt.text
    onward = event("handed_over", code, minutes=70, to_organization_id=world.orgs["unlicensed"].id)
    assert (await post_event(client, world, "facility", onward)).status_code == 201
    fix = event(
        "corrected",
        code,
        minutes=80,
        corrects=receipt.json()["event_id"],
        outcome="partially_accepted",
        weight_kg="2.0",
        reason="two bags torn",
    )
    fixed = await post_event(client, world, "facility", fix)
    assert fixed.status_code == 201, fixed.text
    remainder = await _remainder_of(client, world, code)
    assert (remainder["state"], remainder["holder_id"]) == ("rejected", world.orgs["carrier"].id)
    assert Decimal(remainder["quantity"]) == Decimal("1.5")


async def _passed_on_and_refused(
    client: httpx.AsyncClient, world: World, code: str, *, to: int
) -> None:
    """The facility accepts the bag delivered to it, hands it on to `to` (the unlicensed
    site), which refuses it back to the facility."""
    await recorded(
        client,
        world,
        "facility",
        event("received", code, minutes=20, outcome="accepted", weight_kg="3.5"),
    )
    await recorded(
        client, world, "facility", event("handed_over", code, minutes=30, to_organization_id=to)
    )
    await recorded(
        client,
        world,
        "unlicensed",
        event("received", code, minutes=40, outcome="rejected", reason="not ours"),
    )


async def test_what_is_refused_goes_back_to_whoever_handed_it_over(
    client: httpx.AsyncClient, world: World
) -> None:
    """A batch the receiver was handed goes back, refused, to whoever handed it over — the
    clinic that brought its own bag, the facility that passed on what it had accepted — not to
    the carrier named at tagging or one that handed it on earlier."""
    clinic, carrier = world.orgs["clinic"].id, world.orgs["carrier"].id
    f1, f2 = world.orgs["facility"].id, world.orgs["unlicensed"].id
    await registry.add_licence(organization_id=f2, category_key="med.hw01", method_codes=["D10"])
    # The clinic names a carrier, then brings the bags to the facility itself.
    whole = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    part = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    for code in (whole, part):
        await recorded(
            client, world, "clinic", event("handed_over", code, minutes=10, to_organization_id=f1)
        )
    await recorded(
        client,
        world,
        "facility",
        event("received", whole, minutes=20, outcome="rejected", reason="leaking"),
    )
    await recorded(
        client,
        world,
        "facility",
        event(
            "received",
            part,
            minutes=20,
            outcome="partially_accepted",
            weight_kg="2.0",
            reason="wet",
        ),
    )
    remainder = await Batch.get(split_from__code=part)
    assert (await Batch.get(code=whole)).holder_id == remainder.holder_id == clinic
    # A carrier's bag, accepted by one facility and handed on to another, which refuses it.
    code = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    await recorded(client, world, "carrier", event("collected", code, minutes=5))
    await recorded(
        client,
        world,
        "carrier",
        event("in_transit", code, minutes=10, destination_organization_id=f1),
    )
    await _passed_on_and_refused(client, world, code, to=f2)
    refused = await Batch.get(code=code)
    assert (refused.state, refused.holder_id) == ("rejected", f1)
    receipt = await CustodyEvent.get(batch_id=refused.id, event_type="received", organization_id=f2)
    assert receipt.details["delivered_by"] == f1


async def test_a_carrier_picks_up_what_was_refused_from_its_deliverer_never_from_its_producer(
    client: httpx.AsyncClient, world: World
) -> None:
    """The carrier named on a clinic's bag picks it up where it was refused from whoever
    delivered it, but a bag (or its refused part) back with the clinic that brought it in itself
    is in its producer's hands: the clinic hands it over again (for a tagged bag the carrier's
    taking it would have been a collection, with the producer's PIN where the stream asks)."""
    clinic, carrier = world.orgs["clinic"].id, world.orgs["carrier"].id
    f1, f2 = world.orgs["facility"].id, world.orgs["unlicensed"].id
    await registry.add_licence(organization_id=f2, category_key="med.hw01", method_codes=["D10"])
    whole = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    part = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    for code in (whole, part):
        await recorded(
            client, world, "clinic", event("handed_over", code, minutes=10, to_organization_id=f1)
        )
    refusals = {
        whole: {"outcome": "rejected", "reason": "leaking"},
        part: {"outcome": "partially_accepted", "weight_kg": "2.0", "reason": "wet"},
    }
    for code, refusal in refusals.items():
        await recorded(client, world, "facility", event("received", code, minutes=20, **refusal))
    remainder = (await Batch.get(split_from__code=part)).code
    for code in (whole, remainder):
        before = await CustodyEvent.all().count()
        taken = await post_event(client, world, "carrier", event("in_transit", code, minutes=30))
        assert (taken.status_code, taken.json()["field"]) == (403, "batch"), taken.text
        assert await CustodyEvent.all().count() == before
        scan = await client.get("/m/v1/scan", params={"qr": code}, headers=world.headers("carrier"))
        assert "in_transit" not in scan.json()["actions"], scan.json()
        await recorded(
            client,
            world,
            "clinic",
            event("handed_over", code, minutes=31, to_organization_id=carrier),
        )
        await recorded(client, world, "carrier", event("in_transit", code, minutes=32))
        assert (await Batch.get(code=code)).holder_id == carrier != clinic
    # Passed on by the facility that accepted it and refused back to that facility, the bag is
    # its deliverer's, not its producer's: its carrier picks it up there.
    code = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    await recorded(
        client, world, "clinic", event("handed_over", code, minutes=10, to_organization_id=f1)
    )
    await _passed_on_and_refused(client, world, code, to=f2)
    await recorded(client, world, "carrier", event("in_transit", code, minutes=50))
    assert (await Batch.get(code=code)).holder_id == carrier


async def _pins(client: httpx.AsyncClient, world: World, organization_id: int) -> list[str]:
    """A PIN list the manager issues to a producer: its codes."""
    issued = await client.post(
        f"/m/v1/organizations/{organization_id}/pins", headers=world.headers("manager")
    )
    assert issued.status_code == 201, issued.text
    return cosign.list_codes(
        secret=world.settings.secret_key,
        pin_list=await PinList.get(organization_id=organization_id),
    )


async def test_a_bag_refused_back_to_its_clinic_is_collected_again_with_its_pin(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic brought its own bag to the facility, which refused it; then the clinic's only
    user left, so its waste leaves it with its PIN (medical `producer_pin: without_users`). Its
    carrier does not drive off with it, but collects it again as a tagged bag is: with the
    PIN, never without (diff review of 80df57f: the bag was stuck with nobody able to move it)."""
    clinic, carrier = world.orgs["clinic"].id, world.orgs["carrier"].id
    code = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    await recorded(
        client,
        world,
        "clinic",
        event("handed_over", code, minutes=10, to_organization_id=world.orgs["facility"].id),
    )
    await recorded(
        client,
        world,
        "facility",
        event("received", code, minutes=20, outcome="rejected", reason="leaking"),
    )
    await auth.deactivate_user(user_id=world.users["clinic"].id)
    pins = await _pins(client, world, clinic)
    scan = await client.get("/m/v1/scan", params={"qr": code}, headers=world.headers("carrier"))
    assert "collected" in scan.json()["actions"], scan.json()
    driven_off = await post_event(client, world, "carrier", event("in_transit", code, minutes=30))
    assert driven_off.status_code == 403, driven_off.text
    unconfirmed = await post_event(client, world, "carrier", event("collected", code, minutes=31))
    assert (unconfirmed.status_code, unconfirmed.json()["field"]) == (422, "producer_pin")
    await recorded(
        client, world, "carrier", event("collected", code, minutes=32, producer_pin=pins[0])
    )
    batch = await Batch.get(code=code)
    assert (batch.state, batch.holder_id) == ("collected", carrier)
    taken = await CustodyEvent.get(batch_id=batch.id, event_type="collected")
    assert taken.details["producer_confirmed"] == "pin"


async def test_a_bag_handed_back_to_its_clinic_is_collected_again_and_from_nobody_else(
    client: httpx.AsyncClient, world: World
) -> None:
    """A village clinic with no account: its carrier collects a bag with its PIN, the facility
    refuses it, and the carrier hands it back to the clinic. The carrier collects it again with
    the next PIN (the bag was stuck: `collected` followed `tagged` only). A batch another holds
    is not collected: it moves with its holder."""
    carrier, facility = world.orgs["carrier"].id, world.orgs["facility"].id
    farm = await registry.create_organization(
        name="西村卫生室",
        kind=OrganizationKind.clinic,
        region_id=world.regions["village"].id,
        bed_count=0,
    )
    await agreements.create_service_agreement(
        provider_organization_id=carrier,
        client_organization_id=farm.id,
        streams=["medical"],
        valid_from=CITY_TODAY - timedelta(days=30),
    )
    pins = await _pins(client, world, farm.id)
    code = (await tag_bag(client, world, "carrier", producer_organization_id=farm.id))["code"]
    steps = [
        event("collected", code, minutes=10, producer_pin=pins[0]),
        event("in_transit", code, minutes=20, destination_organization_id=facility),
        event("received", code, minutes=30, outcome="rejected", reason="not sorted"),
        event("handed_over", code, minutes=60, to_organization_id=farm.id),
        event("collected", code, minutes=90, producer_pin=pins[1]),
    ]
    for step in steps:
        await recorded(
            client, world, "facility" if step["event_type"] == "received" else "carrier", step
        )
    assert (await Batch.get(code=code)).holder_id == carrier
    # The clinic's own bag, handed over to the facility: the carrier does not collect it there.
    other = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    await recorded(
        client,
        world,
        "clinic",
        event("handed_over", other, minutes=10, to_organization_id=facility),
    )
    refused = await post_event(client, world, "carrier", event("collected", other, minutes=20))
    assert (refused.status_code, refused.json()["field"]) == (403, "batch"), refused.text
    assert "only while its producer holds it" in refused.json()["detail"]


async def test_a_bag_handed_back_and_stored_by_its_clinic_is_collected_again(
    client: httpx.AsyncClient, world: World
) -> None:
    """A bag handed back to its clinic and stored there (贮存, which the clinic as its holder
    may record) is still in its producer's hands: it is collected again, as it would be
    unstored (diff review of 1b06ad9: it could then leave by the clinic's handover alone)."""
    clinic, carrier = world.orgs["clinic"].id, world.orgs["carrier"].id
    code = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    await collect(client, world, code, minutes=10)
    await recorded(
        client, world, "carrier", event("handed_over", code, minutes=20, to_organization_id=clinic)
    )
    await recorded(client, world, "clinic", event("stored", code, minutes=30))
    await recorded(client, world, "carrier", event("collected", code, minutes=40))
    batch = await Batch.get(code=code)
    assert (batch.state, batch.holder_id) == ("collected", carrier)


def _fix(code: str, target: str | int, minutes: int, **fields: Any) -> dict[str, Any]:
    return event("corrected", code, minutes=minutes, corrects=str(target), **fields)


async def test_a_correction_back_into_a_part_no_longer_a_part_names_its_outcome(
    client: httpx.AsyncClient, world: World
) -> None:
    """A receipt refused a stated 4 kg of a 10 kg bag; corrected into an acceptance (the part
    cancelled), the bag's declaration to 3 kg; corrected back into a partial acceptance, the
    stated 4 kg is no part of 3 kg. The refusal named `refused_kg`, which a correction cannot
    carry: it names the correction's `outcome`, and writes nothing."""
    code = await _delivered(client, world, quantity="10")
    receipt = await post_event(client, world, "facility", _partial(code, "6", refused_kg="4"))
    assert receipt.status_code == 201, receipt.text
    receipt_id = receipt.json()["event_id"]
    tagging = await CustodyEvent.get(batch__code=code, seq=1)
    for who, body in (
        ("facility", _fix(code, receipt_id, 61, outcome="accepted")),
        ("clinic", _fix(code, tagging.id, 62, quantity="3")),
    ):
        assert (await post_event(client, world, who, body)).status_code == 201
    before = await CustodyEvent.all().count()
    back = _fix(code, receipt_id, 63, outcome="partially_accepted", weight_kg="2")
    refused = await post_event(client, world, "facility", back)
    assert (refused.status_code, refused.json()["field"]) == (422, "outcome"), refused.text
    assert await CustodyEvent.all().count() == before


async def test_a_parts_refusal_is_corrected_only_through_the_receipt_that_made_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """The remainder's own rejection is its original's receipt refusing the part. Corrected on
    the part into an acceptance at 40 kg, it was taken: the log said both that the receipt
    refused 4 kg and that they were accepted, and a 10 kg bag's cohort weighed 46 kg. It is a
    409 naming the field; the receipt's correction is the way (the cohort stays 10 kg)."""
    code = await _delivered(client, world, quantity="10")
    await _receive_in_part(client, world, code, "6")
    remainder = await _remainder_of(client, world, code)
    rejection = await CustodyEvent.get(batch__code=remainder["code"], event_type="received")
    for fields in ({"outcome": "accepted", "weight_kg": "40"}, {"weight_kg": "3"}):
        fix = _fix(remainder["code"], rejection.id, 70, **fields)
        answer = await post_event(client, world, "facility", fix)
        assert answer.status_code == 409, answer.text
        assert answer.json()["field"] == next(iter(fields)), answer.text
    part = await _batch(client, world, "manager", remainder["code"])
    assert (part["state"], Decimal(part["quantity"])) == ("rejected", Decimal("4"))
    assert Decimal((await _utilization(client, world))["generated_kg"]) == Decimal("10")
    receipt = await CustodyEvent.get(batch__code=code, event_type="received")
    taken_in = await post_event(
        client, world, "facility", _fix(code, receipt.id, 71, outcome="accepted", weight_kg="10")
    )
    assert taken_in.status_code == 201, taken_in.text
    assert Decimal((await _utilization(client, world))["generated_kg"]) == Decimal("10")
