"""A request named by an Idempotency-Key is answered once: a resend gets the first answer
again and writes nothing; the key belongs to whoever sent it."""

import asyncio
import io
import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from starlette.types import Message

from mobile_api.idempotency import Idempotency, _chunks
from mobile_api.idempotency import _spooled_body as spooled_body
from tests.evidence.test_photos import png_bytes
from tests.factories import PASSWORD, World
from wastetrack.apikeys.models import ApiKey
from wastetrack.cells.models import Cell
from wastetrack.core import db, idempotency


def _cell(world: World, name: str) -> dict[str, object]:
    return {"cell_type": "community", "name": name, "region_id": world.regions["village"].id}


async def _create(
    client: httpx.AsyncClient, world: World, body: dict[str, object], key: str, who: str = "manager"
) -> httpx.Response:
    return await client.post(
        "/m/v1/cells", json=body, headers={**world.headers(who), "Idempotency-Key": key}
    )


async def test_a_resend_gets_the_first_answer_and_writes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await _create(client, world, _cell(world, "东山社区"), "k-1")
    assert first.status_code == 201, first.text
    again = await _create(client, world, _cell(world, "东山社区"), "k-1")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await Cell.filter(name="东山社区").count() == 1


async def test_a_resend_is_known_however_its_bearer_is_spaced(
    client: httpx.AsyncClient, world: World
) -> None:
    """The key's owner is read from Authorization as the route reads it: "Bearer  <token>"
    (two spaces), which the route authenticates, was owned by nobody and so ran twice."""
    token = world.tokens["manager"]
    for n, spaced in enumerate((f"Bearer  {token}", f"bearer {token} ")):
        headers = {"Authorization": spaced, "Idempotency-Key": f"k-spaced-{n}"}
        body = _cell(world, f"宽空格社区{n}")
        answers = [await client.post("/m/v1/cells", json=body, headers=headers) for _ in (1, 2)]
        assert [a.status_code for a in answers] == [201, 201], answers[0].text
        assert answers[1].headers.get("idempotent-replayed") == "true", spaced
        assert await Cell.filter(name=body["name"]).count() == 1


async def test_a_key_names_one_request(client: httpx.AsyncClient, world: World) -> None:
    assert (await _create(client, world, _cell(world, "西山社区"), "k-2")).status_code == 201
    other = await _create(client, world, _cell(world, "南山社区"), "k-2")
    assert (other.status_code, other.json()["field"]) == (422, "Idempotency-Key")
    assert other.headers["content-type"] == "application/problem+json"
    assert await Cell.filter(name="南山社区").count() == 0
    bad = await _create(client, world, _cell(world, "北山社区"), "not a key")
    assert (bad.status_code, bad.json()["field"]) == (400, "Idempotency-Key")


async def test_a_key_sent_twice_in_one_request_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """The key is one header's value (the IETF draft's single Item): two of them, equal or
    not, name no one request, so the request is refused whole rather than keyed by the first."""
    body = _cell(world, "双键社区")
    for second in ("k-twice", "k-twice-other"):
        headers = [*world.headers("manager").items(), ("Idempotency-Key", "k-twice")]
        headers.append(("Idempotency-Key", second))
        refused = await client.post("/m/v1/cells", json=body, headers=headers)
        assert (refused.status_code, refused.json()["field"]) == (400, "Idempotency-Key")
        assert "once" in refused.json()["detail"], refused.json()
    assert await Cell.filter(name="双键社区").count() == 0


async def test_a_refused_request_frees_its_key(client: httpx.AsyncClient, world: World) -> None:
    refused = await _create(client, world, {**_cell(world, "中山社区"), "cell_type": "x"}, "k-3")
    assert refused.status_code == 422
    fixed = await _create(client, world, _cell(world, "中山社区"), "k-3")
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers


async def test_two_sends_at_once_write_once(client: httpx.AsyncClient, world: World) -> None:
    answers = await asyncio.gather(
        *(_create(client, world, _cell(world, "新山社区"), "k-4") for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) in ([201, 201], [201, 409])
    assert await Cell.filter(name="新山社区").count() == 1


async def test_a_key_is_its_senders(client: httpx.AsyncClient, world: World) -> None:
    """Another user's identical key and request is another request: no answer of someone
    else's is ever given back. The route answers it, and a place is a cell once: a conflict
    naming the cell the first request registered."""
    mine = await _create(client, world, _cell(world, "共山社区"), "k-5")
    theirs = await _create(client, world, _cell(world, "共山社区"), "k-5", who="admin")
    assert (mine.status_code, theirs.status_code) == (201, 409)
    assert (theirs.json()["field"], theirs.json()["cell_id"]) == ("name", mine.json()["id"])
    assert "idempotent-replayed" not in theirs.headers
    assert await Cell.filter(name="共山社区").count() == 1


async def test_a_claim_left_without_an_answer_frees_its_key_after_its_lease(
    client: httpx.AsyncClient, world: World
) -> None:
    """A worker that died while answering left its claim: a resend is told to wait, and once
    the lease is over it is answered."""
    owner = f"user:{world.principals['manager'].user_id}"
    body = _cell(world, "旧山社区")
    first = await _create(client, world, body, "k-6")
    assert first.status_code == 201
    # The worker died before its answer: its transaction rolled back, its claim stayed.
    await Cell.filter(id=first.json()["id"]).delete()
    await db.pool().execute_query(
        "UPDATE idempotency_key SET status = NULL, body = NULL WHERE owner = $1 AND key = $2",
        [owner, "k-6"],
    )
    waiting = await _create(client, world, body, "k-6")
    assert (waiting.status_code, waiting.headers["retry-after"]) == (409, "1")
    await db.pool().execute_query(
        "UPDATE idempotency_key SET created_at = now() - $3::interval"
        " WHERE owner = $1 AND key = $2",
        [owner, "k-6", idempotency.LEASE + timedelta(seconds=1)],
    )
    answered = await _create(client, world, body, "k-6")
    assert answered.status_code == 201, answered.text


async def test_an_answer_holding_a_secret_is_given_once_and_not_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {"name": "称重系统", "scopes": ["events"], "organization_id": world.orgs["facility"].id}
    headers = {**world.headers("admin"), "Idempotency-Key": "k-7"}
    issued = await client.post("/m/v1/api-keys", json=body, headers=headers)
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    again = await client.post("/m/v1/api-keys", json=body, headers=headers)
    assert (again.status_code, again.json()["code"]) == (409, "answer_not_kept")
    assert await ApiKey.filter(name="称重系统").count() == 1
    kept = await db.pool().execute_query_dict("SELECT body FROM idempotency_key WHERE key = 'k-7'")
    assert kept == [{"body": None}]


async def test_a_route_of_no_credentials_ignores_the_key(
    client: httpx.AsyncClient, world: World
) -> None:
    """The log-in and the refresh have no sender to own a key (docs/integrations.md): a resend
    is a new log-in, a refresh resent in its grace minute answers new tokens, and nothing is
    kept; the key takes no claim, so another body under it is no reuse either."""
    user = world.users["clinic"].username
    form = {"username": user, "password": PASSWORD}
    headers = {"Idempotency-Key": "login-once"}
    first = await client.post("/m/v1/auth/token", data=form, headers=headers)
    again = await client.post("/m/v1/auth/token", data=form, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert first.json()["refresh_token"] != again.json()["refresh_token"]
    body = {"refresh_token": again.json()["refresh_token"]}
    renewed = await client.post("/m/v1/auth/refresh", json=body, headers=headers)
    resent = await client.post("/m/v1/auth/refresh", json=body, headers=headers)
    assert (renewed.status_code, resent.status_code) == (200, 200), resent.text
    mine = {"Authorization": f"Bearer {resent.json()['access_token']}"}
    assert (await client.get("/m/v1/batches?limit=1", headers=mine)).status_code == 200
    kept = await db.pool().execute_query_dict(
        "SELECT 1 FROM idempotency_key WHERE key = 'login-once'"
    )
    assert kept == []
    # Ignored whole: a key no sender owns is not read, malformed or sent twice, nor when the
    # client sends its bearer along (as a client library does with every call).
    bearer = ("Authorization", f"Bearer {world.tokens['clinic']}")
    for odd in ([("Idempotency-Key", "not a key")], [("Idempotency-Key", "a")] * 2):
        for sent in (odd, [*odd, bearer]):
            logged_in = await client.post("/m/v1/auth/token", data=form, headers=sent)
            assert logged_in.status_code == 200, logged_in.text
            # The dashboard's forms, outside the API document, a cookie authenticates.
            manager = {"username": world.users["manager"].username, "password": PASSWORD}
            page = await client.post("/dashboard/login", data=manager, headers=sent)
            assert (page.status_code, page.headers.get("location")) == (303, "/dashboard")
    keyed = {"Idempotency-Key": "refresh-with-bearer", "Authorization": bearer[1]}
    body = {"refresh_token": logged_in.json()["refresh_token"]}
    twice = [await client.post("/m/v1/auth/refresh", json=body, headers=keyed) for _ in (1, 2)]
    assert [a.status_code for a in twice] == [200, 200], twice[1].text
    assert (
        await db.pool().execute_query_dict(
            "SELECT 1 FROM idempotency_key WHERE key = 'refresh-with-bearer'"
        )
        == []
    )


async def _direct(
    app: Any, monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient, world: World
) -> Any:
    """The middleware around a bare ASGI app, with a lease of two seconds, called directly:
    one request named by a key, sent with a live API key, its answer's status."""
    monkeypatch.setattr(idempotency, "LEASE", timedelta(seconds=2))
    middleware = Idempotency(app, world.settings)
    issued = await client.post(
        "/m/v1/api-keys",
        headers=world.headers("admin"),
        json={"name": "direct", "scopes": ["events"], "organization_id": world.orgs["clinic"].id},
    )
    assert issued.status_code == 201, issued.text
    token = f"Bearer {issued.json()['key']}".encode()

    async def send_once() -> int:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/direct",
            "query_string": b"",
            "headers": [(b"authorization", token), (b"idempotency-key", b"k-direct")],
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await middleware(scope, receive, send)
        return int(sent[0]["status"])

    return send_once


async def test_a_request_running_past_its_lease_keeps_its_key(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that waited for the pool or ran long renews its claim: a resend meanwhile is
    told to wait, and the request runs once."""
    runs = 0

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(5)  # two and a half leases
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    send_once = await _direct(slow, monkeypatch, client, world)
    first = asyncio.create_task(send_once())
    await asyncio.sleep(3.5)
    assert await send_once() == 409  # still being answered
    assert await first == 201
    assert await send_once() == 201  # the kept answer, given again
    assert runs == 1


async def test_an_answer_not_kept_at_first_is_kept_on_a_later_try(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's writes are committed when its answer is kept: a failure to keep it is
    tried again, so a resend gets the answer instead of running the request twice."""
    runs = 0

    async def quick(scope: Any, receive: Any, send: Any) -> None:
        nonlocal runs
        runs += 1
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    keep = idempotency.keep
    failures = iter([ConnectionError("the database went away for a moment")])

    async def flaky(**answer: Any) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        await keep(**answer)

    monkeypatch.setattr(idempotency, "keep", flaky)
    send_once = await _direct(quick, monkeypatch, client, world)
    assert await send_once() == 201
    await asyncio.sleep(2.5)  # past the lease
    assert await send_once() == 201
    assert runs == 1


async def test_a_resend_while_the_answer_is_being_kept_is_told_to_wait(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the request's commit and its answer being kept, a resend is told to wait (409
    with Retry-After), not that the answer was lost; the next one gets the answer."""
    keep = idempotency.keep
    keeping, kept = asyncio.Event(), asyncio.Event()

    async def slow(**answer: Any) -> None:
        keeping.set()
        await kept.wait()
        await keep(**answer)

    monkeypatch.setattr(idempotency, "keep", slow)
    body = _cell(world, "窗口社区")
    first = asyncio.create_task(_create(client, world, body, "k-window"))
    await asyncio.wait_for(keeping.wait(), 30)
    meanwhile = await _create(client, world, body, "k-window")
    kept.set()
    assert (await first).status_code == 201
    after = await _create(client, world, body, "k-window")
    assert (meanwhile.status_code, meanwhile.json()["code"]) == (409, "request_in_progress")
    assert meanwhile.headers["Retry-After"] == "1"
    assert (after.status_code, after.headers["Idempotent-Replayed"]) == (201, "true")
    assert await Cell.filter(name="窗口社区").count() == 1


async def test_a_committed_request_whose_answer_is_lost_never_runs_again(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's transaction marks its claim committed with its writes: when its answer
    cannot be kept at all (the database went away just after the commit), a resend past the
    lease is told the request was answered, and nothing is written twice."""

    async def lost(**answer: Any) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(idempotency, "keep", lost)
    monkeypatch.setattr("mobile_api.idempotency.KEEP_ATTEMPTS", 1)
    monkeypatch.setattr(idempotency, "LEASE", timedelta(seconds=1))
    body = _cell(world, "后山社区")
    first = await _create(client, world, body, "k-lost")
    assert first.status_code == 201, first.text
    await asyncio.sleep(1.5)  # past the lease
    again = await _create(client, world, body, "k-lost")
    assert (again.status_code, again.json()["code"]) == (409, "answer_not_kept")
    assert await Cell.filter(name="后山社区").count() == 1


async def test_a_committed_request_that_fails_afterwards_never_runs_again(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its writes committed (the transaction marked the claim), then its answer failed (a
    serialization error, a middleware): the claim is not freed, and a resend is told it was
    answered rather than run again."""
    runs = 0

    async def fails_after_commit(scope: Any, receive: Any, send: Any) -> None:
        nonlocal runs
        runs += 1
        owner, key = scope["state"][idempotency.CLAIM]
        await idempotency.mark_committed(owner=owner, key=key)
        raise RuntimeError("the answer could not be written")

    send_once = await _direct(fails_after_commit, monkeypatch, client, world)
    with pytest.raises(RuntimeError):
        await send_once()
    assert await send_once() == 409
    assert runs == 1


async def test_a_request_failing_after_commit_is_not_kept_waiting_by_a_late_renewal(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed, run on past a quarter lease (a renewal starts, and waits a moment for a
    connection), then failed: the renewal lands before the claim's lease is ended, never
    after, so a resend is told the answer was lost rather than to wait for it."""
    renew = idempotency.renew
    claims: list[tuple[str, str]] = []

    async def slow_renew(**claim: Any) -> None:
        await asyncio.sleep(0.4)  # waiting for a pool connection
        await renew(**claim)

    async def fails_after_commit(scope: Any, receive: Any, send: Any) -> None:
        owner, key = scope["state"][idempotency.CLAIM]
        claims.append((owner, key))
        await idempotency.mark_committed(owner=owner, key=key)
        await asyncio.sleep(0.7)  # a renewal starts at a quarter lease, 0.5 s
        raise RuntimeError("the answer could not be written")

    monkeypatch.setattr(idempotency, "renew", slow_renew)
    send_once = await _direct(fails_after_commit, monkeypatch, client, world)
    with pytest.raises(RuntimeError):
        await send_once()
    ((owner, key),) = claims
    kept = await idempotency.claim(owner=owner, key=key, fingerprint="the same request")
    assert kept is not None and (kept.status, kept.answering) == (idempotency.COMMITTED, False)


async def test_a_multipart_resend_is_known_by_its_parts_not_its_boundary(
    client: httpx.AsyncClient, world: World
) -> None:
    """httpx frames each multipart request with a new random boundary, as browsers and phone
    libraries do: a resend of the same photo is the same request, another photo is not."""
    headers = {**world.headers("carrier"), "Idempotency-Key": "photo-1"}
    first, other = png_bytes("olive", (32, 32)), png_bytes("navy", (32, 32))

    async def send(content: bytes) -> httpx.Response:
        files = {"file": ("p.png", content, "image/png")}
        return await client.post("/m/v1/photos", files=files, headers=headers)

    sent = await send(first)
    assert sent.status_code == 201, sent.text
    again = await send(first)
    assert (again.status_code, again.json()) == (201, sent.json())
    assert again.headers["idempotent-replayed"] == "true"
    refused = await send(other)
    assert (refused.status_code, refused.json()["code"]) == (422, "idempotency_key_reused")


async def test_a_body_over_a_megabyte_is_spooled_to_disk_before_its_key_is_claimed() -> None:
    """A key is claimed once the body is read whole: a photo over a megabyte is read into a
    spool on disk, not into memory, so uploads sent at once do not hold their bytes
    (docs/security.md; first written by an independent review). The spool gives the bytes
    back as sent; resends of photos under a key are answered as ever (above)."""
    noise = Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    big = out.getvalue()
    assert len(big) > 1 << 20
    step = 1 << 16

    async def chunks() -> AsyncIterator[Message]:
        for start in range(0, len(big), step):
            more = start + step < len(big)
            yield {"type": "http.request", "body": big[start : start + step], "more_body": more}

    messages = chunks()
    spool = await spooled_body(lambda: anext(messages))
    assert spool is not None
    with spool:
        assert spool._rolled  # on disk (SpooledTemporaryFile's own flag)
        assert b"".join([c async for c in _chunks(spool)]) == big


def test_every_write_with_a_sender_declares_the_key(app: FastAPI) -> None:
    """Every write the middleware reads the key of (a secured POST, PUT, PATCH or DELETE)
    declares it, under the rule it is judged by: none did, so a client generated from the
    document never learnt of it (contracts review)."""
    writes = {
        f"{method.upper()} {path}": operation
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
        if method.upper() in {"POST", "PUT", "PATCH", "DELETE"} and operation.get("security")
    }
    assert len(writes) > 40
    for name, operation in writes.items():
        (key,) = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
        assert (key["in"], key["required"]) == ("header", False), name
        assert re.fullmatch(key["schema"]["pattern"], "k" * 255), name
        assert not re.fullmatch(key["schema"]["pattern"], "k" * 256), name
