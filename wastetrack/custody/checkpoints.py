"""Tamper evidence beyond one chain: a signed Merkle root over each day's custody events, the
proof that an event is in it, and the audit of every chain and checkpoint.

A day is a calendar day in the city's time zone, by server time; its leaves are the events in
(server_time, id) order. The tree is RFC 9162's (Certificate Transparency 2.0): leaf hash
SHA-256(0x00 ‖ event id ‖ ":" ‖ event hash), node hash SHA-256(0x01 ‖ left ‖ right). The root is
signed with the installation's Ed25519 key (`<data_dir>/keys/checkpoint-ed25519.pem`), whose
public key is published (`GET /p/v1/checkpoints/key`): an exported file or a proof is checked
anywhere against that key, never against the key it names itself. An event's hash is a MAC under
the installation's chain key, so a proof shows that the event (its id and MAC) was sealed on its
day; tying the event's content to its MAC is `wastetrack verify`'s, which holds the key.
"""

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise import connections, fields
from tortoise.models import Model
from tortoise.queryset import ValuesListQuery

from wastetrack.core import cityday, keys
from wastetrack.core.errors import NotFound
from wastetrack.core.hashing import canonical_json
from wastetrack.core.principal import Principal
from wastetrack.core.reported import CLOCK_SKEW

SCHEME = "wastetrack-checkpoint-v1"
log = logging.getLogger(__name__)


class Checkpoint(Model):
    """One sealed day of the custody log; rows are never updated or deleted (a trigger)."""

    day = fields.DateField(primary_key=True)
    events = fields.IntField()
    root = fields.CharField(max_length=64)
    signature = fields.CharField(max_length=128)
    public_key = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "checkpoint"


class LegacyChain(Model):
    """A chain begun before chain hashes were keyed: its events up to through_seq carry plain
    SHA-256 hashes. Written once by migration 0017 and never again (a trigger)."""

    batch_id = fields.IntField(primary_key=True, generated=False)
    through_seq = fields.IntField()

    class Meta:
        table = "legacy_chain"


# --- The Merkle tree (RFC 9162, section 2.1) ---


def leaf_hash(event_id: UUID | str, event_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + f"{event_id}:{event_hash}".encode()).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from the leaf up to the root."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(leaves[:k], index), merkle_root(leaves[k:])]
    return [*inclusion_path(leaves[k:], index - k), merkle_root(leaves[:k])]


def verify_inclusion(
    *, leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: whether leaf sits at index of a tree of size with this root."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _node(sibling, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# --- Days, seals and checks ---


def day_events(start: datetime, end: datetime) -> ValuesListQuery[Literal[False]]:
    """The ids and hashes of the events recorded from `start` to `end`, in the day's order (read
    by the server_time BRIN index of migration 0044, not by a scan of the whole log)."""
    from wastetrack.custody.models import CustodyEvent

    return (
        CustodyEvent.filter(server_time__gte=start, server_time__lt=end)
        .order_by("server_time", "id")
        .values_list("id", "hash")
    )


async def _day_leaves(day: date, timezone: str) -> list[tuple[UUID, bytes]]:
    rows = await day_events(*cityday.days_bounds(day, day, timezone))
    return [(event_id, leaf_hash(event_id, event_hash)) for event_id, event_hash in rows]


def public_key_read(data_dir: Path) -> dict[str, str]:
    """What a third party needs to check exported checkpoints and proofs: the installation's
    Ed25519 public key, and how the signed message and the leaves are made."""
    return {
        "algorithm": "Ed25519",
        "public_key": keys.public_key_hex(keys.signing_key(data_dir)),
        "signed_message": "canonical JSON (keys sorted, no spaces, UTF-8) of"
        f' {{"day": "YYYY-MM-DD", "events": n, "root": hex, "scheme": "{SCHEME}"}}',
        "tree": "RFC 9162 Merkle tree: leaf = SHA-256(0x00 || event_id || ':' || event_hash),"
        " node = SHA-256(0x01 || left || right), leaves in the day's order",
    }


def signed_message(*, day: date, events: int, root: str) -> bytes:
    return canonical_json(
        {"scheme": SCHEME, "day": day.isoformat(), "events": events, "root": root}
    ).encode()


async def days_with_events(timezone: str, *, after: date | None = None) -> list[date]:
    """The days (city time) that have custody events, oldest first; only those after a day."""
    since = (
        cityday.day_start(after + timedelta(days=1), timezone)
        if after
        else datetime.min.replace(tzinfo=UTC)
    )
    rows = await connections.get("default").execute_query_dict(DAYS_WITH_EVENTS, [timezone, since])
    return [row["day"] for row in rows]


DAYS_WITH_EVENTS = (
    "SELECT DISTINCT (server_time AT TIME ZONE $1)::date AS day FROM custody_event"
    " WHERE server_time >= $2 ORDER BY day"
)
"""The city days with events from a moment on (by the same index as `day_events`)."""


async def seal_day(*, day: date, timezone: str, data_dir: Path) -> Checkpoint:
    """Sign the Merkle root of one day's events and store it as that day's checkpoint."""
    leaves = [leaf for _, leaf in await _day_leaves(day, timezone)]
    root = merkle_root(leaves).hex()
    key = keys.signing_key(data_dir)
    signature = key.sign(signed_message(day=day, events=len(leaves), root=root))
    return await Checkpoint.create(
        day=day,
        events=len(leaves),
        root=root,
        signature=signature.hex(),
        public_key=keys.public_key_hex(key),
    )


# How long a recording may sit idle in its transaction at most (it waits on nothing but itself).
IDLE_AT_MOST = timedelta(hours=1)


async def seal_completed_days(
    *, timezone: str, data_dir: Path, now: datetime | None = None
) -> list[Checkpoint]:
    """Checkpoint every finished day (in the city's time zone) that has events and no
    checkpoint yet; today stays open, and so does a day a transaction begun before its end may
    still add events to (a sync that began at 23:59:59 and commits after midnight)."""
    today = cityday.today(timezone, now=now)
    # Days are sealed in order, so only the days after the last checkpoint can be open; a gap
    # before it is tampering, which audit() reports.
    # Only this installation's own checkpoints of finished days say how far it has sealed: one
    # planted under another key, or dated today or later, must not stop the sealing of the
    # days after it. A day such a row holds stays unsealed, and audit() reports the row.
    own_key = keys.public_key_hex(keys.signing_key(data_dir))
    last = None
    for row in await Checkpoint.filter(day__lt=today, public_key=own_key).order_by("-day"):
        if signature_is_valid(checkpoint_read(row)):  # a copied key column is not a seal
            last = row
            break
    after = last.day if last else None
    taken = set(
        await Checkpoint.filter(**({"day__gt": after} if after else {})).values_list(
            "day", flat=True
        )
    )
    if taken:
        log.error("a checkpoint this installation did not seal is stored: `wastetrack verify`")
    if after is not None and after >= today - timedelta(days=1):
        # Every finished day is sealed, as on most rounds: no day to look for (finding the
        # days with events reads the whole log, which no index on server time serves).
        return []
    created = []
    for day in await days_with_events(timezone, after=after):
        if day in taken:
            continue
        if day >= today or await _still_writing(
            cityday.day_start(day + timedelta(days=1), timezone)
        ):
            break
        created.append(await seal_day(day=day, timezone=timezone, data_dir=data_dir))
    return created


async def _still_writing(day_end: datetime) -> bool:
    """Whether another client's transaction begun before the day's end is still open: events it
    records carry a server time taken inside it (by the service's clock, which may differ from
    the database's by CLOCK_SKEW), so they may belong to the day. A session idle in its
    transaction for longer than IDLE_AT_MOST is no recording (one left open by mistake): it
    does not hold the day open for ever."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        " AND xact_start < $1"
        " AND NOT (state LIKE 'idle in transaction%' AND state_change < now() - $2::interval)"
        " LIMIT 1",
        [day_end + CLOCK_SKEW, IDLE_AT_MOST],
    )
    return bool(rows)


def checkpoint_read(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "day": checkpoint.day.isoformat(),
        "events": checkpoint.events,
        "root": checkpoint.root,
        "signature": checkpoint.signature,
        "public_key": checkpoint.public_key,
        "scheme": SCHEME,
    }


async def list_checkpoints(*, since: date | None = None) -> list[dict[str, Any]]:
    """Every checkpoint, oldest first: what an auditor keeps outside the system."""
    query = Checkpoint.all().order_by("day")
    if since is not None:
        query = query.filter(day__gte=since)
    return [checkpoint_read(checkpoint) for checkpoint in await query]


def signature_is_valid(checkpoint: dict[str, Any]) -> bool:
    """Whether an exported checkpoint's signature holds under the public key it names."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint["public_key"])).verify(
            bytes.fromhex(checkpoint["signature"]),
            signed_message(
                day=date.fromisoformat(checkpoint["day"]),
                events=int(checkpoint["events"]),
                root=checkpoint["root"],
            ),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


async def check_checkpoint(
    checkpoint: Checkpoint, *, timezone: str, public_key: str
) -> dict[str, Any]:
    """Whether a checkpoint is signed by this installation's key and the log still holds
    exactly the events it sealed."""
    found = checkpoint_read(checkpoint)
    problem = None
    if checkpoint.public_key != public_key:
        problem = "signed by another key than this installation's"
    elif not signature_is_valid(found):
        problem = "the signature does not verify"
    else:
        leaves = [leaf for _, leaf in await _day_leaves(checkpoint.day, timezone)]
        if len(leaves) != checkpoint.events:
            problem = f"{checkpoint.events} events were sealed, the log now has {len(leaves)}"
        elif merkle_root(leaves).hex() != checkpoint.root:
            problem = "the day's events no longer match the sealed root"
    return {"day": found["day"], "valid": problem is None, "detail": problem}


async def inclusion_proof(*, principal: Principal, event_id: UUID, timezone: str) -> dict[str, Any]:
    """The audit path from one event to its day's checkpoint root, for whoever may see the
    event's batch (`batches.visible_batches`: a manager or an auditor, its region's); any other
    event is 'not found', as an id no event has, so the proof shows no content of another
    region's log (its tree size and leaf index tell the whole city's count of events that day,
    as the checkpoint list does)."""
    from wastetrack.batches import service as batches
    from wastetrack.custody.models import CustodyEvent

    event = await CustodyEvent.get_or_none(id=event_id)
    if (
        event is None
        or not await batches.visible_batches(principal).filter(id=event.batch_id).exists()
    ):
        raise NotFound("no such event", field="event_id")
    day = cityday.local_date(event.server_time, timezone)
    checkpoint = await Checkpoint.get_or_none(day=day)
    if checkpoint is None:
        raise NotFound("the event's day has no checkpoint yet", field="event_id")
    leaves = await _day_leaves(day, timezone)
    index = next((i for i, (found, _) in enumerate(leaves) if found == event.id), None)
    if index is None:  # pragma: no cover - the event was just read from the same log
        raise NotFound("no such event", field="event_id")
    return {
        "event_id": str(event.id),
        "event_hash": event.hash,
        "leaf_index": index,
        "tree_size": checkpoint.events,
        "path": [sibling.hex() for sibling in inclusion_path([leaf for _, leaf in leaves], index)],
        "checkpoint": checkpoint_read(checkpoint),
    }


def proof_is_valid(proof: dict[str, Any], *, public_key: str) -> bool:
    """Check a proof against the installation's published public key (`public_key_read`):
    the checkpoint it carries must be signed by that key, not by whatever key the proof names,
    and the path must lead from the event's leaf to the signed root."""
    checkpoint = proof["checkpoint"]
    if not hmac.compare_digest(str(checkpoint.get("public_key", "")), public_key):
        return False
    return signature_is_valid(checkpoint) and verify_inclusion(
        leaf=leaf_hash(proof["event_id"], proof["event_hash"]),
        index=int(proof["leaf_index"]),
        size=int(checkpoint["events"]),
        path=[bytes.fromhex(sibling) for sibling in proof["path"]],
        root=bytes.fromhex(checkpoint["root"]),
    )


async def audit(*, secret: str, timezone: str, data_dir: Path) -> dict[str, Any]:
    """Every chain and every checkpoint, and the problems found; valid only with none."""
    from wastetrack.batches.models import Batch
    from wastetrack.custody import chain

    problems: list[dict[str, Any]] = []
    chains = 0
    for row in await Batch.all().order_by("id").values("id"):
        chains += 1
        # Each chain with its head as one moment saw them: batches keep getting steps while
        # the audit runs.
        batch, events = await chain.read(row["id"])
        verdict = await chain.check_chain(batch=batch, events=events, secret=secret)
        if not verdict["valid"]:
            problems.append({"kind": "chain", **verdict})
    public_key = keys.public_key_hex(keys.signing_key(data_dir))
    checkpoints = await Checkpoint.all().order_by("day")
    for checkpoint in checkpoints:
        verdict = await check_checkpoint(checkpoint, timezone=timezone, public_key=public_key)
        if not verdict["valid"]:
            problems.append({"kind": "checkpoint", **verdict})
    if checkpoints:
        sealed = {c.day for c in checkpoints}
        last = checkpoints[-1].day
        for day in await days_with_events(timezone):
            if day < last and day not in sealed:
                problems.append(
                    {
                        "kind": "checkpoint",
                        "day": day.isoformat(),
                        "valid": False,
                        "detail": "events on a day before the last checkpoint, but no checkpoint",
                    }
                )
    return {
        "valid": not problems,
        "chains": chains,
        "checkpoints": len(checkpoints),
        "problems": problems,
    }
