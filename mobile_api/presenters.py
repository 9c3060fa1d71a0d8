"""Shapes domain objects into response contracts where a field needs the server's settings."""

from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel

from schemas.batches import BatchRead
from schemas.manifests import DiscrepancyRead, LegRead, ManifestRead, RevisionRead
from schemas.ports import BerthRead, CleanUpRead, DeliveryLineRead, DeliveryRead
from wastetrack.batches.models import Batch
from wastetrack.batches.service import SplitLinks
from wastetrack.core import codes, observability
from wastetrack.core.settings import Settings
from wastetrack.custody import labels
from wastetrack.custody.intake import RecordResult
from wastetrack.manifests.models import Manifest
from wastetrack.ports import deliveries
from wastetrack.ports.models import Berth, CleanUp, Delivery

_BATCH_ATTRIBUTES = (
    "code",
    "identifier",
    "stream_id",
    "category_id",
    "waste_code",
    "hazard",
    "producer_id",
    "origin_site_id",
    "quantity",
    "unit",
    "state",
    "holder_id",
    "carrier_id",
    "destination_id",
    "parent_id",
    "tagged_at",
    "created_at",
    "last_seq",
)


T = TypeVar("T")


def batch_read(batch: Batch, settings: Settings, links: SplitLinks | None = None) -> BatchRead:
    values = {name: getattr(batch, name) for name in _BATCH_ATTRIBUTES}
    if links is not None:
        values.update(split_from=links.split_from, remainders=links.remainders)
    values["qr_url"] = codes.qr_url(
        batch.code, base_url=settings.base_url, secret=settings.secret_key
    )
    return BatchRead.model_validate(values)


STATE_NAMES_ZH: dict[str, str] = {
    "unbound": labels.UNBOUND_LABEL,
    **{str(state): name for state, name in labels.STATE_LABELS.items()},
}


def berth_read(berth: Berth, settings: Settings) -> BerthRead:
    url = codes.qr_url(berth.code, base_url=settings.base_url, secret=settings.secret_key)
    return BerthRead(
        id=berth.id,
        port_id=berth.port_id,
        name=berth.name,
        code=berth.code,
        qr_url=url,
        latitude=berth.latitude,
        longitude=berth.longitude,
        geofence_m=berth.geofence_m,
    )


def delivery_read(
    delivery: Delivery, lines: list[deliveries.LineNow], settings: Settings
) -> DeliveryRead:
    """A delivery with its lines as their batches stand (`deliveries.current_lines`)."""
    return DeliveryRead(
        id=delivery.id,
        receipt_number=delivery.receipt_number,
        receipt_url=deliveries.receipt_url(
            delivery.receipt_number, base_url=settings.base_url, secret=settings.secret_key
        ),
        vessel_id=delivery.vessel_id,
        port_id=delivery.port_id,
        berth_id=delivery.berth_id,
        port_call_id=delivery.port_call_id,
        started_at=delivery.started_at,
        ended_at=delivery.ended_at,
        distance_m=delivery.distance_m,
        flags=delivery.flags,
        recorded_by="port" if delivery.signed_by_port else "vessel",
        lines=[
            DeliveryLineRead(
                category=line.category_id,
                volume_m3=line.volume_m3,
                mass_kg=line.mass_kg,
                mass_derived=line.mass_derived,
                batch_code=line.batch_code,
                corrected=line.corrected,
                acceptance=line.acceptance.value,
            )
            for line in lines
        ],
    )


def cleanup_read(cleanup: CleanUp) -> CleanUpRead:
    """A clean-up; its batch must be fetched."""
    return CleanUpRead.model_validate(
        {
            **{
                name: getattr(cleanup, name)
                for name in CleanUpRead.model_fields
                if name != "batch_code"
            },
            "batch_code": cleanup.batch.code,
        }
    )


def manifest_read(manifest: Manifest) -> ManifestRead:
    """A manifest with its legs, discrepancies and revisions (all fetched)."""
    return ManifestRead.model_validate(
        {
            **{
                name: getattr(manifest, name)
                for name in ManifestRead.model_fields
                if name not in ("legs", "discrepancies", "revisions")
            },
            "legs": [
                LegRead.model_validate(leg)
                for leg in sorted(manifest.legs, key=lambda leg: leg.seq)
            ],
            "discrepancies": [DiscrepancyRead.model_validate(d) for d in manifest.discrepancies],
            "revisions": [RevisionRead.model_validate(r) for r in manifest.revisions],
        }
    )


def resent(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers a resend with what its first send recorded:
    the 200 beside the first send's 201, in the same shape (docs/integrations.md)."""
    return {
        200: {
            "model": model,
            "description": "Sent before: what the first send recorded, which stays written once",
        }
    }


def link_next(request: Request, response: Response, **query: str) -> None:
    """Point the client at the next page or file: a `Link: <…>; rel="next"` header (RFC 8288)
    to this request's URL with `query` replacing its parameters of those names."""
    following = request.url.include_query_params(**query)
    response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'


NEXT_PAGE = {
    "headers": {
        "Link": {
            "description": 'the next page, `<…&cursor=…>; rel="next"`; absent on the last page',
            "schema": {"type": "string"},
        }
    }
}
"""The 200's documentation for a list read page by page (``responses={200: NEXT_PAGE}``)."""


def kept(made: tuple[T, bool], response: Response) -> T:
    """The row a write made (201), or found made by an earlier send of the same (200)."""
    row, created = made
    if not created:
        response.status_code = 200
    return row


def recorded_id(result: RecordResult, response: Response) -> int:
    """The id of the record a submission made or had made before: a refusal or a conflicting
    resend raises, a same-content resend answers 200 instead of 201."""
    observability.posted_results("record", [result])
    if result.error is not None:
        raise result.error
    if result.status == "duplicate":
        response.status_code = 200
    assert result.record_id is not None
    return result.record_id
