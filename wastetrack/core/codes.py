"""Batch codes: short, typable, with a check character; QR URLs signed with a truncated HMAC.

A signature is one key-id character (the key version, in the codes' alphabet) followed by 8
characters of HMAC under that version's `qr` key, so labels printed before a `keys rotate`
keep scanning. Labels printed before key ids existed carry the 8 characters alone, made with the
raw version-1 master; those still verify.
"""

import hashlib
import hmac
import re
import secrets

from wastetrack.core import keys

# Crockford's base32: no I, L, O or U, so codes survive handwriting and typing.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 8
SIG_LENGTH = 8
_TYPO_MAP = str.maketrans({"I": "1", "L": "1", "O": "0"})
_URL_RE = re.compile(r"/q/([0-9A-Za-z-]+)\.([0-9A-Za-z]+)/?$")


def check_character(body: str) -> str:
    """Luhn mod 32 over the alphabet: catches every single-character error and most swaps."""
    factor, total = 2, 0
    for char in reversed(body):
        addend = factor * ALPHABET.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def new_code() -> str:
    """A fresh random code: each byte of one read of the system's CSPRNG picks a symbol by its
    low five bits, uniformly (256 is a multiple of the alphabet's 32), as `secrets.choice` per
    symbol would at eight reads of the random device (a tenth of a synced tagging's time)."""
    body = "".join(ALPHABET[byte & 31] for byte in secrets.token_bytes(BODY_LENGTH))
    return body + check_character(body)


def normalize(typed: str) -> str:
    return typed.strip().upper().replace("-", "").replace(" ", "").translate(_TYPO_MAP)


def printed(code: str) -> str:
    """A code as labels print it, in groups a person reads and types back: `ABCD-EFGH-J`
    (`normalize` reads it so again)."""
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def is_valid_code(code: str) -> bool:
    if len(code) != BODY_LENGTH + 1 or any(c not in ALPHABET for c in code):
        return False
    return check_character(code[:-1]) == code[-1]


def _mac(key: bytes, value: str) -> str:
    digest = hmac.new(key, b"qr:" + value.encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:5], "big")
    return "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(SIG_LENGTH)))


def signature(value: str, secret: str) -> str:
    """The key id of the current key version and the truncated HMAC of value under it."""
    ring = keys.ring(secret)
    return ALPHABET[ring.current] + _mac(ring.key(keys.QR), value)


def verify(value: str, sig: str, secret: str) -> bool:
    """Whether sig signs value under the key version it names (or, without a key id, under the
    raw version-1 master that signed labels before key ids)."""
    ring = keys.ring(secret)
    sig = normalize(sig)
    if len(sig) == SIG_LENGTH:
        expected = _mac(ring.legacy_qr_key, value)
    elif len(sig) == SIG_LENGTH + 1 and sig[0] in ALPHABET:
        version = ALPHABET.index(sig[0])
        if version not in ring.masters:
            return False
        expected = sig[0] + _mac(ring.key(keys.QR, version), value)
    else:
        return False
    # As bytes: compare_digest refuses str holding other than ASCII (a mistyped link's é).
    return hmac.compare_digest(sig.encode(), expected.encode())


def qr_url(code: str, *, base_url: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}/q/{code}.{signature(code, secret)}"


def code_from_scan(scanned: str, *, secret: str) -> str | None:
    """The code a scan or a typed entry names, or None when it is forged or mistyped."""
    match = _URL_RE.search(scanned.strip())
    if match:
        code, sig = normalize(match.group(1)), normalize(match.group(2))
        if not is_valid_code(code) or not verify(code, sig, secret):
            return None
        return code
    if "/" in scanned or "." in scanned:
        return None
    code = normalize(scanned)
    return code if is_valid_code(code) else None
