"""Evidence photos."""

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from mobile_api.deps import AppSettings, CurrentUser, Transaction
from schemas.batches import PhotoRead
from wastetrack.evidence import service as evidence

router = APIRouter(prefix="/m/v1/photos", tags=["photos"])


@router.post("", response_model=PhotoRead, status_code=201)
async def upload_photo(
    file: Annotated[UploadFile, File(description="JPEG or PNG")],
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> PhotoRead:
    """Upload an evidence photo; the same bytes uploaded again return the stored photo."""
    content = await file.read(settings.photo_max_bytes + 1)
    photo, created = await evidence.store_photo(
        principal=user,
        content=content,
        data_dir=settings.data_dir,
        max_bytes=settings.photo_max_bytes,
        max_pixels=settings.photo_max_pixels,
    )
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
