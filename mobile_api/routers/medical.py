"""Alerts, a batch's fate and EPCIS history, and which clinics the medical-waste collection
reaches."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mobile_api.deps import AppSettings, CurrentUser, ManagerOnly, RegionScoped, Transaction
from mobile_api.tables import Format, export
from schemas.alerts import AlertRead, MedicalCoverageRead
from schemas.batches import FateRead
from wastetrack.alerts import service as alerts
from wastetrack.custody import epcis
from wastetrack.custody import service as custody
from wastetrack.medical import service as medical
from wastetrack.rollups import service as rollups

router = APIRouter(prefix="/m/v1", tags=["medical", "alerts"])


@router.get("/alerts", response_model=list[AlertRead])
async def list_alerts(
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    open_only: bool = True,
    format: Format = "json",
) -> Any:
    """Alerts of your organization (managers: their region): overdue storage or manifest
    decisions, weight discrepancies, idle batches, scan anomalies."""
    result = await alerts.list_alerts(
        principal=user,
        open_only=open_only,
        weight_tolerance=settings.weight_discrepancy_tolerance,
        idle_hours=settings.idle_batch_hours,
    )
    if format != "json":
        return export([AlertRead.model_validate(a) for a in result], name="alerts", format=format)
    return result


@router.post("/alerts/{alert_id}/ack", response_model=AlertRead)
async def acknowledge_alert(alert_id: int, user: ManagerOnly, _: Transaction) -> object:
    """Acknowledge an alert; who and when are kept."""
    return await alerts.acknowledge(principal=user, alert_id=alert_id)


@router.get("/batches/{code}/fate", response_model=FateRead)
async def batch_fate(code: str, user: CurrentUser) -> dict:
    """What became of a batch, followed into the containers it was aggregated into."""
    return await custody.fate(principal=user, code=code)


@router.get(
    "/batches/{code}/epcis.jsonld",
    response_class=JSONResponse,
    responses={200: {"content": {"application/ld+json": {}}}},
)
async def batch_epcis(code: str, user: CurrentUser, settings: AppSettings) -> JSONResponse:
    """The batch's custody history as a GS1 EPCIS 2.0 JSON-LD document."""
    document = await epcis.batch_document(principal=user, code=code, timezone=settings.timezone)
    return JSONResponse(document, media_type="application/ld+json")


@router.get("/metrics/utilization")
async def utilization(
    user: RegionScoped,
    date_from: Annotated[date, Query(description="city day, included")],
    date_to: Annotated[date, Query(description="city day, included")],
    format: Format = "json",
) -> Any:
    """Generated and treated kilograms by stream, category and mode, with the utilization and
    harmless-treatment rates, from the daily roll-ups."""
    result = await rollups.utilization(
        region_path=user.region_path, date_from=date_from, date_to=date_to
    )
    if format != "json":
        return export(result["categories"], name="utilization", format=format)
    return result


@router.get("/metrics/mass-balance")
async def mass_balance(
    user: RegionScoped,
    date_from: Annotated[date, Query(description="city day, included")],
    date_to: Annotated[date, Query(description="city day, included")],
    format: Format = "json",
) -> Any:
    """Kilograms declared at tagging against kilograms weighed on receipt, per stream and
    category, for the batches received in the period."""
    result = await rollups.mass_balance(
        region_path=user.region_path, date_from=date_from, date_to=date_to
    )
    if format != "json":
        return export(result["categories"], name="mass-balance", format=format)
    return result


@router.get("/metrics/medical-coverage", response_model=MedicalCoverageRead)
async def medical_coverage(
    user: RegionScoped, days: Annotated[int, Query(ge=1, le=366)] = 30, format: Format = "json"
) -> Any:
    """Clinics and hospitals collected in the last N days (≤ 19-bed clinics apart), with the
    ones missed."""
    result = await medical.collection_coverage(principal=user, days=days)
    if format != "json":
        return export(result["not_collected"], name="medical-coverage-missed", format=format)
    return result
