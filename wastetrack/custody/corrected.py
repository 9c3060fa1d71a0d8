"""A field of an event as its corrections leave it, read in SQL: the value the latest
correction naming the field gave it (`details.corrected`), else the event's own. The SQL twin
of `custody.remainders.corrected_value`; the roll-up facts read the same rule for a whole scope
at once (`rollups.facts`, its `corrections` step)."""

from wastetrack.custody.rules import EventType


def corrected_field(event: str, name: str, column: str) -> str:
    """SQL (text): field `name` of the custody_event row `event` after its corrections, else
    its own `column`. Every correction names the original event (`corrects_id`), a correction
    of a correction too, and is on the same batch's chain."""
    return (
        f"COALESCE((SELECT c.details->'corrected'->>'{name}' FROM custody_event c"
        f" WHERE c.batch_id = {event}.batch_id AND c.event_type = '{EventType.corrected}'"
        f" AND c.corrects_id = {event}.id AND c.details->'corrected' ? '{name}'"
        f" ORDER BY c.seq DESC LIMIT 1), {event}.{column})"
    )
