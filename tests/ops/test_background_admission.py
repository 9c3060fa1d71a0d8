"""The background rounds are admitted as requests' transactions are (db.transaction): with
every admission taken, a round waits for one rather than taking the connection kept for a
transaction's own writes (a rate-limit count, a kept answer) — with that one gone too, such a
write would wait for ever behind the row locks of its own request."""

import asyncio

import pytest

from mobile_api.app import _background_round, _fold_round
from tests.factories import World
from wastetrack.core import db


@pytest.mark.parametrize("round_name", ["fold", "background"])
async def test_a_background_round_waits_for_admission(
    world: World, monkeypatch: pytest.MonkeyPatch, round_name: str
) -> None:
    admission = asyncio.Semaphore(1)
    monkeypatch.setattr(db, "_admission", admission)
    await admission.acquire()  # every request's place taken
    running = asyncio.ensure_future(
        _fold_round() if round_name == "fold" else _background_round(world.settings)
    )
    await asyncio.sleep(0.3)
    assert not running.done()
    admission.release()
    await asyncio.wait_for(running, timeout=30)
    assert not admission.locked()  # given back
