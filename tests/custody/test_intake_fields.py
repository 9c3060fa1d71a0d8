"""A record that brings waste into the chain (a delivery, a consignment) names its own fields
in every refusal of the events it makes: a line's fields within its line, the others as the
record names them, never as a line's (custody/intake.py)."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tortoise.transactions import in_transaction

from tests.factories import World
from wastetrack.batches.models import Batch, Unit
from wastetrack.core.errors import DomainError
from wastetrack.custody import intake


async def _take_in(world: World, **names: dict[str, str]) -> None:
    async with in_transaction():
        await intake.take_in(
            principal=world.principals["port"],
            record_id=uuid.uuid4(),
            when=datetime.now(UTC) - timedelta(minutes=5),
            secret=world.settings.secret_key,
            stream="marine",
            lines=[intake.IntakeLine("marine.marpol", Decimal("12"), Unit.KG)],
            # Another organization's waste, with no agreement to tag it: check_may_tag_for.
            producer_id=world.orgs["clinic"].id,
            handover_to=None,
            latitude=None,
            longitude=None,
            **names,
        )


async def test_a_refused_producer_is_not_named_as_a_lines_field(world: World) -> None:
    with pytest.raises(DomainError) as refused:
        await _take_in(world)
    assert refused.value.field == "producer_organization_id"
    with pytest.raises(DomainError) as refused:
        await _take_in(world, record_names={"producer_organization_id": "vessel_id"})
    assert refused.value.field == "vessel_id"
    assert await Batch.all().count() == 0


async def test_a_lines_own_field_stays_within_its_line(world: World) -> None:
    with pytest.raises(DomainError) as refused:
        async with in_transaction():
            await intake.take_in(
                principal=world.principals["port"],
                record_id=uuid.uuid4(),
                when=datetime.now(UTC) - timedelta(minutes=5),
                secret=world.settings.secret_key,
                stream="marine",
                lines=[
                    intake.IntakeLine("marine.marpol", Decimal("12"), Unit.KG),
                    intake.IntakeLine("med.sharps", Decimal("1"), Unit.KG),
                ],
                producer_id=world.orgs["port"].id,
                handover_to=None,
                latitude=None,
                longitude=None,
                record_names={"producer_organization_id": "vessel_id"},
            )
    assert refused.value.field == "lines[1].category"
