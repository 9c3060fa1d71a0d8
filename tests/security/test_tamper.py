"""Tamper evidence: keyed chain hashes, the anchored head, the append-only trigger, the
service's own database role, signed daily checkpoints and `wastetrack verify`."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tortoise import connections

from tests.custody.helpers import advance, as_superuser_without_triggers, post_event, tag_bag
from tests.factories import World, event
from wastetrack.batches.models import Batch
from wastetrack.core import db, keys
from wastetrack.custody import checkpoints
from wastetrack.custody.chain import event_hash
from wastetrack.custody.checkpoints import Checkpoint, LegacyChain
from wastetrack.custody.models import CustodyEvent


async def verdict(client: httpx.AsyncClient, world: World, code: str) -> dict:
    response = await client.get(f"/m/v1/batches/{code}/verify", headers=world.headers("clinic"))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_deleting_the_last_event_of_a_chain_is_detected(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, batch["code"], until="collected")
    assert (await verdict(client, world, batch["code"]))["valid"] is True
    await as_superuser_without_triggers(
        (
            "DELETE FROM custody_event WHERE seq = 2 AND batch_id ="
            " (SELECT id FROM batch WHERE code = $1)",
            [batch["code"]],
        )
    )
    found = await verdict(client, world, batch["code"])
    assert found["valid"] is False
    assert found["broken_at_seq"] == 2
    assert "head" in found["detail"]


async def test_a_batch_head_moved_past_its_last_event_is_detected(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    await Batch.filter(code=batch["code"]).update(last_seq=2)
    assert (await verdict(client, world, batch["code"]))["valid"] is False


async def test_a_batch_row_rewritten_behind_its_chain_is_detected(
    client: httpx.AsyncClient, world: World
) -> None:
    """The batch row is in no hash: its producer, region, category and quantity are checked
    against what the hashed tagging (and its corrections) say. A bag moved to another clinic
    in the row alone, or swollen, no longer verifies; a corrected one still does."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    code = bag["code"]
    tagging = await CustodyEvent.get(batch__code=code, seq=1)
    fix = event("corrected", code, minutes=5, corrects=str(tagging.id), quantity="4.5")
    assert (await post_event(client, world, "clinic", fix)).status_code == 201
    assert (await verdict(client, world, code))["valid"] is True
    other = world.orgs["other_clinic"].id
    for column, forged in (("producer_id", other), ("quantity", 45), ("region_path", "/1/")):
        original = await Batch.get(code=code).values_list(column, flat=True)
        await as_superuser_without_triggers(
            (f"UPDATE batch SET {column} = $1 WHERE code = $2", [forged, code])
        )
        found = await verdict(client, world, code) if column != "producer_id" else None
        if found is None:  # the clinic no longer sees a batch moved to another producer
            found = await verdict_as(client, world, "carrier", code)
        assert (found["valid"], found["broken_at_seq"]) == (False, 1), (column, found)
        assert column.removesuffix("_id") in found["detail"] or column in found["detail"]
        await as_superuser_without_triggers(
            (f"UPDATE batch SET {column} = $1 WHERE code = $2", [original, code])
        )
    assert (await verdict(client, world, code))["valid"] is True


async def test_a_rewritten_state_or_container_in_the_row_is_detected(
    client: httpx.AsyncClient, world: World
) -> None:
    """The figures read a batch's state (a cancelled one counts nowhere) and its container (a
    bag shares its container's fate) from the row, and both are what the hashed steps say: the
    latest step's state, and the container of the latest packing no correction undid. A row
    rewritten to say otherwise verified; it no longer does, packed or taken out again."""
    carrier = world.orgs["carrier"].id
    bag = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    load = (await tag_bag(client, world, "carrier", producer_organization_id=carrier))["code"]
    for step in (
        ("carrier", event("collected", bag, minutes=2)),
        ("carrier", event("aggregated", load, minutes=3, children=[bag])),
    ):
        assert (await post_event(client, world, *step)).status_code == 201
    packed = (await Batch.get(code=load)).id

    async def forged(column: str, value: object, kept: object) -> None:
        assert (await verdict_as(client, world, "carrier", bag))["valid"] is True
        await as_superuser_without_triggers(
            (f"UPDATE batch SET {column} = $1 WHERE code = $2", [value, bag])
        )
        found = await verdict_as(client, world, "carrier", bag)
        assert (found["valid"], found["broken_at_seq"]) == (False, 1), (column, found)
        assert column in found["detail"], found
        await as_superuser_without_triggers(
            (f"UPDATE batch SET {column} = $1 WHERE code = $2", [kept, bag])
        )
        assert (await verdict_as(client, world, "carrier", bag))["valid"] is True

    await forged("state", "cancelled", "aggregated")
    await forged("parent_id", None, packed)
    into = await CustodyEvent.get(batch__code=bag, event_type="aggregated")
    undo = event("corrected", bag, minutes=5, corrects=str(into.id), aggregated=False)
    assert (await post_event(client, world, "carrier", undo)).status_code == 201
    await forged("parent_id", packed, None)


async def test_a_remainder_detached_from_its_original_in_the_row_is_detected(
    client: httpx.AsyncClient, world: World
) -> None:
    """The figures add a partial receipt's refused part up by the remainder row's link to the
    batch it was split from (and the remainder rules read it); the remainder's tagging names
    that batch. A row detached from it, or tied to another, no longer verifies; nor does a
    batch no split made, tied to one."""
    carrier = world.orgs["carrier"].id
    bag = (await tag_bag(client, world, carrier_organization_id=carrier))["code"]
    for who, step in (
        ("carrier", event("collected", bag, minutes=10)),
        (
            "carrier",
            event(
                "in_transit", bag, minutes=20, destination_organization_id=world.orgs["facility"].id
            ),
        ),
        (
            "facility",
            event(
                "received",
                bag,
                minutes=60,
                outcome="partially_accepted",
                weight_kg="2.0",
                reason="袋破",
            ),
        ),
    ):
        assert (await post_event(client, world, who, step)).status_code == 201
    (part,) = await Batch.filter(split_from__code=bag)
    other = (await tag_bag(client, world))["code"]
    original, elsewhere = (await Batch.get(code=bag)).id, (await Batch.get(code=other)).id
    for code, forged, kept in (
        (part.code, None, original),
        (part.code, elsewhere, original),
        (other, original, None),
    ):
        assert (await verdict_as(client, world, "clinic", code))["valid"] is True
        await as_superuser_without_triggers(
            ("UPDATE batch SET split_from_id = $1 WHERE code = $2", [forged, code])
        )
        found = await verdict_as(client, world, "clinic", code)
        assert (found["valid"], found["broken_at_seq"]) == (False, 1), found
        assert "split_from_id" in found["detail"], found
        await as_superuser_without_triggers(
            ("UPDATE batch SET split_from_id = $1 WHERE code = $2", [kept, code])
        )


async def verdict_as(client: httpx.AsyncClient, world: World, who: str, code: str) -> dict:
    response = await client.get(f"/m/v1/batches/{code}/verify", headers=world.headers(who))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_rewritten_event_with_a_recomputed_unkeyed_hash_is_detected(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    event = await CustodyEvent.get(batch__code=batch["code"], seq=1)
    event.latitude = 10.0
    forged = event_hash(event, batch_code=batch["code"], related_code=None, key=None)
    await as_superuser_without_triggers(
        ("UPDATE custody_event SET latitude = 10.0, hash = $1 WHERE id = $2", [forged, event.id]),
        ("UPDATE batch SET last_hash = $1 WHERE code = $2", [forged, batch["code"]]),
    )
    found = await verdict(client, world, batch["code"])
    assert found["valid"] is False
    assert found["broken_at_seq"] == 1


async def test_a_chain_from_before_keyed_hashes_still_verifies(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    row = await Batch.get(code=batch["code"])
    event = await CustodyEvent.get(batch_id=row.id, seq=1)
    plain = event_hash(event, batch_code=row.code, related_code=None, key=None)
    await as_superuser_without_triggers(
        ("UPDATE custody_event SET hash = $1 WHERE id = $2", [plain, event.id]),
        ("UPDATE batch SET last_hash = $1 WHERE id = $2", [plain, row.id]),
    )
    assert (await verdict(client, world, batch["code"]))["valid"] is False
    await as_superuser_without_triggers(
        ("INSERT INTO legacy_chain (batch_id, through_seq) VALUES ($1, 1)", [row.id])
    )
    assert (await verdict(client, world, batch["code"]))["valid"] is True


async def test_the_custody_log_refuses_update_and_delete(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    rows = CustodyEvent.filter(batch__code=batch["code"])
    with pytest.raises(Exception, match="custody_event is append-only: UPDATE refused"):
        await rows.update(latitude=1.0)
    with pytest.raises(Exception, match="custody_event is append-only: DELETE refused"):
        await rows.delete()
    with pytest.raises(Exception, match="legacy_chain is append-only: INSERT refused"):
        await LegacyChain.create(batch_id=1, through_seq=1)
    assert await rows.count() == 1


async def test_the_service_role_cannot_delete_or_rewrite_custody_events(
    database_url: str, client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    batch = await tag_bag(client, world)
    role_url = await db.ensure_app_role(database_url, password="role-test-password-0123456789")
    conn = await asyncpg.connect(**db.credentials_from_url(role_url))
    try:
        assert await conn.fetchval("SELECT current_user") == db.APP_ROLE
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await conn.fetchval("SELECT count(*) FROM custody_event") == 1
        await conn.execute("UPDATE batch SET last_seq = last_seq WHERE code = $1", batch["code"])
        for sql in (
            "DELETE FROM custody_event",
            "UPDATE custody_event SET latitude = 1",
            "TRUNCATE custody_event CASCADE",
            "DELETE FROM checkpoint",
            "INSERT INTO legacy_chain VALUES (1, 1)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    finally:
        await conn.close()


async def test_a_checkpoint_planted_in_the_future_does_not_stop_the_sealing(
    client: httpx.AsyncClient, world: World
) -> None:
    """Sealing went on from the latest checkpoint whatever its day: one inserted for 2099 would
    have stopped it for good, leaving the days after it open to silent deletion."""
    settings = world.settings
    await tag_bag(client, world)
    now = datetime.now(UTC)
    tomorrow = now.astimezone(ZoneInfo(settings.timezone)).date() + timedelta(days=1)
    # Rows no sealing of this installation made: one copies its published key, unsigned.
    own = checkpoints.public_key_read(settings.data_dir)["public_key"]
    for planted, key in ((tomorrow, own), (date(2099, 1, 1), "0" * 64)):
        await Checkpoint.create(
            day=planted, events=0, root="0" * 64, signature="0" * 128, public_key=key
        )
    # Sealed two days on, when the planted 'tomorrow' has passed too: today is still sealed.
    sealed = await checkpoints.seal_completed_days(
        timezone=settings.timezone, data_dir=settings.data_dir, now=now + timedelta(days=2)
    )
    assert [c.day for c in sealed] == [now.astimezone(ZoneInfo(settings.timezone)).date()]


async def test_a_checkpoint_signs_the_day_and_detects_a_removed_event(
    client: httpx.AsyncClient, world: World
) -> None:
    settings = world.settings
    for _ in range(3):
        await tag_bag(client, world)
    now = datetime.now(UTC)
    assert (
        await checkpoints.seal_completed_days(
            timezone=settings.timezone, data_dir=settings.data_dir, now=now
        )
        == []
    )
    sealed = await checkpoints.seal_completed_days(
        timezone=settings.timezone, data_dir=settings.data_dir, now=now + timedelta(days=1)
    )
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    assert [c.day for c in sealed] == [today]
    listed = await client.get("/m/v1/checkpoints", headers=world.headers("auditor"))
    assert listed.status_code == 200
    (exported,) = listed.json()
    assert exported["events"] == 3 and checkpoints.signature_is_valid(exported)
    assert not checkpoints.signature_is_valid({**exported, "events": 2})
    assert (
        await client.get("/m/v1/checkpoints", headers=world.headers("clinic"))
    ).status_code == 403

    event = await CustodyEvent.all().order_by("server_time").first()
    assert event is not None
    proof = await client.get(
        "/m/v1/checkpoints/proof",
        params={"event_id": str(event.id)},
        headers=world.headers("auditor"),
    )
    assert proof.status_code == 200
    # Checked against the key the installation publishes to anyone, not the one a proof names.
    published = await client.get("/p/v1/checkpoints/key")
    assert published.status_code == 200, published.text
    key = published.json()["public_key"]
    assert key == exported["public_key"] and "RFC 9162" in published.json()["tree"]
    assert checkpoints.proof_is_valid(proof.json(), public_key=key)
    assert not checkpoints.proof_is_valid({**proof.json(), "event_hash": "0" * 64}, public_key=key)
    forger = Ed25519PrivateKey.generate()
    forged_root = {**proof.json()["checkpoint"], "public_key": keys.public_key_hex(forger)}
    forged_root["signature"] = forger.sign(
        checkpoints.signed_message(
            day=date.fromisoformat(forged_root["day"]),
            events=int(forged_root["events"]),
            root=forged_root["root"],
        )
    ).hex()
    forged = {**proof.json(), "checkpoint": forged_root}
    assert checkpoints.signature_is_valid(forged_root)  # a signature, by a stranger's key
    assert not checkpoints.proof_is_valid(forged, public_key=key)

    checkpoint = await Checkpoint.get(day=today)
    key = exported["public_key"]
    intact = await checkpoints.check_checkpoint(
        checkpoint, timezone=settings.timezone, public_key=key
    )
    assert intact["valid"] is True
    await as_superuser_without_triggers(("DELETE FROM custody_event WHERE id = $1", [event.id]))
    broken = await checkpoints.check_checkpoint(
        checkpoint, timezone=settings.timezone, public_key=key
    )
    assert broken["valid"] is False
    assert "3 events were sealed" in broken["detail"]


def test_merkle_proofs_hold_for_every_leaf_of_odd_sized_trees() -> None:
    for size in (1, 2, 3, 5, 8, 13):
        leaves = [checkpoints.leaf_hash(f"e{i}", f"{i:064x}") for i in range(size)]
        root = checkpoints.merkle_root(leaves)
        for index in range(size):
            path = checkpoints.inclusion_path(leaves, index)
            assert checkpoints.verify_inclusion(
                leaf=leaves[index], index=index, size=size, path=path, root=root
            )
            other = leaves[(index + 1) % size]
            assert size == 1 or not checkpoints.verify_inclusion(
                leaf=other, index=index, size=size, path=path, root=root
            )


async def test_wastetrack_verify_exits_non_zero_on_a_break(
    database_url: str, client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world)
    settings = world.settings
    await checkpoints.seal_completed_days(
        timezone=settings.timezone,
        data_dir=settings.data_dir,
        now=datetime.now(UTC) + timedelta(days=1),
    )
    env = {
        **os.environ,
        "WASTETRACK_DATABASE_URL": database_url,
        "WASTETRACK_DATA_DIR": str(settings.data_dir),
        "WASTETRACK_SECRET": settings.secret_key,
        "WASTETRACK_TIMEZONE": settings.timezone,
    }

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wastetrack.cli", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    intact = verify()
    assert intact.returncode == 0, intact.stderr + intact.stdout
    assert '"valid": true' in intact.stdout
    await Batch.filter(code=batch["code"]).update(last_seq=5)
    broken = verify()
    assert broken.returncode == 1
    assert batch["code"] in broken.stdout
    await connections.get("default").execute_query(
        "UPDATE batch SET last_seq = 1 WHERE code = $1", [batch["code"]]
    )
    assert verify().returncode == 0


async def test_a_day_stays_open_while_a_transaction_begun_in_it_may_still_write(
    client: httpx.AsyncClient, world: World, database_url: str
) -> None:
    """A sync that began before midnight and commits after it adds events to the day: the day
    is sealed only once no transaction begun before its end is open."""
    settings = world.settings
    await tag_bag(client, world)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    writer = await asyncpg.connect(database_url)
    try:
        await writer.execute("BEGIN; SELECT 1")  # begun today, still open
        assert (
            await checkpoints.seal_completed_days(
                timezone=settings.timezone, data_dir=settings.data_dir, now=tomorrow
            )
            == []
        )
        await writer.execute("COMMIT")
    finally:
        await writer.close()
    sealed = await checkpoints.seal_completed_days(
        timezone=settings.timezone, data_dir=settings.data_dir, now=tomorrow
    )
    assert len(sealed) == 1
