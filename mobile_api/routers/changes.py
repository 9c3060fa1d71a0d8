"""The change feed: what integrators poll instead of every list."""

from typing import Annotated

from fastapi import Query

from mobile_api.bodies import Router
from mobile_api.deps import CurrentUser
from schemas.changes import ChangePage, ChangeRead
from wastetrack.changes import service as changes
from wastetrack.changes.models import START

router = Router(prefix="/m/v1/changes", tags=["changes"])


@router.get("", response_model=ChangePage)
async def read_changes(
    user: CurrentUser,
    after: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="the `next` cursor of the last page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=changes.MAX_LIMIT)] = 100,
) -> ChangePage:
    """Custody events, manifest changes and alerts you may see, after a cursor: in the order of
    their transactions, a batch's events in their order."""
    position = changes.decode_cursor(after) if after is not None else START
    page, next_position = await changes.read_changes(principal=user, after=position, limit=limit)
    return ChangePage(
        changes=[
            ChangeRead(
                cursor=changes.encode_cursor(change.position),
                type=change.kind.value,
                occurred_at=change.occurred_at,
                data=change.data,
            )
            for change in page
        ],
        next=changes.encode_cursor(next_position),
    )
