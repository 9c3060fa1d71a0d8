"""The audit log, for managers (their region's changes), auditors (likewise) and admins (all)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from mobile_api import media
from mobile_api.deps import require
from schemas.audit import AuditEntryRead, AuditPage
from schemas.base import Id
from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.core.exports import to_csv
from wastetrack.core.principal import Principal

router = APIRouter(prefix="/m/v1", tags=["audit"])

Overseer = Annotated[Principal, Depends(require(Role.manager, Role.auditor, Role.admin))]
SubjectType = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z_]+$",
        description="region, organization, licence, site, vessel, service_agreement, user, "
        "api_key, webhook",
    ),
]
Actor = Annotated[Id | None, Query(description="the acting user's id")]


@router.get("/audit", response_model=AuditPage)
async def read_audit(
    user: Overseer,
    after: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="the `next` of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = 100,
    subject_type: SubjectType = None,
    actor: Actor = None,
) -> AuditPage:
    """Who changed what and when (before/after), oldest first, after an entry id; an empty
    page means nothing newer yet (poll again with the same `next`)."""
    entries = await audit.list_entries(
        principal=user, after=after, limit=limit, subject_type=subject_type, actor=actor
    )
    return AuditPage(
        entries=[AuditEntryRead.model_validate(e) for e in entries],
        next=entries[-1].id if entries else (after or 0),
    )


@router.get("/audit.csv", responses=media.binary(media.CSV), response_class=Response)
async def export_audit(
    user: Overseer, subject_type: SubjectType = None, actor: Actor = None
) -> Response:
    """The same entries as a CSV file (UTF-8 with BOM), before/after as JSON."""
    rows = await audit.export_rows(principal=user, subject_type=subject_type, actor=actor)
    return Response(
        to_csv(audit.CSV_HEADERS, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
