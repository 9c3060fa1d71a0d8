"""A carrier signs the manifests of one round in one request: all or nothing, idempotent."""

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tests.factories import World, make_user, medical_bag
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch
from wastetrack.custody.models import CustodyEvent
from wastetrack.manifests.models import ManifestLeg
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind

NOW = datetime.now(UTC)


@pytest.fixture
async def round_of_three(client: httpx.AsyncClient, world: World) -> list[int]:
    """Three drafted manifests of one producer, each of one batch and one leg by the carrier."""
    city = world.regions["city"].id
    maker = await registry.create_organization(
        name="荣成某船舶修造公司", kind=OrganizationKind.enterprise, region_id=city
    )
    plant = await registry.create_organization(
        name="危废处置中心", kind=OrganizationKind.treatment_facility, region_id=city
    )
    await registry.add_licence(
        organization_id=plant.id, category_key="hw.08", method_codes=["R9", "D10"]
    )
    await make_user(world, "maker", Role.generator, maker)
    carrier = world.orgs["carrier"].id
    return [await draft(client, world, plant.id, [carrier]) for _ in range(3)]


async def draft(client: httpx.AsyncClient, world: World, plant_id: int, carriers: list[int]) -> int:
    """A drafted manifest of one batch of the maker's, one leg per carrier given."""
    bag = medical_bag(
        stream="hazardous",
        category="hw.08",
        waste_code="900-249-08",
        hazard=["T", "I"],
        quantity="400",
        device_time=(NOW - timedelta(hours=3)).isoformat(),
    )
    bag.pop("event_type")
    made = await client.post("/m/v1/batches", json=bag, headers=world.headers("maker"))
    assert made.status_code == 201, made.text
    manifest = await client.post(
        "/m/v1/manifests",
        json={
            "category": "hw.08",
            "waste_code": "900-249-08",
            "waste_name": "废机油",
            "hazard": ["T", "I"],
            "physical_form": "液态",
            "packaging": "200L铁桶×2",
            "quantity_kg": "400",
            "emergency_measures": "泄漏时用吸油毡围堵，禁止明火",
            "batches": [made.json()["code"]],
            "receiver_organization_id": plant_id,
            "legs": [
                {
                    "carrier_organization_id": carrier,
                    "vehicle_plate": "鲁K12345",
                    "permit_number": "鲁危运001",
                }
                for carrier in carriers
            ],
        },
        headers=world.headers("maker"),
    )
    assert manifest.status_code == 201, manifest.text
    manifest_id: int = manifest.json()["id"]
    return manifest_id


async def bulk(
    client: httpx.AsyncClient, world: World, who: str, role: str, ids: list[int]
) -> httpx.Response:
    # The producer hands the batches over before the carrier signs for them.
    items = [
        {"manifest_id": i, "handover_at": (NOW - timedelta(hours=2)).isoformat()}
        if role == "producer"
        else {
            "manifest_id": i,
            "handover_at": (NOW - timedelta(hours=1)).isoformat(),
            "handover_place": "石岛",
        }
        for i in ids
    ]
    return await client.post(
        "/m/v1/manifests/sign",
        json={"role": role, "manifests": items},
        headers=world.headers(who),
    )


async def test_one_bad_manifest_signs_none_and_names_its_index(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    first, _middle, last = round_of_three
    # The producer signs two of three in one request: the middle one stays a draft.
    signed = await bulk(client, world, "maker", "producer", [first, last])
    assert signed.status_code == 200, signed.text
    assert signed.json()["signed"] == 2
    events_before = await CustodyEvent.all().count()
    refused = await bulk(client, world, "carrier", "carrier", round_of_three)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["field"] == "manifests[1]"
    assert [e["field"] for e in problem["errors"]] == ["manifests[1]"]
    assert await ManifestLeg.filter(signed_at__not_isnull=True).count() == 0
    assert await CustodyEvent.all().count() == events_before
    assert {b.state for b in await Batch.all()} == {"tagged", "handed_over"}


async def test_a_retried_bulk_signature_changes_nothing(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    assert (await bulk(client, world, "maker", "producer", round_of_three)).status_code == 200
    signed = await bulk(client, world, "carrier", "carrier", round_of_three)
    assert signed.status_code == 200, signed.text
    assert (signed.json()["signed"], signed.json()["already_signed"]) == (3, 0)
    assert {r["state"] for r in signed.json()["results"]} == {"in_transit_leg_1"}
    events = await CustodyEvent.all().count()
    again = await bulk(client, world, "carrier", "carrier", round_of_three)
    assert again.status_code == 200, again.text
    assert (again.json()["signed"], again.json()["already_signed"]) == (0, 3)
    assert await CustodyEvent.all().count() == events
    assert {b.state for b in await Batch.all()} == {"in_transit"}
    # The same legs with another time are a different signature: refused, the section locked.
    other = await client.post(
        "/m/v1/manifests/sign",
        json={
            "role": "carrier",
            "manifests": [
                {
                    "manifest_id": round_of_three[2],
                    "handover_at": NOW.isoformat(),
                    "handover_place": "石岛",
                }
            ],
        },
        headers=world.headers("carrier"),
    )
    assert (other.status_code, other.json()["field"]) == (409, "manifests[0]")


async def test_a_retry_after_a_manifest_of_the_round_was_cancelled_is_already_signed(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    """docs/transport.md: "a retry returns the items as `already_signed` and writes nothing".
    A round signed, its answer lost, then one of its manifests cancelled by the region's
    manager: the retry (the producer's and the carrier's) was refused whole, "nothing was
    signed", though every section of it is. A new signature of a cancelled manifest is still
    refused."""
    first, middle, last = round_of_three
    assert (await bulk(client, world, "maker", "producer", [first, middle])).status_code == 200
    assert (await bulk(client, world, "carrier", "carrier", [first, middle])).status_code == 200
    for cancelled in (middle, last):
        answer = await client.post(
            f"/m/v1/manifests/{cancelled}/cancel",
            json={"reason": "改派"},
            headers=world.headers("manager"),
        )
        assert answer.status_code == 200, answer.text
    events = await CustodyEvent.all().count()
    for who, role in (("maker", "producer"), ("carrier", "carrier")):
        again = await bulk(client, world, who, role, [first, middle])
        assert again.status_code == 200, again.text
        assert (again.json()["signed"], again.json()["already_signed"]) == (0, 2), again.text
        states = [r["state"] for r in again.json()["results"]]
        assert states[1] == "cancelled", again.text
    assert await CustodyEvent.all().count() == events
    refused = await bulk(client, world, "maker", "producer", [last])
    assert (refused.status_code, refused.json()["field"]) == (409, "manifests[0]"), refused.text
    assert "cancelled" in refused.json()["detail"]


async def test_a_producer_s_retry_is_its_signature_and_another_time_is_refused(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    """As for a carrier: the same handover again is reported signed already, changing nothing;
    another handover time is a different signature, refused (the section is locked), the time
    recorded kept. Without a time the retry asks nothing new."""
    assert (await bulk(client, world, "maker", "producer", round_of_three)).status_code == 200
    events = await CustodyEvent.all().count()
    again = await bulk(client, world, "maker", "producer", round_of_three)
    assert (again.json()["signed"], again.json()["already_signed"]) == (0, 3), again.text
    same_instant = (NOW - timedelta(hours=2)).astimezone(timezone(timedelta(hours=8)))
    for handover_at, status in (
        (same_instant.isoformat(), 200),
        (None, 200),
        ((NOW - timedelta(minutes=30)).isoformat(), 409),
    ):
        item = {"manifest_id": round_of_three[1], "handover_at": handover_at}
        resent = await client.post(
            "/m/v1/manifests/sign",
            json={"role": "producer", "manifests": [item]},
            headers=world.headers("maker"),
        )
        assert resent.status_code == status, (handover_at, resent.text)
    assert resent.json()["field"] == "manifests[0]"
    assert resent.json()["errors"][0]["item_field"] == "producer"
    assert await CustodyEvent.all().count() == events
    handovers = await CustodyEvent.filter(event_type="handed_over").values_list(
        "device_time", flat=True
    )
    assert set(handovers) == {NOW - timedelta(hours=2)}


async def test_one_signature_listed_twice_is_refused(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    first, second, _ = round_of_three
    response = await bulk(client, world, "maker", "producer", [first, second, first])
    assert (response.status_code, response.json()["field"]) == (422, "manifests[2].manifest_id")
    assert "manifests[0]" in response.json()["detail"]
    assert await ManifestLeg.filter(signed_at__not_isnull=True).count() == 0
    assert await Batch.filter(state="handed_over").count() == 0
    # A producer's item names the section whatever its seq; a carrier's without a seq may be
    # the leg another names.
    at = (NOW - timedelta(hours=2)).isoformat()
    for role, who in (("producer", "maker"), ("carrier", "carrier")):
        place = {"handover_at": at} | ({"handover_place": "石岛"} if role == "carrier" else {})
        seq = {"seq": 1} if role == "carrier" else {}
        items = [{"manifest_id": first, **place}, {"manifest_id": first, **seq, **place}]
        response = await client.post(
            "/m/v1/manifests/sign",
            json={"role": role, "manifests": items},
            headers=world.headers(who),
        )
        assert (response.status_code, response.json()["field"]) == (
            422,
            "manifests[1].manifest_id",
        ), role
    assert await ManifestLeg.filter(signed_at__not_isnull=True).count() == 0
    assert await Batch.filter(state="handed_over").count() == 0


async def test_a_producer_names_no_leg_and_no_place(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    """The producer's section has neither: an item naming one is refused, not signed with it
    silently dropped. Nothing is signed."""
    at = (NOW - timedelta(hours=2)).isoformat()
    for name, value in (("seq", 2), ("handover_place", "石岛")):
        items = [{"manifest_id": m, "handover_at": at} for m in round_of_three]
        items[1][name] = value
        response = await client.post(
            "/m/v1/manifests/sign",
            json={"role": "producer", "manifests": items},
            headers=world.headers("maker"),
        )
        assert (response.status_code, response.json()["field"]) == (422, f"manifests[1].{name}")
    assert await Batch.filter(state="handed_over").count() == 0


async def test_a_carrier_must_say_when_and_where_for_each_item(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    response = await client.post(
        "/m/v1/manifests/sign",
        json={"role": "carrier", "manifests": [{"manifest_id": round_of_three[0]}]},
        headers=world.headers("carrier"),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "manifests[0].handover_at"


async def test_a_retry_without_seq_does_not_sign_the_carriers_next_leg(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    """Two legs by the same carrier: the resent item finds the leg it signed, not the next."""
    plant = await Organization.get(name="危废处置中心")
    carrier = world.orgs["carrier"].id
    manifest = await draft(client, world, plant.id, [carrier, carrier])
    assert (await bulk(client, world, "maker", "producer", [manifest])).status_code == 200
    first = await bulk(client, world, "carrier", "carrier", [manifest])
    assert (first.json()["signed"], first.json()["already_signed"]) == (1, 0), first.text
    again = await bulk(client, world, "carrier", "carrier", [manifest])
    assert (again.json()["signed"], again.json()["already_signed"]) == (0, 1), again.text
    legs = await ManifestLeg.filter(manifest_id=manifest).order_by("seq")
    assert [leg.signed_at is not None for leg in legs] == [True, False]


async def test_an_item_naming_a_leg_the_manifest_lacks_is_refused_naming_seq(
    client: httpx.AsyncClient, world: World, round_of_three: list[int]
) -> None:
    """Each item is signed by a single signature's rule: a leg number the manifest has no leg
    of is a 404 naming the item's `seq` (it was a 403 on `role`, as if the carrier might not
    sign), nothing signed; a leg that is not the signer's stays a 403 on `role`."""
    manifest = round_of_three[0]
    assert (await bulk(client, world, "maker", "producer", [manifest])).status_code == 200
    item = {
        "manifest_id": manifest,
        "seq": 3,
        "handover_at": (NOW - timedelta(hours=1)).isoformat(),
        "handover_place": "石岛",
    }
    signed = await client.post(
        "/m/v1/manifests/sign",
        json={"role": "carrier", "manifests": [item]},
        headers=world.headers("carrier"),
    )
    found = signed.json()
    assert (signed.status_code, found["field"], found["item_field"]) == (404, "manifests[0]", "seq")
    assert await ManifestLeg.filter(manifest_id=manifest, signed_at__not_isnull=True).count() == 0
