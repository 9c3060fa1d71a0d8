"""A batch's custody history as a GS1 EPCIS 2.0 JSON-LD document: the standard exchange format
for supply-chain events, so a batch's story can leave this system in a form others read."""

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.catalog import service as catalog
from wastetrack.catalog.service import FINAL_MODES
from wastetrack.core.principal import Principal
from wastetrack.custody import chain
from wastetrack.custody.models import CustodyEvent

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
ID_BASE = "https://id.wastetrack.dev"
UOM = {"kg": "KGM", "m3": "MTQ", "count": "H87"}
# Custody event type → (EPCIS bizStep, disposition) for the plain ObjectEvents. A correction is
# never one of them: it is written as the corrective event of what it corrects (`_corrective`).
STEPS = {
    "tagged": ("commissioning", "active"),
    "collected": ("collecting", "in_progress"),
    "handed_over": ("shipping", "in_transit"),
    "in_transit": ("departing", "in_transit"),
    "stored": ("storing", "in_progress"),
    "received": ("receiving", "in_progress"),
    "cancelled": ("decommissioning", "inactive"),
}
# A corrected field → the event's attribute it sets, where the two differ, and how its text
# (a correction keeps every value as text) reads back. A tagging's quantity, unit and category
# (`chain.TAGGING_CORRECTED`) are the details it stated.
_ATTRIBUTE = {"event_time": "device_time", "method": "method_id"}
_READ: dict[str, Any] = {
    "event_time": datetime.fromisoformat,
    "weight_kg": Decimal,
    "latitude": float,
    "longitude": float,
}


def epc(code: str) -> str:
    return f"{ID_BASE}/batch/{code}"


def party(organization_id: int) -> str:
    return f"{ID_BASE}/organization/{organization_id}"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _offset(value: datetime, tz: ZoneInfo) -> str:
    offset = value.astimezone(tz).strftime("%z")
    return f"{offset[:3]}:{offset[3:]}"


def _quantity(category: str, amount: Decimal, unit: str) -> list[dict[str, Any]]:
    return [
        {
            "epcClass": f"{ID_BASE}/category/{category}",
            "quantity": float(amount),
            "uom": UOM[unit],
        }
    ]


def _declared(fix: CustodyEvent, *, void: bool = False) -> dict[str, Any]:
    """An errorDeclaration: the event was declared wrong by the correction `fix`, whose
    corrective event (under its id) stands in its place, unless the correction voids it."""
    declaration: dict[str, Any] = {
        "declarationTime": _time(fix.server_time),
        "reason": "incorrect_data",
    }
    if not void:
        declaration["correctiveEventIDs"] = [f"urn:uuid:{fix.id}"]
    return declaration


def _undoes(fix: CustodyEvent) -> bool:
    """The correction undoes an aggregation: the batch was never in that container."""
    return ((fix.details or {}).get("corrected") or {}).get("aggregated") == "false"


def _corrective(
    event: CustodyEvent, fixes: list[CustodyEvent], modes: dict[str, str]
) -> CustodyEvent:
    """The event as the corrections `fixes` (in order, the latest word on each field wins)
    leave it, under the last one's id and record time: the corrective event EPCIS reads in
    place of the event and of the corrections before the last."""
    fixed = copy.copy(event)
    details = dict(event.details or {})
    for fix in fixes:
        for name, text in ((fix.details or {}).get("corrected") or {}).items():
            if event.event_type == "tagged" and name in chain.TAGGING_CORRECTED:
                details[name] = text
                continue
            setattr(fixed, _ATTRIBUTE.get(name, name), _READ.get(name, str)(text))
            if name == "method":
                fixed.mode = modes[text]
    fixed.details = details
    fixed.id = fixes[-1].id
    fixed.server_time = fixes[-1].server_time
    return fixed


def to_epcis_event(
    event: CustodyEvent,
    *,
    batch: Batch,
    codes: dict[int, str],
    tz: ZoneInfo,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One custody event as an EPCIS ObjectEvent, AggregationEvent or TransformationEvent,
    declared wrong by `error` where a correction superseded it."""
    common: dict[str, Any] = {
        "eventID": f"urn:uuid:{event.id}",
        "eventTime": _time(event.device_time),
        "eventTimeZoneOffset": _offset(event.device_time, tz),
        "recordTime": _time(event.server_time),
    }
    place: dict[str, Any] = {"bizLocation": {"id": party(event.organization_id)}}
    if event.latitude is not None and event.longitude is not None:
        place["readPoint"] = {"id": f"geo:{event.latitude},{event.longitude}"}
    if error is not None:
        common["errorDeclaration"] = error
    kind = event.event_type
    if kind == "aggregated":
        if event.related_batch_id is not None:  # this batch went into a container
            parent, children = codes[event.related_batch_id], [batch.code]
        else:  # this batch is the container
            parent, children = batch.code, list(event.details.get("children", []))
        return {
            "type": "AggregationEvent",
            **common,
            "parentID": epc(parent),
            "childEPCs": [epc(c) for c in children],
            "action": "ADD",
            "bizStep": "packing",
            "disposition": "container_closed",
            **place,
        }
    if kind == "treated" and event.mode in FINAL_MODES:
        if event.mode == "disposal":
            return {
                "type": "ObjectEvent",
                **common,
                "epcList": [epc(batch.code)],
                "action": "DELETE",
                "bizStep": "destroying",
                "disposition": "destroyed",
                **place,
            }
        return {
            "type": "TransformationEvent",
            **common,
            "inputEPCList": [epc(batch.code)],
            "transformationID": f"{ID_BASE}/treatment/{event.id}",
            "bizStep": "destroying",
            "disposition": "destroyed",
            **place,
        }
    step, disposition = STEPS.get(kind, ("storing", "in_progress"))
    if kind == "received" and event.outcome == "rejected":
        disposition = "non_conformant"
    document: dict[str, Any] = {
        "type": "ObjectEvent",
        **common,
        "epcList": [epc(batch.code)],
        "action": "ADD" if kind == "tagged" else "DELETE" if kind == "cancelled" else "OBSERVE",
        "bizStep": step,
        "disposition": disposition,
        **place,
    }
    if kind == "tagged":  # as the tagging stated it (one recorded before it did: the row's)
        details = event.details or {}
        document["quantityList"] = _quantity(
            details.get("category", batch.category_id),
            Decimal(details.get("quantity", batch.quantity)),
            details.get("unit", batch.unit.value),
        )
    elif event.weight_kg is not None:
        document["quantityList"] = _quantity(batch.category_id, Decimal(event.weight_kg), "kg")
    if event.to_organization_id is not None:
        document["destinationList"] = [
            {"type": "possessing_party", "destination": party(event.to_organization_id)}
        ]
    return document


async def batch_document(*, principal: Principal, code: str, timezone: str) -> dict[str, Any]:
    """The EPCIS document of a batch the user may see. A corrected event is declared wrong
    (EPCIS 2.0's errorDeclaration), and each correction of it is written, where it was
    recorded, as the corrective event that stands in its place: the event as the corrections
    so far leave it, itself declared wrong by the next (a consumer keeping what is not declared
    wrong reads every event as its last correction left it). An aggregation a correction undid
    is declared wrong with no corrective event: the batch was never in that container."""
    batch = await batches.get_visible_batch(principal, code)
    events = await CustodyEvent.filter(batch_id=batch.id).order_by("seq")
    related = {e.related_batch_id for e in events if e.related_batch_id}
    codes = dict(await Batch.filter(id__in=related).values_list("id", "code")) if related else {}
    modes = {m.code: m.mode for m in (await catalog.snapshot()).methods.values()}
    # Every correction names the event it corrects, a correction of a correction too.
    fixes: dict[Any, list[CustodyEvent]] = {}
    for event in events:
        if event.corrects_id is not None:
            fixes.setdefault(event.corrects_id, []).append(event)
    tz = ZoneInfo(timezone)

    def error(after: list[CustodyEvent]) -> dict[str, Any] | None:
        """The declaration of an event (or corrective event) that the corrections `after`
        supersede, if any."""
        if not after:
            return None
        voided = next((fix for fix in after if _undoes(fix)), None)
        if voided is not None:
            return _declared(voided, void=True)
        return _declared(after[0])

    written: list[dict[str, Any]] = []
    originals = {e.id: e for e in events}
    for event in events:
        if event.corrects_id is None:
            later = fixes.get(event.id, [])
            written.append(
                to_epcis_event(event, batch=batch, codes=codes, tz=tz, error=error(later))
            )
            continue
        target = originals[event.corrects_id]
        its_fixes = fixes[target.id]
        if any(_undoes(fix) for fix in its_fixes):
            continue  # the event never happened: nothing stands in its place
        upto = its_fixes.index(event) + 1
        corrective = _corrective(target, its_fixes[:upto], modes)
        written.append(
            to_epcis_event(
                corrective, batch=batch, codes=codes, tz=tz, error=error(its_fixes[upto:])
            )
        )
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(datetime.now(UTC)),
        "epcisBody": {"eventList": written},
    }
