"""Evidence photos: type-checked, size-limited, stored once by content hash."""

import asyncio
import hashlib
import io
import struct
import zlib

import httpx
import pytest
from PIL import Image

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event
from wastetrack.core import db
from wastetrack.evidence.models import Photo, PhotoHolder


def png_bytes(colour: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient, world: World, content: bytes, name: str = "p.png"
) -> httpx.Response:
    return await client.post(
        "/m/v1/photos",
        files={"file": (name, content, "image/png")},
        headers=world.headers("carrier"),
    )


async def test_photo_is_stored_by_hash_and_reupload_is_idempotent(
    client: httpx.AsyncClient, world: World
) -> None:
    content = png_bytes()
    first = await upload(client, world, content)
    assert first.status_code == 201
    sha = hashlib.sha256(content).hexdigest()
    assert first.json()["sha256"] == sha
    stored = [p for p in (world.settings.data_dir / "photos").rglob("*") if sha in p.name]
    assert [p.read_bytes() for p in stored] == [content]
    again = await upload(client, world, content)
    assert again.status_code == 200
    assert again.json()["created"] is False


async def test_an_auditor_uploads_no_photo(client: httpx.AsyncClient, world: World) -> None:
    """Auditors read, they never write: a photo they uploaded would be evidence their
    organization's managers could cite."""
    content = png_bytes("purple", (33, 17))
    refused = await client.post(
        "/m/v1/photos",
        files={"file": ("p.png", content, "image/png")},
        headers=world.headers("auditor"),
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "role"), refused.text
    assert await Photo.all().count() == 0
    sha = hashlib.sha256(content).hexdigest()
    assert not list((world.settings.data_dir / "photos").rglob(f"{sha}.*"))


async def test_the_same_photo_uploaded_twice_at_once_is_stored_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """A phone retrying a slow upload: both answers give the one stored photo, and the file
    holds the whole image."""
    content = png_bytes("blue", (640, 480))
    answers = await asyncio.gather(*(upload(client, world, content) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    sha = hashlib.sha256(content).hexdigest()
    assert {a.json()["sha256"] for a in answers} == {sha}
    kept = [p for p in (world.settings.data_dir / "photos" / sha[:2]).iterdir() if sha in p.name]
    assert [p.read_bytes() for p in kept] == [content]
    # Evidence may show people and places: the service user's alone, folders too.
    assert kept[0].stat().st_mode & 0o777 == 0o600
    photos = world.settings.data_dir / "photos"
    assert [f.stat().st_mode & 0o777 for f in (photos, kept[0].parent)] == [0o700, 0o700]


async def test_non_images_and_oversized_files_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    fake = await upload(client, world, b"%PDF-1.4 not an image")
    assert fake.status_code == 422
    assert fake.json()["field"] == "file"
    big = await upload(client, world, png_bytes(size=(4000, 4000)) + b"\0" * 300_000)
    assert big.status_code == 422
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    assert (await upload(client, world, gif.getvalue(), "x.gif")).status_code == 422


def png_without_pixels() -> bytes:
    """A PNG with a signature, a valid header and an end but no image data chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


async def test_malformed_images_are_refused_and_camera_jpegs_taken(
    client: httpx.AsyncClient, world: World
) -> None:
    """A PNG without pixels (a parser's IndexError) and a JPEG cut short are 422s naming the
    file, not 500s nor stored; a camera's JPEG with a preview image (MPO) is a JPEG."""
    jpeg = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(jpeg, format="JPEG")
    for broken in (png_without_pixels(), jpeg.getvalue()[:2000]):
        refused = await upload(client, world, broken)
        assert (refused.status_code, refused.json()["field"]) == (422, "file"), refused.text
    camera = io.BytesIO()
    main, preview = Image.new("RGB", (64, 48), "green"), Image.new("RGB", (16, 12), "green")
    main.save(camera, format="MPO", save_all=True, append_images=[preview])
    taken = await upload(client, world, camera.getvalue(), "camera.jpg")
    assert taken.status_code == 201, taken.text
    sha = taken.json()["sha256"]
    (stored,) = (world.settings.data_dir / "photos").rglob(f"{sha}.*")
    assert (stored.suffix, taken.json()["content_type"]) == (".jpg", "image/jpeg")


async def test_a_png_missing_part_of_its_image_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """Pillow loads a PNG whose image data stops early, the rest blank: one that lost its last
    bytes (IEND, the data's checksum) or declares 3000 rows and holds 64 is not the photo
    taken, refused as a JPEG cut short is; the whole PNG and an interlaced one are kept."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    def grey(width: int, height: int, rows: int, interlace: int = 0) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
        pixels = zlib.compress(b"\0" * (1 + width) * rows, 9)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b"")
        )

    noise = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(noise, format="PNG")
    for broken in (noise.getvalue()[:-20], noise.getvalue()[:-12], grey(3000, 3000, 64)):
        with Image.open(io.BytesIO(broken)) as image:
            image.load()  # what Pillow alone accepts
        refused = await upload(client, world, broken)
        assert (refused.status_code, refused.json()["field"]) == (422, "file"), refused.text
    assert await Photo.all().count() == 0
    # Adam7 on an 8 × 8 grey image: seven passes of 1, 1, 2, 4, 8, 16 and 32 pixels, each row a
    # filter byte and its pixels: 15 rows and 79 bytes in all.
    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 1)
    passes = b"".join(b"\0" + b"\x80" * columns for columns, rows in ADAM7_8x8 for _ in range(rows))
    interlaced = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(passes))
        + chunk(b"IEND", b"")
    )
    for whole in (noise.getvalue(), grey(300, 200, 200), interlaced):
        kept = await upload(client, world, whole)
        assert kept.status_code == 201, kept.text


# Adam7's passes on an 8 × 8 image: columns and rows of each.
ADAM7_8x8 = ((1, 1), (1, 1), (2, 1), (2, 2), (4, 2), (4, 4), (8, 4))


async def test_a_jpeg_missing_part_of_its_image_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """Pillow loads a JPEG whose coded data stops at a marker (an end-of-image after half the
    file), the rest grey: half the photo taken, refused as one cut short is, baseline or
    progressive; the whole ones, in colour, grey or CMYK, are kept."""
    for progressive in (False, True):
        whole = io.BytesIO()
        noise = Image.effect_noise((256, 256), 64).convert("RGB")
        noise.save(whole, format="JPEG", progressive=progressive)
        half = whole.getvalue()[: len(whole.getvalue()) // 2] + b"\xff\xd9"
        with Image.open(io.BytesIO(half)) as image:
            image.load()  # what Pillow alone accepts
        stored = await Photo.all().count()
        refused = await upload(client, world, half, "half.jpg")
        assert (refused.status_code, refused.json()["field"]) == (422, "file"), refused.text
        assert await Photo.all().count() == stored
        kept = await upload(client, world, whole.getvalue(), "whole.jpg")
        assert kept.status_code == 201, kept.text
    for mode in ("L", "CMYK"):
        other = io.BytesIO()
        Image.effect_noise((96, 64), 64).convert(mode).save(other, format="JPEG")
        kept = await upload(client, world, other.getvalue(), f"{mode}.jpg")
        assert (kept.status_code, kept.json()["width"]) == (201, 96), kept.text


async def test_events_refer_only_to_uploaded_photos(
    client: httpx.AsyncClient, world: World
) -> None:
    batch = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    missing = await post_event(
        client,
        world,
        "carrier",
        event("collected", batch["code"], minutes=5, photo_sha256="a" * 64),
    )
    assert missing.status_code == 422
    assert missing.json()["field"] == "photo_sha256"
    sha = (await upload(client, world, png_bytes("blue"))).json()["sha256"]
    ok = await post_event(
        client, world, "carrier", event("collected", batch["code"], minutes=6, photo_sha256=sha)
    )
    assert ok.status_code == 201


async def test_a_photo_is_evidence_only_for_an_organization_that_uploaded_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """A hash read off another organization's record is not one's own evidence; sending the
    same bytes makes it so, and says `created` to the new holder without telling that another
    organization sent them first."""
    content = png_bytes("purple")
    sha = (await upload(client, world, content)).json()["sha256"]  # the carrier's
    bag = await tag_bag(client, world)
    cited = event("cancelled", bag["code"], minutes=5, reason="贴错", photo_sha256=sha)
    borrowed = await post_event(client, world, "clinic", cited)
    assert (borrowed.status_code, borrowed.json()["field"]) == (422, "photo_sha256")
    own = await client.post(
        "/m/v1/photos",
        files={"file": ("p.png", content, "image/png")},
        headers=world.headers("clinic"),
    )
    assert (own.status_code, own.json()["sha256"]) == (201, sha)
    assert (await post_event(client, world, "clinic", cited)).status_code == 201
    assert len(list((world.settings.data_dir / "photos").rglob(f"{sha}.*"))) == 1


async def test_a_photo_is_checked_and_kept_before_its_transaction_waits_for_a_place(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding a photo and its fsync take their time and hold no database connection: with
    every transaction's place taken, the upload is checked and on disk already, and only its
    row waits."""
    admission = asyncio.Semaphore(1)
    monkeypatch.setattr(db, "_admission", admission)
    await admission.acquire()  # every request's place taken
    content = png_bytes("green", (320, 240))
    sha = hashlib.sha256(content).hexdigest()
    uploading = asyncio.ensure_future(upload(client, world, content))
    on_disk = world.settings.data_dir / "photos" / sha[:2] / f"{sha}.png"
    for _ in range(100):
        if on_disk.exists():
            break
        await asyncio.sleep(0.05)
    assert on_disk.read_bytes() == content
    assert not uploading.done()
    admission.release()
    answer = await asyncio.wait_for(uploading, timeout=30)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        ("multipart/form-data", b"--x\r\n", "Missing boundary in multipart."),
        ("multipart/form-data; boundary=x", b"garbage", "Invalid multipart data."),
    ],
    ids=["no-boundary", "no-parts"],
)
async def test_a_multipart_body_the_parser_cannot_read_is_refused_naming_the_rule(
    client: httpx.AsyncClient, world: World, content_type: str, body: bytes, why: str
) -> None:
    """A body that is no multipart is the client's fault, as a body that is no JSON: a 422
    naming its rule, not FastAPI's bare 400."""
    response = await client.post(
        "/m/v1/photos",
        content=body,
        headers={**world.headers("carrier"), "content-type": content_type},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert problem["field"] is None  # the body as a whole, as for a body that is no JSON
    assert [e["rule"] for e in problem["errors"]] == ["multipart_invalid"]
    assert problem["detail"] == f"the body is not valid multipart: {why}"
    assert await Photo.all().count() == 0


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        (
            [("file", ("a.png", png_bytes("red"), "image/png")), ("batch", (None, "ABC123"))],
            "batch",
        ),
        (
            [
                ("file", ("a.png", png_bytes("red"), "image/png")),
                ("file", ("b.png", png_bytes("blue"), "image/png")),
            ],
            "file",
        ),
    ],
    ids=["unknown part", "second photo"],
)
async def test_a_photo_upload_holds_its_one_file_and_nothing_else(
    client: httpx.AsyncClient, world: World, parts: list[tuple[str, object]], field: str
) -> None:
    """A part the server does not read (a batch code the client thinks is kept with the photo)
    or a second photo (a form keeps one value of a repeated part) is refused by name, as an
    unknown key of a JSON body is, and nothing is kept."""
    response = await client.post("/m/v1/photos", files=parts, headers=world.headers("carrier"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert await Photo.all().count() == 0
    assert await PhotoHolder.all().count() == 0
