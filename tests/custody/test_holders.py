"""Only an organization that may hold waste is named to hold it: a handover's receiver, a
transit's or a tagging's destination. An authority's staff (managers, auditors, administrators)
record no step that moves a batch on, so a bag handed to the bureau stayed there for good."""

import httpx

from tests.custody.helpers import collect, post_event, tag_bag
from tests.factories import World, event, medical_bag
from wastetrack.batches.models import Batch
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import HANDLER_ROLES, SPECS, EventType
from wastetrack.custody.work import HOLDER_KINDS
from wastetrack.registry import roles
from wastetrack.registry.models import OrganizationKind


def test_an_organization_holds_waste_when_its_staff_may_move_it_on() -> None:
    """Every kind but the authority: each of the others has a role that records a handover."""
    assert SPECS[EventType.handed_over].roles == HANDLER_ROLES
    assert set(OrganizationKind) - HOLDER_KINDS == {OrganizationKind.authority}
    for kind in HOLDER_KINDS:
        assert set(roles.ROLES_BY_KIND[kind]) & HANDLER_ROLES, kind


async def test_waste_is_never_named_to_an_organization_that_cannot_hold_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """Refused naming the field, nothing written (custody review: the clinic's bag was handed
    to the bureau, whose manager could not move it on: a 403 for good)."""
    bureau = world.orgs["bureau"].id
    code = (await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id))["code"]
    handed = await post_event(
        client, world, "clinic", event("handed_over", code, minutes=5, to_organization_id=bureau)
    )
    assert (handed.status_code, handed.json()["field"]) == (422, "to_organization_id"), handed.text
    assert "holds no waste" in handed.json()["detail"]
    await collect(client, world, code)
    sent = await post_event(
        client,
        world,
        "carrier",
        event("in_transit", code, minutes=20, destination_organization_id=bureau),
    )
    assert (sent.status_code, sent.json()["field"]) == (422, "destination_organization_id")
    body = medical_bag(destination_organization_id=bureau)
    body.pop("event_type")
    tagged = await client.post("/m/v1/batches", json=body, headers=world.headers("clinic"))
    assert (tagged.status_code, tagged.json()["field"]) == (422, "destination_organization_id")
    batch = await Batch.get(code=code)
    assert (batch.state, batch.holder_id) == ("collected", world.orgs["carrier"].id)
    assert await CustodyEvent.filter(batch_id=batch.id).count() == 2
    assert await Batch.all().count() == 1
    onward = await post_event(
        client,
        world,
        "carrier",
        event(
            "in_transit", code, minutes=20, destination_organization_id=world.orgs["facility"].id
        ),
    )
    assert onward.status_code == 201, onward.text
