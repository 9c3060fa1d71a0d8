"""The audit log, for managers (their region's changes), auditors (likewise) and admins (all)."""

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from mobile_api import media
from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, require
from mobile_api.presenters import NEXT_PAGE, link_next
from mobile_api.tables import download
from schemas.audit import AuditEntryRead, AuditPage
from schemas.base import Id
from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.changes.models import START, Position
from wastetrack.changes.paging import decode_cursor, encode_cursor
from wastetrack.core.commands import ascii_digits
from wastetrack.core.principal import Principal

router = Router(prefix="/m/v1", tags=["audit"])

Overseer = Annotated[Principal, Depends(require(Role.manager, Role.auditor, Role.admin))]
SubjectType = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z_]+$",
        description="the part of an action before its dot: region, organization, licence, "
        "site, vessel, service_agreement, port, berth, vehicle, driver, user, api_key, webhook, "
        "calendar, package_sale, packaging_return, cell, cell_assessment, indicator_value",
    ),
]
Actor = Annotated[Id | None, Query(description="the acting user's id")]
After = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="the `next` cursor of the last page"),
]


async def _position(after: str | None) -> Position:
    """The cursor's position; a plain entry id, the `next` pages gave before they were paged by
    transaction, as `audit.legacy_position` reads it."""
    if after is not None and ascii_digits(after, most=19) and int(after) < 2**63:
        return await audit.legacy_position(int(after))
    return decode_cursor(after) if after is not None else START


@router.get("/audit", response_model=AuditPage)
async def read_audit(
    user: Overseer,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = 100,
    subject_type: SubjectType = None,
    actor: Actor = None,
) -> AuditPage:
    """Who changed what and when (before/after), in the order of their transactions, after a
    cursor; an empty page means nothing newer yet (poll again with `next`)."""
    entries, next_position = await audit.list_entries(
        principal=user,
        after=await _position(after),
        limit=limit,
        subject_type=subject_type,
        actor=actor,
    )
    return AuditPage(
        entries=[AuditEntryRead.model_validate(e) for e in entries],
        next=encode_cursor(next_position),
    )


@router.get(
    "/audit.csv",
    responses=media.binary(media.CSV, headers=NEXT_PAGE["headers"]),
    response_class=Response,
)
async def export_audit(
    request: Request,
    user: Overseer,
    settings: AppSettings,
    after: After = None,
    subject_type: SubjectType = None,
    actor: Actor = None,
) -> Response:
    """The same entries as a CSV file (UTF-8 with BOM), before/after as JSON, times on the
    city's clock; at most 100,000 a file, with a `Link: <…>; rel="next"` header to the next
    file when more remain."""
    rows, more = await audit.export_rows(
        principal=user,
        timezone=settings.timezone,
        after=await _position(after),
        subject_type=subject_type,
        actor=actor,
    )
    answer = await download(
        audit.CSV_HEADERS, rows, filename="audit.csv", sheet="audit", format="csv"
    )
    if more is not None:
        link_next(request, answer, after=encode_cursor(more))
    return answer
