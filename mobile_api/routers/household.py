"""Household waste sorting: pickups at collection points, sorting coverage and accuracy."""

import asyncio
from typing import Any

from fastapi import Response

from mobile_api.bodies import Router
from mobile_api.deps import (
    AdminOnly,
    AppSettings,
    CurrentUser,
    Period,
    RegionScoped,
    ReplicaRead,
    Transaction,
)
from mobile_api.media import PNG, binary
from mobile_api.presenters import recorded_id, resent
from mobile_api.tables import Format, export
from schemas.base import Code, Id
from schemas.household import (
    PickupCreate,
    PickupRead,
    RegionSorting,
    RegionSortingRead,
    SortingMetricsRead,
)
from schemas.registry import RegionRead
from wastetrack.batches import labels
from wastetrack.core import codes
from wastetrack.household import service as household

router = Router(tags=["household"])


@router.post(
    "/m/v1/pickups",
    response_model=PickupRead,
    status_code=201,
    responses=resent(PickupRead),
)
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
    responses=binary(PNG, description="The collection point's QR plate"),
)
async def site_label(code: Code, settings: AppSettings, _: CurrentUser) -> Response:
    """A site's fixed QR plate as a PNG: a collection point's, or another site's."""
    site = await household.site_from_scan(code, secret=settings.secret_key, field="code")
    # A collection point's plate says so; another organization's site is only a site.
    point = household.takes_pickups(site)
    text = labels.LabelText(
        code=site.code or "",
        url=codes.qr_url(site.code or "", base_url=settings.base_url, secret=settings.secret_key),
        category_zh="生活垃圾分类投放点" if point else "单位站点",
        category_en="Sorting collection point" if point else "Site",
        stream_zh=site.name,
        stream_en=site.name,
        colour="#2E8B57",
        subtitle_field="name",
    )
    png = await asyncio.to_thread(labels.render_label_png, text)  # CPU: off the event loop
    return Response(png, media_type="image/png")


@router.put("/admin/v1/regions/{region_id}/sorting", response_model=RegionSortingRead)
async def set_sorting(
    region_id: Id, body: RegionSorting, settings: AppSettings, _: AdminOnly, __: Transaction
) -> object:
    """Record since when a community or village has sorted collection, or that it has none
    from a day on; the periods that ended keep counting for their days."""
    region = await household.set_sorted_collection(
        region_id=region_id,
        since=body.sorted_collection_since,
        ended_on=body.ended_on,
        timezone=settings.timezone,
    )
    ended = await household.sorted_collection_ended(region)
    return {**RegionRead.model_validate(region).model_dump(), "sorted_collection_ended": ended}


@router.get("/m/v1/metrics/sorting", response_model=SortingMetricsRead)
async def sorting_metrics(
    user: RegionScoped,
    settings: AppSettings,
    period: Period,
    _: ReplicaRead,
    format: Format = "json",
) -> Any:
    """Sorting coverage by town and sorting accuracy, with their counts."""
    if format != "json":
        # The area's headline first, then each town, then what lies in no town (the city's
        # own region): the rows below the headline add up to it; every row names its period.
        rows = await household.sorting_rows(
            principal=user,
            date_from=period.date_from,
            date_to=period.date_to,
            timezone=settings.timezone,
        )
        return await export(
            list(rows),
            name="sorting",
            format=format,
            timezone=settings.timezone,
            period=period,
        )
    return await household.sorting_metrics(
        principal=user,
        date_from=period.date_from,
        date_to=period.date_to,
        timezone=settings.timezone,
    )
