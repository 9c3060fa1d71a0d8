"""Household waste sorting: pickups at collection points, sorting coverage and accuracy."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from mobile_api.deps import (
    AdminOnly,
    AppSettings,
    CurrentUser,
    RegionScoped,
    Transaction,
)
from mobile_api.presenters import recorded_id
from mobile_api.tables import Format, export
from schemas.household import PickupCreate, PickupRead, RegionSorting, SortingMetricsRead
from schemas.registry import RegionRead
from wastetrack.batches import labels
from wastetrack.core import codes
from wastetrack.household import service as household

router = APIRouter(tags=["household"])


@router.post("/m/v1/pickups", response_model=PickupRead, status_code=201)
async def record_pickup(
    body: PickupCreate,
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> PickupRead:
    """Record a pickup of one class at a scanned collection point, with its quality check."""
    result = await household.record_pickup(
        principal=user, submission=body, secret=settings.secret_key
    )
    record_id = recorded_id(result, response)
    pickup = await household.get_pickup(principal=user, pickup_id=record_id)
    return PickupRead.model_validate(
        {
            **{
                name: getattr(pickup, name)
                for name in PickupRead.model_fields
                if name != "batch_code"
            },
            "batch_code": pickup.batch.code,
        }
    )


@router.get(
    "/m/v1/sites/{code}/label.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def site_label(code: str, settings: AppSettings, _: CurrentUser) -> Response:
    """The collection point's fixed QR plate as a PNG."""
    site = await household.site_from_scan(code, secret=settings.secret_key, field="code")
    text = labels.LabelText(
        code=site.code or "",
        url=codes.qr_url(site.code or "", base_url=settings.base_url, secret=settings.secret_key),
        category_zh="生活垃圾分类投放点",
        category_en="Sorting collection point",
        stream_zh=site.name,
        stream_en=site.name,
        colour="#2E8B57",
    )
    return Response(labels.render_label_png(text), media_type="image/png")


@router.put("/admin/v1/regions/{region_id}/sorting", response_model=RegionRead)
async def set_sorting(region_id: int, body: RegionSorting, _: AdminOnly, __: Transaction) -> object:
    """Record since when a community or village has sorted collection."""
    return await household.set_sorted_collection(
        region_id=region_id, since=body.sorted_collection_since
    )


Period = Annotated[date, Query(description="calendar day in the city's time zone, included")]


@router.get("/m/v1/metrics/sorting", response_model=SortingMetricsRead)
async def sorting_metrics(
    user: RegionScoped,
    settings: AppSettings,
    date_from: Period,
    date_to: Period,
    format: Format = "json",
) -> Any:
    """Sorting coverage by town and sorting accuracy, with their counts."""
    result = await household.sorting_metrics(
        principal=user, date_from=date_from, date_to=date_to, timezone=settings.timezone
    )
    if format != "json":
        return export(result["towns"], name="sorting", format=format)
    return result
