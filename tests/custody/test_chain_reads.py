"""A chain is checked against its head as one moment saw both: a batch that gets a step while
its chain is read (by `/verify` or by `wastetrack verify`'s audit) is intact, not broken."""

import httpx
import pytest

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event
from wastetrack.custody import chain, checkpoints


async def _verdict(client: httpx.AsyncClient, world: World, code: str) -> dict:
    response = await client.get(f"/m/v1/batches/{code}/verify", headers=world.headers("clinic"))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _collect(client: httpx.AsyncClient, world: World, code: str) -> None:
    response = await post_event(client, world, "carrier", event("collected", code, minutes=5))
    assert response.status_code == 201, response.text


async def test_a_step_committed_while_verify_reads_the_batch_is_no_break(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    found = chain.batches.get_visible_batch

    async def then_collected(principal, code):  # type: ignore[no-untyped-def]
        batch = await found(principal, code)
        await _collect(client, world, bag["code"])  # commits once the row was found
        return batch

    monkeypatch.setattr(chain.batches, "get_visible_batch", then_collected)
    verdict = await _verdict(client, world, bag["code"])
    assert (verdict["valid"], verdict["events"]) == (True, 2), verdict


async def test_a_step_committed_while_the_audit_runs_is_no_break(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    second = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    check = chain.check_chain
    stepped: list[str] = []

    async def second_collected_meanwhile(*, batch, events, secret):  # type: ignore[no-untyped-def]
        if not stepped:  # while the audit checks the first batch, the second gets a step
            stepped.append(second["code"])
            await _collect(client, world, second["code"])
        return await check(batch=batch, events=events, secret=secret)

    monkeypatch.setattr(chain, "check_chain", second_collected_meanwhile)
    settings = world.settings
    report = await checkpoints.audit(
        secret=settings.secret_key, timezone=settings.timezone, data_dir=settings.data_dir
    )
    assert stepped and first["code"] != second["code"]
    assert (report["valid"], report["problems"]) == (True, []), report
