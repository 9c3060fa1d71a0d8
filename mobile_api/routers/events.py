"""Record custody events, one at a time or as an offline sync."""

from fastapi import Depends, Request, Response

from mobile_api.bodies import Router, read_json
from mobile_api.deps import AppSettings, CurrentUser, Posts, Transaction
from mobile_api.presenters import resent
from schemas.events import EventCreate, EventResult
from schemas.sync import SyncRequest, SyncResponse
from wastetrack.custody import posts
from wastetrack.sync import service as offline_sync

router = Router(prefix="/m/v1", tags=["events"])


@router.post(
    "/events",
    response_model=EventResult,
    status_code=201,
    responses=resent(EventResult),
)
async def record_event(
    body: EventCreate, user: CurrentUser, queue: Posts, response: Response
) -> EventResult:
    """Record one custody event; a resend with the same client_event_id is not applied twice."""
    recorded = await posts.record_one(queue, principal=user, submission=body)
    if recorded.result.status == "duplicate":
        response.status_code = 200
    return EventResult.model_validate(recorded.result)


async def _counted(request: Request, settings: AppSettings, _: CurrentUser) -> None:
    """A sync's entries counted, once its sender is known, before any entry is read
    (dependencies run before the body's model): 650,000 empty entries under the byte cap took
    seconds of the worker's loop to validate one by one before the count refused them (sync
    review). `offline_sync.apply` judges the rest (an auditor's sync is refused whole)."""
    body = read_json(request)
    entries = body.get("events") if isinstance(body, dict) else None
    if isinstance(entries, list):
        offline_sync.check_count(len(entries), max_entries=settings.sync_max_events)


@router.post("/sync", response_model=SyncResponse, dependencies=[Depends(_counted)])
async def sync(
    body: SyncRequest, user: CurrentUser, settings: AppSettings, _: Transaction
) -> Response:
    """Apply what a phone recorded offline (custody events, deliveries, clean-ups), each
    exactly once, and say what became of each."""
    results = await offline_sync.apply(
        principal=user,
        entries=body.events,
        secret=settings.secret_key,
        max_entries=settings.sync_max_events,
    )
    counts = {
        status: sum(r.status == status for r in results)
        for status in ("applied", "duplicate", "conflict", "rejected")
    }
    answer = SyncResponse(
        results=[EventResult.model_validate(result) for result in results],
        applied=counts["applied"],
        duplicates=counts["duplicate"],
        conflicts=counts["conflict"],
        rejected=counts["rejected"],
    )
    # Already a validated SyncResponse: serialize once instead of re-validating 500 results.
    return Response(answer.model_dump_json(), media_type="application/json")
