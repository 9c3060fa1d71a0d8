"""Reads about one batch: what a scanned code names and what may follow, and its fate."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch, Label
from wastetrack.catalog import service as catalog
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import (
    NotFound,
)
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
from wastetrack.custody.models import CustodyEvent
from wastetrack.custody.rules import SPECS, EventType
from wastetrack.custody.transitions import next_actions
from wastetrack.rollups.models import BatchFact


@dataclass(frozen=True, slots=True)
class ScanResult:
    batch: Batch | None
    label: Label | None
    actions: list[str]


async def scan(*, principal: Principal, scanned: str, secret: str) -> ScanResult:
    """What a scanned or typed code names for this user, and the events they may record next."""
    code = await batches.resolve_scan(scanned, secret=secret, field="qr")
    batch = await batches.visible_batches(principal).get_or_none(code=code)
    if batch is not None:
        return ScanResult(batch=batch, label=None, actions=await next_actions(principal, batch))
    today = local_date(datetime.now(UTC), get_settings().timezone)
    label = await batches.get_label_for_binding(principal, code, on=today)
    if label is None:
        raise NotFound(batches.NOT_FOUND, field="qr")
    # Tagged on another organization's label, the batch is that organization's waste: the label
    # names it (`organization_id`), and the app's form takes it as the producer.
    actions = [EventType.tagged.value] if principal.role in SPECS[EventType.tagged].roles else []
    return ScanResult(batch=None, label=label, actions=actions)


async def fate(*, principal: Principal, code: str) -> dict[str, Any]:
    """What became of a batch the user may see, following it into the containers it was
    aggregated into (a clinic's bag in a carrier's round), without naming other parties. The
    fate and method are the metrics' (the batch's fact: its deciding event after corrections,
    its outermost container's for a batch aggregated into one; a container's own fate is
    `container`, its contents being counted instead)."""
    batch = await batches.get_visible_batch(principal, code)
    final = batch
    containers = []
    while final.parent_id is not None:
        final = await Batch.get(id=final.parent_id)
        containers.append(final.code)
    fact = await BatchFact.get_or_none(batch_id=batch.id)
    method = (await catalog.snapshot()).methods[fact.method] if fact and fact.method else None
    treated = (
        await CustodyEvent.filter(batch_id=final.id, event_type=EventType.treated)
        .order_by("-seq")
        .first()
        if method
        else None
    )
    return {
        "code": batch.code,
        "state": batch.state,
        "containers": containers,
        "fate_state": final.state,
        "fate": fact.fate if fact else None,
        "method": method.code if method else None,
        "mode": method.mode if method else None,
        "treated_at": treated.device_time if treated else None,
    }
