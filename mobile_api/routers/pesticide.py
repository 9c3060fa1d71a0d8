"""Pesticide packaging take-back: returns, credits, sales, consignments, ledger, recovery."""

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Response
from pydantic import BaseModel

from mobile_api.bodies import Router
from mobile_api.deps import (
    AppSettings,
    CurrentUser,
    Period,
    PublicRateLimit,
    RegionScoped,
    ReplicaRead,
    Transaction,
)
from mobile_api.media import CSV, XLSX, binary
from mobile_api.presenters import kept, recorded_id, resent
from mobile_api.tables import Format, download, export
from schemas.base import Id
from schemas.pesticide import (
    Cancellation,
    ConsignmentCreate,
    ConsignmentRead,
    CreditRead,
    FarmerIdentity,
    PesticideMetricsRead,
    ReturnCreate,
    ReturnRead,
    SaleCreate,
    SaleRead,
    ShopFigures,
    TownFigures,
)
from wastetrack.core.principal import Principal
from wastetrack.pesticide import service as pesticide

router = Router(tags=["pesticide packaging"])
# A row of the shops' or towns' file: its figures without its materials.
ROW_MODELS: dict[str, type[BaseModel]] = {"shops": ShopFigures, "towns": TownFigures}


@router.post(
    "/m/v1/pesticide/returns",
    response_model=ReturnRead,
    status_code=201,
    responses=resent(ReturnRead),
)
async def record_return(
    body: ReturnCreate,
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> ReturnRead:
    """A farmer returns empty containers; credit points are awarded by the configured rule."""
    result = await pesticide.record_return(
        principal=user, submission=body, secret=settings.secret_key
    )
    return await _return_read(user, recorded_id(result, response))


@router.post("/m/v1/pesticide/returns/{return_id}/cancel", response_model=ReturnRead)
async def cancel_return(
    return_id: Id, body: Cancellation, user: CurrentUser, _: Transaction
) -> ReturnRead:
    """The point cancels a return entered wrong (作废), with a reason: it counts in no recovery
    figure, no ledger and not in the farmer's points from then on; record the right return
    anew. Cancelling it again changes nothing."""
    await pesticide.cancel_return(principal=user, return_id=return_id, reason=body.reason)
    return await _return_read(user, return_id)


async def _return_read(user: Principal, return_id: int) -> ReturnRead:
    """A return of the user's point as it stands, with its farmer's balance."""
    record, balance = await pesticide.get_return(principal=user, return_id=return_id)
    return ReturnRead(
        id=record.id,
        point_id=record.point_id,
        farmer=record.farmer.masked,
        returned_at=record.returned_at,
        lines=record.lines,
        points=record.points,
        balance=balance,
        cancelled_at=record.cancelled_at,
        cancel_reason=record.cancel_reason,
    )


@router.post("/p/v1/credits", response_model=CreditRead, dependencies=[PublicRateLimit])
async def farmer_credits(body: FarmerIdentity, settings: AppSettings) -> Mapping[str, object]:
    """A farmer's credit balance (信用积分), asked with the phone or ID number used at returns;
    no account needed."""
    return await pesticide.credits(identity=body, secret=settings.secret_key)


@router.post(
    "/m/v1/pesticide/sales",
    response_model=SaleRead,
    status_code=201,
    responses=resent(SaleRead),
)
async def record_sale(
    body: SaleCreate, user: CurrentUser, _: Transaction, response: Response
) -> object:
    """A shop records pesticide packages sold, against which take-back is measured; the same
    sale sent again is answered with the one recorded (200)."""
    return kept(await pesticide.record_sale(principal=user, submission=body), response)


@router.post("/m/v1/pesticide/sales/{sale_id}/cancel", response_model=SaleRead)
async def cancel_sale(sale_id: Id, body: Cancellation, user: CurrentUser, _: Transaction) -> object:
    """The shop cancels a sale entered wrong (作废), with a reason: it counts in no recovery
    figure from then on; record the right sale anew. Cancelling it again changes nothing."""
    return await pesticide.cancel_sale(principal=user, sale_id=sale_id, reason=body.reason)


@router.post(
    "/m/v1/pesticide/consignments",
    response_model=ConsignmentRead,
    status_code=201,
    responses=resent(ConsignmentRead),
)
async def record_consignment(
    body: ConsignmentCreate,
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> object:
    """Send collected packaging on to treatment: a batch per material enters the chain."""
    result = await pesticide.record_consignment(
        principal=user, submission=body, secret=settings.secret_key
    )
    record_id = recorded_id(result, response)
    return await pesticide.get_consignment(principal=user, consignment_id=record_id)


@router.get(
    "/m/v1/pesticide/ledger.{extension}",
    response_class=Response,
    responses=binary(CSV, XLSX, description="The ledger as CSV or XLSX"),
)
async def ledger(
    extension: Annotated[str, Path(pattern="^(csv|xlsx)$")],
    user: CurrentUser,
    settings: AppSettings,
    period: Period,
) -> Response:
    """The point's ledger (台账) of returns and consignments, as CSV or XLSX; without dates,
    the current year to date."""
    headers, rows = await pesticide.ledger(
        principal=user,
        date_from=period.date_from,
        date_to=period.date_to,
        timezone=settings.timezone,
    )
    return await download(
        headers,
        rows,
        filename=f"pesticide-ledger-{period.date_from}-{period.date_to}.{extension}",
        sheet="台账",
        format=extension,
        headers=period.headers(),
    )


@router.get("/m/v1/metrics/pesticide", response_model=PesticideMetricsRead)
async def recovery(
    user: RegionScoped,
    settings: AppSettings,
    period: Period,
    _: ReplicaRead,
    format: Format = "json",
    table: Annotated[
        Literal["materials", "shops", "towns"],
        Query(
            description="which table a CSV or XLSX holds: per material, by shop or by town"
            " (a shop's or town's own materials stay in the JSON)"
        ),
    ] = "materials",
) -> Any:
    """Recovery rate of pesticide packaging: returned ÷ sold, in all, per material, by shop and
    by town, in containers and in kg (docs/streams/pesticide.md); a table is one of them."""
    result = await pesticide.recovery_metrics(
        principal=user,
        date_from=period.date_from,
        date_to=period.date_to,
        timezone=settings.timezone,
    )
    if format != "json":
        # The region's own figure (the one the plan judges) leads the default table, its
        # `material` empty, as the cells' and sorting's spreadsheets lead with theirs.
        headline = {
            "material": None,
            "sold": result["sold"],
            "returned": result["returned"],
            "returned_uncounted_kg": result["returned_uncounted_kg"],
            "recovery_rate": result["recovery_rate"],
            "kg": result["kg"],
        }
        tables: dict[str, Sequence[Mapping[str, Any]]] = {
            "materials": [headline, *result["materials"]],
            "shops": result["by_shop"],
            "towns": result["by_town"],
        }
        rows = tables[table]
        # A shop's or town's row without its materials, in its model's columns: a region with
        # no shop has a file with its header, as a record file does.
        return await export(
            [{k: v for k, v in row.items() if k != "materials"} for row in rows],
            name=f"pesticide-recovery-{table}",
            format=format,
            timezone=settings.timezone,
            period=period,
            model=ROW_MODELS.get(table),
        )
    return result
