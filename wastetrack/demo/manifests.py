"""The demo's hazardous waste: waste oil from the shipyard on transfer manifests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from wastetrack.alerts import service as alerts
from wastetrack.demo.scenario import SCENARIO, Demo, after, event
from wastetrack.manifests import drafting, receiving, signing
from wastetrack.manifests.commands import (
    DecisionCommand,
    LegCommand,
    LegSignCommand,
    ManifestCommand,
)


async def load_manifests(demo: Demo) -> int:
    """Waste oil from the shipyard on transfer manifests: five accepted and treated, one
    arrived and still undecided past its 5 working days (an open alert); the number of
    batches tagged."""
    spec = SCENARIO["manifests"]
    now = datetime.now(UTC)
    made = 0
    for trip in range(spec["trips"]):
        start = now - timedelta(days=spec["first_days_ago"] - trip * spec["days_between"])
        codes_ = await _shipment(demo, start, undecided=trip == spec["undecided_trip"])
        made += len(codes_)
    await alerts.refresh()
    return made


async def _shipment(demo: Demo, start: datetime, *, undecided: bool) -> list[str]:
    """Two drums' batches tagged, put on one manifest, signed over, carried and received;
    unless left undecided, accepted and treated. The batches' codes."""
    spec = SCENARIO["manifests"]
    producer, receiver = spec["producer"], spec["receiver"]
    tagged = await demo.post(
        producer,
        *(event("tagged", None, start, **spec["batch"]) for _ in range(spec["per_manifest"])),
    )
    codes_ = [outcome.result.batch_code or "" for outcome in tagged]
    form = spec["manifest"]
    manifest = await drafting.create_manifest(
        principal=demo.principals[producer],
        area_code=spec["area_code"],
        secret=demo.secret,
        timezone=demo.timezone,
        tolerance=Decimal(spec["tolerance"]),
        submission=ManifestCommand.model_validate(
            {
                **{k: v for k, v in form.items() if k != "leg"},
                "batches": codes_,
                "receiver_organization_id": demo.orgs[receiver].id,
                "legs": [
                    LegCommand(carrier_organization_id=demo.orgs[spec["carrier"]].id, **form["leg"])
                ],
            }
        ),
    )
    await signing.sign_producer(
        principal=demo.principals[producer],
        manifest_id=manifest.id,
        secret=demo.secret,
        timezone=demo.timezone,
        handed_over_at=start + after(spec["handed_over"]),
    )
    await signing.sign_leg(
        principal=demo.principals[spec["carrier"]],
        manifest_id=manifest.id,
        seq=1,
        secret=demo.secret,
        timezone=demo.timezone,
        signature=LegSignCommand(
            handover_at=start + after(spec["leg_handover"]), handover_place=spec["handover_place"]
        ),
    )
    await receiving.arrive(
        principal=demo.principals[receiver],
        manifest_id=manifest.id,
        arrived_at=start + after(spec["arrived"]),
        timezone=demo.timezone,
    )
    if undecided:
        return codes_
    decision = DecisionCommand.model_validate(spec["decision"])
    await receiving.decide(
        principal=demo.principals[receiver],
        manifest_id=manifest.id,
        secret=demo.secret,
        tolerance=Decimal(spec["tolerance"]),
        decision=decision,
        timezone=demo.timezone,
    )
    for code in codes_:
        await demo.post(
            receiver,
            event(
                "treated", code, start + after(spec["treated"]), method=spec["decision"]["method"]
            ),
        )
    return codes_
