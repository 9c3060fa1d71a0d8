"""Alerts, a batch's fate and EPCIS history, and which clinics the medical-waste collection
reaches."""

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from fastapi.responses import JSONResponse

from mobile_api.bodies import Router
from mobile_api.deps import (
    AppSettings,
    CityPeriod,
    CurrentUser,
    ManagerOnly,
    OpenPeriod,
    Paging,
    Period,
    RegionScoped,
    ReplicaRead,
    Transaction,
)
from mobile_api.presenters import NEXT_PAGE, link_next
from mobile_api.tables import Format, export
from schemas.alerts import AlertRead, MedicalCoverageRead, MissedInstitution
from schemas.base import Id, QueryBoolean, Scanned
from schemas.batches import FateRead
from schemas.rollups import (
    CategoryBalanceRead,
    CategoryFiguresRead,
    MassBalanceRead,
    StreamFiguresRead,
    UtilizationRead,
)
from wastetrack.alerts import service as alerts
from wastetrack.catalog import service as catalog
from wastetrack.core import cityday, paging
from wastetrack.custody import epcis, queries
from wastetrack.medical import service as medical
from wastetrack.rollups import service as rollups
from wastetrack.rollups.facts import FATES

router = Router(prefix="/m/v1", tags=["medical", "alerts"])


@router.get("/alerts", response_model=list[AlertRead], responses={200: NEXT_PAGE})
async def list_alerts(
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    paged: Paging,
    open_only: QueryBoolean = True,
    format: Format = "json",
) -> Any:
    """Alerts of your organization (managers: their region), newest first: overdue storage or
    manifest decisions, weight discrepancies, idle batches, scan anomalies. A file (csv, xlsx)
    holds them all from the cursor on, up to 100,000 a file (a `Link` names the next)."""
    if format != "json":
        found, more = await alerts.list_alerts(
            principal=user, open_only=open_only, limit=paging.FILE_LIMIT, cursor=paged.cursor
        )
        file = await export(
            [
                AlertRead.model_validate(a).model_copy(
                    update={"details": alerts.details_with_moments(a.details)}
                )
                for a in found
            ],
            name="alerts",
            format=format,
            timezone=settings.timezone,
            model=AlertRead,
            keys={"details": alerts.DETAILS},
        )
        if more is not None:  # a file is answered as it is: its own Link header
            link_next(paged.request, file, cursor=more)
        return file
    return await paged.read(alerts.list_alerts, principal=user, open_only=open_only)


@router.post("/alerts/refresh")
async def refresh_alerts(_: ManagerOnly, settings: AppSettings, __: Transaction) -> dict[str, int]:
    """Raise every alert a rule calls for now, instead of at the service's next round."""
    raised = await alerts.refresh(settings=settings)
    return {"raised": raised}


@router.post("/alerts/{alert_id}/ack", response_model=AlertRead)
async def acknowledge_alert(alert_id: Id, user: ManagerOnly, _: Transaction) -> object:
    """Acknowledge an alert; who and when are kept."""
    return await alerts.acknowledge(principal=user, alert_id=alert_id)


@router.get("/batches/{code}/fate", response_model=FateRead)
async def batch_fate(code: Scanned, user: CurrentUser) -> Mapping[str, object]:
    """What became of a batch, followed into the containers it was aggregated into."""
    return await queries.fate(principal=user, code=code)


class JsonLd(JSONResponse):
    """A JSON-LD document: JSON, of its own media type (the only one the route answers)."""

    media_type = "application/ld+json"


@router.get(
    "/batches/{code}/epcis.jsonld",
    response_class=JsonLd,
    responses={200: {"content": {"application/ld+json": {"schema": {"type": "object"}}}}},
)
async def batch_epcis(code: Scanned, user: CurrentUser, settings: AppSettings) -> JsonLd:
    """The batch's custody history as a GS1 EPCIS 2.0 JSON-LD document."""
    document = await epcis.batch_document(principal=user, code=code, timezone=settings.timezone)
    return JsonLd(document)


@router.get("/metrics/utilization", response_model=UtilizationRead)
async def utilization(
    user: RegionScoped,
    settings: AppSettings,
    period: Period,
    _: ReplicaRead,
    format: Format = "json",
    table: Annotated[
        Literal["categories", "streams"],
        Query(
            description="which table a CSV or XLSX holds: per stream and category, or per stream"
        ),
    ] = "categories",
) -> Any:
    """Generated and treated kilograms by stream, category and mode, with the utilization and
    harmless-treatment rates, from the daily roll-ups; a table is one of the two levels."""
    result = await rollups.utilization(
        region_path=user.region_path, date_from=period.date_from, date_to=period.date_to
    )
    if format != "json":
        return await export(
            result[table],
            name="utilization" if table == "categories" else "utilization-streams",
            format=format,
            timezone=settings.timezone,
            period=period,
            model=CategoryFiguresRead if table == "categories" else StreamFiguresRead,
            keys={"fates": FATES, "treated_kg": await catalog.treatment_modes()},
        )
    return result


@router.get("/metrics/mass-balance", response_model=MassBalanceRead)
async def mass_balance(
    user: RegionScoped,
    settings: AppSettings,
    period: Period,
    _: ReplicaRead,
    format: Format = "json",
) -> Any:
    """Kilograms declared at tagging against kilograms weighed (on an accepted receipt or at
    treatment), per stream and category, for the batches tagged in the period (their cohort)."""
    result = await rollups.mass_balance(
        region_path=user.region_path, date_from=period.date_from, date_to=period.date_to
    )
    if format != "json":
        return await export(
            result["categories"],
            name="mass-balance",
            format=format,
            timezone=settings.timezone,
            period=period,
            model=CategoryBalanceRead,
        )
    return result


@router.get("/metrics/medical-coverage", response_model=MedicalCoverageRead)
async def medical_coverage(
    user: RegionScoped,
    settings: AppSettings,
    period: OpenPeriod,
    _: ReplicaRead,
    response: Response,
    days: Annotated[int, Query(ge=1, le=366, description="without a period: the last N days")] = 30,
    format: Format = "json",
) -> Any:
    """Medical institutions reached by the central collection in a period (a medical batch
    collected by or handed over to a carrier): small ones (known beds ≤ 19) apart, unknown bed
    counts listed apart, and the ones missed (the file lists those); the period used in
    X-Period, as every metric gives it."""
    result = await medical.collection_coverage(
        principal=user,
        today=cityday.today(settings.timezone),
        timezone=settings.timezone,
        date_from=period[0],
        date_to=period[1],
        days=days,
    )
    used = CityPeriod(date_from=result["date_from"], date_to=result["date_to"])
    if format != "json":
        return await export(
            result["not_collected"],
            name="medical-coverage-missed",
            format=format,
            timezone=settings.timezone,
            period=used,
            model=MissedInstitution,
        )
    response.headers.update(used.headers())
    return result
