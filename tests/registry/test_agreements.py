"""Service agreements: provided by those who collect or carry, never twice the same, and
ended (never deleted) from today on."""

from datetime import date, datetime, time, timedelta

import httpx

from tests.factories import CITY_TODAY, CITY_ZONE, World, event, medical_bag
from wastetrack.audit.models import AuditEntry
from wastetrack.batches.models import Batch
from wastetrack.core import cityday
from wastetrack.registry.models import ServiceAgreement

URL = "/admin/v1/service-agreements"


def _body(world: World, provider: str, client: str = "clinic", **extra: object) -> dict:
    return {
        "provider_organization_id": world.orgs[provider].id,
        "client_organization_id": world.orgs[client].id,
        "streams": ["medical"],
        "valid_from": (CITY_TODAY - timedelta(days=30)).isoformat(),
        **extra,
    }


async def test_only_collectors_carriers_and_ports_provide_a_service(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.headers("admin")
    for provider in ("facility", "bureau", "other_clinic"):
        refused = await client.post(URL, headers=h, json=_body(world, provider))
        assert (refused.status_code, refused.json()["field"]) == (
            422,
            "provider_organization_id",
        ), (provider, refused.text)
    for provider in ("carrier", "community", "port"):
        made = await client.post(URL, headers=h, json=_body(world, provider))
        assert made.status_code == 201, (provider, made.text)


async def test_the_same_agreement_is_not_registered_twice(
    client: httpx.AsyncClient, world: World
) -> None:
    # The city's day the service judges an end by (the stories' day lags behind it in the
    # first hours of a city day).
    today = cityday.today(world.settings.timezone)
    h = world.headers("admin")
    first = await client.post(URL, headers=h, json=_body(world, "carrier"))
    assert first.status_code == 201, first.text
    again = await client.post(
        URL, headers=h, json=_body(world, "carrier", valid_from=today.isoformat())
    )
    assert (again.status_code, again.json()["field"]) == (409, "valid_from"), again.text
    assert str(first.json()["id"]) in again.json()["detail"]
    # Other streams, or a period after this one's end, are another agreement.
    other = await client.post(
        URL, headers=h, json=_body(world, "carrier", streams=["medical", "household"])
    )
    assert other.status_code == 201, other.text
    ended = await client.post(
        f"{URL}/{first.json()['id']}/end", headers=h, json={"valid_to": today.isoformat()}
    )
    assert ended.status_code == 200, ended.text
    renewed = await client.post(
        URL,
        headers=h,
        json=_body(world, "carrier", valid_from=(today + timedelta(days=1)).isoformat()),
    )
    assert renewed.status_code == 201, renewed.text


async def test_an_agreement_backdated_over_an_ended_ones_days_is_a_conflict(
    client: httpx.AsyncClient, world: World
) -> None:
    """Ended is history, and its days stay its own: a new agreement of the same provider,
    client and streams sharing any of them is the same service registered twice; one that
    starts the day after the old one's last is not."""
    today = cityday.today(world.settings.timezone)
    h = world.headers("admin")
    old = _body(
        world,
        "carrier",
        valid_from=(today - timedelta(days=60)).isoformat(),
        valid_to=(today - timedelta(days=2)).isoformat(),
    )
    first = await client.post(URL, headers=h, json=old)
    assert first.status_code == 201, first.text
    for starts in (today - timedelta(days=30), today - timedelta(days=2)):
        again = await client.post(
            URL, headers=h, json=_body(world, "carrier", valid_from=starts.isoformat())
        )
        assert (again.status_code, again.json()["field"]) == (409, "valid_from"), again.text
    assert await ServiceAgreement.all().count() == 1
    after = _body(world, "carrier", valid_from=(today - timedelta(days=1)).isoformat())
    assert (await client.post(URL, headers=h, json=after)).status_code == 201


async def test_an_ended_agreement_stops_its_provider_tagging_for_the_client(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.headers("admin")
    made = await client.post(URL, headers=h, json=_body(world, "carrier"))
    agreement = made.json()["id"]
    bag = medical_bag(producer_organization_id=world.orgs["clinic"].id)
    tagged = await client.post("/m/v1/events", headers=world.headers("carrier"), json=bag)
    assert tagged.status_code == 201, tagged.text

    end = f"{URL}/{agreement}/end"
    # An end is judged by the city's day (the stories' day lags behind it in the first hours
    # of a city day); the bags are tagged on the stories' day.
    today = cityday.today(world.settings.timezone)
    yesterday = today - timedelta(days=1)
    past = await client.post(end, headers=h, json={"valid_to": yesterday.isoformat()})
    assert (past.status_code, past.json()["field"]) == (422, "valid_to"), past.text
    before_start = await client.post(
        URL, headers=h, json=_body(world, "community", valid_from="2099-01-01")
    )
    too_early = await client.post(
        f"{URL}/{before_start.json()['id']}/end",
        headers=h,
        json={"valid_to": "2098-12-31"},
    )
    assert (too_early.status_code, too_early.json()["field"]) == (422, "valid_to")
    assert (
        await client.post(f"{URL}/999999/end", headers=h, json={"valid_to": "2099-01-01"})
    ).status_code == 404

    ended = await client.post(end, headers=h, json={"valid_to": today.isoformat()})
    assert ended.status_code == 200, ended.text
    assert ended.json()["valid_to"] == today.isoformat()
    entry = await AuditEntry.get(action="service_agreement.ended", subject_id=str(agreement))
    assert entry.before is not None and entry.before["valid_to"] is None
    assert entry.after is not None and entry.after["valid_to"] == today.isoformat()
    assert entry.actor_user_id == world.users["admin"].id
    # An agreement whose last day is past has ended: it cannot be ended again, nor cover a bag
    # tagged on the stories' day.
    await ServiceAgreement.filter(id=agreement).update(valid_to=CITY_TODAY - timedelta(days=1))
    again = await client.post(end, headers=h, json={"valid_to": today.isoformat()})
    assert (again.status_code, again.json()["field"]) == (409, "agreement_id"), again.text
    bag = medical_bag(producer_organization_id=world.orgs["clinic"].id)
    refused = await client.post("/m/v1/events", headers=world.headers("carrier"), json=bag)
    assert refused.status_code == 403, refused.text


async def test_ending_shortens_an_agreement_and_never_extends_it(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.headers("admin")
    last = CITY_TODAY + timedelta(days=30)
    made = await client.post(
        URL, headers=h, json=_body(world, "carrier", valid_to=last.isoformat())
    )
    end = f"{URL}/{made.json()['id']}/end"
    longer = await client.post(
        end, headers=h, json={"valid_to": (last + timedelta(days=1)).isoformat()}
    )
    assert (longer.status_code, longer.json()["field"]) == (422, "valid_to"), longer.text
    sooner = CITY_TODAY + timedelta(days=3)
    shorter = await client.post(end, headers=h, json={"valid_to": sooner.isoformat()})
    assert shorter.status_code == 200 and shorter.json()["valid_to"] == sooner.isoformat()
    assert (await ServiceAgreement.get(id=made.json()["id"])).valid_to == sooner
    assert date.fromisoformat(shorter.json()["valid_from"]) < sooner


async def test_a_tagging_time_corrected_onto_a_day_no_agreement_covers_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """The carrier tagged the clinic's bag on the agreement's last day; its own correction of
    the tagging time is held to the agreement on the new day (a manager's is not)."""
    first, last = CITY_TODAY - timedelta(days=10), CITY_TODAY - timedelta(days=5)
    made = await client.post(
        URL,
        headers=world.headers("admin"),
        json=_body(world, "carrier", valid_from=first.isoformat(), valid_to=last.isoformat()),
    )
    assert made.status_code == 201, made.text
    on = datetime.combine(last, time(12), CITY_ZONE)
    bag = medical_bag(producer_organization_id=world.orgs["clinic"].id, device_time=on.isoformat())
    tagged = await client.post("/m/v1/events", headers=world.headers("carrier"), json=bag)
    assert tagged.status_code == 201, tagged.text
    code = tagged.json()["batch_code"]

    def correction(moment: datetime) -> dict:
        return event(
            "corrected",
            code,
            minutes=60,
            corrects=tagged.json()["event_id"],
            event_time=moment.isoformat(),
        )

    after = on + timedelta(days=2)
    refused = await client.post(
        "/m/v1/events", headers=world.headers("carrier"), json=correction(after)
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "event_time"), refused.text
    assert cityday.local_date((await Batch.get(code=code)).tagged_at, CITY_ZONE) == last
    within = await client.post(
        "/m/v1/events", headers=world.headers("carrier"), json=correction(on - timedelta(days=1))
    )
    assert within.status_code == 201, within.text
    by_manager = await client.post(
        "/m/v1/events", headers=world.headers("manager"), json=correction(after)
    )
    assert by_manager.status_code == 201, by_manager.text
