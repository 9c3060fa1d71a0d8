"""The service's small-medical-institution coverage, zero-waste cell achievement, a cell's computed
sorting accuracy, sorting coverage, fishing-port garbage and sewage rates and the sea-area
delivery share equal an independent reading of docs/metrics.md §6
(tests/rollups/reference_indicators.py) over randomized histories recorded through the API: bed
counts either side of 19 and unknown, events either side of the city's midnight sent in +08:00,
in UTC and at −10:00, cancellations, other streams, assessments on random dates (29 February
too) and failed re-assessments, pickups either side of the midnights that bound an assessment's
twelve months, port calls declaring a sea area or none, vessels homed in the town or elsewhere,
deliveries in kg and m³, receipts, rejections, treatments harmless or not, and lines aggregated
into containers treated or not."""

import itertools
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import example, given
from hypothesis import strategies as st
from tortoise import connections

from tests.depth import randomized
from tests.factories import World, make_user
from tests.rollups import reference
from tests.rollups import reference_indicators as ref
from tests.rollups.driving import accepted_instead
from wastetrack.auth.models import Role
from wastetrack.cells import service as cells_service
from wastetrack.core import cityday, codes
from wastetrack.ports.rules import PORT_RULES
from wastetrack.registry.models import Organization
from wastetrack.rollups import service as rollups

TZ = "Asia/Shanghai"
CITY = ZoneInfo(TZ)
# The start of yesterday in the city: events fall either side of it, and all in the past.
MIDNIGHT = datetime.now(CITY).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
DAY = MIDNIGHT.date()
PERIODS = [
    (DAY - timedelta(days=1), DAY),
    (DAY, DAY),
    (DAY - timedelta(days=1), DAY - timedelta(days=1)),
]
SERIAL = itertools.count(1)
# Town codes 371082200–371082999: valid 9-digit codes under the city, apart from the factory's.
TOWN_SERIAL = itertools.count()
EXAMPLES = randomized(6)


def at(minutes: int, offset: str) -> str:
    """A moment near the city's midnight as a phone sends it, in +08:00 or in UTC."""
    moment = MIDNIGHT + timedelta(minutes=minutes)
    if offset == "Z":
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return moment.isoformat()


async def reset() -> None:
    await connections.get("default").execute_script(
        "TRUNCATE custody_event, batch, label, batch_fact, cohort_delta, cohort_daily,"
        " cohort_monthly, cohort_city_monthly RESTART IDENTITY CASCADE"
    )


async def new_town(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """A town of its own for each example, so the figures read only what it recorded."""
    n = next(SERIAL)
    response = await client.post(
        "/admin/v1/regions",
        headers=world.headers("admin"),
        json={
            "code": f"371082{200 + next(TOWN_SERIAL) % 800:03d}",
            "name": f"测试镇{n}",
            "level": "town",
            "parent_id": world.regions["city"].id,
        },
    )
    assert response.status_code == 201, response.text
    town: dict[str, Any] = response.json()
    return town


async def new_organization(
    client: httpx.AsyncClient, world: World, kind: str, region_id: int, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/admin/v1/organizations",
        headers=world.headers("admin"),
        json={"name": f"{kind}{next(SERIAL)}", "kind": kind, "region_id": region_id, **extra},
    )
    assert response.status_code == 201, response.text
    org: dict[str, Any] = response.json()
    return org


async def user_of(world: World, org_id: int, role: Role) -> str:
    name = f"u{next(SERIAL)}"
    await make_user(world, name, role, await Organization.get(id=org_id))
    return name


async def post(
    client: httpx.AsyncClient,
    world: World,
    who: str,
    url: str,
    body: dict[str, Any],
    *,
    record: bool = True,
) -> dict[str, Any]:
    """POST as a user; records (events, deliveries) carry a fresh client_event_id."""
    if record:
        body = {"client_event_id": str(uuid.uuid4()), **body}
    response = await client.post(url, json=body, headers=world.headers(who))
    if (again := accepted_instead(response, body)) is not None:
        response = await client.post(url, json=again, headers=world.headers(who))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def assert_ratio(got: dict[str, Any], numerator: Decimal | int, denominator: Decimal | int) -> None:
    assert Decimal(got["numerator"]) == numerator, got
    assert Decimal(got["denominator"]) == denominator, got
    want = ref.rate(numerator, denominator)
    assert (None if got["rate"] is None else Decimal(got["rate"])) == want, got


# ---- small medical institutions ---------------------------------------------------------------

BAG = st.fixed_dictionaries(
    {
        "stream": st.sampled_from(["medical", "medical", "household"]),
        "minutes": st.integers(min_value=-45, max_value=30),
        "offset": st.sampled_from(["+08:00", "Z"]),
        "end": st.sampled_from(
            ["tagged", "cancelled", "collected", "handed_to_carrier", "handed_to_facility"]
        ),
        "delay": st.integers(min_value=0, max_value=40),
    }
)
INSTITUTION = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            ["clinic", "village_clinic", "township_hospital", "hospital", "enterprise"]
        ),
        "beds": st.one_of(
            st.none(), st.sampled_from([0, 19, 20]), st.integers(min_value=1, max_value=60)
        ),
        "bags": st.lists(BAG, max_size=3),
        # Registered days before every period, the day before today, or today.
        "registered": st.sampled_from([-3, -1, 0]),
    }
)
CATEGORY = {"medical": "med.infectious", "household": "hh.recyclable.paper"}


async def record_medical(
    client: httpx.AsyncClient, world: World, town: dict[str, Any], plans: list[dict[str, Any]]
) -> tuple[list[ref.Institution], list[ref.Step]]:
    institutions, steps = [], []
    carrier = world.orgs["carrier"].id
    for plan in plans:
        if plan["kind"] == "enterprise" or plan["beds"] is not None:
            beds = {"bed_count": plan["beds"]} if plan["kind"] != "enterprise" else {}
            org = await new_organization(client, world, plan["kind"], town["id"], **beds)
        else:
            # The API requires a bed count of a medical institution; records from before that
            # rule have none.
            legacy = await Organization.create(
                name=f"旧卫生室{next(SERIAL)}", kind=plan["kind"], region_id=town["id"]
            )
            org = {"id": legacy.id, "kind": plan["kind"], "bed_count": None}
        # Registered earlier than the test: no route dates a registration, so its record is.
        registered = datetime.now(UTC) + timedelta(days=plan.get("registered", -3))
        await Organization.filter(id=org["id"]).update(created_at=registered)
        institutions.append(
            ref.Institution(
                org["id"],
                org["kind"],
                org["bed_count"],
                town["path"],
                registered.astimezone(CITY).date(),
            )
        )
        if plan["kind"] == "enterprise":
            continue
        who = await user_of(world, org["id"], Role.generator)
        for bag in plan["bags"]:
            tagged = await post(
                client,
                world,
                who,
                "/m/v1/batches",
                {
                    "device_time": at(bag["minutes"], bag["offset"]),
                    "stream": bag["stream"],
                    "category": CATEGORY[bag["stream"]],
                    "quantity": "2.5",
                    "unit": "kg",
                    "carrier_organization_id": carrier,
                },
            )
            code, end = tagged["code"], bag["end"]
            when = at(bag["minutes"] + bag["delay"], bag["offset"])
            body: dict[str, Any] = {"batch": code, "device_time": when}
            actor, to_kind = who, None
            if end == "cancelled":
                body |= {"event_type": "cancelled", "reason": "tagged twice"}
            elif end == "collected":
                body |= {"event_type": "collected"}
                actor = "carrier"
            elif end == "handed_to_carrier":
                body |= {"event_type": "handed_over", "to_organization_id": carrier}
                to_kind = "carrier"
            elif end == "handed_to_facility":
                body |= {
                    "event_type": "handed_over",
                    "to_organization_id": world.orgs["facility"].id,
                }
                to_kind = "treatment_facility"
            tagged_at = datetime.fromisoformat(at(bag["minutes"], bag["offset"]))
            steps.append(
                ref.Step(code, org["id"], bag["stream"], "tagged", plan["kind"], None, tagged_at)
            )
            if end == "tagged":
                continue
            await post(client, world, actor, "/m/v1/events", body)
            steps.append(
                ref.Step(
                    code,
                    org["id"],
                    bag["stream"],
                    body["event_type"],
                    "carrier" if actor == "carrier" else plan["kind"],
                    to_kind,
                    datetime.fromisoformat(when),
                )
            )
    return institutions, steps


def bag(stream: str, end: str, minutes: int = -5, offset: str = "Z", delay: int = 10) -> dict:
    return {"stream": stream, "end": end, "minutes": minutes, "offset": offset, "delay": delay}


# Every boundary once, whatever hypothesis draws: 19 and 20 beds, an unknown count, a bag tagged
# before midnight and collected after it, cancellations and other streams that cover nothing.
BOUNDARIES = [
    {"kind": "clinic", "beds": 19, "bags": [bag("medical", "collected")]},
    {"kind": "hospital", "beds": 20, "bags": [bag("medical", "handed_to_carrier", -30, "+08:00")]},
    {"kind": "township_hospital", "beds": None, "bags": [bag("medical", "collected", 5, "Z", 0)]},
    {
        "kind": "village_clinic",
        "beds": 0,
        "bags": [bag("medical", "cancelled"), bag("household", "collected")],
    },
    {"kind": "clinic", "beds": 5, "bags": [bag("medical", "handed_to_facility", 1, "+08:00")]},
    {"kind": "village_clinic", "beds": 3, "bags": [bag("medical", "handed_to_carrier", -20)]},
    {"kind": "enterprise", "beds": None, "bags": []},
    # Registered today: in no past period's denominator; reached yesterday, in its numerator.
    {"kind": "clinic", "beds": 10, "bags": [], "registered": 0},
    {"kind": "clinic", "beds": 12, "bags": [bag("medical", "collected")], "registered": 0},
]


@EXAMPLES
@given(plans=st.lists(INSTITUTION, min_size=1, max_size=5))
@example(plans=BOUNDARIES)
async def test_medical_coverage_equals_the_reference_on_random_histories(
    client: httpx.AsyncClient, world: World, plans: list[dict[str, Any]]
) -> None:
    await reset()
    town = await new_town(client, world)
    institutions, steps = await record_medical(client, world, town, plans)
    today = datetime.now(CITY).date()
    periods = [*PERIODS, (today - timedelta(days=1), today)]
    for date_from, date_to in periods:
        want = ref.medical_coverage(
            institutions,
            steps,
            region=town["path"],
            date_from=date_from,
            date_to=date_to,
            timezone=TZ,
        )
        params: dict[str, Any] = {"region_id": town["id"]}
        if (date_from, date_to) == periods[-1]:
            params["days"] = 2  # no period: the last two city days up to today
        else:
            params |= {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
        answer = await client.get(
            "/m/v1/metrics/medical-coverage", params=params, headers=world.headers("manager")
        )
        assert answer.status_code == 200, answer.text
        got = answer.json()
        assert (got["date_from"], got["date_to"]) == (date_from.isoformat(), date_to.isoformat())
        assert_ratio(got["small_institutions"], *want["small"])
        assert_ratio(got["all_institutions"], *want["all"])
        assert sorted(o["id"] for o in got["unknown_bed_count"]) == want["unknown_bed_count"]
        assert sorted(o["id"] for o in got["not_collected"]) == want["not_collected"]


# ---- zero-waste cells -------------------------------------------------------------------------

ASSESSMENT = st.fixed_dictionaries(
    {
        "level": st.sampled_from(["county", "county", "city", "province"]),
        "when": st.one_of(
            st.sampled_from(
                ["lapses_today", "lapses_tomorrow", "today", "2024-02-29", "2020-02-29"]
            ),
            st.integers(min_value=-1200, max_value=0),
        ),
        "values": st.lists(st.sampled_from([0, 59, 60, 89, 90, 100]), min_size=4, max_size=4),
    }
)
CELL = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["hospital", "hospital", "factory"]),
        "assessments": st.lists(ASSESSMENT, max_size=4),
    }
)


def three_years_before(day: date) -> date:
    try:
        return day.replace(year=day.year - ref.VALID_YEARS)
    except ValueError:  # 29 February three years before a 29 February is the 28th
        return date(day.year - ref.VALID_YEARS, 2, 28)


def assessment_day(when: str | int, today: date) -> date:
    if isinstance(when, int):
        return today + timedelta(days=when)
    if when == "lapses_today":
        return three_years_before(today)
    if when == "lapses_tomorrow":
        return three_years_before(today + timedelta(days=1))
    return today if when == "today" else date.fromisoformat(when)


def assert_cells(got: dict[str, Any], want: dict[str, tuple[int, int]]) -> None:
    assert_ratio(got["share"], *want[""])
    assert {t["cell_type"]: t["share"] for t in got["types"]}.keys() == set(want) - {""}
    for t in got["types"]:
        assert_ratio(t["share"], *want[t["cell_type"]])


# Every boundary once (hospital cells score 80 on their three entered criteria at the
# thresholds): passed then failed on a mandatory criterion, a 29 February assessment scored
# exactly at the thresholds, a county assessment lapsing today under a city one lapsing
# tomorrow, and a city assessment refused without a current county one.
CELL_BOUNDARIES = [
    {
        "type": "hospital",
        "assessments": [
            {"level": "county", "when": -400, "values": [100, 100, 100]},
            {"level": "county", "when": -10, "values": [89, 100, 100]},
        ],
    },
    {
        "type": "hospital",
        "assessments": [{"level": "county", "when": "2024-02-29", "values": [90, 60, 60]}],
    },
    {
        "type": "hospital",
        "assessments": [
            {"level": "county", "when": "lapses_today", "values": [100, 100, 100]},
            {"level": "city", "when": "lapses_tomorrow", "values": [95, 100, 100]},
        ],
    },
    {
        "type": "factory",
        "assessments": [{"level": "city", "when": 0, "values": [100, 100, 100, 100]}],
    },
    # A failed county re-assessment recorded after a city pass it predates takes the city pass
    # down, as it would have refused it had it been recorded first; on one date as well.
    {
        "type": "hospital",
        "assessments": [
            {"level": "county", "when": -400, "values": [100, 100, 100]},
            {"level": "city", "when": -100, "values": [100, 100, 100]},
            {"level": "county", "when": -200, "values": [0, 0, 0]},
        ],
    },
    {
        "type": "hospital",
        "assessments": [
            {"level": "county", "when": -50, "values": [100, 100, 100]},
            {"level": "city", "when": -50, "values": [100, 100, 100]},
            {"level": "county", "when": -50, "values": [0, 0, 0]},
        ],
    },
    # The same finding sent again is the one recorded; after a different one of its level and
    # day it is a record of its own, and governs the day again.
    {
        "type": "hospital",
        "assessments": [
            {"level": "county", "when": -30, "values": [100, 100, 100]},
            {"level": "county", "when": -30, "values": [100, 100, 100]},
            {"level": "county", "when": -30, "values": [0, 0, 0]},
            {"level": "county", "when": -30, "values": [100, 100, 100]},
        ],
    },
]


@EXAMPLES
@given(plans=st.lists(CELL, min_size=1, max_size=4))
@example(plans=CELL_BOUNDARIES)
async def test_cell_achievement_equals_the_reference_on_random_histories(
    client: httpx.AsyncClient, world: World, plans: list[dict[str, Any]]
) -> None:
    manager = world.headers("manager")
    town = await new_town(client, world)
    config = (await client.get("/m/v1/cell-types", headers=manager)).json()
    types = {t["code"]: t for t in config["items"]}
    today = datetime.now(CITY).date()
    cells: dict[int, str] = {}
    made: list[ref.Assessment] = []
    recorded: list[int] = []  # the id of made[i]
    for plan in plans:
        cell = await post(
            client,
            world,
            "manager",
            "/m/v1/cells",
            {"cell_type": plan["type"], "name": f"细胞{next(SERIAL)}", "region_id": town["id"]},
            record=False,
        )
        cells[cell["id"]] = plan["type"]
        criteria = types[plan["type"]]["criteria"]
        for entry in plan["assessments"]:
            on = assessment_day(entry["when"], today)
            entered = [c for c in criteria if c["kind"] == "evidence"]
            values = dict(zip((c["code"] for c in entered), entry["values"], strict=False))
            response = await client.post(
                f"/m/v1/cells/{cell['id']}/assessments",
                headers=manager,
                json={
                    "level": entry["level"],
                    "assessed_on": on.isoformat(),
                    "entered": {
                        k: {"value": str(v), "evidence": "检查记录"} for k, v in values.items()
                    },
                },
            )
            if not ref.may_record(made, cell=cell["id"], level=entry["level"], on=on):
                assert response.status_code == 409, response.text
                continue
            findings = tuple(values.items())
            kept = ref.resent(made, cell=cell["id"], level=entry["level"], on=on, entered=findings)
            if kept is not None:  # the same finding sent again: the one recorded, once
                assert response.status_code == 200, response.text
                assert response.json()["id"] == recorded[kept.order]
                continue
            assert response.status_code == 201, response.text
            # Computed criteria have no tracker data in this town: they are not met.
            expected_tier = ref.tier(criteria, {k: Decimal(v) for k, v in values.items()}, config)
            answer = response.json()
            assert (answer["tier"], answer["expires_on"]) == (
                expected_tier,
                ref.expiry(on).isoformat(),
            )
            made.append(
                ref.Assessment(cell["id"], entry["level"], on, expected_tier, len(made), findings)
            )
            recorded.append(answer["id"])
    got = await client.get("/m/v1/metrics/cells", params={"region_id": town["id"]}, headers=manager)
    assert got.status_code == 200, got.text
    assert Decimal(got.json()["target_share"]) == Decimal("0.70")
    assert_cells(got.json(), ref.cell_achievement(cells, made, today))
    # The endpoint reads today only; the rule also holds on the days around each assessment
    # and its expiry, as the service computes them for any day.
    scoped = replace(world.principals["manager"], region_path=town["path"])
    days = {d + timedelta(days=k) for a in made for d in (a.on, ref.expiry(a.on)) for k in (-1, 0)}
    for day in sorted(days):
        result = await cells_service.achievement(principal=scoped, today=day)
        assert_cells(result, ref.cell_achievement(cells, made, day))


CHECK = st.fixed_dictionaries(
    {
        "edge": st.sampled_from(["first", "end"]),
        "minutes": st.integers(min_value=-90, max_value=90),
        "offset": st.sampled_from([8, 0, -10]),
        "passed": st.booleans(),
    }
)
WINDOW_BOUNDARIES = [
    {"edge": "first", "minutes": -1, "offset": 8, "passed": False},
    {"edge": "first", "minutes": 0, "offset": -10, "passed": True},
    {"edge": "end", "minutes": -1, "offset": 0, "passed": True},
    {"edge": "end", "minutes": 0, "offset": 8, "passed": False},
]


@EXAMPLES
@given(
    checks=st.lists(CHECK, min_size=1, max_size=6),
    days_ago=st.integers(min_value=1, max_value=3),
)
@example(checks=WINDOW_BOUNDARIES, days_ago=1)
async def test_a_cells_sorting_accuracy_equals_the_reference_on_random_histories(
    client: httpx.AsyncClient, world: World, checks: list[dict[str, Any]], days_ago: int
) -> None:
    """Pickups either side of the city midnights that open and close the twelve months ending
    on the assessment day, sent in +08:00, UTC and −10:00."""
    town = await new_town(client, world)
    point = await new_organization(client, world, "collection_point", town["id"])
    community = await new_organization(client, world, "community", town["id"])
    collector = await user_of(world, community["id"], Role.collector)
    site = await post(
        client,
        world,
        "admin",
        "/admin/v1/sites",
        {"organization_id": point["id"], "name": "1号", "latitude": 37.1, "longitude": 122.4},
        record=False,
    )
    on = datetime.now(CITY).date() - timedelta(days=days_ago)
    first = ref.twelve_months_to(on)
    midnights = {
        "first": datetime.combine(first, datetime.min.time(), CITY),
        "end": datetime.combine(on + timedelta(days=1), datetime.min.time(), CITY),
    }
    recorded: list[tuple[datetime, bool]] = []
    for check in checks:
        moment = midnights[check["edge"]] + timedelta(minutes=check["minutes"])
        if moment > datetime.now(UTC) - timedelta(minutes=1):
            continue  # not yet: a phone cannot send it
        sent = moment.astimezone(timezone(timedelta(hours=check["offset"])))
        await post(
            client,
            world,
            collector,
            "/m/v1/pickups",
            {
                "site": codes.qr_url(
                    site["code"], base_url="http://testserver", secret=world.settings.secret_key
                ),
                "category": "hh.recyclable.paper",
                "weight_kg": "10",
                "device_time": sent.isoformat(),
                "quality": {"passed": check["passed"], "contamination_share": "0.05"},
            },
        )
        recorded.append((moment, check["passed"]))
    cell = await post(
        client,
        world,
        "manager",
        "/m/v1/cells",
        {"cell_type": "community", "name": f"细胞{next(SERIAL)}", "region_id": town["id"]},
        record=False,
    )
    config = (await client.get("/m/v1/cell-types", headers=world.headers("manager"))).json()
    (cell_type,) = [t for t in config["items"] if t["code"] == "community"]
    entered = {
        c["code"]: {"value": "100", "evidence": "检查记录"}
        for c in cell_type["criteria"]
        if c["kind"] == "evidence"
    }
    answer = await post(
        client,
        world,
        "manager",
        f"/m/v1/cells/{cell['id']}/assessments",
        {"level": "county", "assessed_on": on.isoformat(), "entered": entered},
        record=False,
    )
    want = ref.sorting_accuracy(recorded, on=on, timezone=TZ)
    got = answer["scores"]["sorting_accuracy"]["value"]
    assert (None if got is None else Decimal(got)) == want, (recorded, answer["scores"])


# ---- sorting coverage ----------------------------------------------------------------------


@EXAMPLES
@given(
    villages=st.lists(
        st.tuples(
            st.sampled_from([1, 2, 150, 199, 200, 201, 350, 399, 400, 998]),
            st.sampled_from([None, -400, -1, 0, 1]),
            st.sampled_from([None, -1, 0, 1]),
        ),
        max_size=8,
        unique_by=lambda village: village[0],
    )
)
async def test_sorting_coverage_equals_the_reference_on_random_villages(
    client: httpx.AsyncClient, world: World, villages: list[tuple[int, int | None, int | None]]
) -> None:
    """Communities, villages and codes that are neither, with sorted collection from long
    before, the day before, the day itself or the day after the period's last day, and ended
    (or not) the day before, the day itself or the day after it: an end before its start is
    refused and changes nothing."""
    town = await new_town(client, world)
    recorded: list[tuple[str, date | None, date | None]] = []
    for own, offset, end_offset in villages:
        code = f"{town['code']}{own:03d}"
        region = await post(
            client,
            world,
            "admin",
            "/admin/v1/regions",
            {"code": code, "name": f"村居{code}", "level": "village", "parent_id": town["id"]},
            record=False,
        )
        since = None if offset is None else DAY + timedelta(days=offset)
        if since is not None:
            response = await client.put(
                f"/admin/v1/regions/{region['id']}/sorting",
                headers=world.headers("admin"),
                json={"sorted_collection_since": since.isoformat()},
            )
            assert response.status_code == 200, response.text
        ended_on = None if end_offset is None or since is None else DAY + timedelta(end_offset)
        if ended_on is not None:
            response = await client.put(
                f"/admin/v1/regions/{region['id']}/sorting",
                headers=world.headers("admin"),
                json={"sorted_collection_since": None, "ended_on": ended_on.isoformat()},
            )
            if since is not None and ended_on < since:
                assert (response.status_code, response.json()["field"]) == (422, "ended_on")
                ended_on = None
            else:
                assert response.status_code == 200, response.text
        recorded.append((code, since, ended_on))
    response = await client.get(
        "/m/v1/metrics/sorting",
        params={"date_from": DAY.isoformat(), "date_to": DAY.isoformat()},
        headers=world.headers("manager"),
    )
    assert response.status_code == 200, response.text
    (got,) = [t for t in response.json()["towns"] if t["region_id"] == town["id"]]
    want = ref.sorting_coverage(recorded, on=DAY)
    for name in ("coverage", "urban_coverage", "rural_coverage"):
        assert_ratio(got[name], *want[name])  # type: ignore[misc]
    assert got["unclassified"] == want["unclassified"], (recorded, got)


# ---- fishing ports ----------------------------------------------------------------------------

BERTH = (36.8930, 122.4280)  # inside 石岛东南水域
ELSEWHERE = (37.5000, 122.5000)  # a port outside the town, inside 成山头西北水域
SEA_AREAS = ("shidao_se", "chengshantou_nw")
GROSS_TONNAGES = (Decimal(98), Decimal(400), Decimal(455))  # under, at and over 400 GT
LINE = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["garbage_kg", "garbage_m3", "sewage", "nets"]),
        "amount": st.integers(min_value=1, max_value=400),
        "fate": st.sampled_from(
            ["delivered", "cancel", "received", "rejected", "R1", "D10", "D4", "R13", "container"]
        ),
        "weight": st.one_of(st.none(), st.integers(min_value=1, max_value=500)),
        "part": st.booleans(),  # the receipt refuses part of it (a remainder when some is left)
        # A remainder in kg corrected into another category: out of any group, or into garbage.
        "recategorise": st.sampled_from([None, "pfw.plastic.nets", "marpol2018.A"]),
    }
)
DELIVERY = st.fixed_dictionaries(
    {
        "port": st.integers(min_value=0, max_value=2),  # 2: the port elsewhere
        "vessel": st.integers(min_value=0, max_value=2),
        "minutes": st.integers(min_value=-60, max_value=60),
        "offset": st.sampled_from(["+08:00", "Z"]),
        "lines": st.lists(LINE, min_size=1, max_size=3),
    }
)
CALL = st.fixed_dictionaries(
    {
        "port": st.integers(min_value=0, max_value=2),  # 2: the port elsewhere
        "vessel": st.integers(min_value=0, max_value=2),
        "minutes": st.integers(min_value=-60, max_value=60),
        "offset": st.sampled_from(["+08:00", "Z"]),
        "crew": st.integers(min_value=1, max_value=12),
        "days": st.integers(min_value=0, max_value=20),
        "area": st.sampled_from([None, *SEA_AREAS]),
    }
)
HARBOUR = st.fixed_dictionaries(
    {
        "listed": st.lists(st.booleans(), min_size=2, max_size=2),
        # Each vessel's home port: one of the town's two, or the port elsewhere (its vessels
        # count in an area only by a call at one of the town's ports that declares it).
        "homes": st.lists(st.integers(min_value=0, max_value=2), min_size=3, max_size=3),
        "calls": st.lists(CALL, max_size=4),
        "deliveries": st.lists(DELIVERY, max_size=3),
        "container": st.sampled_from([None, "R1", "D4", "D10"]),
    }
)
LINE_BODY = {
    "garbage_kg": lambda n: {"annex_v": "A", "scheme_version": "2018", "mass_kg": str(n / 10)},
    "garbage_m3": lambda n: {"annex_v": "C", "scheme_version": "2018", "volume_m3": str(n / 100)},
    "sewage": lambda n: {"category": "marine.sewage", "volume_m3": str(n / 100)},
    "nets": lambda n: {"category": "pfw.plastic.nets", "mass_kg": str(n / 10)},
}


async def plant_of(client: httpx.AsyncClient, world: World) -> str:
    """A treatment plant licensed for ship garbage, sewage and fishing gear (once per test)."""
    if "plant" in world.users:
        return "plant"
    plant = await new_organization(client, world, "treatment_facility", world.regions["city"].id)
    for category in ("marine.marpol", "marine.sewage", "pfw"):
        await post(
            client,
            world,
            "admin",
            f"/admin/v1/organizations/{plant['id']}/licences",
            {
                "category_key": category,
                "method_codes": ["R1", "D4", "D8", "D10", "R13"],
                # Licensed before the histories begin: a grant from a past day needs a reason.
                "valid_from": "2020-01-01",
                "reason": "licensed before the histories begin",
            },
            record=False,
        )
    await make_user(world, "plant", Role.facility_operator, await Organization.get(id=plant["id"]))
    return "plant"


async def deliver_onwards(
    client: httpx.AsyncClient, world: World, operator: str, code: str, line: dict[str, Any]
) -> None:
    """A line (or a container) taken to the plant: received, weighed or refused, treated."""
    plant = await plant_of(client, world)
    event = {"batch": code, "device_time": at(90, "+08:00")}
    await post(
        client,
        world,
        operator,
        "/m/v1/events",
        {
            **event,
            "event_type": "in_transit",
            "destination_organization_id": world.users[plant].organization_id,
        },
    )
    receipt: dict[str, Any] = {**event, "event_type": "received", "device_time": at(95, "Z")}
    if line["fate"] == "rejected":
        receipt |= {"outcome": "rejected", "reason": "mixed with oily waste"}
    else:
        weight = line["weight"] / 10 if line["weight"] is not None else 12.5
        receipt |= {"outcome": "accepted", "weight_kg": str(weight)}
        if line.get("part"):
            receipt |= {"outcome": "partially_accepted", "reason": "bilge water mixed in"}
    await post(client, world, plant, "/m/v1/events", receipt)
    if line["fate"] not in ("received", "rejected"):
        treated = {**event, "event_type": "treated", "method": line["fate"]}
        await post(client, world, plant, "/m/v1/events", {**treated, "device_time": at(99, "Z")})
    if line.get("part") and line.get("recategorise"):
        for remainder in await connections.get("default").execute_query_dict(
            "SELECT r.code, e.id FROM batch r JOIN batch b ON b.id = r.split_from_id"
            " JOIN custody_event e ON e.batch_id = r.id AND e.event_type = 'tagged'"
            " WHERE b.code = $1 AND b.unit = 'kg'",  # else its category sized it
            [code],
        ):
            correction = {
                "batch": remainder["code"],
                "event_type": "corrected",
                "corrects": str(remainder["id"]),
                "category": line["recategorise"],
                "reason": "the part refused is other waste",
                "device_time": at(100, "Z"),
            }
            await post(client, world, "manager", "/m/v1/events", correction)


@dataclass
class Harbour:
    """What a harbour history recorded, as the references read it."""

    listed: dict[int, bool]  # the town's ports: listed or not
    calls: list[ref.PortCall]
    lines: list[tuple[int, str, dict[str, Any]]]  # port, batch code, what was delivered
    homes: dict[int, int]  # vessel: its home port
    area_calls: list[ref.AreaCall]
    deliveries: list[tuple[int, int, list[str]]]  # port, vessel, its lines' batch codes


async def new_port(
    client: httpx.AsyncClient,
    world: World,
    region_id: int,
    where: tuple[float, float],
    listed: bool,
) -> int:
    port = await new_organization(client, world, "fishing_port", region_id)
    response = await client.put(
        f"/admin/v1/ports/{port['id']}",
        headers=world.headers("admin"),
        json={
            "grade": "一级",
            "latitude": where[0],
            "longitude": where[1],
            "reception_facility": True,
            "listed": listed,
        },
    )
    assert response.status_code == 200, response.text
    port_id: int = port["id"]
    return port_id


async def record_harbour(
    client: httpx.AsyncClient, world: World, town: dict[str, Any], plan: dict[str, Any]
) -> Harbour:
    owner = await new_organization(client, world, "vessel_owner", town["id"])
    listed, operators, berths = {}, [], []
    # The town's two ports, then one elsewhere: its calls and deliveries count in no figure
    # of the town.
    places = [(town["id"], BERTH, flag) for flag in plan["listed"]]
    places.append((world.regions["other_town"].id, ELSEWHERE, False))
    ports = []
    for region_id, where, flag in places:
        port = await new_port(client, world, region_id, where, flag)
        berth = await post(
            client,
            world,
            "admin",
            f"/admin/v1/ports/{port}/berths",
            {"name": "1号泊位", "latitude": where[0], "longitude": where[1]},
            record=False,
        )
        if region_id == town["id"]:
            listed[port] = flag
        ports.append(port)
        operators.append(await user_of(world, port, Role.port_operator))
        berths.append(berth["qr_url"])
    vessels, homes = [], {}
    for tonnage, home in zip(GROSS_TONNAGES, plan["homes"], strict=True):
        vessel = await post(
            client,
            world,
            "admin",
            "/admin/v1/vessels",
            {
                "name": f"鲁荣渔{next(SERIAL)}",
                "registration_number": f"3710822{next(SERIAL):05d}",
                "gross_tonnage": str(tonnage),
                "home_port_id": ports[home],
                "owner_id": owner["id"],
            },
            record=False,
        )
        vessels.append(vessel["id"])
        homes[vessel["id"]] = ports[home]
    calls, area_calls = [], []
    # A vessel's calls are entered in order and never overlap (the service refuses otherwise):
    # in arrival order, a call arriving before the vessel's last departure is not made.
    left: dict[int, datetime] = {}
    by_arrival = sorted(
        plan["calls"], key=lambda c: datetime.fromisoformat(at(c["minutes"], c["offset"]))
    )
    for call in by_arrival:
        port, operator = ports[call["port"]], operators[call["port"]]
        arrived = at(call["minutes"], call["offset"])
        departed = at(call["minutes"] + 1, call["offset"])
        if call["vessel"] in left and datetime.fromisoformat(arrived) < left[call["vessel"]]:
            continue
        left[call["vessel"]] = datetime.fromisoformat(departed)
        opened = await post(
            client,
            world,
            operator,
            "/m/v1/port-calls",
            {
                "vessel_id": vessels[call["vessel"]],
                "arrived_at": arrived,
                "days_at_sea": call["days"],
                "crew": call["crew"],
                "fishing_area": call["area"],
            },
            record=False,
        )
        area_calls.append(
            ref.AreaCall(
                port, vessels[call["vessel"]], datetime.fromisoformat(arrived), call["area"]
            )
        )
        departure = at(call["minutes"] + 1, call["offset"])
        response = await client.post(
            f"/m/v1/port-calls/{opened['id']}/departure",
            json={"departed_at": departure},
            headers=world.headers(operator),
        )
        assert response.status_code == 200, response.text
        calls.append(
            ref.PortCall(
                port,
                datetime.fromisoformat(arrived),
                call["crew"],
                call["days"],
                GROSS_TONNAGES[call["vessel"]],
            )
        )
    lines: list[tuple[int, str, dict[str, Any]]] = []
    deliveries: list[tuple[int, int, list[str]]] = []
    loads: dict[int, list[str]] = {}
    for delivery in plan["deliveries"]:
        index = delivery["port"]
        ended = MIDNIGHT + timedelta(minutes=delivery["minutes"])
        answer = await post(
            client,
            world,
            operators[index],
            "/m/v1/deliveries",
            {
                "berth": berths[index],
                "vessel_id": vessels[delivery["vessel"]],
                "started_at": at(delivery["minutes"] - 20, delivery["offset"]),
                "ended_at": at(delivery["minutes"], delivery["offset"]),
                "latitude": BERTH[0],
                "longitude": BERTH[1],
                "lines": [LINE_BODY[line["kind"]](line["amount"]) for line in delivery["lines"]],
            },
        )
        assert datetime.fromisoformat(answer["ended_at"]) == ended
        codes = [made["batch_code"] for made in answer["lines"]]
        deliveries.append((ports[index], vessels[delivery["vessel"]], codes))
        for line, made in zip(delivery["lines"], answer["lines"], strict=True):
            lines.append((ports[index], made["batch_code"], made))
            if line["fate"] == "container":
                loads.setdefault(index, []).append(made["batch_code"])
            elif line["fate"] == "cancel":
                # A delivered line is in the port's hands already: only a tagged batch may be
                # cancelled, so a line never leaves the figures this way.
                refused = await client.post(
                    "/m/v1/events",
                    json={
                        "client_event_id": str(uuid.uuid4()),
                        "event_type": "cancelled",
                        "batch": made["batch_code"],
                        "device_time": at(delivery["minutes"] + 1, "Z"),
                        "reason": "entered twice",
                    },
                    headers=world.headers(operators[index]),
                )
                assert refused.status_code == 409, refused.text
            elif line["fate"] != "delivered":
                await deliver_onwards(client, world, operators[index], made["batch_code"], line)
    for index, children in loads.items():
        container = await post(
            client,
            world,
            operators[index],
            "/m/v1/batches",
            {
                "device_time": at(70, "+08:00"),
                "stream": "marine",
                "category": "marine.marpol",
                "quantity": "1",
                "unit": "kg",
            },
        )
        await post(
            client,
            world,
            operators[index],
            "/m/v1/events",
            {
                "event_type": "aggregated",
                "batch": container["code"],
                "device_time": at(75, "Z"),
                "children": children,
            },
        )
        if plan["container"] is not None:
            step = {"fate": plan["container"], "weight": None}
            collected = {"event_type": "collected", "device_time": at(80, "Z")}
            await post(
                client,
                world,
                operators[index],
                "/m/v1/events",
                {**collected, "batch": container["code"]},
            )
            await deliver_onwards(client, world, operators[index], container["code"], step)
    return Harbour(listed, calls, lines, homes, area_calls, deliveries)


async def batch_facts() -> tuple[dict[int, reference.Fact], dict[str, int], dict[str, str | None]]:
    """Every batch's fact by tests/rollups/reference.py over the custody log as stored."""
    db = connections.get("default")
    events = await db.execute_query_dict(
        "SELECT id, batch_id, seq, event_type, outcome, method_id, weight_kg, corrects_id,"
        " related_batch_id, details, device_time,"
        " (SELECT code FROM batch b WHERE b.id = batch_id) AS code FROM custody_event"
    )
    for e in events:
        if isinstance(e["details"], str):
            e["details"] = json.loads(e["details"])
    batches = await db.execute_query_dict("SELECT id, code, region_path FROM batch")
    categories = await db.execute_query_dict(
        "SELECT key, parent_key, unit_mass_kg, density_kg_m3 FROM waste_category"
    )
    catalog = reference.Catalog(
        parent={c["key"]: c["parent_key"] for c in categories},
        unit_mass={c["key"]: c["unit_mass_kg"] for c in categories},
        density={c["key"]: c["density_kg_m3"] for c in categories},
    )
    regions = {b["id"]: b["region_path"] for b in batches}
    return (
        reference.facts(events, regions, catalog, TZ),
        {b["code"]: b["id"] for b in batches},
        catalog.parent,
    )


def test_the_references_twelve_months_are_the_services_on_every_day() -> None:
    """The twelve-month window each flow reads, written twice: every day of 2023–2029, leap
    Februaries and the years after them included."""
    day = date(2023, 1, 1)
    while day.year < 2030:
        assert ref.twelve_months_to(day) == cityday.year_to(day), day
        day += timedelta(days=1)


def test_the_reference_port_rules_are_the_configured_ones() -> None:
    rules = PORT_RULES["groups"]
    assert Decimal(PORT_RULES["small_vessel_below_gt"]) == ref.SMALL_VESSEL_GT
    for name, group in ref.GROUPS.items():
        assert Decimal(str(rules[name]["per_person_day"])) == group.per_person_day
        assert (rules[name]["unit"], rules[name]["categories"]) == (group.unit, [group.root])
    assert (rules["garbage"]["vessels"], rules["sewage"]["vessels"]) == ("all", "small")


async def town_figures(
    client: httpx.AsyncClient,
    world: World,
    metric: str,
    town: dict[str, Any],
    date_from: date,
    date_to: date,
) -> dict[str, Any]:
    """A metric's answer for the town over the period, as its manager reads it."""
    response = await client.get(
        f"/m/v1/metrics/{metric}",
        params={
            "region_id": town["id"],
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
        },
        headers=world.headers("manager"),
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def assert_ports(
    client: httpx.AsyncClient,
    world: World,
    town: dict[str, Any],
    want: dict[str, Any],
    date_from: date,
    date_to: date,
) -> None:
    got = await town_figures(client, world, "ports", town, date_from, date_to)
    assert {p["port_id"] for p in got["ports"]} == set(want["ports"])
    for port in got["ports"]:
        assert port["port_calls"] == want["calls"][port["port_id"]]
        for group in port["groups"]:
            figures = want["ports"][port["port_id"]][group["group"]]
            for key in ("expected", "delivered", "treated", "estimated_kg"):
                assert Decimal(group[key]) == figures[key], (port["port_id"], group, key)
            rate = group["collection_treatment_rate"]
            assert_ratio(rate, figures["treated"], figures["expected"])
    for group in got["listed_ports"]["groups"]:
        figures = want["pooled"][group["group"]]
        for key in ("expected", "delivered", "treated", "estimated_kg"):
            assert Decimal(group[key]) == figures[key], (group, key)
        assert_ratio(group["collection_treatment_rate"], figures["treated"], figures["expected"])
    headline = got["listed_ports"]["headline"]["rate"]
    assert (None if headline is None else Decimal(headline)) == want["headline"]


async def assert_sea_areas(
    client: httpx.AsyncClient,
    world: World,
    town: dict[str, Any],
    harbour: Harbour,
    facts: dict[int, reference.Fact],
    ids: dict[str, int],
    date_from: date,
    date_to: date,
) -> None:
    polygons = await client.get("/m/v1/sea-areas", headers=world.headers("manager"))
    areas = {a["code"]: a["polygon"] for a in polygons.json()}
    assert set(areas) == set(SEA_AREAS)
    want = ref.sea_area_figures(
        areas=areas,
        ports={port: (BERTH[1], BERTH[0]) for port in harbour.listed},
        homes=harbour.homes,
        calls=harbour.area_calls,
        deliveries=[(p, v, [ids[c] for c in codes]) for p, v, codes in harbour.deliveries],
        facts=facts,
        date_from=date_from,
        date_to=date_to,
        timezone=TZ,
    )
    answer = await town_figures(client, world, "sea-areas", town, date_from, date_to)
    got = {a["code"]: a for a in answer["areas"]}
    assert set(got) == set(want)
    for code, (members, with_deliveries) in want.items():
        area = got[code]
        assert (area["vessels"], area["vessels_with_deliveries"]) == (members, with_deliveries), (
            code,
            date_from,
            date_to,
        )
        assert_ratio(area["share"], with_deliveries, members)


# Every boundary once: sewage expected only under 400 GT, a container treated harmlessly, a
# rejection, a non-harmless treatment (D4), fishing gear that is neither group, m³ garbage.
# Sea areas: a vessel homed elsewhere counted by its call's declared area, on the day the call
# arrived; one homed in the town counted in the area around its home port every day.
PORT_BOUNDARIES = {
    "listed": [True, False],
    "homes": [0, 1, 2],
    "calls": [
        {
            "port": 0,
            "vessel": 0,
            "minutes": -5,
            "offset": "Z",
            "crew": 8,
            "days": 10,
            "area": "chengshantou_nw",
        },
        {
            "port": 0,
            "vessel": 1,
            "minutes": 5,
            "offset": "+08:00",
            "crew": 5,
            "days": 3,
            "area": None,
        },
        {
            "port": 1,
            "vessel": 2,
            "minutes": 30,
            "offset": "Z",
            "crew": 4,
            "days": 7,
            "area": "shidao_se",
        },
        # At the port elsewhere: declares an area, counted in none of the town's figures.
        {
            "port": 2,
            "vessel": 2,
            "minutes": -30,
            "offset": "Z",
            "crew": 4,
            "days": 2,
            "area": "chengshantou_nw",
        },
    ],
    "deliveries": [
        {
            "port": 0,
            "vessel": 0,
            "minutes": -3,
            "offset": "Z",
            "lines": [
                {"kind": "garbage_kg", "amount": 250, "fate": "R1", "weight": 240},
                {"kind": "sewage", "amount": 120, "fate": "container", "weight": None},
                {"kind": "garbage_m3", "amount": 50, "fate": "container", "weight": None},
                {"kind": "garbage_kg", "amount": 40, "fate": "D4", "weight": None},
                # Refused in part: 25 kg declared, 10 accepted and treated, 15 left rejected.
                {"kind": "garbage_kg", "amount": 250, "fate": "D10", "weight": 100, "part": True},
                # The same, its 15 kg refused corrected out of ship garbage.
                {
                    "kind": "garbage_kg",
                    "amount": 250,
                    "fate": "R1",
                    "weight": 100,
                    "part": True,
                    "recategorise": "pfw.plastic.nets",
                },
                {"kind": "sewage", "amount": 80, "fate": "D10", "weight": 300, "part": True},
            ],
        },
        {
            "port": 1,
            "vessel": 2,
            "minutes": 10,
            "offset": "+08:00",
            "lines": [
                {"kind": "garbage_kg", "amount": 90, "fate": "rejected", "weight": None},
                {"kind": "nets", "amount": 300, "fate": "R1", "weight": None},
                {"kind": "sewage", "amount": 70, "fate": "cancel", "weight": None},
            ],
        },
        # Vessel 0 delivers elsewhere too, the next day: no delivery of the town's on it.
        {
            "port": 2,
            "vessel": 0,
            "minutes": 20,
            "offset": "+08:00",
            "lines": [{"kind": "garbage_kg", "amount": 60, "fate": "R1", "weight": None}],
        },
    ],
    "container": "D10",
}


@EXAMPLES
@given(plan=HARBOUR)
@example(plan=PORT_BOUNDARIES)
async def test_port_rates_equal_the_reference_on_random_histories(
    client: httpx.AsyncClient, world: World, plan: dict[str, Any]
) -> None:
    await reset()
    town = await new_town(client, world)
    harbour = await record_harbour(client, world, town, plan)
    listed, calls, delivered = harbour.listed, harbour.calls, harbour.lines
    facts, ids, parent = await batch_facts()
    # A remainder's tagging names the batch a receipt split it from.
    tagged_remainders = await connections.get("default").execute_query_dict(
        "SELECT batch_id, related_batch_id FROM custody_event"
        " WHERE event_type = 'tagged' AND details ? 'split_from'"
    )
    split_from = {e["batch_id"]: e["related_batch_id"] for e in tagged_remainders}
    lines = [
        ref.Line(
            port,
            ids[code],
            None if made["volume_m3"] is None else Decimal(made["volume_m3"]),
        )
        for port, code, made in delivered
    ]
    for date_from, date_to in PERIODS:
        want = ref.port_figures(
            ports=listed,
            calls=calls,
            lines=lines,
            facts=facts,
            split_from=split_from,
            parent=parent,
            date_from=date_from,
            date_to=date_to,
            timezone=TZ,
        )
        await assert_ports(client, world, town, want, date_from, date_to)
        await assert_sea_areas(client, world, town, harbour, facts, ids, date_from, date_to)
    # The same after the roll-ups are rebuilt from the log.
    await rollups.rebuild(timezone=TZ)
    await assert_ports(client, world, town, want, date_from, date_to)
    await assert_sea_areas(client, world, town, harbour, facts, ids, date_from, date_to)
