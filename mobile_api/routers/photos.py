"""Evidence photos."""

from typing import Annotated

from fastapi import Depends, File, Response

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, CurrentUser, Transaction
from mobile_api.presenters import resent
from schemas.batches import PhotoForm, PhotoRead
from wastetrack.evidence import service as evidence

router = Router(prefix="/m/v1/photos", tags=["photos"])


async def _inspected(
    form: Annotated[PhotoForm, File()],
    user: CurrentUser,
    settings: AppSettings,
) -> evidence.Inspected:
    """The photo checked and on disk, before the request's transaction begins (a dependency
    the route names before `Transaction`, so solved first): decoding and fsync hold no
    database connection. After the login check, so no stranger's file is decoded, nor an
    auditor's (refused again where the photo is recorded)."""
    user.check_may_write()
    # A second photo, which a form would drop unseen, is refused with any repeated field
    # (`errors.refuse_unknown_query`).
    return await evidence.inspect_photo(
        source=form.file.file,
        data_dir=settings.data_dir,
        max_bytes=settings.photo_max_bytes,
        max_pixels=settings.photo_max_pixels,
    )


@router.post(
    "",
    response_model=PhotoRead,
    status_code=201,
    responses=resent(PhotoRead),
)
async def upload_photo(
    kept: Annotated[evidence.Inspected, Depends(_inspected)],
    user: CurrentUser,
    _: Transaction,
    response: Response,
) -> PhotoRead:
    """Upload an evidence photo; the same bytes uploaded again return the stored photo."""
    photo, created = await evidence.record_photo(principal=user, kept=kept)
    if not created:
        response.status_code = 200
    return PhotoRead(
        sha256=photo.sha256,
        content_type=photo.content_type,
        size_bytes=photo.size_bytes,
        width=photo.width,
        height=photo.height,
        created=created,
    )
