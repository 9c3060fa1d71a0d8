"""Evidence photos: type-checked, size-limited, stored once by content hash."""

import asyncio
import hashlib
import io

import httpx
from PIL import Image

from tests.custody.helpers import post_event, tag_bag
from tests.factories import World, event


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
    assert first.json()["sha256"] == hashlib.sha256(content).hexdigest()
    stored = list((world.settings.data_dir / "photos").rglob("*.png"))
    assert [p.read_bytes() for p in stored] == [content]
    again = await upload(client, world, content)
    assert again.status_code == 200
    assert again.json()["created"] is False


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
    assert kept[0].stat().st_mode & 0o777 == 0o644


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
