"""The demo's household and pesticide-packaging streams: sorted collection with pickups at a
collection point, a forgotten clinic bag, and packaging sold, returned and sent on."""

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from wastetrack.alerts import service as alerts
from wastetrack.core import codes
from wastetrack.demo.scenario import SCENARIO, Demo, after
from wastetrack.household import service as household
from wastetrack.household.commands import PickupCommand, QualityCheckCommand
from wastetrack.pesticide import service as pesticide
from wastetrack.pesticide.commands import (
    ConsignmentCommand,
    ConsignmentLineCommand,
    PackagingLineCommand,
    ReturnCommand,
    SaleCommand,
)
from wastetrack.registry.models import Region, Site


async def load_household_and_medical(demo: Demo) -> int:
    """Three communities and villages with sorted collection, 40 pickups with quality checks at
    北山社区's collection point, and one clinic bag left past its 48 hours; the number of
    batches made."""
    spec = SCENARIO["household"]
    since = date.fromisoformat(spec["sorted_collection"]["since"])
    for name in spec["sorted_collection"]["villages"]:
        village = await Region.get(name=name)
        await household.set_sorted_collection(
            region_id=village.id, since=since, timezone=demo.timezone
        )
    site = await Site.get(organization_id=demo.orgs[spec["point"]].id)
    point = codes.qr_url(site.code or "", base_url="http://demo", secret=demo.secret)
    rng = random.Random(spec["seed"])
    now = datetime.now(UTC)
    classes = spec["classes"]
    weight, contamination = spec["weight_kg"], spec["contamination_percent"]
    pickups: int = spec["pickups"]
    for index in range(pickups):
        passed = rng.random() < spec["passed_share"]
        result = await household.record_pickup(
            principal=demo.principals[spec["collector"]],
            secret=demo.secret,
            submission=PickupCommand(
                client_event_id=uuid.uuid4(),
                site=point,
                category=classes[index % len(classes)],
                weight_kg=Decimal(rng.randint(*weight["between"])) / weight["divided_by"],
                device_time=now - timedelta(days=rng.uniform(*spec["days_ago"])),
                latitude=site.latitude,
                longitude=site.longitude,
                quality=QualityCheckCommand(
                    passed=passed,
                    contamination_share=Decimal(
                        rng.randint(*contamination["passed" if passed else "failed"])
                    )
                    / 100,
                ),
            ),
        )
        assert result.error is None, result.error
    bag = spec["forgotten_bag"]
    await demo.tag(bag["who"], now + after(bag["tagged"]), **demo.fields(bag["fields"]))
    await alerts.refresh()
    return pickups + 1


async def load_pesticide(demo: Demo) -> int:
    """Sales at the shop, returns by ten farmers at the shop and the recovery point, and one
    consignment of bottles to the recycler; the number of batches made."""
    spec = SCENARIO["pesticide"]
    rng = random.Random(spec["seed"])
    now = datetime.now(UTC)
    materials = spec["materials"]
    shop, station = demo.principals[spec["shop"]], demo.principals[spec["station"]]
    for day in range(spec["sale_days"]):
        for material in materials:
            await pesticide.record_sale(
                principal=shop,
                submission=SaleCommand(
                    client_event_id=uuid.uuid4(),
                    sold_on=demo.day(now - timedelta(days=day)),
                    material=material,
                    count=rng.randint(*spec["sale_count"]),
                ),
            )
    for index in range(spec["returns"]):
        result = await pesticide.record_return(
            principal=shop if index % 3 else station,
            secret=demo.secret,
            submission=ReturnCommand(
                client_event_id=uuid.uuid4(),
                farmer_phone=f"{spec['farmer_phone_prefix']}{index % spec['farmers']:04d}",
                returned_at=now - timedelta(days=rng.uniform(*spec["returned_days_ago"])),
                lines=[
                    PackagingLineCommand(material=m, count=rng.randint(*spec["return_count"]))
                    for m in rng.sample(materials, 2)
                ],
            ),
        )
        assert result.error is None, result.error
    consignment = spec["consignment"]
    sent = await pesticide.record_consignment(
        principal=station,
        secret=demo.secret,
        submission=ConsignmentCommand(
            client_event_id=uuid.uuid4(),
            destination_organization_id=demo.orgs[consignment["to"]].id,
            sent_at=now + after(consignment["sent"]),
            lines=[ConsignmentLineCommand.model_validate(line) for line in consignment["lines"]],
        ),
    )
    assert sent.error is None, sent.error
    return 1
