"""The receiver's check of a webhook signature in docs/integrations.md, run as the page gives it
against signatures made by the service's own signing function: a change to either breaks it. A
delivery replayed once its timestamp is stale fails the check too."""

import json
import secrets
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tests.docs.pages import ROOT, blocks
from wastetrack.webhooks.service import (
    FRESHNESS_SECONDS,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

PAGE = ROOT / "docs" / "integrations.md"


def _check_snippet() -> str:
    found = [b.code for b in blocks(PAGE) if b.lang == "python" and SIGNATURE_HEADER in b.code]
    assert len(found) == 1, f"{PAGE.name} must give one Python check of {SIGNATURE_HEADER}"
    return found[0]


def _run(raw_body: bytes, secret: str, headers: dict[str, str]) -> None:
    namespace: dict[str, Any] = {
        "raw_body": raw_body,
        "secret": secret,
        "request": SimpleNamespace(headers=headers),
    }
    exec(compile(_check_snippet(), str(PAGE), "exec"), namespace)


def _headers(message_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(message_id, timestamp, body, secret),
    }


def test_the_documented_check_accepts_what_the_service_signs() -> None:
    secret = "whsec_" + secrets.token_urlsafe(32)
    message_id = "b2f7c0de-0000-4000-8000-000000000001"
    body = json.dumps(
        {
            "id": message_id,
            "type": "delivery.recorded",
            "occurred_at": "2026-11-30T01:10:00+00:00",
            "data": {"delivery_id": 7, "receipt": "WR00920261130000007", "note": "石岛渔港"},
        },
        ensure_ascii=False,
    ).encode()
    now = int(time.time())
    headers = _headers(message_id, now, body, secret)

    _run(body, secret, headers)

    with pytest.raises(AssertionError):
        _run(body + b" ", secret, headers)
    with pytest.raises(AssertionError):
        _run(body, "whsec_" + secrets.token_urlsafe(32), headers)
    with pytest.raises(AssertionError):  # another timestamp than the one signed
        _run(body, secret, {**headers, TIMESTAMP_HEADER: str(now + 1)})
    # A captured delivery, signed as it was sent, replayed once it is stale.
    stale = now - FRESHNESS_SECONDS - 60
    with pytest.raises(AssertionError):
        _run(body, secret, _headers(message_id, stale, body, secret))
