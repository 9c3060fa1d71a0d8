"""Plates: the national form of a vehicle's plate, and the plate a carrier names for a
carriage, checked against its fleet."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from wastetrack.core import cityday
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.timefmt import local_limit
from wastetrack.fleet.models import Vehicle

# 机动车号牌 (GA 36): province abbreviation, issuing-office letter (no I or O), then five
# characters, or six for new-energy plates (D/F then five, small cars; five digits then D/F,
# large vehicles).
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_FORM = re.compile(
    rf"[{PROVINCES}][A-HJ-NP-Z]"
    r"(?:[A-HJ-NP-Z0-9]{5}|[DF][A-HJ-NP-Z0-9][0-9]{4}|[0-9]{5}[DF])"
)
# Separators people type or print between the parts of a plate.
_PLATE_SEPARATORS = re.compile(r"[\s·•．.\-]")

# Stream rule `vehicle_required`: any registered vehicle, or one holding a valid 道路危险货物
# 运输许可 on the day of carriage.
REGISTERED = "registered"
HAZARDOUS_LICENCE = "hazardous_licence"


def compact_plate(plate: str) -> str:
    """The plate as stored: upper-case, separators dropped (its form unchecked, for lookups).
    Only ASCII letters are upper-cased: `str.upper` makes ASCII of some others (the long s,
    U+017F, is S; the ligature U+FB00 is FF), which would store a plate nobody typed."""
    compact = _PLATE_SEPARATORS.sub("", plate)
    return "".join(c.upper() if c.isascii() else c for c in compact)


def normalize_plate(plate: str, *, field: str = "plate") -> str:
    """The plate upper-case without separators, refused unless it has the national form."""
    normalized = compact_plate(plate)
    if not PLATE_FORM.fullmatch(normalized):
        raise ValidationFailed(
            f"{plate!r} is not a Chinese plate: a province abbreviation, a letter and 5"
            " characters (6 for new-energy vehicles), e.g. 鲁K12345 or 鲁KD12345",
            field=field,
        )
    return normalized


async def enrolled(organization_id: int) -> bool:
    """Whether the carrier has registered its fleet (any vehicle, even one retired since)."""
    return await Vehicle.exists(organization_id=organization_id)


async def plate_for_carriage(
    *,
    organization_id: int,
    plate: str | None,
    rule: str | None,
    at: datetime,
    timezone: str | ZoneInfo,
    field: str = "vehicle_plate",
    enrolled_cache: dict[int, bool] | None = None,
) -> str | None:
    """The normalized plate a carrier names for a carriage, checked against its fleet.

    A carrier that has registered its fleet must name one of its vehicles, not retired at the
    carriage's moment `at` (a handover made before the vehicle was retired, recorded after,
    stands), where the stream's rule (`vehicle_required`) asks for one, and any plate it names
    must be such a vehicle; under the `hazardous_licence` rule the vehicle's 道路危险货物运输许可
    must be valid on the city's day of `at`. Until a carrier registers its first
    vehicle, a plate is recorded as stated."""
    if plate is None and rule is None:
        return None
    normalized = normalize_plate(plate, field=field) if plate is not None else None
    cache = enrolled_cache if enrolled_cache is not None else {}
    if organization_id not in cache:
        cache[organization_id] = await enrolled(organization_id)
    if not cache[organization_id]:
        return normalized
    if normalized is None:
        if rule is None:
            return None
        raise ValidationFailed(
            "name the vehicle (vehicle_plate): this waste moves only in a registered vehicle",
            field=field,
        )
    vehicle = await Vehicle.get_or_none(plate=normalized, organization_id=organization_id)
    if vehicle is None:
        raise ValidationFailed(
            f"{normalized} is not a registered vehicle of the carrier", field=field
        )
    if vehicle.retired_at is not None and vehicle.retired_at <= at:
        raise ValidationFailed(
            f"{normalized} was retired at"
            f" {local_limit(vehicle.retired_at, timezone, earliest=False)}, city time, before"
            " this carriage: name a vehicle in service",
            field=field,
        )
    on = cityday.local_date(at, timezone)
    if rule == HAZARDOUS_LICENCE and (
        vehicle.hazardous_licence_expires is None or vehicle.hazardous_licence_expires < on
    ):
        raise ValidationFailed(
            f"{normalized} holds no hazardous-goods transport licence (道路危险货物运输许可)"
            f" valid on {on.isoformat()}",
            field=field,
        )
    return normalized
