"""Requests named by an Idempotency-Key (IETF draft-ietf-httpapi-idempotency-key-header): the
first answer to a key is kept, for its owner, and given again to a resend of the same request,
which changes nothing. Kept on a connection of the pool's own, outside the request's
transaction, like the rate-limit counters."""

from dataclasses import dataclass
from datetime import timedelta

from tortoise import connections

from wastetrack.core import db

KEEP = timedelta(hours=24)
"""How long an answer is kept: a resend after that is a new request."""
LEASE = timedelta(minutes=2)
"""How long a claim without an answer holds its key unless renewed: the worker answering renews
it while the request runs (`renew`, every quarter lease), so only a claim left by a worker that
died frees the key, soon after."""


@dataclass(frozen=True, slots=True)
class Kept:
    """What a key holds: the request it named (its fingerprint), and its answer once given
    (None while the first request is still being answered)."""

    fingerprint: str
    status: int | None
    content_type: str | None
    body: bytes | None
    """None with a status: answered with a secret (`Cache-Control: no-store`), or committed
    and its answer lost (`COMMITTED`): not kept."""
    answering: bool = False
    """Committed within the lease, its answer still being sent and kept: a resend waits."""


async def claim(*, owner: str, key: str, fingerprint: str) -> Kept | None:
    """Take the key for a request about to be answered; None when taken, else what the key
    holds already (an answer older than KEEP, or a claim older than LEASE without one, is
    forgotten first)."""
    async with db.pool().acquire_connection() as connection:
        await connection.execute(
            "DELETE FROM idempotency_key WHERE owner = $1 AND key = $2"
            " AND (created_at < now() - $3::interval"
            " OR (status IS NULL AND created_at < now() - $4::interval))",
            owner,
            key,
            KEEP,
            LEASE,
        )
        taken = await connection.fetchval(
            "INSERT INTO idempotency_key (owner, key, fingerprint) VALUES ($1, $2, $3)"
            " ON CONFLICT (owner, key) DO NOTHING RETURNING true",
            owner,
            key,
            fingerprint,
        )
        if taken:
            return None
        row = await connection.fetchrow(
            "SELECT fingerprint, status, content_type, body,"
            f" status = {COMMITTED} AND created_at >= now() - $3::interval AS answering"
            " FROM idempotency_key WHERE owner = $1 AND key = $2",
            owner,
            key,
            LEASE,
        )
    if row is None:  # forgotten meanwhile: a new request after all
        return await claim(owner=owner, key=key, fingerprint=fingerprint)
    return Kept(
        row["fingerprint"], row["status"], row["content_type"], row["body"], row["answering"]
    )


CLAIM = "idempotency_claim"
"""Where a request's scope state holds its claim (owner, key) for its transaction."""
COMMITTED = 0
"""The status of a claim whose request committed its writes, its answer not kept yet: set in
the request's own transaction (`mark_committed`), so a resend never runs the request again —
whatever befalls the answer — and no lease frees it. Within its lease the answer is still being
sent and kept (a resend is told to wait); past it, the answer was lost."""


async def mark_committed(*, owner: str, key: str) -> None:
    """Inside the request's transaction, just before it commits: the claim's writes are done,
    and its lease starts again (at this moment, not the transaction's start). Commits, or rolls
    back, with them."""
    await connections.get("default").execute_query(
        f"UPDATE idempotency_key SET status = {COMMITTED}, created_at = clock_timestamp()"
        " WHERE owner = $1 AND key = $2 AND status IS NULL",
        [owner, key],
    )


async def renew(*, owner: str, key: str) -> None:
    """The claimed request is still being answered: its lease starts again, so a request that
    waited for the pool or ran long (before or after its commit) keeps its key from a resend."""
    await _run(
        "UPDATE idempotency_key SET created_at = now()"
        f" WHERE owner = $1 AND key = $2 AND (status IS NULL OR status = {COMMITTED})",
        owner,
        key,
    )


async def keep(*, owner: str, key: str, status: int, content_type: str, body: bytes | None) -> None:
    """The answer the claimed request was given (no body: one that held a secret), kept for
    KEEP from now."""
    await _run(
        "UPDATE idempotency_key SET status = $3, content_type = $4, body = $5,"
        " created_at = now() WHERE owner = $1 AND key = $2",
        owner,
        key,
        status,
        content_type,
        body,
    )


async def release(*, owner: str, key: str) -> None:
    """The claimed request failed (or was refused): a resend may try again — unless its writes
    committed (`COMMITTED`, whatever failed after: the answer's serialization, a middleware),
    which never run twice: its answer is lost now, so its lease ends (a resend is told so,
    not to wait)."""
    await _run(
        "DELETE FROM idempotency_key WHERE owner = $1 AND key = $2 AND status IS NULL",
        owner,
        key,
    )
    await _run(
        "UPDATE idempotency_key SET created_at = now() - $3::interval"
        f" WHERE owner = $1 AND key = $2 AND status = {COMMITTED}",
        owner,
        key,
        LEASE,
    )


async def prune() -> int:
    """Forget answers older than KEEP; returns how many went."""
    status = await _run("DELETE FROM idempotency_key WHERE created_at < now() - $1::interval", KEEP)
    return int(status.split()[-1])


async def _run(sql: str, *arguments: object) -> str:
    async with db.pool().acquire_connection() as connection:
        status: str = await connection.execute(sql, *arguments)
    return status
