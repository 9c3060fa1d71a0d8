"""The change feed: custody events, manifest changes and alerts in the order of their
transactions, a batch's events in their order, each once, only to those who may see them, and
never skipping a transaction that commits late."""

import asyncio
from dataclasses import astuple

import httpx
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from schemas.events import EventCreate
from tests.custody.helpers import advance, tag_bag
from tests.factories import World, event, medical_bag
from tests.manifests.test_manifests import Parties, call, parties  # noqa: F401 (fixture)
from wastetrack.changes import paging
from wastetrack.changes import service as changes
from wastetrack.changes.models import Position
from wastetrack.custody import recorder


async def feed(
    client: httpx.AsyncClient, world: World, who: str, *, after: str | None = None, limit: int = 500
) -> dict:
    params: dict[str, str | int] = {"limit": limit}
    if after is not None:
        params["after"] = after
    response = await client.get("/m/v1/changes", params=params, headers=world.headers(who))
    assert response.status_code == 200, response.text
    return response.json()


def summary(page: dict) -> list[tuple[str, str | None]]:
    """Each change as (type, what it says happened)."""
    return [
        (c["type"], c["data"].get("event_type") or c["data"].get("state") or c["data"].get("kind"))
        for c in page["changes"]
    ]


async def test_events_and_alerts_come_in_the_order_they_were_committed(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(
        client, world, quantity="5", carrier_organization_id=world.orgs["carrier"].id
    )
    await advance(client, world, bag["code"], until="received")  # 3.4 kg weighed: > 10 % off
    refreshed = await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    assert refreshed.status_code == 200, refreshed.text
    (alert,) = (await client.get("/m/v1/alerts", headers=world.headers("clinic"))).json()
    acked = await client.post(f"/m/v1/alerts/{alert['id']}/ack", headers=world.headers("manager"))
    assert acked.status_code == 200, acked.text

    page = await feed(client, world, "clinic")
    assert summary(page) == [
        ("batch.event_recorded", "tagged"),
        ("batch.event_recorded", "collected"),
        ("batch.event_recorded", "in_transit"),
        ("batch.event_recorded", "received"),
        ("alert.raised", "weight_discrepancy"),
        ("alert.changed", "weight_discrepancy"),
    ]
    first = page["changes"][0]["data"]
    assert (first["batch"], first["seq"]) == (bag["code"], 1)
    assert page["changes"][-1]["data"]["acknowledged"] is True
    assert page["next"] == page["changes"][-1]["cursor"]
    # Nothing new: the same cursor comes back, and reading on from it returns nothing.
    again = await feed(client, world, "clinic", after=page["next"])
    assert again == {"changes": [], "next": page["next"]}


async def test_manifest_changes_reach_its_parties_only(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    signed = await call(client, world, "maker", f"/{made.json()['id']}/sign")
    assert signed.status_code == 200, signed.text

    manifest_changes = [
        (c["data"]["number"], c["data"]["state"])
        for c in (await feed(client, world, "second"))["changes"]
        if c["type"] == "manifest.changed"
    ]
    number = made.json()["number"]
    assert manifest_changes == [(number, "draft"), (number, "submitted")]
    maker = summary(await feed(client, world, "maker"))
    assert maker == [
        ("batch.event_recorded", "tagged"),
        ("batch.event_recorded", "tagged"),
        ("manifest.changed", "draft"),
        # signing locks the section first, then hands both batches to the first carrier
        ("manifest.changed", "submitted"),
        ("batch.event_recorded", "handed_over"),
        ("batch.event_recorded", "handed_over"),
    ]
    assert (await feed(client, world, "clinic"))["changes"] == []


async def test_changes_of_another_organizations_batch_are_not_visible(
    client: httpx.AsyncClient, world: World
) -> None:
    own = await tag_bag(client, world, "clinic")
    other = await tag_bag(client, world, "other_clinic")

    def batches(page: dict) -> list[str]:
        return [c["data"]["batch"] for c in page["changes"]]

    assert batches(await feed(client, world, "clinic")) == [own["code"]]
    assert batches(await feed(client, world, "other_clinic")) == [other["code"]]
    assert batches(await feed(client, world, "town_manager")) == [other["code"]]  # region
    assert batches(await feed(client, world, "manager")) == [own["code"], other["code"]]
    assert batches(await feed(client, world, "auditor")) == [own["code"], other["code"]]
    assert batches(await feed(client, world, "admin")) == [own["code"], other["code"]]
    assert batches(await feed(client, world, "carrier")) == []


async def test_a_sync_s_events_come_in_the_order_it_recorded_them(
    client: httpx.AsyncClient, world: World
) -> None:
    """A sync's events are written by one statement, their log rows by its trigger: a sync
    interleaving three batches, in the order of its device times, is listed in that order, in
    one transaction."""
    carrier = world.orgs["carrier"].id
    a, b, c = [
        (await tag_bag(client, world, carrier_organization_id=carrier))["code"] for _ in "abc"
    ]
    start = (await feed(client, world, "clinic"))["next"]
    facility = {"destination_organization_id": world.orgs["facility"].id}
    steps = [
        event("collected", c, minutes=10),
        event("collected", a, minutes=11),
        event("in_transit", c, minutes=20, **facility),
        event("collected", b, minutes=21),
        event("in_transit", a, minutes=22, **facility),
    ]
    synced = await client.post(
        "/m/v1/sync", json={"events": steps}, headers=world.headers("carrier")
    )
    assert [r["status"] for r in synced.json()["results"]] == ["applied"] * 5, synced.text

    page = await feed(client, world, "clinic", after=start)
    assert [(x["data"]["batch"], x["data"]["seq"]) for x in page["changes"]] == [
        (c, 2),
        (a, 2),
        (c, 3),
        (b, 2),
        (a, 3),
    ]
    assert [x["data"]["event_type"] for x in page["changes"]] == [s["event_type"] for s in steps]
    assert len({changes.decode_cursor(x["cursor"]).txid for x in page["changes"]}) == 1


async def test_paging_returns_every_change_exactly_once(
    client: httpx.AsyncClient, world: World
) -> None:
    for _ in range(5):
        await tag_bag(client, world)
    whole = await feed(client, world, "clinic")
    assert len(whole["changes"]) == 5
    seen: list[dict] = []
    cursor = None
    for _ in range(10):
        page = await feed(client, world, "clinic", after=cursor, limit=2)
        assert len(page["changes"]) <= 2
        if not page["changes"]:
            assert page["next"] == cursor
            break
        seen += page["changes"]
        cursor = page["next"]
    assert seen == whole["changes"]
    positions = [changes.decode_cursor(c["cursor"]) for c in seen]
    assert len(set(positions)) == 5
    assert positions == sorted(positions, key=lambda p: (p.txid, p.id))


async def test_a_poll_moves_past_changes_the_reader_may_not_see(
    client: httpx.AsyncClient, world: World
) -> None:
    """Others' changes are read over once, not on every poll, and nothing of one's own that
    comes after them is skipped."""
    await tag_bag(client, world, "clinic")
    head = (await feed(client, world, "clinic"))["next"]
    await tag_bag(client, world, "other_clinic")
    polled = await feed(client, world, "clinic", after=head)
    assert polled["changes"] == []
    moved = changes.decode_cursor(polled["next"])
    assert (moved.txid, moved.id) > astuple(changes.decode_cursor(head))
    own = await tag_bag(client, world, "clinic")
    after_others = await feed(client, world, "clinic", after=polled["next"])
    assert [c["data"]["batch"] for c in after_others["changes"]] == [own["code"]]


async def test_a_transaction_committing_late_is_not_skipped(
    client: httpx.AsyncClient, world: World
) -> None:
    """The first transaction records (lower txid) and stays open while a second commits: the
    feed holds the second back until the first ends, then returns both, in commit order of
    their transactions' ids, from the same cursor."""
    secret = world.settings.secret_key
    principal = world.principals["clinic"]
    start = await feed(client, world, "clinic")
    assert start["changes"] == []
    first_recorded, release = asyncio.Event(), asyncio.Event()

    async def record(body: dict, *, hold: bool) -> str:
        async with in_transaction():
            (result,) = await recorder.record_events(
                principal=principal, submissions=[EventCreate.model_validate(body)], secret=secret
            )
            assert result.result.status == "applied"
            if hold:
                first_recorded.set()
                await asyncio.wait_for(release.wait(), timeout=10)
        assert result.batch is not None
        return result.batch.code

    first = asyncio.create_task(record(medical_bag(), hold=True))
    await asyncio.wait_for(first_recorded.wait(), timeout=10)
    second_code = await record(medical_bag(), hold=False)

    while_open = await feed(client, world, "clinic", after=start["next"])
    assert while_open == {"changes": [], "next": start["next"]}

    release.set()
    first_code = await first
    after_commit = await feed(client, world, "clinic", after=while_open["next"])
    assert [c["data"]["batch"] for c in after_commit["changes"]] == [first_code, second_code]
    done = await feed(client, world, "clinic", after=after_commit["next"])
    assert done["changes"] == []


async def test_a_batch_s_events_come_in_their_order_when_an_older_transaction_records_later(
    client: httpx.AsyncClient, world: World
) -> None:
    """A transaction's id is given at its first write: a sync that recorded one batch and then
    waited has a lower id than a post that records the next event of another batch and
    commits first. When the sync then records that batch's following event, the feed still
    lists the batch's events in their order (seq)."""
    secret = world.settings.secret_key
    carrier = world.principals["carrier"]
    facility = world.orgs["facility"].id
    first = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    start = (await feed(client, world, "clinic"))["next"]
    began, posted = asyncio.Event(), asyncio.Event()

    async def record(body: dict) -> None:
        submission = EventCreate.model_validate(body)
        (result,) = await recorder.record_events(
            principal=carrier, submissions=[submission], secret=secret
        )
        assert result.result.status == "applied", result.result

    async def older_sync() -> None:
        async with in_transaction():
            await record(event("collected", first["code"], minutes=10))  # its id is given here
            began.set()
            await asyncio.wait_for(posted.wait(), timeout=10)
            await record(
                event("in_transit", bag["code"], minutes=20, destination_organization_id=facility)
            )

    sync = asyncio.create_task(older_sync())
    await asyncio.wait_for(began.wait(), timeout=10)
    async with in_transaction():
        await record(event("collected", bag["code"], minutes=10))
    posted.set()
    await sync

    page = await feed(client, world, "clinic", after=start)
    assert [
        (c["data"]["seq"], c["data"]["event_type"])
        for c in page["changes"]
        if c["data"]["batch"] == bag["code"]
    ] == [(2, "collected"), (3, "in_transit")]
    assert len(page["changes"]) == 3


async def test_a_manifest_s_changes_come_in_their_order_when_an_older_transaction_writes_later(
    client: httpx.AsyncClient,
    world: World,
    parties: Parties,  # noqa: F811
) -> None:
    """As a batch's events: a transaction given its id before the producer signed (a carrier's
    bulk signature that locked another manifest first, then waited for this one) writes the
    manifest's next change after the signature commits. The feed, and webhooks in its order,
    listed that change before the signature, so a subscriber kept `submitted` as the manifest's
    state (webhooks review)."""
    made = await call(client, world, "maker", "", parties.body)
    assert made.status_code == 201, made.text
    manifest_id = made.json()["id"]
    start = (await feed(client, world, "maker"))["next"]
    began, signed = asyncio.Event(), asyncio.Event()

    async def older() -> None:
        async with in_transaction() as conn:
            await conn.execute_query("SELECT pg_current_xact_id()")  # its id is given here
            began.set()
            await asyncio.wait_for(signed.wait(), timeout=10)
            # Any later write of the manifest, as the waiting signature's own would be.
            await conn.execute_query(
                "UPDATE manifest SET emergency_measures = emergency_measures || '.' WHERE id = $1",
                [manifest_id],
            )

    writer = asyncio.create_task(older())
    await asyncio.wait_for(began.wait(), timeout=10)
    answer = await call(client, world, "maker", f"/{manifest_id}/sign")
    assert answer.status_code == 200, answer.text
    signed.set()
    await writer

    page = await feed(client, world, "maker", after=start)
    assert [
        (c["data"]["previous_state"], c["data"]["state"])
        for c in page["changes"]
        if c["type"] == "manifest.changed"
    ] == [("draft", "submitted"), ("submitted", "submitted")]


@pytest.mark.parametrize(
    "after",
    ["not-a-cursor", "MS4y=", changes.encode_cursor(Position(1, 2)) + "x", "LTEuMg", "%%%"],
)
async def test_a_malformed_cursor_is_refused_naming_after(
    client: httpx.AsyncClient, world: World, after: str
) -> None:
    response = await client.get(
        "/m/v1/changes", params={"after": after}, headers=world.headers("clinic")
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "after"


@pytest.mark.parametrize("limit", [0, 501, -1])
async def test_limit_out_of_bounds_is_refused(
    client: httpx.AsyncClient, world: World, limit: int
) -> None:
    response = await client.get(
        "/m/v1/changes", params={"limit": limit}, headers=world.headers("clinic")
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "limit"


def test_cursor_round_trips() -> None:
    position = Position(txid=2**63 + 5, id=12345)
    assert changes.decode_cursor(changes.encode_cursor(position)) == position


# A row of each log, its transaction id given as text ({txid}: a number, or DEFAULT for the
# writing transaction's own).
LOG_ROWS = {
    "change_log": "INSERT INTO change_log (txid, kind, subject, region_path, occurred_at, data)"
    " VALUES ({txid}, 'batch.event', 'x', '/', now(), '{{}}')",
    "audit_entry": "INSERT INTO audit_entry (txid, at, action, subject_type, subject_id,"
    " region_path) VALUES ({txid}, now(), 'test.horizon', 'test', 'x', '/')",
}


@pytest.mark.parametrize("table", list(LOG_ROWS))
async def test_the_horizon_is_the_greatest_transaction_id_not_its_text(
    world: World, table: str
) -> None:
    """Transaction ids are numbers: 9 comes before 1001, though "9" sorts after "1001" as text.
    A horizon read as text stuck at an old row once ids gained a digit, so webhooks stopped
    and new subscriptions heard nothing (first written by an independent review)."""
    db = connections.get("default")
    ((now,),) = (await db.execute_query("SELECT pg_current_xact_id()::text"))[1]
    # An earlier id (fewer digits) whose text sorts after the ids being written now: 9 before
    # 1234, 99 before 950.
    earlier = next(n for n in ("9" * k for k in range(1, len(now))) if n > now)
    await db.execute_script(LOG_ROWS[table].format(txid=f"'{earlier}'"))
    await db.execute_script(LOG_ROWS[table].format(txid="DEFAULT"))
    (newest,) = await db.execute_query_dict(
        f"SELECT t.txid::text AS txid, t.id FROM {table} t ORDER BY t.txid DESC, t.id DESC LIMIT 1"
    )
    assert int(newest["txid"]) > int(earlier)
    assert await paging.horizon(table) == Position(int(newest["txid"]), newest["id"])


@pytest.mark.parametrize("path", ["/m/v1/changes", "/m/v1/audit"])
async def test_a_cursor_beyond_every_transaction_begun_is_refused_naming_after(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    """Well formed, but in a transaction not begun yet: never issued, so a 422 naming `after`
    (docs/custody.md), not an empty feed until ids catch up (suspected by an independent
    review, proved here). A cursor that was issued reads on."""
    db = connections.get("default")
    ((now,),) = (await db.execute_query("SELECT pg_current_xact_id()::text"))[1]
    ahead = paging.encode_cursor(Position(txid=int(now) + 10**6, id=1))
    refused = await client.get(path, params={"after": ahead}, headers=world.headers("admin"))
    assert (refused.status_code, refused.json()["field"]) == (422, "after"), refused.text
    issued = await client.get(path, headers=world.headers("admin"))
    assert issued.status_code == 200, issued.text
    cursor = issued.json()["next"]
    again = await client.get(path, params={"after": cursor}, headers=world.headers("admin"))
    assert again.status_code == 200, again.text
