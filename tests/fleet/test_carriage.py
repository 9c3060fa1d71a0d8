"""The plate a carriage names, the positions a vehicle reports, the trajectory of a batch and
the alert on a leg overdue."""

import importlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from tortoise import connections

from tests.custody.helpers import as_superuser_without_triggers, post_event, tag_bag
from tests.factories import NOW, World, event, make_user
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.auth.models import Role
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.settings import Settings
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.fleet import plates
from wastetrack.fleet.models import Vehicle
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind

PLATE = "鲁K12345"


async def register(client: httpx.AsyncClient, world: World, plate: str = PLATE, **fields) -> None:
    body = {"plate": plate, "permit_number": "371082000001", "capacity_kg": "2000", **fields}
    response = await client.post("/m/v1/vehicles", json=body, headers=world.headers("carrier"))
    assert response.status_code == 201, response.text


async def bag_for_carrier(client: httpx.AsyncClient, world: World) -> str:
    return (await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id))["code"]


async def _track(client: httpx.AsyncClient, world: World, batch: str) -> list[list[float]]:
    """The batch's trajectory as the carrier reads it: its points, longitude first."""
    found = await client.get(f"/m/v1/batches/{batch}/trajectory", headers=world.headers("carrier"))
    assert found.status_code == 200, found.text
    return found.json()["geometry"]["coordinates"]  # type: ignore[no-any-return]


async def test_medical_collection_needs_a_registered_vehicle_of_the_carrier(
    client: httpx.AsyncClient, world: World
) -> None:
    await register(client, world)
    await register(client, world, plate="鲁K54321")
    await client.delete("/m/v1/vehicles/鲁K54321", headers=world.headers("carrier"))
    # Retired before the collection's moment (a carriage before it, recorded after, stands).
    await Vehicle.filter(plate="鲁K54321").update(retired_at=NOW - timedelta(hours=3))
    code = await bag_for_carrier(client, world)
    for plate, why in [
        (None, "name the vehicle"),
        ("鲁K99999", "not a registered vehicle"),
        ("鲁K54321", "retired"),
        ("K12345", "not a Chinese plate"),
        ("鲁K\u017f2345", "not a Chinese plate"),  # the long s upper-cased is S
        ("鲁K\ufb00123", "not a Chinese plate"),  # the ligature ff upper-cased is FF
    ]:
        fields = {"vehicle_plate": plate} if plate else {}
        response = await post_event(
            client, world, "carrier", event("collected", code, minutes=10, **fields)
        )
        assert response.status_code == 422, (plate, response.text)
        assert response.json()["field"] == "vehicle_plate"
        assert why in response.json()["detail"]
    response = await post_event(
        client, world, "carrier", event("collected", code, minutes=10, vehicle_plate="鲁k 12345")
    )
    assert response.status_code == 201, response.text
    recorded = await CustodyEvent.get(batch__code=code, event_type="collected")
    assert recorded.details["vehicle_plate"] == PLATE


async def test_a_collection_resent_with_its_plate_written_otherwise_is_a_duplicate(
    client: httpx.AsyncClient, world: World
) -> None:
    """`鲁k 12345` is recorded as the vehicle `鲁K12345`: the same collection resent with the
    plate written as stored is its resend, not a conflict (content is values)."""
    await register(client, world)
    code = await bag_for_carrier(client, world)
    collected = event("collected", code, minutes=10, vehicle_plate="鲁k 12345")
    first = await post_event(client, world, "carrier", collected)
    assert first.status_code == 201, first.text
    again = await post_event(client, world, "carrier", {**collected, "vehicle_plate": PLATE})
    assert (again.status_code, again.json()["status"]) == (200, "duplicate"), again.text
    assert again.json()["event_id"] == first.json()["event_id"]


async def test_a_collection_stored_while_only_its_batch_was_read_matches_its_resend(
    client: httpx.AsyncClient, world: World
) -> None:
    """Each reading of a resend's content came in its own release: a record stored while the
    batch was read as its code but the plate as sent (7 December 2026, before plates were
    read) still matches the same body resent after both are."""
    await register(client, world)
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    body = event("collected", bag["qr_url"], minutes=10, vehicle_plate="鲁k 12345")
    carrier = world.headers("carrier")
    first = await client.post("/m/v1/sync", json={"events": [body]}, headers=carrier)
    assert first.json()["results"][0]["status"] == "applied", first.text
    stored = EventCommand.model_validate(body).model_copy(update={"batch": bag["code"]}).digest()
    # The log is append-only: the digest is set as the earlier release wrote it.
    await as_superuser_without_triggers(
        (
            "UPDATE custody_event SET payload_digest = $1 WHERE client_event_id = $2",
            [stored, body["client_event_id"]],
        )
    )
    again = await client.post("/m/v1/sync", json={"events": [body]}, headers=carrier)
    assert again.json()["results"][0]["status"] == "duplicate", again.text


async def test_a_carrier_without_a_registered_fleet_is_not_held_to_the_plate_rule(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await bag_for_carrier(client, world)
    response = await post_event(client, world, "carrier", event("collected", code, minutes=10))
    assert response.status_code == 201, response.text


async def test_hazardous_waste_needs_a_licence_valid_on_the_day(world: World) -> None:
    from wastetrack.fleet.models import Vehicle

    carrier = world.orgs["carrier"].id
    await Vehicle.create(
        organization_id=carrier,
        plate=PLATE,
        permit_number="1",
        capacity_kg=1000,
        hazardous_licence_number="鲁交危许字1",
        hazardous_licence_expires=date(2026, 6, 30),
    )
    await Vehicle.create(
        organization_id=carrier, plate="鲁K54321", permit_number="2", capacity_kg=1
    )

    async def check(plate: str, on: date, rule: str = plates.HAZARDOUS_LICENCE) -> str | None:
        # The licence is judged on the city's day of the carriage: 00:30 in the city is
        # still the previous day in UTC.
        at = datetime.combine(on, time(0, 30), tzinfo=ZoneInfo("Asia/Shanghai"))
        return await plates.plate_for_carriage(
            organization_id=carrier, plate=plate, rule=rule, at=at, timezone="Asia/Shanghai"
        )

    assert await check(PLATE, date(2026, 6, 30)) == PLATE
    with pytest.raises(ValidationFailed, match="valid on 2026-07-01"):
        await check(PLATE, date(2026, 7, 1))
    with pytest.raises(ValidationFailed, match="道路危险货物运输许可"):
        await check("鲁K54321", date(2026, 1, 1))
    # Medical waste asks only for a registered vehicle.
    assert await check("鲁K54321", date(2026, 7, 1), plates.REGISTERED) == "鲁K54321"


def fix(minutes: float, lat: float, lon: float, start: datetime) -> dict:
    return {
        "time": (start + timedelta(minutes=minutes)).isoformat(),
        "latitude": lat,
        "longitude": lon,
    }


async def test_positions_are_stored_once_per_vehicle_and_time(
    client: httpx.AsyncClient, world: World
) -> None:
    await register(client, world)
    start = NOW.replace(microsecond=0) - timedelta(hours=1)
    first = [fix(m, 37.16, 122.41 + m / 1000, start) for m in (0, 1, 2)]
    url = "/m/v1/vehicles/鲁K12345/positions"
    headers = world.headers("carrier")
    response = await client.post(url, json={"positions": first}, headers=headers)
    assert response.json() == {"received": 3, "stored": 3}
    resent = [*first[1:], fix(3, 37.17, 122.5, start)]
    response = await client.post(url, json={"positions": resent}, headers=headers)
    assert response.json() == {"received": 3, "stored": 1}
    elsewhere = await client.post(
        "/m/v1/vehicles/鲁K99999/positions", json={"positions": first}, headers=headers
    )
    assert elsewhere.status_code == 404
    bad = await client.post(
        url, json={"positions": [{**first[0], "latitude": 91}]}, headers=headers
    )
    assert bad.status_code == 422
    # A fix of a clock not yet set, one a day ahead, and a good one: the good one is stored.
    epoch = {**first[0], "time": "1980-01-06T00:00:00+00:00"}
    mixed = [epoch, fix(60 * 24, 37.2, 122.5, NOW), fix(4, 37.18, 122.5, start)]
    response = await client.post(url, json={"positions": mixed}, headers=headers)
    assert response.json() == {"received": 3, "stored": 1}


async def test_trajectory_follows_the_vehicle_from_pickup_to_receipt(
    client: httpx.AsyncClient, world: World
) -> None:
    await register(client, world)
    code = await bag_for_carrier(client, world)
    # The factory's events happen 2 hours ago plus `minutes`.
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    collected = event("collected", code, minutes=10, vehicle_plate=PLATE)
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    received = event("received", code, minutes=60, outcome="accepted", weight_kg="3.4")
    in_transit = event(
        "in_transit",
        code,
        minutes=20,
        destination_organization_id=world.orgs["facility"].id,
        vehicle_plate=PLATE,
    )
    assert (await post_event(client, world, "carrier", in_transit)).status_code == 201
    assert (await post_event(client, world, "facility", received)).status_code == 201
    points = [
        fix(5, 37.0, 122.0, start),  # before the pickup
        fix(15, 37.1, 122.1, start),
        fix(30, 37.2, 122.2, start),
        fix(59, 37.3, 122.3, start),
        fix(90, 37.4, 122.4, start),  # after the receipt
    ]
    response = await client.post(
        "/m/v1/vehicles/鲁K12345/positions",
        json={"positions": points},
        headers=world.headers("carrier"),
    )
    assert response.status_code == 200, response.text
    for who in ("clinic", "carrier", "facility", "manager"):
        response = await client.get(f"/m/v1/batches/{code}/trajectory", headers=world.headers(who))
        assert response.status_code == 200, (who, response.text)
        feature = response.json()
        assert feature["geometry"] == {
            "type": "LineString",
            "coordinates": [[122.1, 37.1], [122.2, 37.2], [122.3, 37.3]],
        }
        assert [c["vehicle_plate"] for c in feature["properties"]["carriages"]] == [PLATE, PLATE]
    hidden = await client.get(
        f"/m/v1/batches/{code}/trajectory", headers=world.headers("other_clinic")
    )
    assert hidden.status_code == 404
    # The dashboard's trace draws the same track on its map.
    client.cookies.set("wt_session", world.tokens["manager"])
    page = await client.get("/dashboard/batches", params={"code": code})
    assert '"trace-track">[[122.1, 37.1], [122.2, 37.2], [122.3, 37.3]]<' in page.text


async def test_a_fix_where_one_carriage_hands_on_to_the_next_is_on_the_path_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """Collected at +10 min, taken in transit in the same vehicle at +20, received at +60: the
    fix at +20, where one carriage ends and the next begins, is one position, not two."""
    await register(client, world)
    code = await bag_for_carrier(client, world)
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    collected = event("collected", code, minutes=10, vehicle_plate=PLATE)
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    in_transit = event(
        "in_transit",
        code,
        destination_organization_id=world.orgs["facility"].id,
        vehicle_plate=PLATE,
        device_time=(start + timedelta(minutes=20)).isoformat(),
    )
    assert (await post_event(client, world, "carrier", in_transit)).status_code == 201
    received = event("received", code, minutes=60, outcome="accepted", weight_kg="3.4")
    assert (await post_event(client, world, "facility", received)).status_code == 201
    points = [fix(15, 37.1, 122.1, start), fix(20, 37.2, 122.2, start), fix(30, 37.3, 122.3, start)]
    posted = await client.post(
        f"/m/v1/vehicles/{PLATE}/positions",
        json={"positions": points},
        headers=world.headers("carrier"),
    )
    assert posted.json()["stored"] == 3, posted.text
    found = await client.get(f"/m/v1/batches/{code}/trajectory", headers=world.headers("clinic"))
    feature = found.json()
    assert feature["geometry"]["coordinates"] == [[122.1, 37.1], [122.2, 37.2], [122.3, 37.3]]
    assert len(feature["properties"]["times"]) == 3
    assert len(feature["properties"]["carriages"]) == 2


async def test_a_plate_stated_by_another_carrier_shows_none_of_the_vehicles_positions(
    client: httpx.AsyncClient, world: World
) -> None:
    """A carrier that has not registered its fleet has its plates recorded as stated; one
    naming another carrier's vehicle must not read that vehicle's GPS track through its own
    batch."""
    await register(client, world)
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    track = {"positions": [fix(m, 37.1, 122.1 + m / 1000, start) for m in (15, 30)]}
    headers = world.headers("carrier")
    posted = await client.post("/m/v1/vehicles/鲁K12345/positions", json=track, headers=headers)
    assert posted.status_code == 200, posted.text
    rogue = await registry.create_organization(
        name="某运输公司", kind=OrganizationKind.carrier, region_id=world.regions["city"].id
    )
    await make_user(world, "rogue", Role.carrier, rogue)
    bag = await tag_bag(client, world, "rogue", producer_organization_id=rogue.id)
    collected = event("collected", bag["code"], minutes=10, vehicle_plate=PLATE)
    assert (await post_event(client, world, "rogue", collected)).status_code == 201
    response = await client.get(
        f"/m/v1/batches/{bag['code']}/trajectory", headers=world.headers("rogue")
    )
    assert response.status_code == 200, response.text
    feature = response.json()
    assert [c["vehicle_plate"] for c in feature["properties"]["carriages"]] == [PLATE]
    assert (feature["geometry"], feature["properties"]["times"]) == (None, [])


async def test_a_handover_naming_a_carriers_vehicle_shows_its_track_once_the_carrier_steps_in(
    client: httpx.AsyncClient, world: World
) -> None:
    """A giver names the taking carrier's vehicle at a time of its choosing: the track shows
    only after that carrier has recorded the batch's next step, and up to that step."""
    await register(client, world)
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    track = {"positions": [fix(m, 37.1, 122.1 + m / 1000, start) for m in (5, 15, 30, 45)]}
    headers = world.headers("carrier")
    posted = await client.post("/m/v1/vehicles/鲁K12345/positions", json=track, headers=headers)
    assert posted.status_code == 200, posted.text
    code = await bag_for_carrier(client, world)
    handover = event(
        "handed_over",
        code,
        minutes=10,
        to_organization_id=world.orgs["carrier"].id,
        vehicle_plate=PLATE,
    )
    assert (await post_event(client, world, "clinic", handover)).status_code == 201, handover
    url = f"/m/v1/batches/{code}/trajectory"
    alone = (await client.get(url, headers=world.headers("clinic"))).json()
    assert (alone["geometry"], alone["properties"]["carriages"]) == (None, [])
    departed = event(
        "in_transit",
        code,
        minutes=35,
        destination_organization_id=world.orgs["facility"].id,
        vehicle_plate=PLATE,
    )
    assert (await post_event(client, world, "carrier", departed)).status_code == 201
    confirmed = (await client.get(url, headers=world.headers("clinic"))).json()
    # 15 and 30 between the handover and the departure, 45 since the departure.
    assert len(confirmed["properties"]["carriages"]) == 2
    assert [lon for lon, _ in confirmed["geometry"]["coordinates"]] == [122.115, 122.13, 122.145]


async def test_a_backdated_handover_shows_the_carriers_track_only_a_carriage_back_from_its_step(
    client: httpx.AsyncClient, world: World
) -> None:
    """A giver dates its handover days back, naming the taking carrier's plate: once the
    carrier records its next step, the track shows from at most a carriage's longest time
    (`leg_overdue_hours`, 48) before that step, the carrier's own time, not the giver's."""
    await register(client, world)
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    days_ago = -4 * 24 * 60
    track = [
        fix(minutes, 37.1, 122 + index / 10, start)
        for index, minutes in enumerate((days_ago + 10, -3 * 24 * 60, -24 * 60, 15, 45))
    ]
    posted = await client.post(
        "/m/v1/vehicles/鲁K12345/positions",
        json={"positions": track},
        headers=world.headers("carrier"),
    )
    assert posted.status_code == 200, posted.text
    tagged = event("tagged", minutes=days_ago)["device_time"]
    code = (
        await tag_bag(
            client, world, carrier_organization_id=world.orgs["carrier"].id, device_time=tagged
        )
    )["code"]
    handover = event(
        "handed_over",
        code,
        minutes=days_ago + 5,
        to_organization_id=world.orgs["carrier"].id,
        vehicle_plate=PLATE,
    )
    assert (await post_event(client, world, "clinic", handover)).status_code == 201
    departed = event(
        "in_transit",
        code,
        minutes=35,
        destination_organization_id=world.orgs["facility"].id,
        vehicle_plate=PLATE,
    )
    assert (await post_event(client, world, "carrier", departed)).status_code == 201
    url = f"/m/v1/batches/{code}/trajectory"
    seen = (await client.get(url, headers=world.headers("clinic"))).json()
    # A day before the departure, 15 before it, 45 since: not the fixes of 3 and 4 days ago.
    assert [lon for lon, _ in seen["geometry"]["coordinates"]] == [122.2, 122.3, 122.4]
    handed, riding = seen["properties"]["carriages"]
    departure = NOW - timedelta(hours=2) + timedelta(minutes=35)  # as `event` dates it
    assert datetime.fromisoformat(handed["from"]) == departure - timedelta(hours=48)
    assert datetime.fromisoformat(handed["to"]) == departure
    assert (datetime.fromisoformat(riding["from"]), riding["to"]) == (departure, None)


async def test_a_carriage_never_finished_shows_the_track_for_a_carriages_longest_time(
    client: httpx.AsyncClient, world: World
) -> None:
    """A carrier collected a bag four days ago and has recorded nothing since: its producer
    sees the vehicle's track for the 48 hours a carriage may take, not for ever after."""
    await register(client, world)
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    days_ago = -4 * 24 * 60
    track = [
        fix(minutes, 37.1, 122 + index / 10, start)
        for index, minutes in enumerate((days_ago + 15, -3 * 24 * 60, -24 * 60, 60))
    ]
    posted = await client.post(
        "/m/v1/vehicles/鲁K12345/positions",
        json={"positions": track},
        headers=world.headers("carrier"),
    )
    assert posted.status_code == 200, posted.text
    tagged = event("tagged", minutes=days_ago)["device_time"]
    code = (
        await tag_bag(
            client, world, carrier_organization_id=world.orgs["carrier"].id, device_time=tagged
        )
    )["code"]
    collected = event("collected", code, minutes=days_ago + 10, vehicle_plate=PLATE)
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    url = f"/m/v1/batches/{code}/trajectory"
    seen = (await client.get(url, headers=world.headers("clinic"))).json()
    assert [lon for lon, _ in seen["geometry"]["coordinates"]] == [122.0, 122.1]
    (carriage,) = seen["properties"]["carriages"]
    pickup = NOW - timedelta(hours=2) + timedelta(minutes=days_ago + 10)
    assert datetime.fromisoformat(carriage["from"]) == pickup
    assert datetime.fromisoformat(carriage["to"]) == pickup + timedelta(hours=48)


async def _in_transit_since_100_minutes(client: httpx.AsyncClient, world: World) -> tuple[str, int]:
    """A medical bag the carrier collected and has had in transit to the facility for 1 h 40
    min, and the minutes the tests' clock lags the server's (overdue is judged against the
    server's clock: tell these stories from the real now, not the tests', which stops before a
    city midnight in the first hours of a day)."""
    code = await bag_for_carrier(client, world)
    lag = int((datetime.now(UTC) - NOW).total_seconds() // 60)
    for body in (
        event("collected", code, minutes=10 + lag),
        event(
            "in_transit",
            code,
            minutes=20 + lag,
            destination_organization_id=world.orgs["facility"].id,
        ),
    ):
        assert (await post_event(client, world, "carrier", body)).status_code == 201
    return code, lag


async def test_an_in_transit_batch_overdue_raises_an_alert_cleared_on_receipt(
    client: httpx.AsyncClient, world: World
) -> None:
    code, lag = await _in_transit_since_100_minutes(client, world)
    # In transit since 1 h 40 min ago: overdue at one hour, not at two.
    assert await alerts.refresh(settings=Settings(leg_overdue_hours=2)) == 0
    await alerts.refresh(settings=Settings(leg_overdue_hours=1))
    (alert,) = await Alert.filter(kind=alerts.LEG_OVERDUE)
    assert (alert.details["code"], alert.organization_id) == (code, world.orgs["carrier"].id)
    assert alert.acknowledged_at is None
    listed = await client.get("/m/v1/alerts", headers=world.headers("carrier"))
    assert [a["kind"] for a in listed.json()] == [alerts.LEG_OVERDUE]
    received = event("received", code, minutes=60 + lag, outcome="accepted", weight_kg="3.4")
    assert (await post_event(client, world, "facility", received)).status_code == 201
    await alerts.refresh(settings=Settings(leg_overdue_hours=1))
    await alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.acknowledged_by_id is None
    assert "cleared_at" in alert.details


async def test_a_batch_overdue_again_on_a_later_journey_raises_a_new_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    """Refused at the plant, the batch goes out again; overdue on that journey too, it is
    alerted again (its first alert cleared when the plant refused it)."""
    code, lag = await _in_transit_since_100_minutes(client, world)
    facility = world.orgs["facility"].id
    assert await alerts.refresh(settings=Settings(leg_overdue_hours=1)) == 1
    refused = event("received", code, minutes=30 + lag, outcome="rejected", reason="leaking")
    assert (await post_event(client, world, "facility", refused)).status_code == 201
    await alerts.refresh(settings=Settings(leg_overdue_hours=1))
    assert not await Alert.filter(kind=alerts.LEG_OVERDUE, acknowledged_at=None).exists()
    again = event("in_transit", code, minutes=40 + lag, destination_organization_id=facility)
    assert (await post_event(client, world, "carrier", again)).status_code == 201
    assert await alerts.refresh(settings=Settings(leg_overdue_hours=1)) == 1
    (open_alert,) = await Alert.filter(kind=alerts.LEG_OVERDUE, acknowledged_at=None)
    assert open_alert.details["code"] == code
    assert await Alert.filter(kind=alerts.LEG_OVERDUE).count() == 2


async def test_an_alert_raised_before_occurrences_were_told_apart_is_rewritten_in_place(
    client: httpx.AsyncClient, world: World
) -> None:
    """Migration 0033 gives old alerts the subjects the rules now write: a refresh then neither
    clears an alert still due nor raises a second one beside it."""
    rewrite = importlib.import_module("migrations.0033_alert_occurrence_subjects").REWRITE
    code, _ = await _in_transit_since_100_minutes(client, world)
    assert await alerts.refresh(settings=Settings(leg_overdue_hours=1)) == 1
    (alert,) = await Alert.filter(kind=alerts.LEG_OVERDUE)
    written = alert.subject
    due = datetime(2027, 1, 6, 16, 0, 0, 500000, tzinfo=UTC)
    await Alert.filter(id=alert.id).update(subject=code)  # as the release before wrote it
    old_manifest = await Alert.create(
        kind=alerts.MANIFEST_OVERDUE,
        subject="20263710000042",
        organization_id=world.orgs["facility"].id,
        region_path=alert.region_path,
        raised_at=datetime.now(UTC),
        due_at=due,
        details={"manifest": "20263710000042"},
    )
    await connections.get("default").execute_script(rewrite)
    await alert.refresh_from_db()
    await old_manifest.refresh_from_db()
    assert alert.subject == written
    assert old_manifest.subject == f"20263710000042:{int(due.timestamp())}"
    assert await alerts.refresh(settings=Settings(leg_overdue_hours=1)) == 0
    await alert.refresh_from_db()
    assert alert.acknowledged_at is None
    assert await Alert.filter(kind=alerts.LEG_OVERDUE).count() == 1


async def test_a_bag_packed_into_a_riding_container_rides_on_with_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """On a round the carrier's container rides from the first stop; each bag collected is
    scanned into it (the container's own aggregated event, its state unchanged). The scan does
    not end the container's carriage, and the bag's track goes on with the container's from the
    packing."""
    await register(client, world)
    carrier = world.orgs["carrier"].id
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    code = await bag_for_carrier(client, world)
    steps = [
        event("collected", load, minutes=5, vehicle_plate=PLATE),
        event("collected", code, minutes=10, vehicle_plate=PLATE),
        event("aggregated", load, minutes=30, children=[code]),
    ]
    for body in steps:
        response = await post_event(client, world, "carrier", body)
        assert response.status_code == 201, response.text
    points = [
        fix(3, 37.0, 122.0, start),  # before the round
        fix(8, 37.1, 122.1, start),  # the container alone
        fix(20, 37.2, 122.2, start),  # the bag in the van
        fix(45, 37.3, 122.3, start),  # the bag in the container
    ]
    response = await client.post(
        "/m/v1/vehicles/鲁K12345/positions",
        json={"positions": points},
        headers=world.headers("carrier"),
    )
    assert response.status_code == 200, response.text

    assert await _track(client, world, load) == [[122.1, 37.1], [122.2, 37.2], [122.3, 37.3]]
    assert await _track(client, world, code) == [[122.2, 37.2], [122.3, 37.3]]


async def test_a_bag_taken_out_of_a_load_does_not_ride_on_with_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """Two bags collected in the van are scanned into the load riding in the truck; one is
    taken out again by a correction (`aggregated: false`): it was never in the load, so its
    track is the van's from its collection on, never the truck's, while the other bag's goes
    on with the load's from the packing."""
    truck = "鲁K54321"
    await register(client, world)
    await register(client, world, plate=truck)
    carrier, facility = world.orgs["carrier"].id, world.orgs["facility"].id
    start = NOW.replace(microsecond=0) - timedelta(hours=2)
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    right, wrong = await bag_for_carrier(client, world), await bag_for_carrier(client, world)
    for body in (
        event("collected", load, minutes=5, vehicle_plate=truck),
        event("collected", right, minutes=10, vehicle_plate=PLATE),
        event("collected", wrong, minutes=10, vehicle_plate=PLATE),
        event("aggregated", load, minutes=30, children=[right, wrong]),
    ):
        response = await post_event(client, world, "carrier", body)
        assert response.status_code == 201, response.text
    scan = await CustodyEvent.get(batch__code=wrong, event_type="aggregated")
    undo = event("corrected", wrong, minutes=35, corrects=str(scan.id), aggregated=False)
    departed = event(
        "in_transit", load, minutes=40, destination_organization_id=facility, vehicle_plate=truck
    )
    received = event("received", load, minutes=90, outcome="accepted", weight_kg="7")
    for who, body in (("carrier", undo), ("carrier", departed), ("facility", received)):
        response = await post_event(client, world, who, body)
        assert response.status_code == 201, response.text
    for plate, points in (
        (PLATE, [fix(20, 37.2, 122.2, start), fix(50, 37.5, 122.5, start)]),
        (truck, [fix(45, 36.4, 121.4, start), fix(60, 36.6, 121.6, start)]),
    ):
        response = await client.post(
            f"/m/v1/vehicles/{plate}/positions",
            json={"positions": points},
            headers=world.headers("carrier"),
        )
        assert response.status_code == 200, response.text

    assert await _track(client, world, right) == [[122.2, 37.2], [121.4, 36.4], [121.6, 36.6]]
    assert await _track(client, world, wrong) == [[122.2, 37.2], [122.5, 37.5]]
