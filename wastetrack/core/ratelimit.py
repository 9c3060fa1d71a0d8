"""Rate limits shared by every worker: counters in PostgreSQL behind the `limits` library, and
the login back-off per client address and account.

Counters are written with one UPSERT each, on a connection of their own: a request that fails
and rolls back its transaction still counts."""

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from tortoise import fields
from tortoise.exceptions import BaseORMException
from tortoise.models import Model

from wastetrack.core import db
from wastetrack.core.errors import TooManyRequests


class RateLimitCounter(Model):
    """One fixed-window counter (or one login back-off) by key."""

    key = fields.CharField(max_length=255, primary_key=True)
    count = fields.IntField(default=0)
    expires_at = fields.DatetimeField()
    touched_at = fields.DatetimeField()

    class Meta:
        table = "rate_limit_counter"


_INCREMENT = """
INSERT INTO rate_limit_counter AS c (key, count, expires_at, touched_at)
VALUES ($1, $2, now() + make_interval(secs => $3), now())
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN c.expires_at <= now() THEN EXCLUDED.count ELSE c.count + EXCLUDED.count END,
    expires_at = CASE WHEN c.expires_at <= now() THEN EXCLUDED.expires_at ELSE c.expires_at END,
    touched_at = now()
RETURNING count
"""


def _stored(key: str) -> str:
    """The row's key: the key itself, or its digest when the column could not hold it (over
    255 characters, a NUL, a lone surrogate): a key carries what a client sent, a username."""
    try:
        if len(key) <= 255 and "\x00" not in key and key.encode():
            return key
    except UnicodeEncodeError:
        pass
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class PostgresStorage(Storage):
    """A `limits` storage in the service's own database, so every worker sees one count."""

    STORAGE_SCHEME: ClassVar[list[str]] = ["wastetrack+postgresql"]  # type: ignore[misc]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return BaseORMException

    async def _fetchval(self, sql: str, *args: object) -> Any:
        async with db.pool().acquire_connection() as connection:
            return await connection.fetchval(sql, *args)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return int(await self._fetchval(_INCREMENT, _stored(key), amount, float(expiry)))

    async def get(self, key: str) -> int:
        value = await self._fetchval(
            "SELECT count FROM rate_limit_counter WHERE key = $1 AND expires_at > now()",
            _stored(key),
        )
        return int(value or 0)

    async def get_expiry(self, key: str) -> float:
        value = await self._fetchval(
            "SELECT extract(epoch FROM expires_at) FROM rate_limit_counter"
            " WHERE key = $1 AND expires_at > now()",
            _stored(key),
        )
        return float(value) if value is not None else datetime.now(UTC).timestamp()

    async def check(self) -> bool:
        return bool(await self._fetchval("SELECT 1") == 1)

    async def reset(self) -> int | None:
        async with db.pool().acquire_connection() as connection:
            status = await connection.execute("DELETE FROM rate_limit_counter")
        return int(status.split()[-1])

    async def clear(self, key: str) -> None:
        await self._fetchval("DELETE FROM rate_limit_counter WHERE key = $1", _stored(key))


async def prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget counters whose window ended more than `older_than` ago (one row per client
    address and account would otherwise pile up for ever); returns how many went."""
    async with db.pool().acquire_connection() as connection:
        status = await connection.execute(
            "DELETE FROM rate_limit_counter WHERE expires_at < now() - $1::interval", older_than
        )
    return int(status.split()[-1])


_storage = PostgresStorage()
_limiter = FixedWindowRateLimiter(_storage)


def limit(rate: str) -> RateLimitItem:
    """'30/minute', '5 per 10 seconds': the notation of the `limits` library."""
    return parse(rate)


async def hit(*, scope: str, key: str, rate: str) -> None:
    """Count one request of `key` (a client address, an account) against `rate`; past it,
    TooManyRequests carries the seconds until the window ends."""
    item = limit(rate)
    if await _limiter.hit(item, scope, key):
        return
    stats = await _limiter.get_window_stats(item, scope, key)
    wait = max(1, math.ceil(stats.reset_time - datetime.now(UTC).timestamp()))
    raise TooManyRequests(f"too many requests; try again in {wait} s", field=None, retry_after=wait)


async def count_once(*, scope: str, key: str, rate: str, attempt: str) -> None:
    """Count one event of `key` against `rate` without refusing it (a later `test` will), once
    per attempt however often it is judged (a post retried alone after its flush failed, a sync
    resent after its answer was lost): the attempt is remembered for the rate's window."""
    item = limit(rate)
    if await _storage.incr(f"attempt|{scope}|{key}|{attempt}", item.get_expiry()) == 1:
        await _limiter.hit(item, scope, key)


async def refund(*, scope: str, key: str, rate: str) -> None:
    """Give back one `hit` of `key` against `rate` in its window (an attempt counted
    as it started that turned out not to count: a login whose password was right)."""
    async with db.pool().acquire_connection() as connection:
        await connection.execute(
            "UPDATE rate_limit_counter SET count = count - 1"
            " WHERE key = $1 AND expires_at > now() AND count > 0",
            _stored(limit(rate).key_for(scope, key)),
        )


async def test(*, scope: str, key: str, rate: str) -> None:
    """Refuse when `key` has used up `rate`, without counting this request."""
    item = limit(rate)
    if await _limiter.test(item, scope, key):
        return
    stats = await _limiter.get_window_stats(item, scope, key)
    wait = max(1, math.ceil(stats.reset_time - datetime.now(UTC).timestamp()))
    raise TooManyRequests(f"too many requests; try again in {wait} s", field=None, retry_after=wait)


def backoff_seconds(*, failures: int, free: int, first: int, longest: int) -> int:
    """The wait after `failures` failed attempts: none for the first `free`, then `first`
    seconds doubling with each further failure, never more than `longest`."""
    if failures < free:
        return 0
    return min(longest, first * (1 << (failures - free)))


# A failure claimed before its attempt is judged, and only while the back-off earned by the
# failures before it has run out (the row locked, so attempts at once queue on it): a burst
# of guesses is held to the back-off as guesses one after another are. The wait doubles from
# its first seconds ($4) with each failure past the free ones ($3), up to the longest ($5).
_CLAIM_FAILURE = """
INSERT INTO rate_limit_counter AS c (key, count, expires_at, touched_at)
VALUES ($1, 1, now() + make_interval(secs => $2), now())
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN c.expires_at <= now() THEN 1 ELSE c.count + 1 END,
    expires_at = CASE WHEN c.expires_at <= now() THEN EXCLUDED.expires_at ELSE c.expires_at END,
    touched_at = now()
WHERE c.expires_at <= now() OR c.count < $3 OR c.touched_at + make_interval(
    secs => least($5, $4 * power(2, least(c.count - $3, 30)))) <= now()
RETURNING count
"""


async def claim_failure(
    *, key: str, free: int, first: int, longest: int, forget_after: int
) -> None:
    """Count an attempt of `key` as a failure before it is judged, refusing it while the
    back-off earned by earlier failures lasts (`free` of them wait nothing, then `first`
    seconds doubling up to `longest`); `forget` wipes the slate when it succeeds. The count is
    forgotten `forget_after` seconds after the first failure."""
    stored = _stored(f"backoff|{key}")
    async with db.pool().acquire_connection() as connection:
        row = None
        while row is None:  # a right password may wipe the slate between the two statements
            claimed = await connection.fetchval(
                _CLAIM_FAILURE, stored, float(forget_after), free, first, longest
            )
            if claimed is not None:
                return
            row = await connection.fetchrow(
                "SELECT count, touched_at FROM rate_limit_counter WHERE key = $1", stored
            )
    wait = backoff_seconds(failures=row["count"], free=free, first=first, longest=longest)
    until = row["touched_at"] + timedelta(seconds=wait)
    raise TooManyRequests(
        "too many failed attempts from this address; try again later",
        retry_after=max(1, math.ceil((until - datetime.now(UTC)).total_seconds())),
    )


async def forget(*, key: str) -> None:
    """A success wipes the slate for `key`."""
    await _storage.clear(f"backoff|{key}")
