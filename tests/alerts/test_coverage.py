"""Small medical institutions' coverage (metrics.md §6): every medical kind with a known bed
count ≤ 19; unknown counts apart; covered = a medical batch that first came into a carrier's hands
(collected by it, handed over to it) on a city day of the period, not a later step between
carriers."""

from datetime import UTC, date, datetime, time, timedelta

import httpx
import pytest

from tests.custody.helpers import collect, post_event, recorded, tag_bag
from tests.factories import CITY_TODAY, CITY_ZONE, NOW, World, event, make_user
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind

URL = "/m/v1/metrics/medical-coverage"


async def coverage(client: httpx.AsyncClient, world: World, **params: str) -> dict:
    response = await client.get(URL, params=params, headers=world.headers("manager"))
    assert response.status_code == 200, response.text
    return response.json()


def last_city_noon() -> datetime:
    """The latest 12:00 on the city's clock an hour or more before the tests' now (the stories
    told from it run half an hour past it), today's or yesterday's, in UTC. Read from the real
    clock, it failed between 12:00 and 12:30 city time: the stories' last steps lay ahead."""
    noon = datetime.combine(CITY_TODAY, time(12), CITY_ZONE).astimezone(UTC)
    return noon if noon <= NOW - timedelta(hours=1) else noon - timedelta(days=1)


async def township_hospital(world: World, name: str, *, beds: int) -> Organization:
    """A township hospital in the town, with its user `township`."""
    hospital = await registry.create_organization(
        name=name,
        kind=OrganizationKind.township_hospital,
        region_id=world.regions["town"].id,
        bed_count=beds,
    )
    await make_user(world, "township", Role.generator, hospital)
    return hospital


async def test_a_township_hospital_of_15_beds_is_a_small_institution(
    client: httpx.AsyncClient, world: World
) -> None:
    await township_hospital(world, "人和镇卫生院", beds=15)
    bag = await tag_bag(client, world, "township", carrier_organization_id=world.orgs["carrier"].id)
    assert (
        await post_event(client, world, "carrier", event("collected", bag["code"], minutes=5))
    ).status_code == 201
    found = await coverage(client, world)
    small = found["small_institutions"]
    assert (small["numerator"], small["denominator"]) == ("1", "3")
    assert found["definition"]["source"].startswith("荣成市")
    assert "≤ 19" in small["definition"]["formula"]
    assert "人和镇卫生院" not in [m["name"] for m in found["not_collected"]]


async def test_a_clinic_without_a_bed_count_is_listed_apart_never_guessed(
    client: httpx.AsyncClient, world: World
) -> None:
    # Registered before bed counts were required: the count is unknown.
    await Organization.create(
        name="某村卫生室",
        kind=OrganizationKind.village_clinic,
        region_id=world.regions["village"].id,
        bed_count=None,
    )
    found = await coverage(client, world)
    assert [u["name"] for u in found["unknown_bed_count"]] == ["某村卫生室"]
    assert found["small_institutions"]["denominator"] == "2"
    assert found["all_institutions"]["denominator"] == "3"


async def test_registering_a_medical_institution_requires_its_bed_count(
    client: httpx.AsyncClient, world: World
) -> None:
    village = world.regions["village"].id
    body = {"name": "新村卫生室", "kind": "village_clinic", "region_id": village}
    url = "/admin/v1/organizations"
    refused = await client.post(url, json=body, headers=world.headers("admin"))
    assert (refused.status_code, refused.json()["field"]) == (422, "bed_count")
    made = await client.post(
        "/admin/v1/organizations", json={**body, "bed_count": 0}, headers=world.headers("admin")
    )
    assert made.status_code == 201, made.text
    beds_on_a_carrier = await client.post(
        "/admin/v1/organizations",
        json={**body, "kind": "carrier", "bed_count": 3},
        headers=world.headers("admin"),
    )
    assert (beds_on_a_carrier.status_code, beds_on_a_carrier.json()["field"]) == (
        422,
        "bed_count",
    )


async def test_only_medical_batches_reaching_a_carrier_count(
    client: httpx.AsyncClient, world: World
) -> None:
    # A hazardous batch of the clinic collected by the carrier: not medical, not coverage.
    drum = await tag_bag(
        client,
        world,
        stream="hazardous",
        category="hw.08",
        waste_code="900-249-08",
        hazard=["T", "I"],
        carrier_organization_id=world.orgs["carrier"].id,
    )
    await post_event(client, world, "carrier", event("collected", drum["code"], minutes=5))
    assert (await coverage(client, world))["small_institutions"]["numerator"] == "0"
    # A medical bag handed over by the clinic to the carrier: coverage.
    bag = await tag_bag(client, world)
    handed = await post_event(
        client,
        world,
        "clinic",
        event("handed_over", bag["code"], minutes=5, to_organization_id=world.orgs["carrier"].id),
    )
    assert handed.status_code == 201, handed.text
    assert (await coverage(client, world))["small_institutions"]["numerator"] == "1"


async def test_a_bag_scanned_into_a_carriers_load_is_collected(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    load = await tag_bag(client, world, "carrier", producer_organization_id=carrier)
    assert (await coverage(client, world))["small_institutions"]["numerator"] == "0"
    # A round: the carrier collects the bag, then scans it into its load.
    await collect(client, world, bag["code"])
    packed = await post_event(
        client,
        world,
        "carrier",
        event("aggregated", load["code"], minutes=5, children=[bag["code"]]),
    )
    assert packed.status_code == 201, packed.text
    found = await coverage(client, world)
    assert found["small_institutions"]["numerator"] == "1"
    assert "carrier's load" in found["small_institutions"]["definition"]["formula"]


async def test_the_period_is_in_city_days(client: httpx.AsyncClient, world: World) -> None:
    # Collected at 16:30 UTC: the next day in the city.
    evening = (NOW - timedelta(days=3)).replace(hour=16, minute=30, second=0, microsecond=0)
    city_day = (evening + timedelta(hours=8)).date()
    bag = await tag_bag(
        client,
        world,
        carrier_organization_id=world.orgs["carrier"].id,
        device_time=(evening - timedelta(hours=1)).isoformat(),
    )
    collected = event("collected", bag["code"], device_time=evening.isoformat())
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    day_before = str(city_day - timedelta(days=1))
    before = await coverage(client, world, date_from=day_before, date_to=day_before)
    assert before["small_institutions"]["numerator"] == "0"
    on_the_day = await coverage(client, world, date_from=str(city_day), date_to=str(city_day))
    assert on_the_day["small_institutions"]["numerator"] == "1"
    assert (on_the_day["date_from"], on_the_day["days"]) == (str(city_day), 1)
    backwards = await client.get(
        URL,
        params={"date_from": str(city_day), "date_to": str(date(2020, 1, 1))},
        headers=world.headers("manager"),
    )
    assert (backwards.status_code, backwards.json()["field"]) == (422, "date_to")


async def test_only_the_step_from_the_clinic_into_a_carriers_hands_counts(
    client: httpx.AsyncClient, world: World
) -> None:
    """Collected by carrier A three days ago; today A hands it to carrier B, who packs it into
    its load at the depot: the clinic was reached three days ago, not today."""
    a = world.orgs["carrier"].id
    b_org = await registry.create_organization(
        name="威海医废运输有限公司",
        kind=OrganizationKind.carrier,
        region_id=world.regions["city"].id,
    )
    await make_user(world, "carrier_b", Role.carrier, b_org)
    three_days_ago = NOW - timedelta(days=3)
    bag = await tag_bag(
        client,
        world,
        carrier_organization_id=a,
        device_time=(three_days_ago - timedelta(hours=1)).isoformat(),
    )
    collected = event("collected", bag["code"], device_time=three_days_ago.isoformat())
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    handed = event("handed_over", bag["code"], minutes=30, to_organization_id=b_org.id)
    assert (await post_event(client, world, "carrier", handed)).status_code == 201
    load = await tag_bag(client, world, "carrier_b", producer_organization_id=b_org.id)
    packed = event("aggregated", load["code"], minutes=40, children=[bag["code"]])
    assert (await post_event(client, world, "carrier_b", packed)).status_code == 201
    today = CITY_TODAY
    since = str(today - timedelta(days=1))
    now = await coverage(client, world, date_from=since, date_to=str(today))
    assert now["small_institutions"]["numerator"] == "0"
    assert now["all_institutions"]["numerator"] == "0"
    then = (three_days_ago + timedelta(hours=8)).date()
    window = await coverage(client, world, date_from=str(then), date_to=str(today))
    assert window["small_institutions"]["numerator"] == "1"


async def test_the_definitions_cite_public_sources(client: httpx.AsyncClient, world: World) -> None:
    found = await coverage(client, world)
    for figure in ("all_institutions", "small_institutions"):
        source = found[figure]["definition"]["source"]
        assert "standards.md" not in source
        assert "生态环境保护规划" in source


@pytest.mark.parametrize("how", ["loose", "in the hospital's box"])
async def test_a_clinic_whose_bags_a_township_hospital_gathers_is_covered(
    client: httpx.AsyncClient, world: World, how: str
) -> None:
    """就近集中收集: the village clinic hands its bag to the township hospital, which hands it
    on to the carrier today, loose or packed into a box of its own (the bag comes into the
    carrier's hands with the box); the clinic's waste first reached a carrier today."""
    hospital = await township_hospital(world, "崖头卫生院", beds=40)
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    gathered = event("handed_over", bag["code"], minutes=5, to_organization_id=hospital.id)
    assert (await post_event(client, world, "clinic", gathered)).status_code == 201, gathered
    handed_on = bag["code"]
    if how != "loose":
        box = await tag_bag(client, world, "township", carrier_organization_id=carrier)
        packed = event("aggregated", box["code"], minutes=10, children=[bag["code"]])
        response = await post_event(client, world, "township", packed)
        assert response.status_code == 201, response.text
        handed_on = box["code"]
    handed = event("handed_over", handed_on, minutes=30, to_organization_id=carrier)
    response = await post_event(client, world, "township", handed)
    assert response.status_code == 201, response.text
    found = await coverage(client, world)
    small = found["small_institutions"]
    assert (small["numerator"], small["denominator"]) == ("1", "2")
    assert world.orgs["clinic"].name not in {m["name"] for m in found["not_collected"]}


async def _bag_and_box(
    client: httpx.AsyncClient, world: World, *, tagged_at: datetime
) -> tuple[dict, dict]:
    """The clinic's bag and the township hospital's box, both tagged at `tagged_at`, for the
    carrier."""
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(
        client, world, carrier_organization_id=carrier, device_time=tagged_at.isoformat()
    )
    box = await tag_bag(
        client,
        world,
        "township",
        carrier_organization_id=carrier,
        device_time=tagged_at.isoformat(),
    )
    return bag, box


async def test_a_box_taken_before_the_bag_was_put_in_does_not_date_the_bag(
    client: httpx.AsyncClient, world: World
) -> None:
    """The township hospital's empty box went to the carrier and back two days ago, while the
    clinic's bag was still at the clinic; today the bag is packed into it and the box handed
    on: the bag first came into a carrier's hands today."""
    hospital = await township_hospital(world, "崖头卫生院", beds=40)
    carrier = world.orgs["carrier"].id
    noon = last_city_noon()
    early, before = noon - timedelta(days=3), noon - timedelta(days=2)
    bag, box = await _bag_and_box(client, world, tagged_at=early)
    steps = [
        (
            "township",
            event(
                "handed_over",
                box["code"],
                device_time=before.isoformat(),
                to_organization_id=carrier,
            ),
        ),
        (
            "carrier",
            event(
                "handed_over",
                box["code"],
                device_time=(before + timedelta(hours=1)).isoformat(),
                to_organization_id=hospital.id,
            ),
        ),
        (
            "clinic",
            event(
                "handed_over",
                bag["code"],
                device_time=noon.isoformat(),
                to_organization_id=hospital.id,
            ),
        ),
        (
            "township",
            event(
                "aggregated",
                box["code"],
                device_time=(noon + timedelta(minutes=5)).isoformat(),
                children=[bag["code"]],
            ),
        ),
        (
            "township",
            event(
                "handed_over",
                box["code"],
                device_time=(noon + timedelta(minutes=30)).isoformat(),
                to_organization_id=carrier,
            ),
        ),
    ]
    for who, step in steps:
        response = await post_event(client, world, who, step)
        assert response.status_code == 201, response.text
    clinic = world.orgs["clinic"].name
    missed = {}
    for moment in (before, noon):
        day = moment.astimezone(CITY_ZONE).date().isoformat()
        found = await coverage(client, world, date_from=day, date_to=day)
        missed[moment] = clinic in {m["name"] for m in found["not_collected"]}
    assert (missed[before], missed[noon]) == (True, False)


def missed(found: dict) -> set[int]:
    return {m["id"] for m in found["not_collected"]}


async def test_a_box_counts_through_its_contents_never_itself(
    client: httpx.AsyncClient, world: World
) -> None:
    """A container is never counted, its contents are (docs/custody.md): the township
    hospital's box holding only the village clinic's bag reaches the carrier; the clinic is
    covered, the hospital, none of whose own waste moved, is not."""
    hospital = await township_hospital(world, "崖头卫生院", beds=10)
    carrier = world.orgs["carrier"].id
    bag = await tag_bag(client, world, carrier_organization_id=carrier)
    to_hospital = event("handed_over", bag["code"], minutes=5, to_organization_id=hospital.id)
    await recorded(client, world, "clinic", to_hospital)
    box = await tag_bag(client, world, "township", carrier_organization_id=carrier)
    packed = event("aggregated", box["code"], minutes=10, children=[bag["code"]])
    await recorded(client, world, "township", packed)
    handed = event("handed_over", box["code"], minutes=30, to_organization_id=carrier)
    await recorded(client, world, "township", handed)
    found = missed(await coverage(client, world))
    assert world.orgs["clinic"].id not in found
    assert hospital.id in found


async def test_a_box_handed_on_by_a_phone_whose_clock_runs_behind_carries_the_bag(
    client: httpx.AsyncClient, world: World
) -> None:
    """The hospital packs the clinic's bag into its box (phone A, 12:10) and then hands the
    box to the carrier from phone B, whose clock runs five minutes behind (12:05): recorded
    after the packing, the taking carried the bag; the clinic is covered that day."""
    hospital = await township_hospital(world, "崖头卫生院", beds=10)
    carrier = world.orgs["carrier"].id
    day = CITY_TODAY - timedelta(days=1)
    noon = datetime.combine(day, time(12), CITY_ZONE)

    def at(minutes: int) -> str:
        return (noon + timedelta(minutes=minutes)).isoformat()

    bag = await tag_bag(client, world, carrier_organization_id=carrier, device_time=at(-120))
    to_hospital = event(
        "handed_over", bag["code"], device_time=at(0), to_organization_id=hospital.id
    )
    await recorded(client, world, "clinic", to_hospital)
    box = await tag_bag(
        client, world, "township", carrier_organization_id=carrier, device_time=at(-60)
    )
    packed = event("aggregated", box["code"], device_time=at(10), children=[bag["code"]])
    await recorded(client, world, "township", packed)
    handed = event("handed_over", box["code"], device_time=at(5), to_organization_id=carrier)
    await recorded(client, world, "township", handed)
    for period in ({"date_from": str(day), "date_to": str(day)}, {}):
        assert world.orgs["clinic"].id not in missed(await coverage(client, world, **period))


async def test_a_trip_recorded_after_the_packing_but_dated_days_before_counts_and_is_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    """Custody follows the order steps were recorded in: a box's trip to the carrier and back,
    recorded after the packing but dated two days before it, is read as a phone running
    behind — the service cannot tell it from a trip synced late — so it carries the bag (on
    the packing's day, docs/metrics.md §6), and the manager sees it flagged."""
    hospital = await township_hospital(world, "崖头卫生院", beds=40)
    carrier = world.orgs["carrier"].id
    noon = datetime.combine(CITY_TODAY - timedelta(days=1), time(12), CITY_ZONE)
    early, before = noon - timedelta(days=3), noon - timedelta(days=2)
    bag, box = await _bag_and_box(client, world, tagged_at=early)
    steps = [
        ("clinic", bag, noon, {"to_organization_id": hospital.id}),
        ("township", box, noon + timedelta(minutes=5), {"children": [bag["code"]]}),
        ("township", box, before, {"to_organization_id": carrier}),
        ("carrier", box, before + timedelta(hours=1), {"to_organization_id": hospital.id}),
    ]
    for who, batch, at, fields in steps:
        kind = "aggregated" if "children" in fields else "handed_over"
        await recorded(
            client, world, who, event(kind, batch["code"], device_time=at.isoformat(), **fields)
        )
    for day, covered in ((before.date(), False), (noon.date(), True)):
        found = await coverage(client, world, date_from=str(day), date_to=str(day))
        assert (world.orgs["clinic"].id not in missed(found)) is covered, day
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    flagged = {a["details"]["code"] for a in listed if a["kind"] == "scan_anomaly"}
    assert flagged == {box["code"]}


@pytest.mark.parametrize("depth", [1, 2], ids=["box", "box_in_a_crate"])
async def test_packings_and_the_handover_in_one_sync_behind_the_clock_carry_the_bag(
    client: httpx.AsyncClient, world: World, depth: int
) -> None:
    """One sync packs the clinic's bag into a box (and the box into a crate), then hands the
    outer one to the carrier, each step dated 15 s before the one it follows: custody applies
    them in the order sent, so the handover is recorded after the packings, though every
    event of one call has one server time; the clinic is reached (docs/metrics.md §6)."""
    carrier = world.orgs["carrier"].id
    bag, *containers = [
        (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
        for _ in range(depth + 1)
    ]
    steps = [
        event("aggregated", outer, minutes=40, children=[inner])
        for inner, outer in zip([bag, *containers], containers, strict=False)
    ]
    steps.append(event("handed_over", containers[-1], minutes=40, to_organization_id=carrier))
    start = datetime.fromisoformat(steps[0]["device_time"])
    for n, step in enumerate(steps):
        step["device_time"] = (start - timedelta(seconds=15 * n)).isoformat()
    synced = await client.post(
        "/m/v1/sync", json={"events": steps}, headers=world.headers("clinic")
    )
    assert [r["status"] for r in synced.json()["results"]] == ["applied"] * len(steps)
    assert (await Batch.get(code=containers[-1])).holder_id == carrier
    day = str(CITY_TODAY)
    assert world.orgs["clinic"].id not in missed(
        await coverage(client, world, date_from=day, date_to=day)
    )


async def test_a_crates_trip_before_the_box_went_in_does_not_carry_the_bag(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic's bag is packed into the township hospital's box three days ago; two days ago
    the hospital's empty crate went to the carrier and back; today the box goes into the crate
    (the bag is in it from now on, each step of the chain packed) and, later, the crate to the
    carrier: the clinic was not reached two days ago, and is today once the crate is taken."""
    hospital = await township_hospital(world, "崖头卫生院", beds=40)
    carrier = world.orgs["carrier"].id
    noon = last_city_noon()
    early, before = noon - timedelta(days=3), noon - timedelta(days=2)

    def at(moment: datetime, minutes: int = 0) -> str:
        return (moment + timedelta(minutes=minutes)).isoformat()

    bag, box, crate = [
        (await tag_bag(client, world, who, carrier_organization_id=carrier, device_time=at(early)))[
            "code"
        ]
        for who in ("clinic", "township", "township")
    ]
    for who, step in (
        (
            "clinic",
            event("handed_over", bag, device_time=at(early, 10), to_organization_id=hospital.id),
        ),
        ("township", event("aggregated", box, device_time=at(early, 20), children=[bag])),
        (
            "township",
            event("handed_over", crate, device_time=at(before), to_organization_id=carrier),
        ),
        (
            "carrier",
            event("handed_over", crate, device_time=at(before, 60), to_organization_id=hospital.id),
        ),
        ("township", event("aggregated", crate, device_time=at(noon, 5), children=[box])),
    ):
        await recorded(client, world, who, step)

    async def reached(moment: datetime) -> bool:
        day = moment.astimezone(CITY_ZONE).date().isoformat()
        found = await coverage(client, world, date_from=day, date_to=day)
        return world.orgs["clinic"].id not in missed(found)

    assert (await reached(before), await reached(noon)) == (False, False)
    handed = event("handed_over", crate, device_time=at(noon, 30), to_organization_id=carrier)
    await recorded(client, world, "township", handed)
    assert (await reached(before), await reached(noon)) == (False, True)


async def test_a_refused_part_the_clinic_hands_to_a_carrier_first_reaches_one(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic brought its bag to the plant's gate itself; the plant accepted part and the
    refused part went back to the clinic. No carrier ever took the clinic's waste: when the
    clinic hands the part to one, its waste first reaches a carrier, and it is covered."""
    facility = world.orgs["facility"].id
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    to_gate = event("handed_over", bag["code"], minutes=5, to_organization_id=facility)
    await recorded(client, world, "clinic", to_gate)
    receipt = event(
        "received",
        bag["code"],
        minutes=10,
        outcome="partially_accepted",
        weight_kg="2.0",
        reason="torn",
    )
    await recorded(client, world, "facility", receipt)
    (part,) = await Batch.filter(split_from__code=bag["code"]).values_list("code", flat=True)
    assert world.orgs["clinic"].id in missed(await coverage(client, world))
    handed = event("handed_over", part, minutes=20, to_organization_id=world.orgs["carrier"].id)
    await recorded(client, world, "clinic", handed)
    assert world.orgs["clinic"].id not in missed(await coverage(client, world))


async def test_a_refused_part_moving_later_does_not_reach_the_clinic_again(
    client: httpx.AsyncClient, world: World
) -> None:
    """Collected and partly refused three days ago; today the carrier takes the refused part
    on: the clinic was reached three days ago, not today."""
    three_days_ago = NOW - timedelta(days=3)

    def then(minutes: int) -> str:
        return (three_days_ago + timedelta(minutes=minutes)).isoformat()

    bag = await tag_bag(
        client, world, carrier_organization_id=world.orgs["carrier"].id, device_time=then(0)
    )
    facility = world.orgs["facility"].id
    for who, step in (
        ("carrier", event("collected", bag["code"], device_time=then(10))),
        (
            "carrier",
            event(
                "in_transit",
                bag["code"],
                device_time=then(20),
                destination_organization_id=facility,
            ),
        ),
        (
            "facility",
            event(
                "received",
                bag["code"],
                device_time=then(60),
                outcome="partially_accepted",
                weight_kg="2.0",
                reason="two bags torn",
            ),
        ),
    ):
        response = await post_event(client, world, who, step)
        assert response.status_code == 201, response.text
    (part,) = await Batch.filter(split_from__code=bag["code"]).values_list("code", flat=True)
    onward = event("in_transit", part, destination_organization_id=facility)
    response = await post_event(client, world, "carrier", onward)
    assert response.status_code == 201, response.text
    today = CITY_TODAY
    now = await coverage(
        client, world, date_from=str(today - timedelta(days=1)), date_to=str(today)
    )
    assert now["small_institutions"]["numerator"] == "0"


async def test_a_bag_a_facility_rejects_back_to_a_carrier_that_never_collected_it_covers_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    """The clinic hands its bag straight to the facility, whose receipt refuses it (recorded
    so, or an acceptance corrected into a rejection): custody gives it back to the carrier the
    label names, but no carrier took it from the clinic, so the clinic is not covered."""
    facility = world.orgs["facility"].id
    for corrected in (False, True):
        bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
        handed = event("handed_over", bag["code"], minutes=10, to_organization_id=facility)
        assert (await post_event(client, world, "clinic", handed)).status_code == 201
        outcome = (
            {"outcome": "accepted", "weight_kg": "3.4"}
            if corrected
            else {
                "outcome": "rejected",
                "reason": "leaking",
            }
        )
        receipt = await post_event(
            client, world, "facility", event("received", bag["code"], minutes=60, **outcome)
        )
        assert receipt.status_code == 201, receipt.text
        if corrected:
            fix = event(
                "corrected",
                bag["code"],
                minutes=65,
                corrects=receipt.json()["event_id"],
                outcome="rejected",
                reason="leaking",
            )
            assert (await post_event(client, world, "facility", fix)).status_code == 201
        found = await coverage(client, world)
        assert found["small_institutions"]["numerator"] == "0", (corrected, found)
