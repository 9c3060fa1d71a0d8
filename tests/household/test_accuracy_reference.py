"""Sorting accuracy (`/m/v1/metrics/sorting`, docs/metrics.md §6) equals a small independent
recount over randomized histories recorded through the API: pickups with passed, failed and no
quality checks at collection points of two towns and of the city's own region (in no town),
either side of the city's midnight, sent in UTC and in +08:00; taggings corrected (and corrected
again: the latest wins) across that midnight; some made containers by the point's own collector
(a container is in no cohort: its contents are). The recount reads only
what the test recorded — each check's place, its latest tagging time's city day, its outcome —
never the service's tables or query: the headline, every town and the export's row for what lies
in no town must all match it, numerator and denominator, over three periods."""

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import example, given
from hypothesis import strategies as st

from tests.depth import randomized
from tests.factories import World, make_user
from tests.rollups.test_indicators_reference import new_town, reset
from wastetrack.auth.models import Role
from wastetrack.core import codes
from wastetrack.registry import agreements
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

CITY = ZoneInfo("Asia/Shanghai")
# The start of yesterday in the city: pickups fall either side of it, and all in the past.
MIDNIGHT = datetime.now(CITY).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
DAY = MIDNIGHT.date()
PERIODS = [
    (DAY - timedelta(days=1), DAY),
    (DAY, DAY),
    (DAY - timedelta(days=1), DAY - timedelta(days=1)),
]
PLACES = ("town0", "town1", "city")
EXAMPLES = randomized(5)

MOMENT = st.tuples(st.integers(min_value=-90, max_value=90), st.sampled_from(["+08:00", "Z"]))
PICKUP = st.fixed_dictionaries(
    {
        "place": st.sampled_from(PLACES),
        "at": MOMENT,
        "passed": st.sampled_from([True, False, None]),  # None: no quality check
        "corrections": st.lists(MOMENT, max_size=2),
        "packed": st.booleans(),
    }
)
# Either side of midnight, moved across it by a correction and back by a second one; a failed
# check in the city's own region; one made a container; one with no check.
MIDNIGHT_EDGES = [
    {"place": "town0", "at": (-1, "Z"), "passed": True, "corrections": [], "packed": False},
    {"place": "town0", "at": (0, "+08:00"), "passed": False, "corrections": [], "packed": False},
    {
        "place": "town1",
        "at": (-30, "+08:00"),
        "passed": True,
        "corrections": [(5, "Z")],
        "packed": False,
    },
    {
        "place": "town1",
        "at": (10, "Z"),
        "passed": False,
        "corrections": [(-1, "Z"), (1, "+08:00")],
        "packed": False,
    },
    {"place": "city", "at": (-5, "Z"), "passed": False, "corrections": [], "packed": False},
    {"place": "town0", "at": (20, "Z"), "passed": True, "corrections": [], "packed": True},
    {"place": "city", "at": (30, "+08:00"), "passed": None, "corrections": [], "packed": False},
]


def sent(moment: tuple[int, str]) -> str:
    """A moment near the city's midnight as a phone sends it, in +08:00 or in UTC."""
    minutes, offset = moment
    at = MIDNIGHT + timedelta(minutes=minutes)
    if offset == "Z":
        return at.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")
    return at.isoformat()


@dataclass
class Check:
    """What the test recorded of one pickup: where, its latest tagging time, its outcome."""

    place: str
    tagged_at: datetime
    passed: bool | None
    packed: bool


def recount(checks: list[Check], date_from: date, date_to: date, place: str | None) -> tuple:
    """Quality checks passed and performed (docs/metrics.md §6): the pickups with a check,
    whose batch holds no other (a container is in no cohort) and whose latest tagging time falls
    on a city day of the period, at `place` (None: anywhere)."""
    counted = [
        c.passed
        for c in checks
        if c.passed is not None
        and not c.packed
        and date_from <= c.tagged_at.astimezone(CITY).date() <= date_to
        and place in (None, c.place)
    ]
    return sum(counted), len(counted)


async def point_in(world: World, region_id: int) -> tuple[str, dict[str, str]]:
    """The QR URL of a new collection point's site in a region, which the factory's collector
    (北山社区) serves under a service agreement, and the headers of the point's own collector.
    The organization is registered at the city, above its site: a check counts where its batch
    does, in the site's region."""
    org = await registry.create_organization(
        name=f"投放点{uuid.uuid4().hex[:8]}",
        kind=OrganizationKind.collection_point,
        region_id=world.regions["city"].id,
    )
    await agreements.create_service_agreement(
        provider_organization_id=world.orgs["community"].id,
        client_organization_id=org.id,
        streams=["household"],
        valid_from=date(2024, 1, 1),
    )
    site = await registry.create_site(
        organization_id=org.id,
        name="1号投放点",
        region_id=region_id,
        latitude=37.1,
        longitude=122.4,
    )
    own = f"own-{org.id}"
    await make_user(world, own, Role.collector, org)
    url = codes.qr_url(
        site.code or "", base_url="http://testserver", secret=world.settings.secret_key
    )
    return url, world.headers(own)


def counts(rate: dict[str, Any]) -> tuple[int, int]:
    return int(Decimal(rate["numerator"])), int(Decimal(rate["denominator"]))


@EXAMPLES
@given(pickups=st.lists(PICKUP, min_size=1, max_size=7))
@example(pickups=MIDNIGHT_EDGES)
async def test_sorting_accuracy_equals_a_recount_on_random_histories(
    client: httpx.AsyncClient, world: World, pickups: list[dict[str, Any]]
) -> None:
    await reset()  # only this example's batches and pickups: the headline is the city's
    towns = [await new_town(client, world) for _ in range(2)]
    region_of = {"town0": towns[0]["id"], "town1": towns[1]["id"], "city": world.regions["city"].id}
    points = {place: await point_in(world, region) for place, region in region_of.items()}
    recorded: list[Check] = []
    for p in pickups:
        url, own = points[p["place"]]
        # Only a load the point tagged itself becomes a container: its own collector's pickup.
        collector = own if p["packed"] else world.headers("collector")
        body: dict[str, Any] = {
            "client_event_id": str(uuid.uuid4()),
            "site": url,
            "category": "hh.food.household",
            "weight_kg": "12.5",
            "device_time": sent(p["at"]),
        }
        if p["passed"] is not None:
            body["quality"] = {"passed": p["passed"], "contamination_share": "0.05"}
        made = await client.post("/m/v1/pickups", json=body, headers=collector)
        assert made.status_code == 201, made.text
        code = made.json()["batch_code"]
        history = await client.get(f"/m/v1/batches/{code}/events", headers=collector)
        (tagging,) = [e for e in history.json() if e["event_type"] == "tagged"]
        for moment in p["corrections"]:  # each corrects the tagging: the latest wins
            fixed = await client.post(
                "/m/v1/events",
                headers=collector,
                json={
                    "client_event_id": str(uuid.uuid4()),
                    "event_type": "corrected",
                    "batch": code,
                    "device_time": datetime.now(CITY).isoformat(),
                    "corrects": tagging["id"],
                    "event_time": sent(moment),
                },
            )
            assert fixed.status_code == 201, fixed.text
        if p["packed"]:
            # A pickup's batch is never cancelled (custody cancels only a tagged batch), but
            # one becomes a container when its point's collector scans another load into it.
            bag = await client.post(
                "/m/v1/pickups",
                headers=own,
                json={**body, "client_event_id": str(uuid.uuid4()), "quality": None},
            )
            assert bag.status_code == 201, bag.text
            packed = await client.post(
                "/m/v1/events",
                headers=own,
                json={
                    "client_event_id": str(uuid.uuid4()),
                    "event_type": "aggregated",
                    "batch": code,
                    "device_time": datetime.now(CITY).isoformat(),
                    "children": [bag.json()["batch_code"]],
                },
            )
            assert packed.status_code == 201, packed.text
        latest = p["corrections"][-1] if p["corrections"] else p["at"]
        recorded.append(
            Check(
                place=p["place"],
                tagged_at=MIDNIGHT + timedelta(minutes=latest[0]),
                passed=p["passed"],
                packed=p["packed"],
            )
        )
    manager = world.headers("manager")
    for date_from, date_to in PERIODS:
        params = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
        answer = (await client.get("/m/v1/metrics/sorting", params=params, headers=manager)).json()
        assert counts(answer["accuracy"]) == recount(recorded, date_from, date_to, None), params
        by_id = {t["region_id"]: t for t in answer["towns"]}
        for place in ("town0", "town1"):
            got = counts(by_id[region_of[place]]["accuracy"])
            assert got == recount(recorded, date_from, date_to, place), (place, params)
        # Towns of earlier examples hold no check of this one.
        others = [t for t in answer["towns"] if t["region_id"] not in region_of.values()]
        assert all(counts(t["accuracy"])[1] == 0 for t in others)
        # What lies in no town is a part of its own, and the parts add up to the whole.
        outside = answer["outside_towns"]
        assert counts(outside["accuracy"]) == recount(recorded, date_from, date_to, "city")
        for figure in ("accuracy", "coverage", "urban_coverage", "rural_coverage"):
            parts = [counts(t[figure]) for t in [*answer["towns"], outside]]
            assert tuple(map(sum, zip(*parts, strict=True))) == counts(answer[figure]), figure
        sheet = await client.get(
            "/m/v1/metrics/sorting", params={**params, "format": "csv"}, headers=manager
        )
        rows = list(csv.DictReader(io.StringIO(sheet.content.decode("utf-8-sig"))))
        (outside,) = [r for r in rows if r["scope"] == "outside_towns"]
        got = int(outside["accuracy.numerator"]), int(outside["accuracy.denominator"])
        assert got == recount(recorded, date_from, date_to, "city"), params
