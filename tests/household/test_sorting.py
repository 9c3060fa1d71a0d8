"""Household sorting: pickups at collection points with quality checks, coverage, accuracy."""

import csv
import hashlib
import importlib
import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import openpyxl
import pytest
import zxingcpp
from PIL import Image
from tortoise import connections

from tests.factories import CITY_TODAY, NOW, World, event, forged, make_user, typed
from tests.ports.test_ports import cleanup
from tests.streams.test_record_once import stored_photo
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role, User
from wastetrack.batches.models import Batch
from wastetrack.core import cityday, codes
from wastetrack.custody import intake
from wastetrack.household import service as household
from wastetrack.household.commands import PickupCommand
from wastetrack.household.models import Pickup
from wastetrack.ports.models import CleanUp
from wastetrack.registry import agreements
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, RegionLevel
from wastetrack.rollups.models import BatchFact


@pytest.fixture
async def point_url(client: httpx.AsyncClient, world: World) -> str:
    point = await registry.create_organization(
        name="北山社区3号投放点",
        kind=OrganizationKind.collection_point,
        region_id=world.regions["village"].id,
    )
    world.orgs["point"] = point
    site = await client.post(
        "/admin/v1/sites",
        headers=world.headers("admin"),
        json={
            "organization_id": point.id,
            "name": "3号投放点",
            "latitude": 37.165,
            "longitude": 122.487,
        },
    )
    assert site.status_code == 201, site.text
    return codes.qr_url(
        site.json()["code"], base_url="http://testserver", secret=world.settings.secret_key
    )


def pickup(point_url: str, **extra: object) -> dict:
    return {
        "client_event_id": str(uuid.uuid4()),
        "site": point_url,
        "category": "hh.food.household",
        "weight_kg": "42.5",
        "device_time": (NOW - timedelta(hours=1)).isoformat(),
        "quality": {"passed": True, "contamination_share": "0.04"},
        **extra,
    }


async def post(
    client: httpx.AsyncClient, world: World, body: dict, who: str = "collector"
) -> httpx.Response:
    return await client.post("/m/v1/pickups", json=body, headers=world.headers(who))


async def sorting_today(client: httpx.AsyncClient, world: World) -> dict:
    day = CITY_TODAY.isoformat()
    response = await client.get(
        "/m/v1/metrics/sorting",
        headers=world.headers("manager"),
        params={"date_from": day, "date_to": day},
    )
    answer: dict = response.json()
    return answer


async def test_pickup_becomes_a_collected_batch_from_its_point(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    body = pickup(point_url)
    response = await post(client, world, body)
    assert response.status_code == 201, response.text
    assert response.json()["quality_passed"] is True
    batch = await Batch.get(code=response.json()["batch_code"])
    assert (batch.state, batch.category_id) == ("collected", "hh.food.household")
    assert batch.producer_id == world.orgs["point"].id
    assert batch.holder_id == world.orgs["community"].id
    assert batch.origin_site_id is not None
    assert (await post(client, world, body)).status_code == 200
    assert await Pickup.all().count() == 1


async def test_a_quality_check_photo_must_be_uploaded_first(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    quality = {"passed": False, "contamination_share": "0.2", "photo_sha256": "d" * 64}
    refused = await post(client, world, pickup(point_url, quality=quality))
    assert refused.status_code == 422
    assert refused.json()["field"] == "quality.photo_sha256"
    assert await Pickup.all().count() == 0
    sha = await stored_photo(world, "collector", "e" * 64)
    kept = await post(client, world, pickup(point_url, quality={**quality, "photo_sha256": sha}))
    assert kept.status_code == 201, kept.text


async def test_pickup_refusals_name_the_field(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    cases = [
        (pickup(point_url, category="med.sharps"), "collector", 422, "category"),
        (pickup(point_url, weight_kg="-3"), "collector", 422, "weight_kg"),
        (
            pickup(point_url, quality={"passed": False, "contamination_share": "1.5"}),
            "collector",
            422,
            "quality.contamination_share",
        ),
        (pickup(forged(point_url)), "collector", 404, "site"),
        (pickup(point_url), "clinic", 403, "role"),
        # Refused by the batch's tagging, named as the pickup names it.
        (
            pickup(point_url, device_time=(NOW + timedelta(days=1)).isoformat()),
            "collector",
            422,
            "device_time",
        ),
    ]
    for body, who, status, field in cases:
        response = await post(client, world, body, who)
        assert response.status_code == status, (field, response.text)
        assert response.json()["field"] == field
    assert await Batch.all().count() == 0


async def test_collector_scans_the_point_plate(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    scanned = (
        await client.get("/m/v1/scan", params={"qr": point_url}, headers=world.headers("collector"))
    ).json()
    assert (scanned["kind"], scanned["actions"]) == ("site", ["pickup"])
    code = scanned["site"]["code"]
    png = await client.get(f"/m/v1/sites/{code}/label.png", headers=world.headers("collector"))
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))]
    assert decoded == [point_url]


async def test_pickups_sync_offline_exactly_once(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    body = {**pickup(point_url), "kind": "pickup"}
    answer = (
        await client.post(
            "/m/v1/sync", headers=world.headers("collector"), json={"events": [body, body]}
        )
    ).json()
    assert [r["status"] for r in answer["results"]] == ["applied", "duplicate"]
    # Each answer names the batch the pickup became, as a single post's does: the phone's label.
    made = await Pickup.get(id=answer["results"][0]["record_id"]).prefetch_related("batch")
    assert [r["batch_code"] for r in answer["results"]] == [made.batch.code] * 2
    # A colleague resending it from the shared phone gets the organization's pickup back.
    await make_user(world, "colleague", Role.collector, world.orgs["community"])
    again = await post(client, world, {k: v for k, v in body.items() if k != "kind"}, "colleague")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == answer["results"][0]["record_id"]
    assert await Pickup.all().count() == 1


async def test_a_pickup_stays_with_the_organization_it_was_recorded_for(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """A collector who moves to another organization takes none of their pickups along: their
    resend from there is another organization's conflict showing nothing of it, while the old
    organization still gets it back. Pickups recorded before the organization was kept get it
    from the custody log (migration 0048)."""
    body = pickup(point_url)
    made = await post(client, world, body)
    assert made.status_code == 201, made.text
    pickup_id = made.json()["id"]
    other = await registry.create_organization(
        name="崖头社区", kind=OrganizationKind.community, region_id=world.regions["village"].id
    )
    collector = world.users["collector"]
    await User.filter(id=collector.id).update(organization_id=other.id)
    tokens = await auth.issue_tokens(user=await User.get(id=collector.id), settings=world.settings)
    world.tokens["collector"] = str(tokens["access_token"])
    resent = await post(client, world, body)
    assert resent.status_code == 409, resent.text
    assert resent.json()["field"] == "client_event_id" and str(pickup_id) not in resent.text
    # The old organization's colleague resending it from the shared phone gets it back.
    await make_user(world, "stayed", Role.collector, world.orgs["community"])
    again = await post(client, world, body, "stayed")
    assert (again.status_code, again.json()["id"]) == (200, pickup_id)
    assert await Pickup.all().count() == 1
    # Before 0048 no organization was kept: the backfill reads it from the batch's tagging,
    # not from where the recorder works now.
    await Pickup.filter(id=pickup_id).update(organization_id=other.id)
    await connections.get("default").execute_script(
        importlib.import_module("migrations.0048_pickup_organization").BACKFILL
    )
    assert (await Pickup.get(id=pickup_id)).organization_id == world.orgs["community"].id


async def test_a_pickup_resent_written_otherwise_or_digested_as_written_before_is_a_duplicate(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """A record's content is its values: a resend with the instant in another offset and the
    numbers, nested ones too, with other zeros is a duplicate. A record stored before digests
    read values (December 2026) kept the digest of its content as written, +08:00 and all: a
    resend written the same way is still a duplicate, and other content a conflict."""
    body = pickup(
        point_url, weight_kg="42.50", quality={"passed": True, "contamination_share": "0.040"}
    )
    moment = datetime.fromisoformat(body["device_time"])
    body["device_time"] = moment.astimezone(timezone(timedelta(hours=8))).isoformat()
    first = await post(client, world, body)
    assert first.status_code == 201, first.text
    otherwise = {
        **body,
        "device_time": moment.astimezone(UTC).isoformat(),
        "weight_kg": "42.5",
        "quality": {"passed": True, "contamination_share": "0.04"},
    }
    again = await post(client, world, otherwise)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"]), again.text
    written = PickupCommand.model_validate(body).model_dump_json()
    await Pickup.all().update(payload_digest=hashlib.sha256(written.encode()).hexdigest())
    resent = await post(client, world, body)
    assert (resent.status_code, resent.json()["id"]) == (200, first.json()["id"]), resent.text
    changed = await post(client, world, {**body, "weight_kg": "42.6"})
    assert (changed.status_code, changed.json()["field"]) == (409, "client_event_id")
    assert await Pickup.all().count() == 1


async def test_a_resend_that_raced_its_first_send_is_answered_as_a_duplicate(
    client: httpx.AsyncClient,
    world: World,
    point_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resend looked for the record before the first send committed, then found the
    record's custody events recorded: it is that record's resend, not a 500."""
    body = pickup(point_url)
    assert (await post(client, world, body)).status_code == 201
    looked = intake.seen
    calls: list[int] = []

    async def before_the_first_committed(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else await looked(*args, **kwargs)

    monkeypatch.setattr(intake, "seen", before_the_first_committed)
    again = await post(client, world, body)
    assert again.status_code == 200, again.text
    assert len(calls) == 2
    assert await Pickup.all().count() == 1


async def test_sorting_coverage_and_accuracy_with_their_counts(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    village = world.regions["village"].id
    town = await client.put(
        f"/admin/v1/regions/{world.regions['town'].id}/sorting",
        headers=world.headers("admin"),
        json={"sorted_collection_since": "2024-01-01"},
    )
    assert (town.status_code, town.json()["field"]) == (422, "region_id")
    marked = await client.put(
        f"/admin/v1/regions/{village}/sorting",
        headers=world.headers("admin"),
        json={"sorted_collection_since": "2024-01-01"},
    )
    assert marked.json()["sorted_collection_since"] == "2024-01-01"
    await post(client, world, pickup(point_url))
    await post(
        client,
        world,
        pickup(
            point_url,
            category="hh.residual",
            quality={"passed": False, "contamination_share": "0.3"},
        ),
    )
    await post(client, world, pickup(point_url, category="hh.recyclable.paper", quality=None))
    metrics = await sorting_today(client, world)
    coverage = metrics["coverage"]
    assert (coverage["numerator"], coverage["denominator"], coverage["rate"]) == (
        "1",
        "1",
        "1.0000",
    )
    assert coverage["unit"] == "communities and villages"
    assert "城乡生活垃圾分类覆盖率" in coverage["definition"]["formula"]
    assert (metrics["accuracy"]["numerator"], metrics["accuracy"]["denominator"]) == ("1", "2")
    by_town = {t["name"]: t for t in metrics["towns"]}
    assert by_town["崖头街道"]["accuracy"]["rate"] == "0.5000"
    assert by_town["石岛管理区"]["coverage"]["denominator"] == "0"
    before = (
        await client.get(
            "/m/v1/metrics/sorting",
            headers=world.headers("manager"),
            params={"date_from": "2023-01-01", "date_to": "2023-12-31"},
        )
    ).json()
    assert before["coverage"]["numerator"] == "0"


async def test_sorting_coverage_counts_communities_and_villages_apart(
    client: httpx.AsyncClient, world: World
) -> None:
    """Urban coverage counts communities, rural coverage villages, each told by its code's last
    three digits (统计用区划代码: 001–199 a residents' committee, 200–399 a villagers'
    committee); one whose code says neither is in no coverage, only counted apart: the whole
    is communities plus villages (docs/metrics.md §6), so a sorted 新区 moves no figure."""
    town = world.regions["town"]
    made = {
        name: await registry.create_region(
            code=f"{town.code}{own}", name=name, level=RegionLevel.village, parent_id=town.id
        )
        for name, own in (("西村", "200"), ("东村", "201"), ("南社区", "002"), ("新区", "450"))
    }
    for name in ("西村", "新区"):
        marked = await client.put(
            f"/admin/v1/regions/{made[name].id}/sorting",
            headers=world.headers("admin"),
            json={"sorted_collection_since": "2024-01-01"},
        )
        assert marked.status_code == 200, marked.text
    metrics = await sorting_today(client, world)
    # 北山社区 (001) and 南社区 (002): no sorted collection; 西村 of 西村 and 东村; 新区 neither.
    figures = {
        name: (metrics[name]["numerator"], metrics[name]["denominator"], metrics[name]["unit"])
        for name in ("coverage", "urban_coverage", "rural_coverage")
    }
    assert figures == {
        "coverage": ("1", "4", "communities and villages"),
        "urban_coverage": ("0", "2", "communities"),
        "rural_coverage": ("1", "2", "villages"),
    }
    assert metrics["unclassified"] == 1
    assert "居民委员会" in metrics["urban_coverage"]["definition"]["formula"]
    assert "村民委员会" in metrics["rural_coverage"]["definition"]["formula"]
    by_town = {t["name"]: t for t in metrics["towns"]}
    assert by_town["崖头街道"]["rural_coverage"]["rate"] == "0.5000"
    assert by_town["崖头街道"]["unclassified"] == 1
    assert by_town["石岛管理区"]["urban_coverage"]["denominator"] == "0"


async def test_a_check_counts_on_its_batchs_tagging_day_after_corrections(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """A phone a year behind recorded the pickup; once its tagging time is corrected, the
    check counts in today's accuracy, as the batch does in every other figure."""
    late = await post(
        client, world, pickup(point_url, device_time=(NOW - timedelta(days=365)).isoformat())
    )
    assert late.status_code == 201, late.text
    code = late.json()["batch_code"]
    history = await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("collector"))
    tagging = history.json()[0]
    fixed = await client.post(
        "/m/v1/events",
        json=event(
            "corrected",
            code,
            minutes=30,
            corrects=tagging["id"],
            event_time=(NOW - timedelta(hours=1)).isoformat(),
        ),
        headers=world.headers("collector"),
    )
    assert fixed.status_code == 201, fixed.text
    metrics = await sorting_today(client, world)
    assert (metrics["accuracy"]["numerator"], metrics["accuracy"]["denominator"]) == ("1", "1")


async def test_a_check_counts_while_its_batch_is_in_a_cohort_not_while_it_holds_others(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """The point's own collector scans one pickup's bag into another's: the container is in no
    cohort (its contents are), so its failed check leaves accuracy as its 40 kg leave every
    figure; the aggregation undone, it is a batch of its own again and its check counts."""
    await make_user(world, "own_collector", Role.collector, world.orgs["point"])
    failed = {"passed": False, "contamination_share": "0.5"}
    into = await post(client, world, pickup(point_url, quality=failed), who="own_collector")
    bag = await post(client, world, pickup(point_url), who="own_collector")
    assert (into.status_code, bag.status_code) == (201, 201), (into.text, bag.text)
    packed = await client.post(
        "/m/v1/events",
        json=event(
            "aggregated", into.json()["batch_code"], minutes=90, children=[bag.json()["batch_code"]]
        ),
        headers=world.headers("own_collector"),
    )
    assert packed.status_code == 201, packed.text
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
    use = await client.get(
        "/m/v1/metrics/utilization", headers=world.headers("manager"), params=day
    )
    [household_stream] = [s for s in use.json()["streams"] if s["stream"] == "household"]
    assert household_stream["batches"] == 1
    accuracy = (await sorting_today(client, world))["accuracy"]
    assert (accuracy["numerator"], accuracy["denominator"]) == ("1", "1")

    history = await client.get(
        f"/m/v1/batches/{bag.json()['batch_code']}/events", headers=world.headers("own_collector")
    )
    [aggregation] = [e for e in history.json() if e["event_type"] == "aggregated"]
    undone = await client.post(
        "/m/v1/events",
        json=event(
            "corrected",
            bag.json()["batch_code"],
            minutes=100,
            corrects=aggregation["id"],
            aggregated=False,
        ),
        headers=world.headers("own_collector"),
    )
    assert undone.status_code == 201, undone.text
    accuracy = (await sorting_today(client, world))["accuracy"]
    assert (accuracy["numerator"], accuracy["denominator"]) == ("1", "2")


async def collection_point_at(
    world: World, region: str, *, site_region: str | None = None, kind: str = "collection_point"
) -> str:
    """The QR URL of a site of a new organization of `kind` registered in `region`, the site
    in `site_region` (below it) or in the organization's own; the collector's community has a
    service agreement with it, wherever it lies."""
    org = await registry.create_organization(
        name=f"投放点{uuid.uuid4().hex[:6]}",
        kind=OrganizationKind(kind),
        region_id=world.regions[region].id,
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
        region_id=world.regions[site_region].id if site_region else None,
        latitude=37.16,
        longitude=122.48,
    )
    return codes.qr_url(
        site.code or "", base_url="http://testserver", secret=world.settings.secret_key
    )


async def test_a_check_counts_in_the_region_its_batch_counts_in(
    client: httpx.AsyncClient, world: World
) -> None:
    """A collection point registered at its town may have its site in a village below it
    (registry.create_site). Its pickup's batch counts where its tagging pinned it — for a batch
    tagged before taggings took their site's region, the organization's town — and its check
    must count there too, in accuracy, in each town's and in a cell's criterion (all read
    `quality_checks`): otherwise the village's accuracy would count a check whose waste counts
    under the town, and the rates would not recount from the batches."""
    url = await collection_point_at(world, "town", site_region="village")
    fresh = await post(client, world, pickup(url))
    old = await post(
        client, world, pickup(url, quality={"passed": False, "contamination_share": "0.3"})
    )
    assert (fresh.status_code, old.status_code) == (201, 201), (fresh.text, old.text)
    # Tagged as taggings were before: under the producer organization's region, pinned (its
    # fact, which every figure counts, says so too).
    town = world.regions["town"].path
    await Batch.filter(code=old.json()["batch_code"]).update(region_path=town)
    pinned = await Batch.get(code=old.json()["batch_code"])
    await BatchFact.filter(batch_id=pinned.id).update(region_path=town)
    ids = [
        b.id for b in await Batch.filter(code__in=[r.json()["batch_code"] for r in (fresh, old)])
    ]
    for region in ("city", "town", "village", "other_town"):
        path = world.regions[region].path
        checks = household.quality_checks(
            region_path=path, date_from=CITY_TODAY, date_to=CITY_TODAY
        )
        counted = sorted(await checks.values_list("batch_id", flat=True))
        batches = Batch.filter(id__in=ids, region_path__startswith=path)
        assert counted == sorted(await batches.values_list("id", flat=True)), region
    # A manager of the village reads the checks of the batches counted in the village alone.
    office = await registry.create_organization(
        name="北山社区居委会",
        kind=OrganizationKind.authority,
        region_id=world.regions["village"].id,
    )
    await make_user(world, "village_manager", Role.manager, office)
    day = CITY_TODAY.isoformat()
    answer = await client.get(
        "/m/v1/metrics/sorting",
        headers=world.headers("village_manager"),
        params={"date_from": day, "date_to": day},
    )
    in_village = await Batch.filter(
        id__in=ids, region_path__startswith=world.regions["village"].path
    ).count()
    assert answer.json()["accuracy"]["denominator"] == str(in_village), answer.text
    metrics = await sorting_today(client, world)
    by_town = {t["name"]: t for t in metrics["towns"]}
    assert (
        by_town["崖头街道"]["accuracy"]["numerator"],
        by_town["崖头街道"]["accuracy"]["denominator"],
    ) == ("1", "2")


async def test_a_pickup_is_recorded_at_a_collection_point_only(
    client: httpx.AsyncClient, world: World
) -> None:
    """Every site has a QR plate, but a collection point (投放点) is a site of a
    `collection_point` organization (docs/streams/household.md): a pickup scanned at a
    community's office or a factory's yard is refused, naming `site`, and makes no batch — it
    would otherwise count as household sorting in accuracy; the scan offers none there."""
    for org in ("community", "enterprise"):
        url = await collection_point_at(world, "village", kind=org)
        # Its plate scans as a site, with no pickup offered.
        scanned = await client.get(
            "/m/v1/scan", params={"qr": url}, headers=world.headers("collector")
        )
        assert (scanned.json()["kind"], scanned.json()["actions"]) == ("site", []), scanned.text
        refused = await post(client, world, pickup(url))
        assert (refused.status_code, refused.json()["field"]) == (422, "site"), refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        synced = await client.post(
            "/m/v1/sync",
            headers=world.headers("collector"),
            json={"events": [{**pickup(url), "kind": "pickup"}]},
        )
        (result,) = synced.json()["results"]
        assert result["error"]["field"] == "site", result
    assert await Batch.all().count() == 0
    kept = await post(client, world, pickup(await collection_point_at(world, "village")))
    assert kept.status_code == 201, kept.text


async def test_the_sorting_export_adds_up_to_its_headline(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """The export's first row is the area's headline (the figures the JSON answer gives once),
    then each town, then what lies in no town — a check at a collection point of the city's
    own region counts in the headline and in no town — so that every count below the headline
    adds up to it, as a spreadsheet's sum would check."""
    await client.put(
        f"/admin/v1/regions/{world.regions['village'].id}/sorting",
        headers=world.headers("admin"),
        json={"sorted_collection_since": "2024-01-01"},
    )
    failed = {"passed": False, "contamination_share": "0.3"}
    for url, quality in [
        (point_url, None),
        (point_url, failed),
        (await collection_point_at(world, "other_town"), None),
        (await collection_point_at(world, "city"), failed),
        (await collection_point_at(world, "city"), None),
    ]:
        body = pickup(url, **({"quality": quality} if quality else {}))
        assert (await post(client, world, body)).status_code == 201
    day = CITY_TODAY.isoformat()
    got = await client.get(
        "/m/v1/metrics/sorting",
        headers=world.headers("manager"),
        params={"date_from": day, "date_to": day, "format": "csv"},
    )
    assert got.status_code == 200, got.text
    assert got.headers["x-period"] == f"{day}/{day}"
    headline, *rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert (headline["scope"], headline["name"]) == ("area", "荣成市")
    assert [r["scope"] for r in rows] == ["town", "town", "outside_towns"]
    assert all((r["date_from"], r["date_to"]) == (day, day) for r in [headline, *rows])
    counts = [
        f"{figure}.{part}"
        for figure in ("coverage", "urban_coverage", "rural_coverage", "accuracy")
        for part in ("numerator", "denominator")
    ] + ["unclassified"]
    for column in counts:
        assert sum(int(r[column]) for r in rows) == int(headline[column]), column
    outside = rows[-1]
    assert (outside["accuracy.numerator"], outside["accuracy.denominator"]) == ("1", "2")
    json_answer = await sorting_today(client, world)
    assert (
        (headline["accuracy.numerator"], headline["accuracy.denominator"])
        == (
            json_answer["accuracy"]["numerator"],
            json_answer["accuracy"]["denominator"],
        )
        == ("3", "5")
    )
    book = await client.get(
        "/m/v1/metrics/sorting",
        headers=world.headers("manager"),
        params={"date_from": day, "date_to": day, "format": "xlsx"},
    )
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    # The period first, as in every figure's file, then the scope.
    assert [c.value for c in sheet[1]][:3] == ["date_from", "date_to", "scope"]
    assert [c.value for c in sheet["C"]][1:] == ["area", "town", "town", "outside_towns"]


async def test_a_start_of_sorted_collection_planned_ahead_is_not_counted_yet(
    client: httpx.AsyncClient, world: World
) -> None:
    """An admin records the day a village will start sorting, a month ahead: this year's
    coverage, asked up to the year's last day, is a standing as of today while the year runs
    on, so the plan is no sorted collection yet."""
    today = cityday.today(world.settings.timezone)
    planned = today + timedelta(days=30)
    marked = await client.put(
        f"/admin/v1/regions/{world.regions['village'].id}/sorting",
        headers=world.headers("admin"),
        json={"sorted_collection_since": planned.isoformat()},
    )
    assert marked.status_code == 200, marked.text
    year_end = date(planned.year, 12, 31)
    ahead = await client.get(
        "/m/v1/metrics/sorting",
        headers=world.headers("manager"),
        params={"date_from": today.isoformat(), "date_to": year_end.isoformat()},
    )
    assert ahead.status_code == 200, ahead.text
    assert ahead.json()["coverage"]["numerator"] == "0", ahead.json()["coverage"]
    assert "while the period runs on" in ahead.json()["coverage"]["definition"]["formula"]


async def test_sorted_collection_that_ends_keeps_counting_for_the_days_it_covered(
    client: httpx.AsyncClient, world: World
) -> None:
    """A village sorted from 1 March 2024 and stopped on 1 July 2025: coverage as of June 2025
    still counts it (the end no longer rewrites the past), as of July does not; a new start
    cannot reach back into the period that ended nor before 2000, an end cannot be a day to
    come nor precede its start, and a refused request changes nothing. The end is in the audit
    log about the village."""
    village = world.regions["village"].id
    admin = world.headers("admin")

    async def put(body: dict[str, Any]) -> httpx.Response:
        return await client.put(f"/admin/v1/regions/{village}/sorting", headers=admin, json=body)

    async def covered(day: str) -> str:
        answer = await client.get(
            "/m/v1/metrics/sorting",
            headers=world.headers("manager"),
            params={"date_from": day, "date_to": day},
        )
        assert answer.status_code == 200, answer.text
        numerator: str = answer.json()["coverage"]["numerator"]
        return numerator

    assert (await put({"sorted_collection_since": "2024-03-01"})).status_code == 200
    today = cityday.today(world.settings.timezone)
    refused = [
        ({"sorted_collection_since": "1999-12-31"}, "sorted_collection_since"),
        (
            {"sorted_collection_since": None, "ended_on": (today + timedelta(days=1)).isoformat()},
            "ended_on",
        ),
        ({"sorted_collection_since": None, "ended_on": "2024-02-29"}, "ended_on"),
        ({"sorted_collection_since": "2024-03-01", "ended_on": "2025-07-01"}, "ended_on"),
    ]
    for body, field in refused:
        answer = await put(body)
        assert (answer.status_code, answer.json()["field"]) == (422, field), answer.text
    assert (await covered("2025-06-30"), await covered("2025-07-01")) == ("1", "1")

    ended = await put({"sorted_collection_since": None, "ended_on": "2025-07-01"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["sorted_collection_since"] is None
    audit = await client.get("/m/v1/audit", params={"limit": 500}, headers=admin)
    (entry,) = [e for e in audit.json()["entries"] if e["action"].endswith("collection_ended")]
    assert (entry["subject_type"], entry["subject_id"]) == ("region", str(village)), entry
    assert ended.json()["sorted_collection_ended"] == [
        {"since": "2024-03-01", "until": "2025-07-01"}
    ]
    assert (await covered("2024-02-29"), await covered("2024-03-01")) == ("0", "1")
    assert (await covered("2025-06-30"), await covered("2025-07-01")) == ("1", "0")

    overlapping = await put({"sorted_collection_since": "2025-06-01"})
    assert (overlapping.status_code, overlapping.json()["field"]) == (
        422,
        "sorted_collection_since",
    ), overlapping.text
    again = await put({"sorted_collection_since": "2025-09-01"})
    assert again.json()["sorted_collection_ended"] == ended.json()["sorted_collection_ended"]
    assert [await covered(day) for day in ("2025-08-31", "2025-09-01")] == ["0", "1"]
    # Ended again today: today has none, yesterday keeps it; an end with nothing running is
    # refused, a plain "none" changes nothing.
    stopped = await put({"sorted_collection_since": None})
    assert stopped.json()["sorted_collection_ended"][-1] == {
        "since": "2025-09-01",
        "until": today.isoformat(),
    }
    assert [
        await covered((today - timedelta(days=1)).isoformat()),
        await covered(today.isoformat()),
    ] == ["1", "0"]
    nothing = await put({"sorted_collection_since": None, "ended_on": today.isoformat()})
    assert (nothing.status_code, nothing.json()["field"]) == (422, "ended_on")
    assert (await put({"sorted_collection_since": None})).json() == stopped.json()


async def test_only_a_community_of_the_area_or_a_provider_picks_up_at_a_point(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """A point's waste is tagged for it by a community collector of its area (or anyone under
    a service agreement, docs/security.md): not a pesticide recovery point's collector, not a
    neighbouring point's, not a community of another town. Each is refused (403, nothing
    written), and the scan of the point's plate offers none of them a pickup."""
    outsiders = (
        ("station", OrganizationKind.recovery_point, "village"),
        ("other_point", OrganizationKind.collection_point, "village"),
        ("far_collector", OrganizationKind.community, "other_town"),
    )
    for who, kind, region in outsiders:
        org = await registry.create_organization(
            name=f"{who}组织", kind=kind, region_id=world.regions[region].id
        )
        await make_user(world, who, Role.collector, org)
        refused = await post(client, world, pickup(point_url), who=who)
        assert refused.status_code == 403, (who, refused.text)
        scanned = await client.get(
            "/m/v1/scan", params={"qr": point_url}, headers=world.headers(who)
        )
        assert (scanned.json()["kind"], scanned.json()["actions"]) == ("site", []), who
    assert await Pickup.all().count() == await Batch.all().count() == 0
    # An agreement to serve the point lets the recovery point's collector pick up there.
    await agreements.create_service_agreement(
        provider_organization_id=world.users["station"].organization_id,
        client_organization_id=world.orgs["point"].id,
        streams=["household"],
        valid_from=CITY_TODAY - timedelta(days=1),
    )
    scanned = await client.get(
        "/m/v1/scan", params={"qr": point_url}, headers=world.headers("station")
    )
    assert scanned.json()["actions"] == ["pickup"]
    assert (await post(client, world, pickup(point_url), who="station")).status_code == 201


async def test_a_towns_point_is_picked_up_by_the_community_whose_area_holds_its_site(
    client: httpx.AsyncClient, world: World
) -> None:
    """A collection point registered at the town with its 投放点 in a village: the village's
    community collects there (the site lies in its area, and its pickups count there), as the
    point's own collectors do; a community of another town does not."""
    point = await registry.create_organization(
        name="崖头街道物业投放点",
        kind=OrganizationKind.collection_point,
        region_id=world.regions["town"].id,
    )
    site = await registry.create_site(
        organization_id=point.id,
        name="北山社区1号投放点",
        region_id=world.regions["village"].id,
        latitude=37.16,
        longitude=122.48,
    )
    url = codes.qr_url(
        site.code or "", base_url="http://testserver", secret=world.settings.secret_key
    )
    far = await registry.create_organization(
        name="远方社区", kind=OrganizationKind.community, region_id=world.regions["other_town"].id
    )
    await make_user(world, "far_collector", Role.collector, far)
    await make_user(world, "point_staff", Role.collector, point)  # the point's own collector
    offers = {}
    for who in ("collector", "far_collector", "point_staff"):
        scanned = await client.get("/m/v1/scan", params={"qr": url}, headers=world.headers(who))
        offers[who] = scanned.json()["actions"]
    assert offers == {"collector": ["pickup"], "far_collector": [], "point_staff": ["pickup"]}
    assert (await post(client, world, pickup(url), who="far_collector")).status_code == 403
    made = await post(client, world, pickup(url), who="collector")
    assert made.status_code == 201, made.text
    batch = await Batch.get(code=made.json()["batch_code"])
    assert batch.region_path == world.regions["village"].path  # counted where the site lies


async def test_an_area_inside_a_town_is_that_towns_part_and_nothing_outside_towns(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """Asked for a village (a manager of it, or the city's manager with ?region_id=), its
    figures are its town's part — one town row, `partial` — and nothing lies in no town
    (镇街以外 is the city's own region's, which the village is not); the CSV says the same."""
    office = await registry.create_organization(
        name="北山社区居委会",
        kind=OrganizationKind.authority,
        region_id=world.regions["village"].id,
    )
    await make_user(world, "village_manager", Role.manager, office)
    assert (await post(client, world, pickup(point_url))).status_code == 201
    day = {"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()}
    village = {**day, "region_id": world.regions["village"].id}
    for who, params in (("village_manager", day), ("manager", village)):
        answer = (
            await client.get("/m/v1/metrics/sorting", params=params, headers=world.headers(who))
        ).json()
        assert answer["accuracy"]["denominator"] == "1", answer
        (town,) = answer["towns"]
        assert (town["name"], town["partial"]) == ("崖头街道", True)
        assert (town["accuracy"]["denominator"], town["coverage"]["denominator"]) == ("1", "1")
        outside = answer["outside_towns"]
        assert (outside["accuracy"]["denominator"], outside["coverage"]["denominator"]) == (
            "0",
            "0",
        )
    table = await client.get(
        "/m/v1/metrics/sorting",
        params={**village, "format": "csv"},
        headers=world.headers("manager"),
    )
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert [(r["scope"], r["partial"]) for r in rows] == [
        ("area", "false"),
        ("town", "true"),
        ("outside_towns", "false"),
    ], rows
    whole = (await sorting_today(client, world))["towns"]
    assert {t["name"]: t["partial"] for t in whole} == {"崖头街道": False, "石岛管理区": False}


async def test_an_auditor_records_nothing_posted_or_synced(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """One rule (`Principal.check_may_write`) before any stream's own: an auditor's record is
    a 403 naming `role`, and so is an auditor's sync whatever it holds (one holding only records
    was answered 200, each refused by its stream's own role rule)."""
    headers = world.headers("auditor")
    synced = [{**pickup(point_url), "kind": "pickup"}, {**cleanup(world), "kind": "cleanup"}]
    answers = [
        await post(client, world, pickup(point_url), "auditor"),
        await client.post("/m/v1/cleanups", json=cleanup(world), headers=headers),
        *[
            await client.post("/m/v1/sync", json={"events": [entry]}, headers=headers)
            for entry in synced
        ],
    ]
    for answer in answers:
        assert (answer.status_code, answer.json()["field"]) == (403, "role"), answer.text
        assert answer.json()["detail"] == "auditors read; they do not record"
    assert await Pickup.all().count() == 0
    assert await CleanUp.all().count() == 0


async def test_a_pickup_resent_naming_its_plate_by_the_typed_code_is_a_duplicate(
    client: httpx.AsyncClient, world: World, point_url: str
) -> None:
    """Content is what the plate names, not how it was written (docs/custody.md): a pickup
    synced with the plate's QR URL and resent naming it by its code as typed is the same
    pickup, by sync and by single post."""
    body = {**pickup(point_url), "kind": "pickup"}
    sync = "/m/v1/sync"
    headers = world.headers("collector")
    first = (await client.post(sync, json={"events": [body]}, headers=headers)).json()
    assert first["results"][0]["status"] == "applied", first
    resent = {**body, "site": typed(point_url)}
    again = (await client.post(sync, json={"events": [resent]}, headers=headers)).json()
    single = await client.post(
        "/m/v1/pickups", json={k: v for k, v in resent.items() if k != "kind"}, headers=headers
    )
    assert again["results"][0]["status"] == "duplicate", again
    assert (single.status_code, single.json()["id"]) == (
        200,
        first["results"][0]["record_id"],
    ), single.text
    assert await Pickup.all().count() == 1
