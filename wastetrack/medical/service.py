"""Medical waste: which clinics and hospitals the collection system reaches."""

from datetime import UTC, datetime, timedelta
from typing import Any

from wastetrack.core.errors import ValidationFailed
from wastetrack.core.metrics import ratio
from wastetrack.core.principal import Principal
from wastetrack.custody.models import CustodyEvent
from wastetrack.registry.models import Organization, OrganizationKind

SMALL_CLINIC_MAX_BEDS = 19  # the plan (第九章 第三节): clinics of 19 beds or fewer


async def collection_coverage(
    *, principal: Principal, days: int, now: datetime | None = None
) -> dict[str, Any]:
    """Registered clinics and hospitals in the user's region with at least one bag collected in
    the last `days` days, all of them and small clinics (≤ 19 beds) apart, and the ones missed."""
    if not 1 <= days <= 366:
        raise ValidationFailed("days must lie between 1 and 366", field="days")
    now = now or datetime.now(UTC)
    institutions = await Organization.filter(
        kind__in=[OrganizationKind.clinic, OrganizationKind.hospital],
        region__path__startswith=principal.region_path,
    ).order_by("id")
    collected = set(
        await CustodyEvent.filter(
            event_type="collected",
            device_time__gte=now - timedelta(days=days),
            batch__producer_id__in=[o.id for o in institutions],
        ).values_list("batch__producer_id", flat=True)
    )
    small = [
        o
        for o in institutions
        if o.kind == OrganizationKind.clinic
        and (o.bed_count is None or o.bed_count <= SMALL_CLINIC_MAX_BEDS)
    ]
    return {
        "days": days,
        "since": now - timedelta(days=days),
        "all_institutions": ratio(len(collected), len(institutions), "institutions"),
        "small_clinics": ratio(sum(o.id in collected for o in small), len(small), "institutions"),
        "not_collected": [
            {"id": o.id, "name": o.name, "kind": o.kind.value, "bed_count": o.bed_count}
            for o in institutions
            if o.id not in collected
        ],
    }
