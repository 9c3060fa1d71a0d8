"""What a delivery line must carry to be counted, at delivery and after a correction of its
batch: a line the indicator counts in m³ carries its m³ (docs/metrics.md §6)."""

from wastetrack.batches.models import Unit
from wastetrack.catalog import service as catalog
from wastetrack.core.errors import ValidationFailed
from wastetrack.ports.models import DeliveryLine
from wastetrack.ports.rules import volume_group


async def check_corrected_line(*, batch_id: int, category: str, unit: Unit, field: str) -> None:
    """Refuse a tagging correction that would leave a delivery line's batch counted as
    nothing: its category reported in m³ (sewage) while the batch is not in m³ and the line
    measured no m³. `field` names the corrected field at fault (`category`, else `unit`).
    Called by custody corrections before they change anything."""
    group = volume_group(await catalog.snapshot(), category)
    if group is None or unit == Unit.M3:
        return
    measured = await DeliveryLine.filter(batch_id=batch_id).values_list("volume_m3", flat=True)
    if not measured or any(measured):
        return
    raise ValidationFailed(
        f"{category} is reported in m³ ({group}) and this delivery line measured none: the"
        " line would count as nothing; correct its unit and quantity to m³ with it",
        field=field,
    )
