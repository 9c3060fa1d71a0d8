"""The demo's fishing ports: berths, port calls with deliveries carried on to treatment, a beach
clean-up and a float replacement."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from wastetrack.core import codes
from wastetrack.demo.scenario import SCENARIO, Demo, after, event
from wastetrack.ports.berths import add_berth, register_port
from wastetrack.ports.cleanups import record_cleanup, record_float_replacement
from wastetrack.ports.commands import (
    CleanUpCommand,
    DeliveryCommand,
    DeliveryLineCommand,
    FloatReplacementCommand,
    NotificationLineCommand,
)
from wastetrack.ports.deliveries import get_delivery, record_delivery
from wastetrack.ports.models import Berth
from wastetrack.ports.port_calls import close_port_call, open_port_call
from wastetrack.ports.rules import small_vessel
from wastetrack.registry.models import Vessel


async def load_ports(demo: Demo) -> int:
    """石岛渔港 with two berths, port calls of the three demo vessels, their deliveries (most
    carried on to treatment), a beach clean-up and a float replacement; the number of batches
    they made."""
    spec = SCENARIO["ports"]
    for registration in spec["registrations"]:
        await register_port(
            port_id=demo.orgs[registration["organization"]].id,
            **{k: v for k, v in registration.items() if k != "organization"},
        )
    port = demo.orgs[spec["port"]]
    berths = [
        await add_berth(
            port_id=port.id,
            name=berth["name"],
            latitude=berth["latitude"],
            longitude=berth["longitude"],
            geofence_m=None,
        )
        for berth in spec["berths"]
    ]
    now = datetime.now(UTC)
    batches = 0
    fleet = SCENARIO["vessels"]["fleet"]
    vessels = await Vessel.filter(home_port_id=port.id).order_by("id")
    for index, (vessel, data) in enumerate(zip(vessels, fleet, strict=True)):
        for trip in reversed(range(spec["trips"])):  # oldest first: calls go in order
            batches += await _trip(demo, spec, vessel, data, berths, index, trip, now)
    await _cleanup(demo, spec, port.region_id, now)
    return batches + 1


async def _trip(
    demo: Demo,
    spec: dict[str, Any],
    vessel: Vessel,
    data: dict[str, Any],
    berths: list[Berth],
    index: int,
    trip: int,
    now: datetime,
) -> int:
    """One port call: the vessel's delivery at a berth and, for all but the latest trip, its
    waste carried to the plants; the number of batches delivered."""
    operator = demo.principals[spec["operator"]]
    secret = demo.secret
    arrived = now - timedelta(days=7 * trip + index + 1, hours=6)
    call = await open_port_call(
        principal=operator,
        vessel_id=vessel.id,
        arrived_at=arrived,
        days_at_sea=6 + trip,
        crew=data["crew"],
        fishing_area=data["fishing_area"],
        notification=[
            NotificationLineCommand.model_validate(line) for line in spec["notification"]
        ],
    )
    lines = [
        DeliveryLineCommand(
            annex_v="A", scheme_version="2018", volume_m3=Decimal("0.4") + Decimal(trip) / 10
        ),
        DeliveryLineCommand(annex_v="C", scheme_version="2018", volume_m3=Decimal("0.3")),
        DeliveryLineCommand(category="pfw.plastic.nets", mass_kg=Decimal(12 + 3 * trip)),
    ]
    # Sewage only from the vessels the indicator expects it of: the port rules' one reading.
    if small_vessel(vessel.gross_tonnage):
        lines.append(DeliveryLineCommand(category="marine.sewage", volume_m3=Decimal("0.8")))
    berth = berths[trip % 2]
    result = await record_delivery(
        principal=operator,
        secret=secret,
        submission=DeliveryCommand(
            client_event_id=uuid.uuid4(),
            berth=codes.qr_url(berth.code, base_url="http://demo", secret=secret),
            vessel_id=vessel.id,
            started_at=arrived + timedelta(hours=1),
            ended_at=arrived + timedelta(hours=2),
            latitude=berth.latitude,
            longitude=berth.longitude,
            lines=lines,
        ),
    )
    assert result.error is None, result.error
    await close_port_call(
        principal=operator, port_call_id=call.id, departed_at=arrived + timedelta(hours=20)
    )
    delivery = await get_delivery(principal=operator, delivery_id=result.record_id or 0)
    if trip == 0:
        return len(delivery.lines)  # the latest trip's waste is still at the port
    for line in delivery.lines:
        facility = spec["facilities"].get(line.category_id, spec["facilities"]["*"])
        method = spec["methods"].get(facility, spec["methods"]["*"])
        code = line.batch.code
        when = arrived + timedelta(hours=4)
        # Weighed at the plant: a little less than the mass derived or declared.
        share = Decimal(spec["weighed_share"])
        weight = (Decimal(line.mass_kg or 1) * share).quantize(Decimal("0.001"))
        await demo.post(
            spec["operator"],
            event("in_transit", code, when, destination_organization_id=demo.orgs[facility].id),
        )
        await demo.post(
            facility,
            event(
                "received", code, when + timedelta(hours=2), outcome="accepted", weight_kg=weight
            ),
        )
        await demo.post(facility, event("treated", code, when + timedelta(hours=20), method=method))
    return len(delivery.lines)


async def _cleanup(demo: Demo, spec: dict[str, Any], region_id: int, now: datetime) -> None:
    """A beach clean-up by the port's team and the aquaculture floats replaced."""
    operator = demo.principals[spec["operator"]]
    cleanup = spec["cleanup"]
    result = await record_cleanup(
        principal=operator,
        secret=demo.secret,
        submission=CleanUpCommand(
            client_event_id=uuid.uuid4(),
            region_id=region_id,
            area_name=cleanup["area_name"],
            setting=cleanup["setting"],
            started_at=now + after(cleanup["started"]),
            ended_at=now + after(cleanup["ended"]),
            latitude=cleanup["latitude"],
            longitude=cleanup["longitude"],
            participants=cleanup["participants"],
            item_counts=cleanup["item_counts"],
            total_weight_kg=Decimal(cleanup["total_weight_kg"]),
        ),
    )
    assert result.error is None, result.error
    floats = spec["float_replacement"]
    await record_float_replacement(
        principal=operator,
        submission=FloatReplacementCommand(
            client_event_id=uuid.uuid4(),
            region_id=region_id,
            replaced_on=demo.day(now + after(floats["replaced"])),
            foam_floats_removed=floats["foam_floats_removed"],
            new_floats_installed=floats["new_floats_installed"],
            new_float_type=floats["new_float_type"],
        ),
    )
