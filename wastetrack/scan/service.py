"""What a scanned QR code or typed code names: a batch, an unbound label, a berth plate or a
collection point's plate."""

from dataclasses import dataclass
from datetime import UTC, datetime

from wastetrack.auth.models import Role
from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch, Label
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import NotFound
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
from wastetrack.custody import queries
from wastetrack.household import service as household
from wastetrack.ports.berths import berth_from_scan
from wastetrack.ports.models import Berth
from wastetrack.registry.models import Site, Vessel

DELIVERY = "delivery"
PICKUP = "pickup"


@dataclass(frozen=True, slots=True)
class Scanned:
    batch: Batch | None
    label: Label | None
    berth: Berth | None
    site: Site | None
    actions: list[str]
    links: batches.SplitLinks | None = None


async def scan(*, principal: Principal, scanned: str, secret: str) -> Scanned:
    """The thing behind the code, with what this user may do next; unknown, forged and
    mistyped codes get one and the same refusal."""
    try:
        found = await queries.scan(principal=principal, scanned=scanned, secret=secret)
        links = await batches.split_links(found.batch) if found.batch is not None else None
        return Scanned(found.batch, found.label, None, None, found.actions, links)
    except NotFound as not_a_batch:
        refusal = not_a_batch
    try:
        berth = await berth_from_scan(scanned, secret=secret, field="qr")
    except NotFound:
        try:
            site = await household.site_from_scan(scanned, secret=secret, field="qr")
        except NotFound:
            raise refusal from None
        today = local_date(datetime.now(UTC), get_settings().timezone)
        takes = await household.may_pick_up(principal, site, on=today)
        actions = [PICKUP] if takes else []
        return Scanned(None, None, None, site, actions)
    may_deliver = (
        principal.role == Role.port_operator and principal.organization_id == berth.port_id
    ) or (
        principal.role == Role.generator and await Vessel.exists(owner_id=principal.organization_id)
    )
    return Scanned(None, None, berth, None, [DELIVERY] if may_deliver else [])
