"""An event's inclusion proof in its day's checkpoint, for whoever may see its batch."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.custody.helpers import tag_bag
from tests.factories import World
from wastetrack.custody import checkpoints
from wastetrack.custody.models import CustodyEvent


async def test_an_event_outside_the_callers_region_has_no_proof_as_an_unknown_one(
    client: httpx.AsyncClient, world: World
) -> None:
    """A town's manager proves the events of its own town's batches; another town's event is
    the same 404 as an id no event has, so ids reveal nothing of another region's log."""
    ours = await tag_bag(client, world, "other_clinic")
    theirs = await tag_bag(client, world, "clinic")
    settings = world.settings
    await checkpoints.seal_completed_days(
        timezone=settings.timezone,
        data_dir=settings.data_dir,
        now=datetime.now(UTC) + timedelta(days=1),
    )

    async def proof(who: str, event_id: object) -> httpx.Response:
        return await client.get(
            "/m/v1/checkpoints/proof",
            params={"event_id": str(event_id)},
            headers=world.headers(who),
        )

    own, other = [await CustodyEvent.get(batch__code=b["code"]) for b in (ours, theirs)]
    proven = await proof("town_manager", own.id)
    assert proven.status_code == 200, proven.text
    key = checkpoints.public_key_read(world.settings.data_dir)["public_key"]
    assert checkpoints.proof_is_valid(proven.json(), public_key=key)
    answers = [await proof("town_manager", event_id) for event_id in (other.id, uuid.uuid4())]
    assert [(a.status_code, a.json()) for a in answers] == [(404, answers[1].json())] * 2
    assert (await proof("auditor", other.id)).status_code == 200
