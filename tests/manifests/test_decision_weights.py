"""The receiver's decision weighing each batch as stated (`weights_kg`), as e-Manifest records
the quantity received per waste line: a batch of no known mass beside others is received at
its weighing, never at a made-up share; a refused part is each batch's declared mass less its
weight; a weight that is not one for each batch of the manifest is refused, changing nothing."""

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import TypeAdapter

from tests.factories import NOW, World, event
from tests.manifests.test_custody_rules import PARTLY, post, tag_oil
from tests.manifests.test_manifests import (  # noqa: F401 (the fixture)
    Parties,
    call,
    drive_to_arrival,
    parties,
)
from wastetrack.batches.models import Batch
from wastetrack.core.errors import RuleViolation
from wastetrack.custody.commands import EventCommand
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import EventType
from wastetrack.manifests.commands import BatchWeight
from wastetrack.manifests.models import Manifest, ManifestDiscrepancy
from wastetrack.manifests.receiving import _allocated

ACCEPTED = {"decision": "accepted", "method": "R9"}
EARLY = (NOW - timedelta(hours=10)).isoformat()


async def receipts(codes: list[str]) -> dict[str, Decimal | None]:
    """Each batch's receipt weight, by code."""
    events = await CustodyEvent.filter(
        batch__code__in=codes, event_type=EventType.received
    ).select_related("batch")
    return {e.batch.code: e.weight_kg for e in events}


async def weight_alerts(client: httpx.AsyncClient, world: World) -> list[str]:
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    return [a["details"]["code"] for a in listed if a["kind"] == "weight_discrepancy"]


async def beside_a_drum(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> tuple[int, str, str]:
    """The first 400 kg batch beside a drum counted as one item (no catalog estimate: no known
    mass), on a manifest driven to arrival: its id, the batch's code and the drum's."""
    oil, drum = parties.batches[0], await tag_oil(client, world, quantity="1", unit="count")
    body = {**parties.body, "batches": [oil, drum], "quantity_kg": "600"}
    arrived = await drive_to_arrival(client, world, Parties(body["batches"], body))
    return arrived["id"], oil, drum


async def test_a_drum_of_no_known_mass_is_accepted_at_the_weight_stated_for_it(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Each batch's receipt is weighed as the receiver states it, the drum's a measurement:
    the batch in kg weighed as it declared raises no weight discrepancy, nothing is split."""
    mid, oil, drum = await beside_a_drum(client, world, parties)
    weights = {oil: "400", drum: "183.5"}
    decision = {**ACCEPTED, "received_quantity_kg": "583.5", "weights_kg": weights}
    decided = await call(client, world, "plant", f"/{mid}/decision", decision)
    assert decided.status_code == 200, decided.text
    assert (decided.json()["state"], decided.json()["received_quantity_kg"]) == (
        "accepted",
        "583.500",
    )
    assert await receipts([oil, drum]) == {oil: Decimal("400.000"), drum: Decimal("183.500")}
    assert await weight_alerts(client, world) == []
    originals = await Batch.filter(code__in=[oil, drum]).values_list("id", flat=True)
    assert not await Batch.filter(split_from_id__in=originals).exists()


async def test_stated_weights_are_not_shared_by_the_declared_masses(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Two batches of 400 kg, 790 kg received: weighed 450 and 340 kg, they are received so
    (shared, they would be 395 kg each), and the one weighed off its declaration is flagged."""
    arrived = await drive_to_arrival(client, world, parties)
    first, second = parties.batches
    weights = {first: "450", second: "340"}
    decision = {**ACCEPTED, "received_quantity_kg": "790", "weights_kg": weights}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
    assert decided.status_code == 200, decided.text
    assert await receipts(parties.batches) == {
        first: Decimal("450.000"),
        second: Decimal("340.000"),
    }
    assert sorted(await weight_alerts(client, world)) == sorted([first, second])


async def test_a_partial_acceptance_with_weights_refuses_each_batchs_declared_mass_less_it(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A 400 kg batch weighed 300 kg leaves a refused part of 100 kg; its neighbour weighed
    above its declaration, and the drum of no known mass, are received whole, nothing split off
    them: 980 kg received of 800 declared is a partial acceptance all the same."""
    drum = await tag_oil(client, world, quantity="1", unit="count")
    first, second = parties.batches
    body = {**parties.body, "batches": [first, second, drum], "quantity_kg": "980"}
    arrived = await drive_to_arrival(client, world, Parties(body["batches"], body))
    weights = {first: "300", second: "500", drum: "180"}
    decision = {**PARTLY, "received_quantity_kg": "980", "weights_kg": weights}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
    assert decided.status_code == 200, decided.text
    assert await receipts(body["batches"]) == {
        first: Decimal("300.000"),
        second: Decimal("500.000"),
        drum: Decimal("180.000"),
    }
    split = await Batch.filter(split_from__code__in=body["batches"]).select_related("split_from")
    assert [(b.split_from.code, b.quantity, b.state) for b in split] == [
        (first, Decimal("100.000"), "rejected")
    ]
    # Each receipt says what happened to its batch: only the one a part was refused of is
    # partially accepted; the others were received whole.
    outcomes = await CustodyEvent.filter(
        batch__code__in=body["batches"], event_type=EventType.received
    ).values_list("batch__code", "outcome")
    assert dict(outcomes) == {
        first: "partially_accepted",
        second: "accepted",
        drum: "accepted",
    }
    # The total agrees with the declaration; each batch weighed off its own is on the record,
    # the refused 100 kg among them (the drum declared no mass to be off).
    found = {(d["field"], d["declared"], d["found"]) for d in decided.json()["discrepancies"]}
    assert found == {
        (f"weights_kg.{first}", "400.000", "300.000"),
        (f"weights_kg.{second}", "400.000", "500.000"),
    }


async def test_an_estimated_remainder_weighed_on_its_own_manifest_is_no_declaration_off(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A drum of 0.4 m³ of waste oil (the catalog's estimate: 400 kg) received at 300 kg
    leaves a refused part of 100 kg, an estimate. Back at its producer and listed beside a
    400 kg drum, the receiver weighs it at 80 kg: the estimate is no declaration to be off, as
    for a batch in m³ (`remainders.estimated_basis`, which the weight_discrepancy alert's
    mass balance follows too); it was recorded as a `weights_kg.<code>` discrepancy
    (hazardous review)."""
    drum = await tag_oil(client, world, quantity="0.4", unit="m3", device_time=EARLY)
    first = {**parties.body, "batches": [drum], "quantity_kg": "400"}
    arrived = await drive_to_arrival(
        client, world, Parties([drum], first), arrived=NOW - timedelta(hours=6)
    )
    partly = {
        "decision": "partially_accepted",
        "received_quantity_kg": "300",
        "method": "R9",
        "reason": "桶内有水",
    }
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", partly)
    assert decided.status_code == 200, decided.text
    original = await Batch.get(code=drum)
    (rest,) = await Batch.filter(split_from_id=original.id)
    assert (rest.quantity, rest.unit) == (100, "kg")
    home = event(
        "handed_over",
        rest.code,
        to_organization_id=world.orgs["maker"].id,
        device_time=(NOW - timedelta(hours=5)).isoformat(),
    )
    back = await post(client, world, "second", home)
    assert back.status_code == 201, back.text
    fresh = await tag_oil(client, world, device_time=EARLY)
    second = {**parties.body, "batches": [rest.code, fresh], "quantity_kg": "500"}
    again = await drive_to_arrival(client, world, Parties([rest.code, fresh], second))
    weights = {rest.code: "80", fresh: "400"}
    decision = {
        "decision": "accepted",
        "method": "R9",
        "received_quantity_kg": "480",
        "weights_kg": weights,
    }
    decided = await call(client, world, "plant", f"/{again['id']}/decision", decision)
    assert decided.status_code == 200, decided.text
    # The mass balance's own comparison leaves the remainder's estimated kg out:
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    listed = (await client.get("/m/v1/alerts", headers=world.headers("manager"))).json()
    flagged = [a["details"]["code"] for a in listed if a["kind"] == "weight_discrepancy"]
    assert rest.code not in flagged
    found = await ManifestDiscrepancy.filter(manifest_id=again["id"]).values_list(
        "field", "declared", "found"
    )
    assert found == [], found


async def test_weights_are_named_by_the_code_as_typed_or_printed(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """The label prints ABCD-EFGH-J; a receiver types it so, or in lower case: the same batch.
    Naming one batch twice so is refused, naming the key as sent."""
    arrived = await drive_to_arrival(client, world, parties)
    first, second = parties.batches
    printed = f"{first[:4]}-{first[4:8]}-{first[8:]}"
    twice = {printed: "400", first.lower(): "400"}
    decision = {**ACCEPTED, "received_quantity_kg": "800", "weights_kg": twice}
    refused = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
    assert (refused.status_code, refused.json()["field"]) == (
        422,
        f"weights_kg.{first.lower()}",
    ), refused.text
    weights = {printed: "410", second.lower(): "390"}
    decision = {**ACCEPTED, "received_quantity_kg": "800", "weights_kg": weights}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", decision)
    assert decided.status_code == 200, decided.text
    assert await receipts(parties.batches) == {
        first: Decimal("410.000"),
        second: Decimal("390.000"),
    }


@pytest.mark.parametrize("decision", ["accepted", "partially_accepted"])
async def test_nothing_received_is_a_rejection_not_an_acceptance(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
    decision: str,
) -> None:
    arrived = await drive_to_arrival(client, world, parties)
    body = {**(ACCEPTED if decision == "accepted" else PARTLY), "received_quantity_kg": "0"}
    refused = await call(client, world, "plant", f"/{arrived['id']}/decision", body)
    assert (refused.status_code, refused.json()["field"]) == (422, "received_quantity_kg")
    assert (await Manifest.get(id=arrived["id"])).state == "arrived"
    assert await receipts(parties.batches) == {}


async def test_a_quantity_too_small_to_weigh_each_batch_is_refused(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A gram shared by two 400 kg drums weighs one at 0.000 kg: a receipt weighed at nothing,
    refused as a quantity of 0 is, naming it, before anything is written."""
    arrived = await drive_to_arrival(client, world, parties)
    body = {**ACCEPTED, "received_quantity_kg": "0.001"}
    refused = await call(client, world, "plant", f"/{arrived['id']}/decision", body)
    assert (refused.status_code, refused.json()["field"]) == (422, "received_quantity_kg")
    assert "a gram at least" in refused.json()["detail"]
    assert (await Manifest.get(id=arrived["id"])).state == "arrived"
    assert await receipts(parties.batches) == {}


async def test_a_rejection_of_minus_zero_kg_states_its_discrepancy_as_the_manifest_keeps_it(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    arrived = await drive_to_arrival(client, world, parties)
    body = {"decision": "rejected", "received_quantity_kg": "-0", "reason": "包装破损"}
    decided = await call(client, world, "plant", f"/{arrived['id']}/decision", body)
    assert decided.status_code == 200, decided.text
    found = {d["field"]: d["found"] for d in decided.json()["discrepancies"]}
    assert found["quantity_kg"] == decided.json()["received_quantity_kg"] == "0.000"


async def test_a_partial_acceptance_whose_weights_refuse_no_part_is_refused(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """Each batch weighed at or above its declared mass leaves no part to refuse, though the
    drum weighs little: a 422 naming `weights_kg`, nothing decided."""
    mid, oil, drum = await beside_a_drum(client, world, parties)
    weights = {oil: "400", drum: "50"}
    decision = {**PARTLY, "received_quantity_kg": "450", "weights_kg": weights}
    refused = await call(client, world, "plant", f"/{mid}/decision", decision)
    assert (refused.status_code, refused.json()["field"]) == (422, "weights_kg"), refused.text
    assert "leaves none" in refused.json()["detail"]
    assert (await Manifest.get(id=mid)).state == "arrived"
    assert await receipts([oil, drum]) == {}


async def test_weights_not_one_for_each_batch_of_the_manifest_are_refused(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A code not on the manifest, a batch left out, weights that do not add up to the quantity
    received, a weight of nothing or beyond what a batch may weigh, weights on a rejection:
    each a 422 naming the field, in a problem document, and nothing decided."""
    mid, oil, drum = await beside_a_drum(client, world, parties)
    stranger = parties.batches[1]
    refusals = [
        ({oil: "400", drum: "180", stranger: "1"}, "581", f"weights_kg.{stranger}"),
        ({oil: "580"}, "580", "weights_kg"),
        ({oil: "400", drum: "180"}, "600", "weights_kg"),
        ({oil: "580", drum: "0"}, "580", f"weights_kg.{drum}"),
        ({oil: "600", drum: "-20"}, "580", f"weights_kg.{drum}"),
        ({oil: "400", drum: "100000.001"}, "100400.001", f"weights_kg.{drum}"),
        ({}, "580", "weights_kg"),
    ]
    for weights, received, field in refusals:
        decision = {**ACCEPTED, "received_quantity_kg": received, "weights_kg": weights}
        refused = await call(client, world, "plant", f"/{mid}/decision", decision)
        assert (refused.status_code, refused.json()["field"]) == (422, field), refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    rejected = {
        "decision": "rejected",
        "received_quantity_kg": "580",
        "reason": "桶未称重",
        "weights_kg": {oil: "400", drum: "180"},
    }
    refused = await call(client, world, "plant", f"/{mid}/decision", rejected)
    assert (refused.status_code, refused.json()["field"]) == (422, "weights_kg"), refused.text
    manifest = await Manifest.get(id=mid)
    assert (manifest.state, manifest.decision, manifest.receiver_signed_at) == (
        "arrived",
        None,
        None,
    )
    assert await receipts([oil, drum]) == {}
    assert not await ManifestDiscrepancy.filter(manifest_id=mid).exists()
    assert {b.state for b in await Batch.filter(code__in=[oil, drum])} == {"in_transit"}


async def test_without_weights_a_drum_beside_others_asks_for_each_batchs_weight(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """A decision without weights is as before: beside a drum of no known mass, no share is
    made up (409 naming `decision`), and the refusal says how to decide: a weight per batch."""
    mid, oil, drum = await beside_a_drum(client, world, parties)
    decision = {**ACCEPTED, "received_quantity_kg": "580"}
    refused = await call(client, world, "plant", f"/{mid}/decision", decision)
    assert (refused.status_code, refused.json()["field"]) == (409, "decision"), refused.text
    assert "weights_kg" in refused.json()["detail"] and drum in refused.json()["detail"]
    assert await receipts([oil, drum]) == {}


def test_an_estimate_of_nothing_beside_other_batches_asks_for_weights() -> None:
    """A small estimate rounded to 0.000 kg would take a share of nothing: a receipt weighed
    at 0 kg, made up as surely as for a batch of no known mass. Refused, asking for a weight
    per batch; alone on its manifest, the batch weighs what was received."""
    for declared in ({"A": Decimal(500), "B": Decimal("0.000")}, {"A": None, "B": Decimal(1)}):
        with pytest.raises(RuleViolation) as refused:
            _allocated(Decimal(600), declared)
        assert refused.value.field == "decision" and "weights_kg" in refused.value.detail
    assert _allocated(Decimal(600), {"A": Decimal("0.000")}) == [Decimal(600)]
    assert _allocated(Decimal(600), {"A": Decimal(400), "B": Decimal(200)}) == [
        Decimal(400),
        Decimal(200),
    ]


def test_a_batchs_weight_is_bounded_as_a_custody_events_weight() -> None:
    """Each stated weight goes on a receipt: the contract allows none a custody event could
    not hold."""
    stated = TypeAdapter(BatchWeight).json_schema()["anyOf"][0]
    event = TypeAdapter(EventCommand).json_schema()["properties"]["weight_kg"]["anyOf"][0]
    assert stated["maximum"] == event["maximum"], (stated, event)
    assert stated["exclusiveMinimum"] == event["minimum"] == 0
