"""A batch's hash chain: how an event is hashed, and the verdict on a whole chain."""

import functools
import hmac
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.core import keys
from wastetrack.core.hashing import decimal_text, hmac_sha256_hex, sha256_hex
from wastetrack.core.principal import Principal
from wastetrack.custody import repository
from wastetrack.custody.checkpoints import LegacyChain
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import EventType


def event_hash(
    event: CustodyEvent | repository.NewEvent,
    *,
    batch_code: str,
    related_code: str | None,
    key: bytes | None,
) -> str:
    """HMAC-SHA256 under the chain_mac key over the event's content and the previous event's
    hash; without a key, the plain SHA-256 of chains recorded before keys (see LegacyChain).
    Times, ids and the weight go in as the text the canonical encoder would make of them
    (a hash per event recorded; the encoder's call back per value cost a tenth of the hash)."""
    content = {
        "prev_hash": event.prev_hash,
        "batch": batch_code,
        "seq": event.seq,
        "event_type": event.event_type,
        "state_after": event.state_after,
        "outcome": event.outcome,
        "reason": event.reason,
        "method": event.method_id,
        "mode": event.mode,
        "to_organization": event.to_organization_id,
        "related_batch": related_code,
        "corrects": _text(event.corrects_id),
        "details": event.details,
        "device_time": event.device_time.astimezone(UTC).isoformat(),
        "server_time": event.server_time.astimezone(UTC).isoformat(),
        "actor": event.actor_id,
        "organization": event.organization_id,
        "latitude": event.latitude,
        "longitude": event.longitude,
        "weight_kg": decimal_text(Decimal(event.weight_kg))
        if event.weight_kg is not None
        else None,
        "photo": event.photo_sha256,
        "client_event_id": _text(event.client_event_id),
    }
    return sha256_hex(content) if key is None else hmac_sha256_hex(key, content)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# The batch row is in no hash: what the tagging fixes for the batch's life is written into the
# tagging's (hashed) details, and a chain is valid only while the row still says it. The row's
# column for each detail.
_FIXED = {
    "producer": "producer_id",
    "origin_site": "origin_site_id",
    "hazard": "hazard",
    "region": "region_path",
    # HJ 1276: the bare prefix when tagging hashes it, the full number once the call has issued
    # it (work.pin_identifiers).
    "identifier": "identifier",
}
# And what the tagging sets that a correction of it may change (its details, then each
# correction's `corrected`): the row keeps the last word.
TAGGING_CORRECTED = {"category": "category_id", "quantity": "quantity", "unit": "unit"}


def fixed_at_tagging(batch: Batch) -> dict[str, Any]:
    """The tagging's details that pin the batch row's fields set once for its life: who
    produced it, where, its hazard characteristics, its region and its HJ 1276 identifier
    (taggings recorded before these details were written are pinned in what they held)."""
    return {name: getattr(batch, column) for name, column in _FIXED.items()}


def _row_disagrees(batch: Batch, events: list[CustodyEvent]) -> str | None:
    """The first field of the batch row that no longer says what its hashed events say, if
    any: the tagging's fixed details and its stream and waste code, the batch a remainder was
    split from, its time, category, quantity and unit after the corrections of it, its state
    and its container, in order."""
    tagging = events[0]
    details = tagging.details or {}
    stated: dict[str, Any] = {
        "stream_id": details.get("stream"),
        "waste_code": details.get("waste_code"),
        # A remainder's tagging names the batch it was split from (its related batch, hashed
        # by code); the figures add the parts up by the row's link to it.
        "split_from_id": tagging.related_batch_id if "split_from" in details else None,
        "tagged_at": tagging.device_time,
        **{column: details[name] for name, column in TAGGING_CORRECTED.items() if name in details},
        **{column: details[name] for name, column in _FIXED.items() if name in details},
    }
    for event in events[1:]:
        if event.corrects_id != tagging.id:
            continue
        corrected = (event.details or {}).get("corrected", {})
        for name, value in corrected.items():
            if name == "event_time":
                stated["tagged_at"] = datetime.fromisoformat(value)
            elif name in TAGGING_CORRECTED:
                stated[TAGGING_CORRECTED[name]] = value
    # What the steps leave: the state of the latest, and the container of the latest packing
    # of the batch that no correction undid (`out_of`), which the figures read from the row.
    stated["state"] = events[-1].state_after
    stated["parent_id"] = None
    for event in events[1:]:
        if event.event_type == EventType.aggregated and event.related_batch_id is not None:
            stated["parent_id"] = event.related_batch_id
        elif event.event_type == EventType.corrected and "out_of" in (event.details or {}):
            stated["parent_id"] = None
    for column, value in stated.items():
        kept = getattr(batch, column)
        if column == "quantity":
            same = Decimal(str(value)) == Decimal(kept)
        elif column == "unit":
            same = str(value) == getattr(kept, "value", kept)
        else:
            same = value == kept
        if not same:
            return column
    return None


async def read(batch_id: int) -> tuple[Batch, list[CustodyEvent]]:
    """A batch's row and its events in order, as one moment saw them: a step committed while
    they are read (it moves the row's head with its event) would make an intact chain look cut
    short, so the events are read again until the head is the same before and after them (every
    step moves it). Any transaction will do; every reader that checks a chain against its head
    reads it so."""
    batch = await Batch.get(id=batch_id)
    for _ in range(_READS):
        events = await CustodyEvent.filter(batch_id=batch_id).order_by("seq")
        after = await Batch.get(id=batch_id)
        if (after.last_seq, after.last_hash) == (batch.last_seq, batch.last_hash):
            break
        batch = after
    return batch, list(events)


# A busy batch gets a step now and then, not one per read: a few tries find a quiet moment.
_READS = 5


async def history(*, principal: Principal, code: str) -> tuple[Batch, list[CustodyEvent]]:
    """A visible batch and its events in order."""
    return await read((await batches.get_visible_batch(principal, code)).id)


async def verify_chain(*, principal: Principal, code: str, secret: str) -> dict[str, Any]:
    """Recompute every hash of a visible batch's chain, check its anchored head, and report
    the first break."""
    batch, events = await history(principal=principal, code=code)
    return await check_chain(batch=batch, events=events, secret=secret)


async def check_chain(*, batch: Batch, events: list[CustodyEvent], secret: str) -> dict[str, Any]:
    """The verdict on one chain: hashes (keyed, or plain up to the seq the chain had when keys
    came), links, and the batch row's head, so a chain cut short is caught too."""
    ring = keys.ring(secret)
    legacy = await LegacyChain.get_or_none(batch_id=batch.id)
    legacy_through = legacy.through_seq if legacy else 0
    related_ids = {e.related_batch_id for e in events if e.related_batch_id}
    related = (
        dict(await Batch.filter(id__in=related_ids).values_list("id", "code"))
        if related_ids
        else {}
    )

    def broken(seq: int, detail: str) -> dict[str, Any]:
        return {
            "batch_code": batch.code,
            "events": len(events),
            "valid": False,
            "broken_at_seq": seq,
            "detail": detail,
        }

    previous, floor = "0" * 64, 1
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return broken(expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != previous:
            return broken(expected_seq, "prev_hash does not match the previous event")
        hashed = functools.partial(
            event_hash,
            event,
            batch_code=batch.code,
            related_code=related.get(event.related_batch_id),
        )
        if event.seq <= legacy_through:
            matches = hmac.compare_digest(event.hash, hashed(key=None))
        else:
            # Any key version may have written it, but a chain never goes back to an older one.
            version = next(
                (
                    v
                    for v in ring.versions
                    if v >= floor
                    and hmac.compare_digest(event.hash, hashed(key=ring.key(keys.CHAIN_MAC, v)))
                ),
                None,
            )
            matches, floor = version is not None, version or floor
        if not matches:
            return broken(expected_seq, "the event's content does not match its hash")
        previous = event.hash
    if batch.last_seq != len(events) or (batch.last_hash or "0" * 64) != previous:
        return broken(
            len(events) + 1,
            f"the chain ends at seq {len(events)} but the batch's head is seq {batch.last_seq}",
        )
    changed = _row_disagrees(batch, events) if events else None
    if changed is not None:
        return broken(1, f"the batch's {changed} is not what its tagging (as corrected) says")
    return {"batch_code": batch.code, "events": len(events), "valid": True}
