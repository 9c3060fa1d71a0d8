"""What a correction of a receipt or a tagging may change, and what it carries over to: a
receipt's own remainder only, never a part counted beside a later weighing, never a
remainder's size, and custody as a recorded receipt leaves it (docs/metrics.md §2-3)."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.custody.helpers import as_superuser_without_triggers, collect, post_event, tag_bag
from tests.factories import NOW, World, event, medical_bag
from wastetrack.batches import tagging
from wastetrack.batches.models import Batch
from wastetrack.core.timefmt import local_limit
from wastetrack.custody.models import CustodyEvent
from wastetrack.registry import service as registry


async def _delivered(client: httpx.AsyncClient, world: World, quantity: str = "10") -> str:
    bag = await tag_bag(
        client, world, quantity=quantity, carrier_organization_id=world.orgs["carrier"].id
    )
    code: str = bag["code"]
    for body in (
        event("collected", code, minutes=10),
        event(
            "in_transit", code, minutes=20, destination_organization_id=world.orgs["facility"].id
        ),
    ):
        response = await post_event(client, world, "carrier", body)
        assert response.status_code == 201, response.text
    return code


async def _post(client: httpx.AsyncClient, world: World, who: str, body: dict) -> dict[str, Any]:
    response = await post_event(client, world, who, body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _batch(client: httpx.AsyncClient, world: World, code: str) -> dict[str, Any]:
    response = await client.get(f"/m/v1/batches/{code}", headers=world.headers("manager"))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _fix(code: str, target: str, minutes: int, **fields: Any) -> dict[str, Any]:
    return event("corrected", code, minutes=minutes, corrects=target, **fields)


async def test_a_later_receipts_correction_leaves_the_earlier_receipts_remainder_alone(
    client: httpx.AsyncClient, world: World
) -> None:
    """Received in part (remainder X), stored, received again whole (R2): correcting R2's
    weight neither cancels nor resizes X, and R2 corrected into a partial acceptance is a
    second refusal, refused like one recorded directly."""
    code = await _delivered(client, world)
    await _post(
        client,
        world,
        "facility",
        event(
            "received",
            code,
            minutes=60,
            outcome="partially_accepted",
            weight_kg="6",
            reason="two bags torn",
        ),
    )
    (remainder,) = (await _batch(client, world, code))["remainders"]
    await _post(client, world, "facility", event("stored", code, minutes=70))
    second = await _post(
        client,
        world,
        "facility",
        event("received", code, minutes=80, outcome="accepted", weight_kg="6"),
    )
    await _post(client, world, "facility", _fix(code, second["event_id"], 90, weight_kg="5.8"))
    part = await _batch(client, world, remainder)
    assert (part["state"], Decimal(part["quantity"])) == ("rejected", Decimal("4"))
    partial = await post_event(
        client,
        world,
        "facility",
        _fix(
            code,
            second["event_id"],
            95,
            outcome="partially_accepted",
            weight_kg="3",
            reason="more torn",
        ),
    )
    assert (partial.status_code, partial.json()["field"]) == (409, "outcome"), partial.text
    part = await _batch(client, world, remainder)
    assert (part["state"], Decimal(part["quantity"])) == ("rejected", Decimal("4"))
    assert (await _batch(client, world, code))["remainders"] == [remainder]


async def test_an_old_receipt_is_not_corrected_into_a_part_beside_a_later_weighing(
    client: httpx.AsyncClient, world: World
) -> None:
    """Accepted 10 kg, then treated weighing 10 kg: the batch's mass is the treatment's. An
    earlier receipt corrected into a partial acceptance would split 4 kg off beside it (14 kg
    counted), so it is refused; on the latest receipt it splits the part off."""
    code = await _delivered(client, world)
    receipt = await _post(
        client,
        world,
        "facility",
        event("received", code, minutes=60, outcome="accepted", weight_kg="10"),
    )
    await _post(
        client, world, "facility", event("treated", code, minutes=70, method="D10", weight_kg="10")
    )
    fix = _fix(
        code,
        receipt["event_id"],
        80,
        outcome="partially_accepted",
        weight_kg="6",
        reason="two bags torn",
    )
    refused = await post_event(client, world, "facility", fix)
    assert (refused.status_code, refused.json()["field"]) == (409, "outcome"), refused.text
    assert (await _batch(client, world, code))["remainders"] == []
    assert not await Batch.filter(split_from__code=code).exists()
    # Weight alone is no part: nothing is split off, the correction stands.
    await _post(client, world, "facility", _fix(code, receipt["event_id"], 85, weight_kg="9.9"))

    latest = await _delivered(client, world)
    receipt = await _post(
        client,
        world,
        "facility",
        event("received", latest, minutes=60, outcome="accepted", weight_kg="10"),
    )
    await _post(client, world, "facility", event("stored", latest, minutes=65))
    fix = _fix(
        latest,
        receipt["event_id"],
        80,
        outcome="partially_accepted",
        weight_kg="6",
        reason="two bags torn",
    )
    await _post(client, world, "facility", fix)  # storing weighs nothing
    assert len((await _batch(client, world, latest))["remainders"]) == 1


async def test_an_old_partial_receipt_is_not_resized_beside_a_later_weighing(
    client: httpx.AsyncClient, world: World
) -> None:
    code = await _delivered(client, world)
    receipt = await _post(
        client,
        world,
        "facility",
        event(
            "received",
            code,
            minutes=60,
            outcome="partially_accepted",
            weight_kg="6",
            reason="two bags torn",
        ),
    )
    (remainder,) = (await _batch(client, world, code))["remainders"]
    await _post(
        client, world, "facility", event("treated", code, minutes=70, method="D10", weight_kg="6")
    )
    refused = await post_event(
        client, world, "facility", _fix(code, receipt["event_id"], 80, weight_kg="5")
    )
    assert (refused.status_code, refused.json()["field"]) == (409, "weight_kg"), refused.text
    assert Decimal((await _batch(client, world, remainder))["quantity"]) == Decimal("4")


async def test_a_remainders_own_size_is_its_receipts(
    client: httpx.AsyncClient, world: World
) -> None:
    """A remainder's kg was sized by its original's receipt: corrected on the remainder, it
    would be counted beside the accepted weight. Its category too when the original is in m³
    (its estimate sized the part); in kg the category alone is the waste's, not its size."""
    for unit, quantity, sized in (("kg", "10", ()), ("m3", "0.1", ("category",))):
        bag = await tag_bag(
            client,
            world,
            quantity=quantity,
            unit=unit,
            carrier_organization_id=world.orgs["carrier"].id,
        )
        code = bag["code"]
        for body in (
            event("collected", code, minutes=10),
            event(
                "in_transit",
                code,
                minutes=20,
                destination_organization_id=world.orgs["facility"].id,
            ),
        ):
            await _post(client, world, "carrier", body)
        await _post(
            client,
            world,
            "facility",
            event(
                "received",
                code,
                minutes=60,
                outcome="partially_accepted",
                weight_kg="6",
                reason="two bags torn",
                refused_kg="4",
            ),
        )
        (remainder,) = (await _batch(client, world, code))["remainders"]
        tagging = await CustodyEvent.get(batch__code=remainder, seq=1)
        for minutes, fields in enumerate(
            ({"quantity": "9"}, {"unit": "count"}, {"category": "med.sharps"}), start=70
        ):
            name = next(iter(fields))
            body = _fix(remainder, str(tagging.id), minutes, **fields)
            answer = await post_event(client, world, "manager", body)  # no party of the facility's
            if name in ("quantity", "unit") or name in sized:
                assert (answer.status_code, answer.json()["field"]) == (409, name), answer.text
            else:
                assert answer.status_code == 201, answer.text
        part = await _batch(client, world, remainder)
        assert (Decimal(part["quantity"]), part["unit"]) == (Decimal("4"), "kg")


async def test_a_receipt_corrected_to_a_rejection_leaves_the_batch_with_its_deliverer(
    client: httpx.AsyncClient, world: World
) -> None:
    """As a rejection recorded directly does: back with the carrier, no destination; and a
    rejection corrected back into an acceptance leaves it with the facility again."""
    direct = await _delivered(client, world)
    await _post(
        client,
        world,
        "facility",
        event("received", direct, minutes=60, outcome="rejected", reason="leaking"),
    )
    code = await _delivered(client, world)
    receipt = await _post(
        client,
        world,
        "facility",
        event("received", code, minutes=60, outcome="accepted", weight_kg="10"),
    )
    await _post(
        client,
        world,
        "facility",
        _fix(code, receipt["event_id"], 70, outcome="rejected", reason="leaking"),
    )
    carrier = world.orgs["carrier"].id
    for refused in (direct, code):
        row = await Batch.get(code=refused)
        assert (row.state, row.holder_id, row.destination_id) == ("rejected", carrier, None)
    # Whom the rejection gave it back to, as a receipt says it (for the registers).
    fix = await CustodyEvent.get(batch__code=code, event_type="corrected")
    assert fix.details["delivered_by"] == carrier
    # Gone back to the carrier, it is still the facility's own record to correct back.
    await _post(client, world, "facility", _fix(code, receipt["event_id"], 80, outcome="accepted"))
    row = await Batch.get(code=code)
    facility = world.orgs["facility"].id
    assert (row.state, row.holder_id, row.destination_id) == ("received", facility, facility)
    # A facility that rejected a batch directly corrects its own receipt too; another
    # organization that does not see the batch still finds none.
    rejected = await CustodyEvent.get(batch__code=direct, event_type="received")
    # Named through a manager's correction of it, the receipt is still the facility's own.
    noted = await _post(
        client, world, "manager", _fix(direct, str(rejected.id), 85, note="称重单已补")
    )
    again = _fix(direct, noted["event_id"], 90, outcome="accepted", weight_kg="9.5")
    stranger = await post_event(client, world, "unlicensed", again)
    assert (stranger.status_code, stranger.json()["field"]) == (404, "batch")
    await _post(client, world, "facility", again)
    assert (await Batch.get(code=direct)).holder_id == facility


async def test_a_refusal_keeps_its_reason_through_corrections(
    client: httpx.AsyncClient, world: World
) -> None:
    """A receipt refusing waste in whole or part states why, as its corrections leave it, as a
    receipt recorded so must: an acceptance corrected into a refusal without a reason, or a
    refusal's reason corrected to nothing, is a 422 naming `reason` that writes nothing."""
    accepted = await _delivered(client, world)
    receipt = await _post(
        client,
        world,
        "facility",
        event("received", accepted, minutes=60, outcome="accepted", weight_kg="9"),
    )
    rejected = await _delivered(client, world)
    refusal = await _post(
        client,
        world,
        "facility",
        event("received", rejected, minutes=60, outcome="rejected", reason="leaking"),
    )
    before = await CustodyEvent.all().count()
    for code, target, fields in (
        (accepted, receipt, {"outcome": "rejected"}),
        (accepted, receipt, {"outcome": "partially_accepted", "weight_kg": "6"}),
        (rejected, refusal, {"reason": ""}),
        (rejected, refusal, {"outcome": "partially_accepted", "weight_kg": "6", "reason": ""}),
    ):
        response = await post_event(
            client, world, "facility", _fix(code, target["event_id"], 70, **fields)
        )
        assert (response.status_code, response.json()["field"]) == (422, "reason"), fields
    assert await CustodyEvent.all().count() == before
    assert (await Batch.get(code=accepted)).state == "received"
    # The reason a refusal states may be corrected into another; one given with the refusal
    # it turns the receipt into stands.
    await _post(client, world, "facility", _fix(rejected, refusal["event_id"], 75, reason="漏液"))
    await _post(
        client,
        world,
        "facility",
        _fix(accepted, receipt["event_id"], 75, outcome="rejected", reason="漏液"),
    )
    assert (await Batch.get(code=accepted)).state == "rejected"


async def test_a_treatment_corrected_twice_is_refused_from_the_state_its_corrections_left(
    client: httpx.AsyncClient, world: World
) -> None:
    """A treatment by D10 corrected into storage (D15), the batch then treated by D9: the
    first treatment corrected back to D10 would change the state it leaves, stored, into
    treated behind a later step. The refusal says so (it said "from treated to treated",
    quoting the state as first recorded)."""
    code = await _delivered(client, world)
    await _post(
        client,
        world,
        "facility",
        event("received", code, minutes=60, outcome="accepted", weight_kg="9"),
    )
    first = await _post(client, world, "facility", event("treated", code, minutes=90, method="D10"))
    await _post(client, world, "facility", _fix(code, first["event_id"], 95, method="D15"))
    await _post(client, world, "facility", event("treated", code, minutes=100, method="D9"))
    before = await CustodyEvent.all().count()
    response = await post_event(
        client, world, "facility", _fix(code, first["event_id"], 105, method="D10")
    )
    assert (response.status_code, response.json()["field"]) == (409, "corrects"), response.text
    assert "from stored to treated" in response.json()["detail"], response.text
    assert await CustodyEvent.all().count() == before


async def test_a_cancellation_keeps_its_reason_through_corrections(
    client: httpx.AsyncClient, world: World
) -> None:
    """A cancellation states why (the audit and the other parties read it): a blank reason,
    when cancelling or in a correction of the cancellation, is a 422 naming `reason`."""
    bag = await tag_bag(client, world)
    cancelled = await _post(
        client, world, "clinic", event("cancelled", bag["code"], minutes=5, reason="贴错标签")
    )
    before = await CustodyEvent.all().count()
    for reason in ("", "  "):
        response = await post_event(
            client, world, "clinic", _fix(bag["code"], cancelled["event_id"], 6, reason=reason)
        )
        assert (response.status_code, response.json()["field"]) == (422, "reason")
    assert await CustodyEvent.all().count() == before
    await _post(client, world, "clinic", _fix(bag["code"], cancelled["event_id"], 7, reason="重复"))


async def test_a_category_that_breaks_the_waste_code_is_refused_on_category(
    client: httpx.AsyncClient, world: World
) -> None:
    """The waste code is not corrected: the category that does not fit it is named."""
    bag = await tag_bag(client, world, category="med.sharps", waste_code="841-002-01")
    tagging = await CustodyEvent.get(batch__code=bag["code"], seq=1)
    answer = await post_event(
        client,
        world,
        "clinic",
        _fix(bag["code"], str(tagging.id), 10, category="med.infectious"),
    )
    assert (answer.status_code, answer.json()["field"]) == (422, "category"), answer.text


async def test_a_field_an_event_has_no_use_for_is_refused_not_dropped(
    client: httpx.AsyncClient, world: World
) -> None:
    """A correction naming a handover's receiver (not correctable) with a note, or a receipt
    with a method, was answered 201 with the field dropped: now a 422 names the field. Nulls
    for the fields a client does not use are no field set."""
    code = await _delivered(client, world)
    handover = await _post(
        client,
        world,
        "carrier",
        event("handed_over", code, minutes=30, to_organization_id=world.orgs["facility"].id),
    )
    for name, value in (
        ("to_organization_id", world.orgs["unlicensed"].id),
        ("waste_code", "841-001-01"),
        ("vehicle_plate", "鲁K12345"),
        ("destination_organization_id", world.orgs["unlicensed"].id),
    ):
        body = _fix(code, handover["event_id"], 40, note="wrong receiver", **{name: value})
        answer = await post_event(client, world, "carrier", body)
        assert (answer.status_code, answer.json()["field"]) == (422, name), answer.text
    with_method = event(
        "received", code, minutes=60, outcome="accepted", weight_kg="10", method="D10"
    )
    answer = await post_event(client, world, "facility", with_method)
    assert (answer.status_code, answer.json()["field"]) == (422, "method"), answer.text
    nulls = {**with_method, "method": None, "children": None, "to_organization_id": None}
    await _post(client, world, "facility", nulls)
    synced = await client.post(
        "/m/v1/sync",
        json={"events": [event("stored", code, minutes=70, reason="shelf 3")]},
        headers=world.headers("facility"),
    )
    (result,) = synced.json()["results"]
    assert (result["status"], result["error"]["field"]) == ("rejected", "reason"), result


async def _load_to(client: httpx.AsyncClient, world: World, facility: str, *categories: str) -> str:
    """A carrier's load of one clinic bag per category, in transit to `facility`."""
    carrier = world.orgs["carrier"].id
    bags = [
        (await tag_bag(client, world, category=category, carrier_organization_id=carrier))["code"]
        for category in categories
    ]
    load = (
        await tag_bag(
            client,
            world,
            "carrier",
            producer_organization_id=carrier,
            category="med.infectious",
            quantity="9",
        )
    )["code"]
    await collect(client, world, *bags, minutes=2)
    for body in (
        event("aggregated", load, minutes=3, children=bags),
        event("collected", load, minutes=10),
        event("in_transit", load, minutes=20, destination_organization_id=world.orgs[facility].id),
    ):
        await _post(client, world, "carrier", body)
    return load


async def test_a_container_is_received_only_where_all_it_holds_is_licensed(
    client: httpx.AsyncClient, world: World
) -> None:
    """Chemical bags in an infectious container: a facility licensed for infectious waste
    only would receive and treat them unlicensed."""
    await registry.add_licence(
        organization_id=world.orgs["unlicensed"].id,
        category_key="med.infectious",
        method_codes=["D10"],
    )
    mixed = await _load_to(client, world, "unlicensed", "med.infectious", "med.chemical")
    receipt = event("received", mixed, minutes=60, outcome="accepted", weight_kg="9")
    refused = await post_event(client, world, "unlicensed", receipt)
    assert (refused.status_code, refused.json()["field"]) == (403, "batch"), refused.text
    assert "med.chemical" in refused.json()["detail"]
    # Refusing it at the gate takes nothing in and needs no licence; correcting the refusal
    # into an acceptance does, on the receipt's day.
    rejection = await _post(
        client,
        world,
        "unlicensed",
        event("received", mixed, minutes=61, outcome="rejected", reason="not ours to treat"),
    )
    into = _fix(mixed, rejection["event_id"], 65, outcome="accepted", weight_kg="9")
    corrected = await post_event(client, world, "unlicensed", into)
    assert (corrected.status_code, corrected.json()["field"]) == (403, "outcome"), corrected.text
    plain = await _load_to(client, world, "unlicensed", "med.infectious")
    await _post(
        client,
        world,
        "unlicensed",
        event("received", plain, minutes=60, outcome="accepted", weight_kg="9"),
    )
    await _post(client, world, "unlicensed", event("treated", plain, minutes=70, method="D10"))


async def test_a_category_corrected_after_a_receipt_is_judged_by_that_receipts_licence(
    client: httpx.AsyncClient, world: World
) -> None:
    await registry.add_licence(
        organization_id=world.orgs["unlicensed"].id,
        category_key="med.infectious",
        method_codes=["D10"],
    )
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    code = bag["code"]
    for body in (
        event("collected", code, minutes=10),
        event(
            "in_transit",
            code,
            minutes=20,
            destination_organization_id=world.orgs["unlicensed"].id,
        ),
    ):
        await _post(client, world, "carrier", body)
    await _post(
        client,
        world,
        "unlicensed",
        event("received", code, minutes=60, outcome="accepted", weight_kg="3.5"),
    )
    tagging = await CustodyEvent.get(batch__code=code, seq=1)
    refused = await post_event(
        client, world, "clinic", _fix(code, str(tagging.id), 70, category="med.chemical")
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "category"), refused.text
    assert (await _batch(client, world, code))["category"] == "med.infectious"
    # A bag in a container is judged by the container's receipt too.
    load = await _load_to(client, world, "unlicensed", "med.infectious")
    await _post(
        client,
        world,
        "unlicensed",
        event("received", load, minutes=60, outcome="accepted", weight_kg="9"),
    )
    (child,) = await Batch.filter(parent__code=load)
    tagging = await CustodyEvent.get(batch_id=child.id, seq=1)
    refused = await post_event(
        client, world, "clinic", _fix(child.code, str(tagging.id), 70, category="med.chemical")
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "category"), refused.text
    fine = _fix(child.code, str(tagging.id), 71, category="med.infectious", note="checked")
    await _post(client, world, "clinic", fine)


async def test_a_category_corrected_into_one_its_receipts_licences_share_no_method_with(
    client: httpx.AsyncClient, world: World
) -> None:
    """Infectious waste licensed for D10 only, chemical for D9 only: a load of infectious bags
    received there, one bag corrected to chemical waste would leave a load its receiver took in
    and may treat by no method. Judged as the receipt was (`licensed_methods`): refused."""
    facility = world.orgs["unlicensed"].id
    await registry.add_licence(
        organization_id=facility, category_key="med.infectious", method_codes=["D10"]
    )
    await registry.add_licence(
        organization_id=facility, category_key="med.chemical", method_codes=["D9"]
    )
    load = await _load_to(client, world, "unlicensed", "med.infectious")
    received = event("received", load, minutes=60, outcome="accepted", weight_kg="9")
    await _post(client, world, "unlicensed", received)
    (child,) = await Batch.filter(parent__code=load)
    tagging = await CustodyEvent.get(batch_id=child.id, seq=1)
    refused = await post_event(
        client, world, "clinic", _fix(child.code, str(tagging.id), 70, category="med.chemical")
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "category"), refused.text
    assert "share no method" in refused.json()["detail"]
    assert (await Batch.get(id=child.id)).category_id == "med.infectious"


async def test_a_refusal_weighed_by_a_correction_is_accepted_with_that_weight(
    client: httpx.AsyncClient, world: World
) -> None:
    """A receipt accepting waste states its weight; one a correction gave the receipt counts
    as stated, so the refusal weighed afterwards may be corrected into an acceptance alone."""
    code = await _delivered(client, world)
    refusal = event("received", code, minutes=60, outcome="rejected", reason="leaking")
    receipt = (await _post(client, world, "facility", refusal))["event_id"]
    await _post(client, world, "facility", _fix(code, receipt, 62, weight_kg="9"))
    await _post(client, world, "facility", _fix(code, receipt, 64, outcome="accepted"))
    batch = await _batch(client, world, code)
    assert (batch["state"], batch["holder_id"]) == ("received", world.orgs["facility"].id)
    unweighed = await _delivered(client, world)
    refusal = event("received", unweighed, minutes=60, outcome="rejected", reason="leaking")
    receipt = (await _post(client, world, "facility", refusal))["event_id"]
    accepted = await post_event(
        client, world, "facility", _fix(unweighed, receipt, 64, outcome="accepted")
    )
    assert (accepted.status_code, accepted.json()["field"]) == (422, "weight_kg")


async def test_a_unit_that_makes_the_quantity_implausible_is_named(
    client: httpx.AsyncClient, world: World
) -> None:
    """50,000 kg is a plausible batch; 50,000 m³ is not. A correction sending only the unit
    is refused naming `unit`, the field it sent, and one sending the quantity names that."""
    code = (await tag_bag(client, world, quantity="50000"))["code"]
    tagging = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
    ).json()[0]["id"]
    for minutes, fields, named in (
        (5, {"unit": "m3"}, "unit"),
        (6, {"unit": "m3", "quantity": "20000"}, "quantity"),
    ):
        refused = await post_event(client, world, "clinic", _fix(code, tagging, minutes, **fields))
        assert (refused.status_code, refused.json()["field"]) == (422, named), refused.text
    assert (await _batch(client, world, code))["unit"] == "kg"


async def test_items_are_whole_when_tagged_and_when_corrected(
    client: httpx.AsyncClient, world: World
) -> None:
    """3.5 items is no count (the figures in items add whole ones): a tagging in items with a
    fraction is refused naming `quantity`, a correction into items of a bag of 3.5 kg names
    `unit`, the field it sent, and a fraction sent for a bag in items names `quantity`; nothing
    is kept or changed."""
    refused = await client.post(
        "/m/v1/batches",
        json={
            k: v for k, v in medical_bag(quantity="3.5", unit="count").items() if k != "event_type"
        },
        headers=world.headers("clinic"),
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "quantity"), refused.text
    code = (await tag_bag(client, world, quantity="3.5"))["code"]
    counted = (await tag_bag(client, world, quantity="3", unit="count"))["code"]
    for minutes, batch, fields, named in (
        (5, code, {"unit": "count"}, "unit"),
        (6, counted, {"quantity": "2.5"}, "quantity"),
    ):
        tagging = (
            await client.get(f"/m/v1/batches/{batch}/events", headers=world.headers("clinic"))
        ).json()[0]["id"]
        refused = await post_event(client, world, "clinic", _fix(batch, tagging, minutes, **fields))
        assert (refused.status_code, refused.json()["field"]) == (422, named), refused.text
    assert [(await _batch(client, world, c))["quantity"] for c in (code, counted)] == [
        "3.500",
        "3.000",
    ]


async def test_a_correction_of_the_time_alone_leaves_an_older_fraction_of_items_be(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bag tagged as 3.5 items before items had to be whole: a correction of its tagging
    time alone is judged on the time, not refused naming `unit`, a field it did not send
    (first written by an independent review)."""
    monkeypatch.setattr(tagging, "check_quantity", lambda *args, **kwargs: None)
    code = (await tag_bag(client, world, quantity="3.5", unit="count"))["code"]
    monkeypatch.undo()
    tagged = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
    ).json()[0]["id"]
    moved = (datetime.fromisoformat(event("x")["device_time"]) - timedelta(minutes=30)).isoformat()
    answer = await post_event(client, world, "clinic", _fix(code, tagged, 5, event_time=moved))
    assert answer.status_code == 201, answer.text


async def test_a_recorder_that_no_longer_sees_the_batch_is_not_told_its_state(
    client: httpx.AsyncClient, world: World
) -> None:
    """A facility corrects its own rejection after the carrier took the batch on: the answer,
    and its resend's, do not say where the batch stands now (the facility cannot see it)."""
    code = await _delivered(client, world)
    refusal = event("received", code, minutes=60, outcome="rejected", reason="leaking")
    receipt = (await _post(client, world, "facility", refusal))["event_id"]
    await _post(client, world, "carrier", event("in_transit", code, minutes=70))
    hidden = await client.get(f"/m/v1/batches/{code}", headers=world.headers("facility"))
    assert hidden.status_code == 404
    note = _fix(code, receipt, 80, note="photo of the leak follows")
    for status in (201, 200):  # the correction, then its resend
        answer = await post_event(client, world, "facility", note)
        assert (answer.status_code, answer.json()["state"]) == (status, None), answer.text
    # Whoever sees the batch is told, as for any event: the region's manager.
    managed = await _post(client, world, "manager", _fix(code, receipt, 81, note="seen"))
    assert managed["state"] == "in_transit"


async def test_a_tagging_moved_past_its_next_steps_recording_is_refused_on_the_city_clock(
    client: httpx.AsyncClient, world: World
) -> None:
    """A tagging time corrected to after the server recorded the bag's collection is refused
    naming that moment on the city's clock, as every refusal prints one (`timefmt`): it was
    the database's UTC text, a day earlier than the city's past 16:00 UTC (dates review)."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    code = bag["code"]
    await collect(client, world, code)
    recorded = NOW - timedelta(minutes=100)
    await as_superuser_without_triggers(
        (
            "UPDATE custody_event SET server_time = $1 WHERE seq = 2"
            " AND batch_id = (SELECT id FROM batch WHERE code = $2)",
            [recorded, code],
        )
    )
    tagged = (
        await client.get(f"/m/v1/batches/{code}/events", headers=world.headers("clinic"))
    ).json()[0]["id"]
    later = (recorded + timedelta(minutes=10)).isoformat()
    refused = await post_event(client, world, "clinic", _fix(code, tagged, 30, event_time=later))
    assert (refused.status_code, refused.json()["field"]) == (422, "event_time"), refused.text
    limit = local_limit(recorded, "Asia/Shanghai", earliest=False)
    assert f"({limit}, city time)" in refused.json()["detail"]
