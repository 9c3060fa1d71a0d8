"""A batch's custody history as a GS1 EPCIS 2.0 JSON-LD document: the standard exchange format
for supply-chain events, so a batch's story can leave this system in a form others read."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from wastetrack.batches import service as batches
from wastetrack.batches.models import Batch
from wastetrack.catalog.service import FINAL_MODES
from wastetrack.core.principal import Principal
from wastetrack.custody.models import CustodyEvent

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
ID_BASE = "https://id.wastetrack.dev"
UOM = {"kg": "KGM", "m3": "MTQ", "count": "H87"}
# Custody event type → (EPCIS bizStep, disposition) for the plain ObjectEvents.
STEPS = {
    "tagged": ("commissioning", "active"),
    "collected": ("collecting", "in_progress"),
    "handed_over": ("shipping", "in_transit"),
    "in_transit": ("departing", "in_transit"),
    "stored": ("storing", "in_progress"),
    "received": ("receiving", "in_progress"),
    "corrected": ("inspecting", "in_progress"),
    "cancelled": ("decommissioning", "inactive"),
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


def _quantity(batch: Batch, amount: Decimal, unit: str) -> list[dict[str, Any]]:
    return [
        {
            "epcClass": f"{ID_BASE}/category/{batch.category_id}",
            "quantity": float(amount),
            "uom": UOM[unit],
        }
    ]


def to_epcis_event(
    event: CustodyEvent,
    *,
    batch: Batch,
    codes: dict[int, str],
    tz: ZoneInfo,
    corrections: dict[Any, list[CustodyEvent]],
) -> dict[str, Any]:
    """One custody event as an EPCIS ObjectEvent, AggregationEvent or TransformationEvent."""
    common: dict[str, Any] = {
        "eventID": f"urn:uuid:{event.id}",
        "eventTime": _time(event.device_time),
        "eventTimeZoneOffset": _offset(event.device_time, tz),
        "recordTime": _time(event.server_time),
    }
    place: dict[str, Any] = {"bizLocation": {"id": party(event.organization_id)}}
    if event.latitude is not None and event.longitude is not None:
        place["readPoint"] = {"id": f"geo:{event.latitude},{event.longitude}"}
    later = corrections.get(event.id)
    if later:
        common["errorDeclaration"] = {
            "declarationTime": _time(later[0].server_time),
            "reason": "incorrect_data",
            "correctiveEventIDs": [f"urn:uuid:{c.id}" for c in later],
        }
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
    if kind == "tagged":
        document["quantityList"] = _quantity(batch, batch.quantity, batch.unit.value)
    elif event.weight_kg is not None:
        document["quantityList"] = _quantity(batch, Decimal(event.weight_kg), "kg")
    if event.to_organization_id is not None:
        document["destinationList"] = [
            {"type": "possessing_party", "destination": party(event.to_organization_id)}
        ]
    return document


async def batch_document(*, principal: Principal, code: str, timezone: str) -> dict[str, Any]:
    """The EPCIS document of a batch the user may see."""
    batch = await batches.get_visible_batch(principal, code)
    events = await CustodyEvent.filter(batch_id=batch.id).order_by("seq")
    related = {e.related_batch_id for e in events if e.related_batch_id}
    codes = dict(await Batch.filter(id__in=related).values_list("id", "code")) if related else {}
    corrections: dict[Any, list[CustodyEvent]] = {}
    for event in events:
        if event.corrects_id is not None:
            corrections.setdefault(event.corrects_id, []).append(event)
    tz = ZoneInfo(timezone)
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(datetime.now(UTC)),
        "epcisBody": {
            "eventList": [
                to_epcis_event(e, batch=batch, codes=codes, tz=tz, corrections=corrections)
                for e in events
            ]
        },
    }
