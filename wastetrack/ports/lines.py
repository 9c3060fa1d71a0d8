"""What a delivery line must carry to be counted, at delivery and after a correction of its
batch: a line the indicator counts in m³ carries its m³ (docs/metrics.md §6)."""

from tortoise import connections

from wastetrack.batches.models import Unit
from wastetrack.catalog import service as catalog
from wastetrack.core.errors import ValidationFailed
from wastetrack.ports.models import DeliveryLine
from wastetrack.ports.rules import volume_group

# The batch a part was split from, up through refused parts of refused parts, to the first:
# the batch $1 itself when it is no refused part.
_SPLIT_FROM_FIRST = """
WITH RECURSIVE up (id, split_from_id) AS (
    SELECT id, split_from_id FROM batch WHERE id = $1
  UNION ALL
    SELECT b.id, b.split_from_id FROM batch b JOIN up ON b.id = up.split_from_id
)
SELECT id FROM up WHERE split_from_id IS NULL
"""


async def check_corrected_line(
    *, batch_id: int, split_from_id: int | None, category: str, unit: Unit, field: str
) -> None:
    """Refuse a tagging correction that would leave a delivery line's batch, or a part a
    receipt refused of it (`split_from_id`, which counts in the line's volume), counted as
    nothing: its category reported in m³ (sewage) while the batch is not in m³ and the line
    measured no m³. `field` names the corrected field at fault (`category`, else `unit`).
    Called by custody corrections before they change anything."""
    group = volume_group(await catalog.snapshot(), category)
    if group is None or unit == Unit.M3:
        return
    whose, line_batch = "this delivery line", batch_id
    if split_from_id is not None:
        (first,) = await connections.get("default").execute_query_dict(
            _SPLIT_FROM_FIRST, [split_from_id]
        )
        whose, line_batch = "the delivery line it was refused from", first["id"]
    measured = await DeliveryLine.filter(batch_id=line_batch).values_list(
        "volume_m3", "batch__unit"
    )
    # The line's own batch in m³ is its volume; a correction of that batch is judged by the
    # unit it corrects to (above), a refused part by the line's.
    if not measured or any(
        volume or (split_from_id is not None and line_unit == Unit.M3)
        for volume, line_unit in measured
    ):
        return
    raise ValidationFailed(
        f"{category} is reported in m³ ({group}) and {whose} measured none: it would count"
        " as nothing; correct its unit and quantity to m³ with it",
        field=field,
    )
