"""The key ring: the master secret (configured or generated on first start), its rotated
versions, one HKDF-derived key per purpose, and the files that keep them in the data directory.

Version 1 of the master is the configured secret (`WASTETRACK_SECRET`, `WASTETRACK_SECRET_FILE`)
or `<data_dir>/keys/master.key`; `wastetrack keys rotate` adds `master-v2.key`, `master-v3.key`…
The highest version signs new QR labels, receipts, tokens and chain MACs; every version keeps
verifying. The farmer identity key always comes from version 1: farmers are found by a keyed
hash of their phone or ID number, so rotating that key would orphan every farmer.

The rest of the code passes the master secret string around as `secret`; `ring(secret)` turns it
into the ring loaded for it, and each user takes its purpose key from there.
"""

import os
import re
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wastetrack.core.errors import Conflict

JWT = "jwt"
QR = "qr"
FARMER_IDENTITY = "farmer_identity"
CHAIN_MAC = "chain_mac"
WEBHOOK = "webhook"
API_KEY = "api_key"
PRODUCER_PIN = "producer_pin"
MANIFEST_STEP = "manifest_step"
KEPT_DIGEST = "kept_digest"
PURPOSES = (
    JWT,
    QR,
    FARMER_IDENTITY,
    CHAIN_MAC,
    WEBHOOK,
    API_KEY,
    PRODUCER_PIN,
    MANIFEST_STEP,
    KEPT_DIGEST,
)

MIN_SECRET_LENGTH = 32
# A version travels as one character of the codes' alphabet in QR URLs.
MAX_VERSION = 31
_VERSION_FILE = re.compile(r"^master-v(\d+)\.key$")
# Values that were published (the old development default) or that people type as placeholders.
_KNOWN_WEAK = (
    "development-secret-change-me-development-secret",
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "secretkey",
    "secret-key",
    "password",
    "development",
    "default",
    "example",
    "test",
    "your-secret-key",
    "yoursecretkey",
    "insecure",
    "xxxxxxxx",
)


class WeakSecret(ValueError):
    """A configured secret that anybody could guess."""


def check_secret(value: str, *, source: str) -> str:
    """The value, when it is long enough and not a published or placeholder value."""
    if len(value) < MIN_SECRET_LENGTH:
        raise WeakSecret(f"{source} must be at least {MIN_SECRET_LENGTH} characters")
    folded = re.sub(r"[^a-z0-9]", "", value.lower())
    words = {re.sub(r"[^a-z0-9]", "", w) for w in _KNOWN_WEAK}
    if (
        value.lower() in _KNOWN_WEAK
        or "changeme" in folded
        or "developmentsecret" in folded
        or len(set(folded)) <= 2
        or any(folded == w * (len(folded) // len(w)) for w in words if len(folded) % len(w) == 0)
    ):
        raise WeakSecret(f"{source} is a published or placeholder value; generate a random one")
    return value


def secret_text(raw: bytes, *, source: str) -> str:
    """A secret read from a file, as text: raw random bytes (`head -c 32 /dev/urandom`) are no
    secret the settings can hold, and the refusal names where they came from."""
    try:
        return raw.decode().strip()
    except UnicodeDecodeError:
        raise WeakSecret(
            f"{source} is not UTF-8 text; write a random text secret (openssl rand -base64 32)"
        ) from None


def keys_dir(data_dir: Path) -> Path:
    path = data_dir / "keys"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_private(path: Path, data: bytes, *, replace: bool = False) -> bool:
    """Write data to a file readable by the owner only, whole or not at all: written and
    synced under a temporary name, then linked to its own, so another process never reads it
    cut short. False when the file already exists (another process won the race, and its file
    is the one to use), unless `replace` says to put the new file in its place."""
    part = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(part, path)
            return True
        try:
            os.link(part, path)
        except FileExistsError:
            return False
        return True
    finally:
        part.unlink(missing_ok=True)


def read_or_create(path: Path, make: "bytes | None" = None) -> bytes:
    """The file's bytes, creating it (mode 0600) with make or 32 random bytes (hex) first."""
    if not path.exists():
        write_private(path, make if make is not None else secrets.token_bytes(32).hex().encode())
    return path.read_bytes()


def resolve_master(*, configured: str | None, secret_file: Path | None, data_dir: Path) -> str:
    """Master version 1: the configured secret, the secret file, or the generated key file."""
    if configured:
        return check_secret(configured, source="WASTETRACK_SECRET")
    if secret_file is not None:
        source = f"WASTETRACK_SECRET_FILE ({secret_file})"
        return check_secret(secret_text(secret_file.read_bytes(), source=source), source=source)
    generated = keys_dir(data_dir) / "master.key"
    source = str(generated)
    return check_secret(secret_text(read_or_create(generated), source=source), source=source)


def _rotated_versions(data_dir: Path) -> dict[int, bytes]:
    folder = data_dir / "keys"
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = _VERSION_FILE.match(path.name)
        if match:
            # An empty or cut-short file (a full disk) would be a key anyone knows.
            text = check_secret(secret_text(path.read_bytes(), source=str(path)), source=str(path))
            found[int(match.group(1))] = text.encode()
    return found


def derive(master: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose: HKDF-SHA256 over the master, the purpose as info."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"wastetrack/" + purpose.encode()
    ).derive(master)


@dataclass(frozen=True)
class KeyRing:
    """Every master version known to this process and the keys derived from them."""

    masters: dict[int, bytes]
    _derived: dict[tuple[int, str], bytes] = field(default_factory=dict, compare=False)

    @property
    def current(self) -> int:
        return max(self.masters)

    @property
    def versions(self) -> list[int]:
        """Newest first: the order to try when a signature names no version."""
        return sorted(self.masters, reverse=True)

    @property
    def legacy_qr_key(self) -> bytes:
        """The raw version-1 master: what labels printed before key ids were signed with."""
        return self.masters[1]

    def key(self, purpose: str, version: int | None = None) -> bytes:
        """The purpose key of a version (the current one by default); KeyError if unknown."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        version = self.current if version is None else version
        cached = self._derived.get((version, purpose))
        if cached is None:
            cached = self._derived[(version, purpose)] = derive(self.masters[version], purpose)
        return cached

    @cached_property
    def farmer_identity(self) -> bytes:
        """Stable for the life of the installation: always from master version 1."""
        return self.key(FARMER_IDENTITY, 1)

    @cached_property
    def manifest_step(self) -> bytes:
        """The key of a manifest step's client id: from master version 1, so a key rotation
        between a step and its retry does not change the id."""
        return self.key(MANIFEST_STEP, 1)

    @cached_property
    def kept_digest(self) -> bytes:
        """The key of what the database keeps to know a resend (a record's personal fields in
        its content digest, a request's fingerprint under an Idempotency-Key): a plain hash of
        a farmer's number is reversed in 10,000 tries from its masked form. From master version
        1, so a key rotation between a send and its resend changes no digest."""
        return self.key(KEPT_DIGEST, 1)


_rings: dict[str, KeyRing] = {}


def install(master: str, data_dir: Path) -> KeyRing:
    """Load the ring whose version 1 is master, with the versions rotated into data_dir."""
    masters = {1: master.encode(), **_rotated_versions(data_dir)}
    _rings[master] = KeyRing(masters=masters)
    return _rings[master]


def ring(secret: str) -> KeyRing:
    """The ring installed for this master secret; a one-version ring when none was installed."""
    found = _rings.get(secret)
    if found is None:
        found = _rings[secret] = KeyRing(masters={1: secret.encode()})
    return found


def rotate(*, master: str, data_dir: Path) -> int:
    """Add a new random master version in data_dir and make it current; returns its number."""
    installed = install(master, data_dir)
    version = installed.current + 1
    if version > MAX_VERSION:
        raise Conflict(f"at most {MAX_VERSION} key versions: every version is in use")
    if not write_private(
        keys_dir(data_dir) / f"master-v{version}.key", secrets.token_bytes(32).hex().encode()
    ):
        raise Conflict(f"key version {version} is being created by another process")
    return install(master, data_dir).current


def signing_key(data_dir: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key, generated on first use (PEM, mode 0600)."""
    pem = read_or_create(
        keys_dir(data_dir) / "checkpoint-ed25519.pem",
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError("the checkpoint key is not an Ed25519 key")
    return loaded


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        .hex()
    )


def database_password(data_dir: Path) -> str:
    """The password of the service's own database role on the embedded server (mode 0600)."""
    return read_or_create(keys_dir(data_dir) / "db-app-password").decode().strip()
