"""Secrets: generated on first start and kept private, refused when guessable, rotated without
breaking printed labels."""

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from mobile_api.app import create_app
from tests.custody.helpers import tag_bag
from tests.factories import World, build_world
from wastetrack.core import codes, keys
from wastetrack.core.settings import Settings


@pytest.fixture
def no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WASTETRACK_SECRET", "WASTETRACK_SECRET_KEY", "WASTETRACK_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_first_start_creates_a_private_key_file_and_reuses_it(
    tmp_path: Path, no_secret_env: None
) -> None:
    first = Settings(data_dir=tmp_path)
    key_file = tmp_path / "keys" / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text())) == 32
    assert first.secret_key == key_file.read_text()
    assert Settings(data_dir=tmp_path).secret_key == first.secret_key
    assert Settings(data_dir=tmp_path / "elsewhere").secret_key != first.secret_key


def test_an_empty_or_cut_short_key_file_is_refused_not_used(
    tmp_path: Path, no_secret_env: None
) -> None:
    """A key file a full disk left empty would make every signature one anyone can forge:
    the service refuses to start on it. Files are written whole or not at all."""
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "master.key").write_bytes(b"")
    with pytest.raises(ValidationError, match=r"master\.key"):
        Settings(data_dir=tmp_path)
    (folder / "master.key").write_text(secrets.token_hex(32))
    (folder / "master-v2.key").write_text("0123")
    with pytest.raises(ValidationError, match=r"master-v2\.key"):
        Settings(data_dir=tmp_path)
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_configured_secret_and_secret_file_override_the_generated_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_secret_env: None
) -> None:
    configured = secrets.token_urlsafe(32)
    monkeypatch.setenv("WASTETRACK_SECRET", configured)
    assert Settings(data_dir=tmp_path).secret_key == configured
    monkeypatch.delenv("WASTETRACK_SECRET")
    monkeypatch.setenv("WASTETRACK_SECRET_KEY", configured + "-alias")
    assert Settings(data_dir=tmp_path).secret_key == configured + "-alias"
    monkeypatch.delenv("WASTETRACK_SECRET_KEY")
    secret_file = tmp_path / "secret"
    secret_file.write_text(configured + "-file\n")
    monkeypatch.setenv("WASTETRACK_SECRET_FILE", str(secret_file))
    assert Settings(data_dir=tmp_path).secret_key == configured + "-file"
    assert not (tmp_path / "keys" / "master.key").exists()


@pytest.mark.parametrize(
    "value",
    [
        "too-short-but-random-Zq8",
        "development-secret-change-me-development-secret",
        "changeme" * 4,
        "CHANGE-ME-please-before-production-use",
        "secret" * 6,
        "x" * 40,
    ],
)
@pytest.mark.parametrize("environment", ["development", "production"])
def test_short_or_known_secret_is_refused_in_every_environment(
    tmp_path: Path, no_secret_env: None, value: str, environment: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, secret_key=value, environment=environment)
    assert "WASTETRACK_SECRET" in str(refused.value)
    assert value not in str(refused.value)


def test_another_apps_secret_key_variable_is_not_ours(
    tmp_path: Path, no_secret_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only WASTETRACK_* variables configure the service: a shell's SECRET_KEY (Django's, say)
    is not taken as the master secret, which comes from the key file instead."""
    theirs = secrets.token_urlsafe(32)
    monkeypatch.setenv("SECRET_KEY", theirs)
    settings = Settings(data_dir=tmp_path)
    assert settings.secret_key != theirs
    assert (tmp_path / "keys" / "master.key").exists()


def test_known_secret_in_a_secret_file_is_refused(tmp_path: Path, no_secret_env: None) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("development-secret-change-me-development-secret")
    with pytest.raises(ValidationError, match="WASTETRACK_SECRET_FILE"):
        Settings(data_dir=tmp_path, secret_file=secret_file)


def test_each_purpose_has_its_own_key() -> None:
    ring = keys.KeyRing(masters={1: b"m" * 32})
    derived = {ring.key(purpose) for purpose in keys.PURPOSES}
    assert len(derived) == len(keys.PURPOSES)
    assert b"m" * 32 not in derived


def test_farmer_identity_key_survives_rotation(tmp_path: Path) -> None:
    master = secrets.token_hex(32)
    before = keys.install(master, tmp_path).farmer_identity
    keys.rotate(master=master, data_dir=tmp_path)
    after = keys.ring(master)
    assert after.current == 2
    assert after.farmer_identity == before
    assert after.key(keys.QR) != keys.KeyRing(masters={1: master.encode()}).key(keys.QR)


@pytest.fixture
async def own_world(
    orm: list[str], tmp_path: Path
) -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    """A world whose keys live in their own data directory, so rotating touches no other test."""
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        secret_key=secrets.token_urlsafe(32),
        public_base_url="http://testserver",
    )
    world = await build_world(settings)
    app = create_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield world, client


def _rotate_with_cli(settings: Settings) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wastetrack.cli", "keys", "rotate"],
        env={
            **os.environ,
            "WASTETRACK_DATA_DIR": str(settings.data_dir),
            "WASTETRACK_SECRET": settings.secret_key,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_label_printed_before_rotation_still_scans_and_new_labels_use_the_new_kid(
    own_world: tuple[World, httpx.AsyncClient],
) -> None:
    world, client = own_world
    before = await tag_bag(client, world)
    assert before["qr_url"].rsplit(".", 1)[1][0] == "1"
    assert '"kid": "2"' in _rotate_with_cli(world.settings)
    keys.install(world.settings.secret_key, world.settings.data_dir)  # the restart
    after = await tag_bag(client, world)
    assert after["qr_url"].rsplit(".", 1)[1][0] == "2"
    for batch in (before, after):
        scanned = await client.get(
            "/m/v1/scan", params={"qr": batch["qr_url"]}, headers=world.headers("clinic")
        )
        assert scanned.status_code == 200, scanned.text
        assert scanned.json()["batch"]["code"] == batch["code"]
        public = await client.get(batch["qr_url"].removeprefix("http://testserver"))
        assert public.status_code == 200


async def test_signatures_without_kid_verify_only_under_the_old_scheme(
    own_world: tuple[World, httpx.AsyncClient],
) -> None:
    world, client = own_world
    batch = await tag_bag(client, world)
    code = batch["code"]
    ring = keys.ring(world.settings.secret_key)
    legacy = codes._mac(ring.legacy_qr_key, code)
    unknown_kid = codes.ALPHABET[ring.current + 1] + codes._mac(ring.key(keys.QR), code)
    answers = {}
    for name, sig in (("legacy", legacy), ("unknown kid", unknown_kid)):
        response = await client.get(
            "/m/v1/scan",
            params={"qr": f"http://testserver/q/{code}.{sig}"},
            headers=world.headers("clinic"),
        )
        answers[name] = response.status_code
    assert answers == {"legacy": 200, "unknown kid": 404}


async def test_tokens_name_their_key_version_and_a_foreign_kid_is_refused(
    own_world: tuple[World, httpx.AsyncClient],
) -> None:
    import jwt

    world, client = own_world
    token = world.tokens["clinic"]
    assert jwt.get_unverified_header(token)["kid"] == "1"
    claims = jwt.decode(token, options={"verify_signature": False})
    ring = keys.ring(world.settings.secret_key)
    other_kid = jwt.encode(claims, ring.key(keys.JWT), algorithm="HS256", headers={"kid": "7"})
    raw_secret = jwt.encode(claims, world.settings.secret_key, algorithm="HS256")
    for forged in (other_kid, raw_secret):
        response = await client.get("/m/v1/batches", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
    assert (await client.get("/m/v1/batches", headers=world.headers("clinic"))).status_code == 200
