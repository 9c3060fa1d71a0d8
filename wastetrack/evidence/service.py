"""Evidence photos: type-checked, size-limited, stored once by content hash."""

import asyncio
import hashlib
import io
import os
import tempfile
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from PIL import Image
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from wastetrack.core.backup import PART, PHOTO_FILE_MODE, PHOTO_FOLDER_MODE, PHOTOS
from wastetrack.core.errors import ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.evidence import jpeg, png
from wastetrack.evidence.models import Photo, PhotoHolder

FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    # A camera's JPEG carrying a preview image (the multi-picture format): a JPEG all the same.
    "MPO": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
}
UPLOAD_FIRST = "upload the photo before referring to it (your organization's own upload)"
NOT_AN_IMAGE = "the file is not a readable JPEG or PNG image"


def photo_path(data_dir: Path, sha256: str, extension: str) -> Path:
    return data_dir / PHOTOS / sha256[:2] / f"{sha256}.{extension}"


def _inspect(content: bytes, *, max_pixels: int) -> tuple[str, int, int, str]:
    """Format, width and height of a JPEG or PNG, and its SHA-256; refuses anything else,
    and an image that does not decode whole. The bytes are kept as sent: they are the
    evidence, and the phone refers to them by their hash before it uploads them."""
    too_large = ValidationFailed(
        f"photos may not exceed {max_pixels} pixels (width × height)", field="file"
    )
    try:
        # Image.open reads only the header, with no other format's parser: the pixel count is
        # checked before anything is decoded, then the image is decoded whole.
        # (a multi-picture JPEG is opened by the JPEG parser).
        with Image.open(io.BytesIO(content), formats=["JPEG", "PNG"]) as image:
            image_format = image.format or ""
            width, height = image.size
            if width * height > max_pixels:
                raise too_large
            # Pillow's decoders fill what a file lacks with blank: a PNG cut short or holding
            # fewer rows than its header says, a JPEG whose coded data stops at a marker. Each
            # format's own check reads the image whole (a JPEG's, not Pillow: jpeg.py).
            if image_format == "PNG":
                image.load()
                whole = png.is_whole(content)
            else:
                whole = jpeg.is_whole(content)
    except Image.DecompressionBombError:  # Pillow's own, higher ceiling
        raise too_large from None
    except ValidationFailed:
        raise
    except Exception:  # any parser's complaint about a malformed file (an IndexError, say)
        raise ValidationFailed(NOT_AN_IMAGE, field="file") from None
    if image_format not in FORMATS or not whole:
        raise ValidationFailed(NOT_AN_IMAGE, field="file")
    return image_format, width, height, hashlib.sha256(content).hexdigest()


@dataclass(frozen=True, slots=True)
class Inspected:
    """A photo checked and on disk under its hash, not yet recorded (`record_photo`)."""

    sha256: str
    content_type: str
    size_bytes: int
    width: int
    height: int


# Reading a photo (up to WASTETRACK_PHOTO_MAX_BYTES) and decoding it whole (a PNG up to width
# × height × 4 bytes: 160 MB at 40 MP; a JPEG at an eighth of its size) take memory and a
# core: at most two photos at a time per worker, the others waiting as their spooled uploads,
# whatever the thread pool's size.
_DECODERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="photo-decode")


async def inspect_photo(
    *, source: BinaryIO, data_dir: Path, max_bytes: int, max_pixels: int = 40_000_000
) -> Inspected:
    """Read a JPEG or PNG from `source` (an upload's spooled file), check it and keep it on
    disk under its SHA-256, before any transaction: the read, the decode and the fsync hold
    no database connection, nor a place among the transactions admitted. Its pixel count is
    read from the header and checked before anything is decoded."""
    return await asyncio.get_running_loop().run_in_executor(
        _DECODERS,
        partial(_keep, source, data_dir=data_dir, max_bytes=max_bytes, max_pixels=max_pixels),
    )


def _keep(source: BinaryIO, *, data_dir: Path, max_bytes: int, max_pixels: int) -> Inspected:
    content = source.read(max_bytes + 1)
    if not content:
        raise ValidationFailed("the file is empty", field="file")
    if len(content) > max_bytes:
        raise ValidationFailed(f"photos may not exceed {max_bytes} bytes", field="file")
    image_format, width, height, sha256 = _inspect(content, max_pixels=max_pixels)
    content_type, extension = FORMATS[image_format]
    path = photo_path(data_dir, sha256, extension)
    # Through a file of this upload's own: two uploads of the same bytes (a phone retrying a
    # slow one, on another worker) each write a whole file and rename it into place. A file
    # whose row is never written (a refusal later, a re-upload) holds the bytes its name says
    # and is harmless.
    if not path.exists():
        _write(path, content)
    return Inspected(sha256, content_type, len(content), width, height)


async def record_photo(*, principal: Principal, kept: Inspected) -> tuple[Photo, bool]:
    """Record a photo `inspect_photo` kept, and that the uploader's organization holds it; a
    re-upload returns the stored one. Auditors upload none (they never write)."""
    principal.check_may_write()
    sha256 = kept.sha256
    existing = await Photo.get_or_none(sha256=sha256)
    if existing is not None:
        return existing, await _hold(existing, principal)
    try:
        async with in_transaction():
            photo = await Photo.create(
                sha256=sha256,
                content_type=kept.content_type,
                size_bytes=kept.size_bytes,
                width=kept.width,
                height=kept.height,
                uploaded_by_id=principal.user_id,
                organization_id=principal.organization_id,
            )
    except IntegrityError:
        # The same bytes stored by a concurrent upload that committed first: its photo.
        existing = await Photo.get_or_none(sha256=sha256)
        if existing is None:
            raise
        return existing, await _hold(existing, principal)
    return photo, await _hold(photo, principal)


async def _hold(photo: Photo, principal: Principal) -> bool:
    """Record that the uploader's organization holds the photo; whether it did not before (the
    answer says `created` to it alone: whether another organization sent the same bytes is
    not told)."""
    rows = await connections.get("default").execute_query_dict(
        "INSERT INTO photo_holder (photo_id, organization_id, first_uploaded_at)"
        " VALUES ($1, $2, now()) ON CONFLICT (photo_id, organization_id) DO NOTHING RETURNING id",
        [photo.sha256, principal.organization_id],
    )
    return bool(rows)


def _write(path: Path, content: bytes) -> None:
    """Write a photo whole or not at all, readable by the service's own user only (mode 0600 in
    folders of 0700: evidence may show people and places), synced before its row commits."""
    for level in (path.parent.parent, path.parent):
        level.mkdir(mode=PHOTO_FOLDER_MODE, parents=True, exist_ok=True)
        level.chmod(PHOTO_FOLDER_MODE)  # a folder made before this rule, or under another umask
    part = tempfile.NamedTemporaryFile(dir=path.parent, suffix=PART, delete=False)
    written = Path(part.name)
    try:
        with part:
            part.write(content)
            part.flush()
            os.fsync(part.fileno())  # whole on disk before its name says it is the photo
        written.chmod(PHOTO_FILE_MODE)
        written.replace(path)
    except BaseException:
        written.unlink(missing_ok=True)
        raise
    # The rename on disk too, before the row that says the photo is stored commits.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


async def held_photos(
    shas: Collection[str], organization_ids: Collection[int]
) -> set[tuple[int, str]]:
    """Which of these photos each of these organizations holds (uploaded itself), as
    (organization, photo) pairs, in one query however many are asked."""
    if not shas or not organization_ids:
        return set()
    rows = await PhotoHolder.filter(
        photo_id__in=list(shas), organization_id__in=list(organization_ids)
    ).values_list("organization_id", "photo_id")
    return {(int(org), str(sha)) for org, sha in rows}


def check_stored(shas: str | Sequence[str] | None, *, stored: Collection[str], field: str) -> None:
    """Refuse a reference to a photo the record's organization has not uploaded: a single
    photo names `field`, a list names the first missing one's place (`photos[2]`)."""
    if shas is None or isinstance(shas, str):
        if shas is not None and shas not in stored:
            raise ValidationFailed(UPLOAD_FIRST, field=field)
        return
    for index, sha in enumerate(shas):
        if sha not in stored:
            raise ValidationFailed(UPLOAD_FIRST, field=f"{field}[{index}]")


async def require_photos(
    shas: str | Sequence[str] | None, *, principal: Principal, field: str
) -> None:
    """Every photo a record refers to was uploaded by the record's organization (see
    check_stored for the field it names)."""
    wanted = [shas] if isinstance(shas, str) else list(shas or [])
    held = await held_photos(wanted, [principal.organization_id])
    check_stored(shas, stored={sha for _, sha in held}, field=field)
