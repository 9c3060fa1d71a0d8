"""Batch codes: short, typable, with a check character; QR URLs signed with a truncated HMAC."""

import hashlib
import hmac
import re
import secrets

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
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + check_character(body)


def normalize(typed: str) -> str:
    return typed.strip().upper().replace("-", "").replace(" ", "").translate(_TYPO_MAP)


def is_valid_code(code: str) -> bool:
    if len(code) != BODY_LENGTH + 1 or any(c not in ALPHABET for c in code):
        return False
    return check_character(code[:-1]) == code[-1]


def signature(code: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), b"qr:" + code.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:5], "big")
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(SIG_LENGTH)))


def qr_url(code: str, *, base_url: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}/q/{code}.{signature(code, secret)}"


def code_from_scan(scanned: str, *, secret: str) -> str | None:
    """The code a scan or a typed entry names, or None when it is forged or mistyped."""
    match = _URL_RE.search(scanned.strip())
    if match:
        code, sig = normalize(match.group(1)), normalize(match.group(2))
        if not is_valid_code(code) or not hmac.compare_digest(sig, signature(code, secret)):
            return None
        return code
    if "/" in scanned or "." in scanned:
        return None
    code = normalize(scanned)
    return code if is_valid_code(code) else None
