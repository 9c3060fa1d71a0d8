"""Canonical JSON and SHA-256 (plain or keyed), so the same content always hashes the same way."""

import hashlib
import hmac
import json
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID


def decimal_text(value: Decimal) -> str:
    """A decimal as it is hashed: normalized, never in exponent form (12.40 and 12.4 alike)."""
    return format(value.normalize(), "f")


def _default(value: Any) -> Any:
    # A caller that hashes many values of these types may give their text itself (the
    # encoder calls back here for each one): the same bytes, a little faster.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), default=_default, ensure_ascii=False
)


def canonical_json(value: Any) -> str:
    return _ENCODER.encode(value)


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def hmac_sha256_hex(key: bytes, value: Any) -> str:
    """HMAC-SHA256 of the same canonical serialization: only the key holder can produce it."""
    return hmac.digest(key, canonical_json(value).encode(), "sha256").hex()
