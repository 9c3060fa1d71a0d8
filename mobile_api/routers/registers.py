"""Registers (台账) per organization: incoming, outgoing, storage inventory and the medical
handover register, as JSON, CSV or XLSX."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Query

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, CurrentUser, Period
from mobile_api.tables import Format, export
from schemas.base import Id, Schema
from schemas.registers import (
    BalanceRead,
    IncomingRead,
    InventoryBatchRead,
    InventoryRead,
    MedicalHandoverRead,
    OutgoingRead,
)
from wastetrack.registers import handovers, movements
from wastetrack.registers import service as registers

router = Router(prefix="/m/v1/registers", tags=["registers"])

OrganizationId = Annotated[
    Id | None, Query(description="whose register; default your own organization")
]
SiteId = Annotated[
    Id | None, Query(description="only batches produced at this site of the organization")
]


async def _register(
    load: Callable[..., Awaitable[Any]],
    *,
    user: CurrentUser,
    settings: AppSettings,
    period: Period,
    organization_id: int | None,
    site_id: int | None,
) -> Any:
    """One register of the organization the user may read, over the period's city days."""
    scope = await movements.scope_for(
        principal=user, organization_id=organization_id, site_id=site_id
    )
    return await load(
        scope=scope, date_from=period.date_from, date_to=period.date_to, timezone=settings.timezone
    )


async def _answer(
    rows: list[Any],
    read: type[Schema],
    *,
    name: str,
    format: str,
    period: Period,
    timezone: str,
) -> Any:
    """The rows as JSON, or as a CSV or XLSX download of the same read model (its times on the
    city's clock)."""
    if format == "json":
        return rows
    return await export(
        [read.model_validate(r) for r in rows],
        name=name,
        format=format,
        timezone=timezone,
        headers=period.headers(),
        model=read,
    )


@router.get("/incoming", response_model=list[IncomingRead])
async def incoming(
    user: CurrentUser,
    settings: AppSettings,
    period: Period,
    organization_id: OrganizationId = None,
    site_id: SiteId = None,
    format: Format = "json",
) -> Any:
    """入库 register: batches that came into the organization's custody in the period."""
    rows = await _register(
        registers.incoming,
        user=user,
        settings=settings,
        period=period,
        organization_id=organization_id,
        site_id=site_id,
    )
    return await _answer(
        rows,
        IncomingRead,
        name="incoming",
        format=format,
        period=period,
        timezone=settings.timezone,
    )


@router.get("/outgoing", response_model=list[OutgoingRead])
async def outgoing(
    user: CurrentUser,
    settings: AppSettings,
    period: Period,
    organization_id: OrganizationId = None,
    site_id: SiteId = None,
    format: Format = "json",
) -> Any:
    """出库 register: batches that left the organization's custody in the period."""
    rows = await _register(
        registers.outgoing,
        user=user,
        settings=settings,
        period=period,
        organization_id=organization_id,
        site_id=site_id,
    )
    return await _answer(
        rows,
        OutgoingRead,
        name="outgoing",
        format=format,
        period=period,
        timezone=settings.timezone,
    )


@router.get("/inventory", response_model=InventoryRead)
async def inventory(
    user: CurrentUser,
    settings: AppSettings,
    period: Period,
    organization_id: OrganizationId = None,
    site_id: SiteId = None,
    format: Format = "json",
    table: Annotated[
        Literal["batches", "balance"],
        Query(description="which table a CSV or XLSX holds: the batches held, or the balance"),
    ] = "batches",
) -> Any:
    """库存 register: batches held at the end of the period with their storage days, and per
    waste category opening + incoming - outgoing = closing."""
    result = InventoryRead.model_validate(
        await _register(
            registers.inventory,
            user=user,
            settings=settings,
            period=period,
            organization_id=organization_id,
            site_id=site_id,
        )
    )
    if format != "json":
        # Both tables are counted over the period (the batches held at its end, their storage
        # days to it; the balance from its first day to its last): every row names it.
        return await export(
            result.batches if table == "batches" else result.balance,
            name=f"inventory-{table}",
            format=format,
            timezone=settings.timezone,
            period=period,
            model=InventoryBatchRead if table == "batches" else BalanceRead,
        )
    return result


@router.get("/medical-handover", response_model=list[MedicalHandoverRead])
async def medical_handover(
    user: CurrentUser,
    settings: AppSettings,
    period: Period,
    organization_id: OrganizationId = None,
    site_id: SiteId = None,
    format: Format = "json",
) -> Any:
    """医疗废物交接登记: medical-waste handovers between the organization and another, with
    the user who recorded each side; kept at least 3 years."""
    rows = await _register(
        handovers.medical_handovers,
        user=user,
        settings=settings,
        period=period,
        organization_id=organization_id,
        site_id=site_id,
    )
    return await _answer(
        rows,
        MedicalHandoverRead,
        name="medical-handover",
        format=format,
        period=period,
        timezone=settings.timezone,
    )
