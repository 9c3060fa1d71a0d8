"""An event's hash is a fixed function of its content: chains recorded by earlier releases must
still verify, so the bytes hashed may never change, however the code that builds them does."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from wastetrack.custody.chain import event_hash
from wastetrack.custody.repository import NewEvent

SHANGHAI = timezone(timedelta(hours=8))


def _event() -> NewEvent:
    # Every field set, a device time just after midnight in the city (still the previous day
    # in UTC), non-ASCII and nested details, a weight with trailing zeros.
    return NewEvent(
        id=uuid.UUID("0b6a3c1e-8f7d-4a52-9c3e-2d1f0e9a8b7c"),
        batch_id=7,
        seq=3,
        event_type="received",
        state_after="received",
        device_time=datetime(2026, 3, 1, 0, 0, 0, 123456, tzinfo=SHANGHAI),
        server_time=datetime(2026, 2, 28, 16, 0, 5, tzinfo=UTC),
        actor_id=12,
        organization_id=4,
        prev_hash="a" * 64,
        outcome="accepted",
        corrects_id=uuid.UUID("5d0c2b3a-1e4f-4b6a-8c7d-9e0f1a2b3c4d"),
        details={"note": "荣成 港", "kg": 1.5, "n": [1, None]},
        latitude=37.1655,
        longitude=122.4861,
        weight_kg=Decimal("12.400"),
        photo_sha256="f" * 64,
        client_event_id=uuid.UUID("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"),
    )


def test_keyed_and_plain_hashes_are_those_of_earlier_releases() -> None:
    # The values were computed by the release of 2026-12-01 (26d6297).
    event = _event()
    keyed = event_hash(
        event, batch_code="WT8ABCDEFGHJK", related_code="WT8ZZZZZZZZZZ", key=b"k" * 32
    )
    assert keyed == "5cb8350859eefbd6c4454c0dba1b84a22cba63897a097230e7828e5d9479c1b7"
    plain = event_hash(event, batch_code="WT8ABCDEFGHJK", related_code=None, key=None)
    assert plain == "1c8b87b4f249d7ea8cad82697508758bd94f0d3669231f968beab4a26be4eda1"


def test_a_weight_in_exponent_form_and_absent_ids_hash_as_before() -> None:
    event = _event()
    event.weight_kg, event.corrects_id, event.client_event_id = Decimal("1E+2"), None, None
    keyed = event_hash(event, batch_code="WT8ABCDEFGHJK", related_code=None, key=b"k" * 32)
    assert keyed == "7905909d42586c9d89ab55b13ae0d7e518e5b65056232cf3fa7d0f9bfd2088f7"
