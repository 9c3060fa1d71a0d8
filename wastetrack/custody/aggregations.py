"""Aggregations in effect: a bag's own `aggregated` event that a correction undid
(`aggregated: false`, custody.corrections) is no step of the bag's. Every reader of the log that
follows steps — the registers, the vehicle tracks, the alerts, the bag's latest step time —
reads this one rule."""

from uuid import UUID

from tortoise import connections

from wastetrack.custody.rules import EventType


def aggregation_undone(event: str) -> str:
    """SQL: whether the custody_event row `event` is a child's own `aggregated` event that a
    correction undid — the latest correction of its `aggregated` field says false (the bag was
    never in that container; it is again as it was before the scan, with whoever held it
    then). Such an event neither ends its holder's custody nor puts it into the container; an
    aggregation recorded after it (into the same or another container) is a step of its own.
    Every correction names the original event (`corrects_id`), a correction of a correction
    too, and is on the same batch's chain. The container's own `aggregated` event (no
    `related_batch_id`) is never undone: it moved no custody. (Within one recording call,
    before its events are written, custody.corrections reads the same from the call's own
    events.)"""
    return (
        f"({event}.event_type = '{EventType.aggregated}' AND {event}.related_batch_id IS NOT NULL"
        " AND (SELECT c.details->'corrected'->>'aggregated' FROM custody_event c"
        f" WHERE c.batch_id = {event}.batch_id AND c.corrects_id = {event}.id"
        " AND c.details->'corrected' ? 'aggregated'"
        " ORDER BY c.seq DESC LIMIT 1) IS NOT DISTINCT FROM 'false')"
    )


def is_step(event: str) -> str:
    """SQL: whether the custody_event row `event` is a step taken with the batch: not a
    correction (an act on the record, not on the waste), not an aggregation undone."""
    return f"({event}.event_type <> '{EventType.corrected}' AND NOT {aggregation_undone(event)})"


async def undone_aggregations(batch_id: int) -> set[UUID]:
    """The ids of the batch's own `aggregated` events a correction undid, for a reader that
    walks the batch's chain itself (the vehicle tracks)."""
    rows = await connections.get("default").execute_query_dict(
        f"SELECT e.id FROM custody_event e WHERE e.batch_id = $1 AND {aggregation_undone('e')}",
        [batch_id],
    )
    return {UUID(str(r["id"])) for r in rows}
