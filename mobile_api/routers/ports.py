"""Fishing ports: berths, port calls, deliveries and receipts, clean-ups, sea areas, metrics."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import Response

from mobile_api.bodies import Router
from mobile_api.deps import (
    AdminOnly,
    AppSettings,
    CityPeriod,
    CurrentUser,
    Paging,
    Period,
    RegionScoped,
    ReplicaRead,
    Transaction,
)
from mobile_api.media import PDF, PNG, binary
from mobile_api.presenters import (
    NEXT_PAGE,
    berth_read,
    cleanup_read,
    delivery_read,
    kept,
    recorded_id,
    resent,
)
from mobile_api.tables import Format, export
from schemas.base import Code, Id, QueryBoolean
from schemas.ports import (
    BerthCreate,
    BerthRead,
    CleanUpCreate,
    CleanUpRead,
    DeliveryCreate,
    DeliveryRead,
    FishingPortCreate,
    FishingPortRead,
    FloatReplacementCreate,
    FloatReplacementRead,
    PortCallClose,
    PortCallCreate,
    PortCallRead,
    PortMetric,
    PortMetricsRead,
    SeaAreaMetricsRead,
    SeaAreaRead,
)
from wastetrack.batches import labels
from wastetrack.core import codes
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings
from wastetrack.ports import berths, cleanups, deliveries, metrics, port_calls
from wastetrack.registry import access

router = Router(tags=["ports"])


@router.put("/admin/v1/ports/{port_id}", response_model=FishingPortRead)
async def register_port(
    port_id: Id, body: FishingPortCreate, _: AdminOnly, __: Transaction
) -> object:
    """Record a fishing port's grade, position and reception facility."""
    return await berths.register_port(port_id=port_id, **body.model_dump())


@router.post("/admin/v1/ports/{port_id}/berths", response_model=BerthRead, status_code=201)
async def add_berth(
    port_id: Id, body: BerthCreate, settings: AppSettings, _: AdminOnly, __: Transaction
) -> BerthRead:
    """Add a berth; its fixed QR code is in the answer."""
    return berth_read(await berths.add_berth(port_id=port_id, **body.model_dump()), settings)


@router.get("/m/v1/ports/{port_id}/berths", response_model=list[BerthRead])
async def list_berths(port_id: Id, settings: AppSettings, user: CurrentUser) -> list[BerthRead]:
    """A port's berths and their QR codes (its operators, managers of its region, admins)."""
    await access.readable_organization(user, port_id, field="port_id")
    return [berth_read(b, settings) for b in await berths.list_berths(port_id=port_id)]


@router.get(
    "/m/v1/berths/{code}/label.png",
    response_class=Response,
    responses=binary(PNG, description="The berth's QR plate"),
)
async def berth_label(code: Code, settings: AppSettings, _: CurrentUser) -> Response:
    """The berth's QR plate as a PNG, for printing and fixing at the quay."""
    berth = await berths.berth_from_scan(code, secret=settings.secret_key, field="code")
    text = labels.LabelText(
        code=berth.code,
        url=codes.qr_url(berth.code, base_url=settings.base_url, secret=settings.secret_key),
        category_zh=f"泊位 {berth.name}",
        category_en=f"Berth {berth.name}",
        stream_zh="船舶垃圾交付扫码",
        stream_en="Scan to deliver ship waste",
        colour="#0077B6",
        title_field="name",
    )
    png = await asyncio.to_thread(labels.render_label_png, text)  # CPU: off the event loop
    return Response(png, media_type="image/png")


@router.post("/m/v1/port-calls", response_model=PortCallRead, status_code=201)
async def open_port_call(body: PortCallCreate, user: CurrentUser, _: Transaction) -> object:
    """Record a vessel's arrival at your port, with its advance waste notification."""
    return await port_calls.open_port_call(
        principal=user, **body.model_dump(exclude={"notification"}), notification=body.notification
    )


@router.post("/m/v1/port-calls/{port_call_id}/departure", response_model=PortCallRead)
async def close_port_call(
    port_call_id: Id, body: PortCallClose, user: CurrentUser, _: Transaction
) -> object:
    """Record the vessel's departure."""
    return await port_calls.close_port_call(
        principal=user, port_call_id=port_call_id, departed_at=body.departed_at
    )


@router.get("/m/v1/port-calls", response_model=list[PortCallRead], responses={200: NEXT_PAGE})
async def list_port_calls(
    user: CurrentUser,
    paged: Paging,
    vessel_id: Id | None = None,
    open_only: QueryBoolean = False,
) -> Sequence[object]:
    """Port calls at your port (managers: in their region), latest arrival first."""
    return await paged.read(
        port_calls.list_port_calls, principal=user, vessel_id=vessel_id, open_only=open_only
    )


@router.post(
    "/m/v1/deliveries",
    response_model=DeliveryRead,
    status_code=201,
    responses=resent(DeliveryRead),
)
async def record_delivery(
    body: DeliveryCreate,
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> DeliveryRead:
    """Record what a vessel handed over at a scanned berth; each line becomes a batch."""
    result = await deliveries.record_delivery(
        principal=user, submission=body, secret=settings.secret_key
    )
    record_id = recorded_id(result, response)
    delivery = await deliveries.get_delivery(principal=user, delivery_id=record_id)
    return delivery_read(delivery, await deliveries.current_lines(delivery), settings)


@router.get("/m/v1/deliveries", response_model=list[DeliveryRead], responses={200: NEXT_PAGE})
async def list_deliveries(
    user: CurrentUser, settings: AppSettings, paged: Paging, vessel_id: Id | None = None
) -> list[DeliveryRead]:
    """Deliveries, newest first; with vessel_id, that vessel's receipts."""
    found, next_cursor = await deliveries.list_deliveries(
        principal=user, vessel_id=vessel_id, limit=paged.limit, cursor=paged.cursor
    )
    lines = await deliveries.lines_now(found)
    return paged.answer([delivery_read(d, lines[d.id], settings) for d in found], next_cursor)


@router.get("/m/v1/deliveries/{delivery_id}", response_model=DeliveryRead)
async def get_delivery(delivery_id: Id, user: CurrentUser, settings: AppSettings) -> DeliveryRead:
    """One delivery."""
    delivery = await deliveries.get_delivery(principal=user, delivery_id=delivery_id)
    return delivery_read(delivery, await deliveries.current_lines(delivery), settings)


@router.get(
    "/m/v1/deliveries/{delivery_id}/receipt.pdf",
    response_class=Response,
    responses=binary(PDF, description="The waste delivery receipt"),
)
async def delivery_receipt(delivery_id: Id, user: CurrentUser, settings: AppSettings) -> Response:
    """The waste delivery receipt for the vessel (IMO fields), with a QR back to the record."""
    pdf = await deliveries.receipt_pdf(
        principal=user,
        delivery_id=delivery_id,
        base_url=settings.base_url,
        secret=settings.secret_key,
        timezone=settings.timezone,
    )
    return Response(pdf, media_type="application/pdf")


@router.post(
    "/m/v1/cleanups",
    response_model=CleanUpRead,
    status_code=201,
    responses=resent(CleanUpRead),
)
async def record_cleanup(
    body: CleanUpCreate,
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> CleanUpRead:
    """Record a beach or sea-surface clean-up; the litter enters the custody chain."""
    result = await cleanups.record_cleanup(
        principal=user, submission=body, secret=settings.secret_key
    )
    record_id = recorded_id(result, response)
    return cleanup_read(await cleanups.get_cleanup(principal=user, cleanup_id=record_id))


@router.get("/m/v1/cleanups", response_model=list[CleanUpRead], responses={200: NEXT_PAGE})
async def list_cleanups(user: CurrentUser, paged: Paging) -> list[CleanUpRead]:
    """Clean-ups of your organization (managers: in their region), newest first."""
    found, next_cursor = await cleanups.list_cleanups(
        principal=user, limit=paged.limit, cursor=paged.cursor
    )
    return paged.answer([cleanup_read(c) for c in found], next_cursor)


@router.post(
    "/m/v1/float-replacements",
    response_model=FloatReplacementRead,
    status_code=201,
    responses=resent(FloatReplacementRead),
)
async def record_float_replacement(
    body: FloatReplacementCreate, user: CurrentUser, _: Transaction, response: Response
) -> object:
    """Record aquaculture floats replaced (浮球整治); the same record sent again is answered
    with the one kept (200)."""
    made = await cleanups.record_float_replacement(principal=user, submission=body)
    return kept(made, response)


@router.get(
    "/m/v1/float-replacements",
    response_model=list[FloatReplacementRead],
    responses={200: NEXT_PAGE},
)
async def list_float_replacements(user: CurrentUser, paged: Paging) -> Sequence[object]:
    """Float replacements of your organization (managers: in their region), latest first."""
    return await paged.read(cleanups.list_float_replacements, principal=user)


@router.get("/m/v1/sea-areas", response_model=list[SeaAreaRead])
async def list_sea_areas(_: CurrentUser) -> Sequence[object]:
    """Named sea areas (无废航区) with their polygons."""
    return await metrics.list_sea_areas()


async def _metrics_answer(
    compute: Callable[..., Awaitable[Mapping[str, Any]]],
    *,
    principal: Principal,
    settings: Settings,
    period: CityPeriod,
    format: Format,
    name: str,
    rows: Callable[[Mapping[str, Any]], list[Any]],
) -> Any:
    """A port metric over the period: the JSON document, or its `rows` as a CSV/XLSX file."""
    result = await compute(
        principal=principal,
        date_from=period.date_from,
        date_to=period.date_to,
        timezone=settings.timezone,
    )
    if format != "json":
        return await export(
            rows(result),
            name=name,
            format=format,
            timezone=settings.timezone,
            period=period,
        )
    return result


def _period_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """The period a metric covers, for every row of its file: a saved file keeps no header."""
    return {"date_from": result["date_from"], "date_to": result["date_to"]}


# A port's own fields, every row of its groups carries them: the port entry's fields but its
# groups (read from the read model, so a field the JSON gains is in the file too).
_PORT_FIELDS = tuple(name for name in PortMetric.model_fields if name != "groups")


def _port_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ports' file: the headline 渔港污水和垃圾收集处置率 first (the figure the city is
    judged on, with the weaker group's counts and its own definition), then the listed ports'
    pooled groups, then each port's groups, each row with the port's own fields (`_PORT_FIELDS`;
    a port with no group has one row of them), and last the share of listed ports with a
    reception facility (its own columns); `figure` tells them apart."""
    listed = result["listed_ports"]
    headline = listed["headline"]
    rate_keys = ("numerator", "denominator", "rate", "unit", "definition")
    no_port = {**dict.fromkeys(_PORT_FIELDS), "listed": True}
    rows: list[dict[str, Any]] = [
        {
            "figure": "headline",
            **no_port,
            "group": headline["group"],
            "name_zh": "渔港污水和垃圾收集处置率",
            "expected": None,
            "delivered": None,
            "treated": None,
            "estimated_kg": None,
            "collection_treatment_rate": {key: headline[key] for key in rate_keys},
        },
        *({"figure": "listed_ports", **no_port, **group} for group in listed["groups"]),
        *(
            {"figure": "port", **{name: port[name] for name in _PORT_FIELDS}, **group}
            for port in result["ports"]
            for group in port["groups"] or [{}]
        ),
        {
            "figure": "reception_facility_share",
            "listed": True,
            "name_zh": "配备接收设施的渔港占比",
            "reception_facility_share": result["reception_facility_share"],
        },
    ]
    return [{**_period_of(result), **row} for row in rows]


@router.get("/m/v1/metrics/ports", response_model=PortMetricsRead)
async def port_metrics(
    user: RegionScoped,
    settings: AppSettings,
    period: Period,
    _: ReplicaRead,
    format: Format = "json",
) -> Any:
    """Port garbage and sewage collection-and-treatment rate per port, with its counts."""
    return await _metrics_answer(
        metrics.port_metrics,
        principal=user,
        settings=settings,
        period=period,
        format=format,
        name="ports",
        rows=_port_rows,
    )


@router.get("/m/v1/metrics/sea-areas", response_model=SeaAreaMetricsRead)
async def sea_area_metrics(
    user: RegionScoped,
    settings: AppSettings,
    period: Period,
    _: ReplicaRead,
    format: Format = "json",
) -> Any:
    """Per sea area, the share of its vessels whose deliveries were recorded."""
    return await _metrics_answer(
        metrics.sea_area_metrics,
        principal=user,
        settings=settings,
        period=period,
        format=format,
        name="sea-areas",
        rows=lambda result: [{**_period_of(result), **area} for area in result["areas"]],
    )
