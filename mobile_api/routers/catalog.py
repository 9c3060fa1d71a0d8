"""The reference catalog, read-only."""

from collections.abc import Sequence

from mobile_api.bodies import Router
from mobile_api.deps import CurrentUser
from schemas.base import Key
from schemas.catalog import CategoryRead, MethodRead, StreamRead
from wastetrack.catalog import service as catalog

router = Router(prefix="/m/v1/catalog", tags=["catalog"])


@router.get("/streams", response_model=list[StreamRead])
async def streams(_: CurrentUser) -> Sequence[object]:
    """Waste streams the tracker records."""
    return await catalog.list_streams()


@router.get("/categories", response_model=list[CategoryRead])
async def categories(_: CurrentUser, stream: Key | None = None) -> Sequence[object]:
    """Waste categories with their official codes, optionally of one stream."""
    return await catalog.list_categories(stream=stream)


@router.get("/methods", response_model=list[MethodRead])
async def methods(_: CurrentUser) -> Sequence[object]:
    """Treatment methods (R/D codes) and the mode each counts as."""
    return await catalog.list_methods()
