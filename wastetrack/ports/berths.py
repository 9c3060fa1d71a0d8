"""Fishing ports and their berths: a port's grade, position and reception facility, and the
fixed QR code at each berth that a delivery scans."""

from wastetrack.audit import service as audit
from wastetrack.core import codes
from wastetrack.core.errors import Conflict, NotFound, ValidationFailed
from wastetrack.ports.models import Berth, FishingPort
from wastetrack.ports.rules import PORT_RULES
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind


async def _fishing_port_org(port_id: int) -> Organization:
    org = await registry.get_organization(port_id, field="port_id")
    if org.kind != OrganizationKind.fishing_port:
        raise ValidationFailed("the organization is not a fishing port", field="port_id")
    return org


async def register_port(
    *,
    port_id: int,
    grade: str,
    latitude: float,
    longitude: float,
    reception_facility: bool,
    listed: bool,
) -> FishingPort:
    """Record a fishing port's grade, position and reception facility."""
    org = await _fishing_port_org(port_id)
    existing = await FishingPort.get_or_none(organization=org)
    port, created = await FishingPort.update_or_create(
        organization=org,
        defaults={
            "grade": grade,
            "latitude": latitude,
            "longitude": longitude,
            "reception_facility": reception_facility,
            "listed": listed,
        },
    )
    await audit.record(
        action="port.registered" if created else "port.updated",
        subject=port,
        organization_id=org.id,
        region_path=org.region.path,
        before=audit.snapshot(existing) if existing is not None else None,
        after=audit.snapshot(port),
    )
    return port


async def add_berth(
    *, port_id: int, name: str, latitude: float, longitude: float, geofence_m: int | None
) -> Berth:
    """Add a berth with its own fixed QR code."""
    org = await _fishing_port_org(port_id)
    if await Berth.exists(port_id=org.id, name=name):
        raise Conflict(f"the port has a berth named {name!r} already", field="name")
    berth = await Berth.create(
        port=org,
        name=name,
        code=codes.new_code(),
        latitude=latitude,
        longitude=longitude,
        geofence_m=geofence_m or PORT_RULES["default_geofence_m"],
    )
    await audit.created("berth.created", berth, within=org)
    return berth


async def list_berths(*, port_id: int) -> list[Berth]:
    """A port's berths, oldest first."""
    return await Berth.filter(port_id=port_id).order_by("id")


async def berth_from_scan(scanned: str, *, secret: str, field: str = "berth") -> Berth:
    """The berth a scanned QR or typed code names; forged codes are refused like unknown ones."""
    code = codes.code_from_scan(scanned, secret=secret)
    berth = await Berth.get_or_none(code=code) if code else None
    if berth is None:
        raise NotFound("no berth with this code", field=field)
    return berth
