"""Zero-waste cells (无废细胞): types and criteria, cells, assessments, achievement."""

from collections.abc import Sequence
from typing import Any

from fastapi import Response

from mobile_api.bodies import Router
from mobile_api.deps import (
    AppSettings,
    CityPeriod,
    CurrentUser,
    ManagerOnly,
    Paging,
    RegionScoped,
    ReplicaRead,
    Transaction,
)
from mobile_api.presenters import NEXT_PAGE, kept, resent
from mobile_api.tables import Format, export
from schemas.base import Id
from schemas.cells import (
    AssessmentCreate,
    AssessmentRead,
    CellAchievementRead,
    CellCreate,
    CellRead,
    CellStandingRead,
)
from wastetrack.cells import service as cells
from wastetrack.core import cityday

router = Router(tags=["zero-waste cells"])


@router.get("/m/v1/cell-types")
async def cell_types(_: CurrentUser) -> dict[str, Any]:
    """Cell types with their criteria, weights, thresholds and the tier scores (configuration)."""
    return cells.CONFIG


@router.post("/m/v1/cells", response_model=CellRead, status_code=201)
async def create_cell(body: CellCreate, user: ManagerOnly, _: Transaction) -> object:
    """Register a place as a zero-waste cell of a type, once per region, type and name."""
    return await cells.create_cell(principal=user, **body.model_dump())


@router.get("/m/v1/cells", response_model=list[CellRead], responses={200: NEXT_PAGE})
async def list_cells(user: ManagerOnly, paged: Paging) -> Sequence[object]:
    """Cells in your region, oldest first."""
    return await paged.read(cells.list_cells, principal=user)


@router.post(
    "/m/v1/cells/{cell_id}/assessments",
    response_model=AssessmentRead,
    status_code=201,
    responses=resent(AssessmentRead),
)
async def assess(
    cell_id: Id,
    body: AssessmentCreate,
    user: ManagerOnly,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> object:
    """Assess a cell at a level (county, then city, then province). The same assessment sent
    again while it is the latest of its level and day is answered with it (200), once."""
    assessed = await cells.assess(
        principal=user,
        cell_id=cell_id,
        level=body.level,
        assessed_on=body.assessed_on,
        entered={k: v.model_dump() for k, v in body.entered.items()},
        timezone=settings.timezone,
    )
    return kept(assessed, response)


@router.get("/m/v1/cells/{cell_id}/assessments", response_model=CellStandingRead)
async def list_assessments(
    cell_id: Id, user: ManagerOnly, settings: AppSettings, _: ReplicaRead
) -> object:
    """A cell's assessments with what each scored and counted, whether each stands, and the
    one that governs the cell's standing today: the achievement's count, cell by cell."""
    return await cells.list_assessments(
        principal=user, cell_id=cell_id, today=cityday.today(settings.timezone)
    )


@router.get("/m/v1/metrics/cells", response_model=CellAchievementRead)
async def achievement(
    user: RegionScoped,
    settings: AppSettings,
    response: Response,
    _: ReplicaRead,
    format: Format = "json",
) -> Any:
    """Share of cells achieving the standard today, in all and per type, against the 70 %
    target (a standing on the day: X-Period is that day)."""
    today = cityday.today(settings.timezone)
    period = CityPeriod(date_from=today, date_to=today)
    response.headers.update(period.headers())
    result = await cells.achievement(principal=user, today=today)
    if format != "json":
        # The headline share (the one judged against the target) first, then each type's;
        # every row names its day and the target, as the JSON answer does once.
        rows = [{"cell_type": None, "name_zh": "全部", "share": result["share"]}, *result["types"]]
        return await export(
            [
                {"today": result["today"], **row, "target_share": result["target_share"]}
                for row in rows
            ],
            name="cells",
            format=format,
            timezone=settings.timezone,
            headers=period.headers(),
        )
    return result
