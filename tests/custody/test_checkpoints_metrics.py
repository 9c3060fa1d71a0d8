"""The background round's checkpoint sealing shows in /metrics, failed rounds included."""

from pathlib import Path

import httpx

from mobile_api.app import _background_round
from tests.factories import World
from tests.ops.test_metrics import scrape, value
from wastetrack.core import keys
from wastetrack.core.settings import Settings

FAILURES = "wastetrack_job_failures_total"
ROUNDS = "wastetrack_job_duration_seconds_count"


async def test_checkpoint_sealing_rounds_and_their_failures_are_counted(
    client: httpx.AsyncClient, world: World, settings: Settings, tmp_path: Path
) -> None:
    before = await scrape(client)
    await _background_round(settings)
    sealed = await scrape(client)
    assert (
        value(sealed, ROUNDS, job="checkpoint_seal")
        == value(before, ROUNDS, job="checkpoint_seal") + 1
    )
    assert value(sealed, FAILURES, job="checkpoint_seal") == value(
        before, FAILURES, job="checkpoint_seal"
    )
    assert value(sealed, ROUNDS, job="prune") == value(before, ROUNDS, job="prune") + 1

    # A signing key that cannot be read: every sealing round fails, and says so in /metrics.
    (keys.keys_dir(tmp_path) / "checkpoint-ed25519.pem").write_text("not a key")
    await _background_round(settings.model_copy(update={"data_dir": tmp_path}))
    failed = await scrape(client)
    assert (
        value(failed, FAILURES, job="checkpoint_seal")
        == value(sealed, FAILURES, job="checkpoint_seal") + 1
    )
