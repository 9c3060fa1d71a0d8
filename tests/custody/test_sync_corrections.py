"""Per field the latest correction wins, and the latest is the one sent last: a backlog never
puts a correction before one sent earlier on its batch, whatever its clock said
(custody/recorder.py `sync_order`)."""

from datetime import timedelta

import httpx

from tests.custody.helpers import advance, tag_bag
from tests.factories import NOW, World, event
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.recorder import sync_order


def test_a_correction_stays_after_one_sent_before_it() -> None:
    base = NOW - timedelta(hours=1)
    sent = [
        event(
            "corrected",
            "A",
            corrects="00000000-0000-0000-0000-000000000001",
            weight_kg="2.5",
            device_time=base.isoformat(),
        ),
        # The clock set back two minutes before the second: still applied second.
        event(
            "corrected",
            "A",
            corrects="00000000-0000-0000-0000-000000000001",
            weight_kg="2.8",
            device_time=(base - timedelta(minutes=2)).isoformat(),
        ),
    ]
    commands = [EventCommand.model_validate(body) for body in sent]
    assert sync_order(commands, [["A"]] * 2) == [0, 1]
    # A step taken with the waste is still ordered by a clock to believe.
    commands[1] = EventCommand.model_validate(
        event("stored", "A", device_time=(base - timedelta(minutes=2)).isoformat())
    )
    assert sync_order(commands, [["A"]] * 2) == [1, 0]


async def test_the_correction_sent_last_is_the_latest(
    client: httpx.AsyncClient, world: World
) -> None:
    code = (await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id))["code"]
    await advance(client, world, code, until="received")
    receipt = await CustodyEvent.get(batch__code=code, event_type="received")
    later = event("corrected", code, minutes=125, corrects=str(receipt.id), weight_kg="2.5")
    earlier = event("corrected", code, minutes=123, corrects=str(receipt.id), weight_kg="2.8")
    response = await client.post(
        "/m/v1/sync", json={"events": [later, earlier]}, headers=world.headers("facility")
    )
    assert [r["status"] for r in response.json()["results"]] == ["applied"] * 2, response.text
    fixes = await CustodyEvent.filter(batch__code=code, event_type="corrected").order_by("seq")
    assert [str(f.client_event_id) for f in fixes] == [
        later["client_event_id"],
        earlier["client_event_id"],
    ]
    assert fixes[-1].details["corrected"] == {"weight_kg": "2.8"}
