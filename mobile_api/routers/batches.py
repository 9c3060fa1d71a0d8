"""Scan, tag, list and follow batches; label images; label stock."""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated

from fastapi import Query, Response
from pydantic import ValidationError

from mobile_api.bodies import Router
from mobile_api.deps import (
    AppSettings,
    CurrentUser,
    ManagerOnly,
    Paging,
    Posts,
    Transaction,
)
from mobile_api.media import PDF, PNG, binary
from mobile_api.presenters import NEXT_PAGE, batch_read, berth_read, resent
from schemas.base import Scanned
from schemas.batches import BatchCreate, BatchPage, BatchRead, LabelIssue, LabelRead, ScanRead
from schemas.events import ChainVerification, EventCreate, EventRead
from schemas.registry import SiteRead
from wastetrack.batches import service as batches
from wastetrack.core.errors import DomainError, ValidationFailed
from wastetrack.custody import chain, posts
from wastetrack.custody.rules import EventType, State
from wastetrack.scan import service as scanning

router = Router(prefix="/m/v1", tags=["batches"])


@router.get("/scan", response_model=ScanRead)
async def scan(
    user: CurrentUser,
    settings: AppSettings,
    qr: Annotated[Scanned, Query(description="scanned URL or code")],
) -> ScanRead:
    """What a scanned QR code or typed code is, and what this user may do next."""
    found = await scanning.scan(principal=user, scanned=qr, secret=settings.secret_key)
    if found.batch is not None:
        return ScanRead(
            kind="batch",
            batch=batch_read(found.batch, settings, found.links),
            actions=found.actions,
        )
    if found.site is not None:
        return ScanRead(
            kind="site", site=SiteRead.model_validate(found.site), actions=found.actions
        )
    if found.berth is not None:
        return ScanRead(
            kind="berth", berth=berth_read(found.berth, settings), actions=found.actions
        )
    assert found.label is not None
    return ScanRead(
        kind="label",
        actions=found.actions,
        label=LabelRead(
            code=found.label.code,
            stream=found.label.stream_id,
            organization_id=found.label.organization_id,
        ),
    )


_AS_SENT = {"batch": "label"}
"""The tagging event's fields as this request names them."""


@router.post(
    "/batches",
    response_model=BatchRead,
    status_code=201,
    responses=resent(BatchRead),
)
async def create_batch(
    body: BatchCreate, user: CurrentUser, settings: AppSettings, queue: Posts, response: Response
) -> BatchRead:
    """Tag a new batch or bind a pre-printed label; a retry with the same client_event_id
    returns the same batch."""
    try:
        submission = EventCreate.model_validate(
            {
                **body.model_dump(exclude={"label"}),
                "event_type": EventType.tagged,
                "batch": body.label,
            }
        )
    except ValidationError as error:  # BatchCreate checks the event's rules first
        raise ValidationFailed.of(error, fields=_AS_SENT) from None
    try:
        recorded = await posts.record_one(queue, principal=user, submission=submission)
    except DomainError as error:
        error.field = _AS_SENT.get(error.field or "", error.field)
        raise
    batch = recorded.batch
    if batch is None:  # a resend: answer with the batch the first send made
        response.status_code = 200
        batch = await batches.get_resent_tagging(recorded.result.batch_code or "")
    return batch_read(batch, settings)


@router.get("/batches", response_model=BatchPage, responses={200: NEXT_PAGE})
async def list_batches(
    user: CurrentUser,
    settings: AppSettings,
    paged: Paging,
    state: Annotated[State | None, Query(description="only batches in this state")] = None,
) -> BatchPage:
    """The user's batches, newest first; pass next_cursor (the `Link` header's) to get the
    next page."""
    page, next_cursor = await batches.list_recent(
        user, limit=paged.limit, cursor=paged.cursor, state=state
    )
    items = [batch_read(b, settings) for b in page]
    return paged.answer(BatchPage(items=items, next_cursor=next_cursor), next_cursor)


@router.get("/batches/{code}", response_model=BatchRead)
async def get_batch(code: Scanned, user: CurrentUser, settings: AppSettings) -> BatchRead:
    """One batch the user may see, with the batches a partial acceptance links it to."""
    batch = await batches.get_visible_batch(user, code)
    return batch_read(batch, settings, await batches.split_links(batch))


@router.get("/batches/{code}/events", response_model=list[EventRead])
async def batch_events(code: Scanned, user: CurrentUser) -> Sequence[object]:
    """A batch's custody events in order."""
    _, events = await chain.history(principal=user, code=code)
    return events


@router.get("/batches/{code}/verify", response_model=ChainVerification)
async def verify_batch(
    code: Scanned, user: CurrentUser, settings: AppSettings
) -> Mapping[str, object]:
    """Recompute the batch's hash chain and say whether it is intact."""
    return await chain.verify_chain(principal=user, code=code, secret=settings.secret_key)


@router.get(
    "/batches/{code}/label.png",
    response_class=Response,
    responses=binary(
        PNG,
        description="The label at 300 dpi: HJ 1276-2022 (100, 150 or 200 mm square) for"
        " hazardous waste, else 50×30 mm",
    ),
)
async def batch_label(
    code: Scanned,
    user: CurrentUser,
    settings: AppSettings,
    size: Annotated[
        int | None,
        Query(description="hazardous waste: the label's side in mm: 100, 150 or 200"),
    ] = None,
    volume_l: Annotated[
        Decimal | None,
        Query(
            gt=0,
            le=100_000,
            description="hazardous waste: the container's volume in litres,"
            " which picks the smallest size HJ 1276-2022 allows",
        ),
    ] = None,
) -> Response:
    """The batch's label as a PNG at 300 dpi: the HJ 1276-2022 label of hazardous waste, sized
    by size or volume_l (≤ 50 L: 100 mm, ≤ 450 L: 150 mm, larger: 200 mm), else 50×30 mm."""
    png = await batches.label_png(
        principal=user,
        code=code,
        base_url=settings.base_url,
        secret=settings.secret_key,
        timezone=settings.timezone,
        size_mm=size,
        volume_l=volume_l,
    )
    return Response(png, media_type="image/png")


@router.post(
    "/labels",
    response_class=Response,
    responses=binary(PDF, status=201, description="A4 sheets of labels"),
    status_code=201,
)
async def issue_labels(
    body: LabelIssue, user: ManagerOnly, settings: AppSettings, _: Transaction
) -> Response:
    """Issue unbound label codes for an organization and get them as an A4 PDF sheet."""
    issued, pdf = await batches.issue_label_sheet(
        principal=user,
        organization_id=body.organization_id,
        stream=body.stream,
        count=body.count,
        base_url=settings.base_url,
        secret=settings.secret_key,
    )
    return Response(
        pdf,
        media_type="application/pdf",
        status_code=201,
        # A producer whose handovers need its PINs gets a new PIN list on the sheet: kept by
        # no cache, nor as an answer.
        headers={"X-Label-Count": str(len(issued)), "Cache-Control": "no-store"},
    )
