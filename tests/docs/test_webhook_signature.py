"""The receiver's check of a webhook signature in docs/integrations.md, run as the page gives it
against signatures made by the service's own signing function: a change to either breaks it."""

import json
import secrets
from types import SimpleNamespace
from typing import Any

import pytest

from tests.docs.pages import ROOT, blocks
from wastetrack.webhooks.service import SIGNATURE_HEADER, sign

PAGE = ROOT / "docs" / "integrations.md"


def _check_snippet() -> str:
    found = [b.code for b in blocks(PAGE) if b.lang == "python" and SIGNATURE_HEADER in b.code]
    assert len(found) == 1, f"{PAGE.name} must give one Python check of {SIGNATURE_HEADER}"
    return found[0]


def _run(raw_body: bytes, secret: str, header: str) -> None:
    namespace: dict[str, Any] = {
        "raw_body": raw_body,
        "secret": secret,
        "request": SimpleNamespace(headers={SIGNATURE_HEADER: header}),
    }
    exec(compile(_check_snippet(), str(PAGE), "exec"), namespace)


def test_the_documented_check_accepts_what_the_service_signs() -> None:
    secret = "whsec_" + secrets.token_urlsafe(32)
    body = json.dumps(
        {
            "id": "b2f7c0de-0000-4000-8000-000000000001",
            "type": "delivery.recorded",
            "occurred_at": "2026-11-30T01:10:00+00:00",
            "data": {"delivery_id": 7, "receipt": "WR00920261130000007", "note": "石岛渔港"},
        },
        ensure_ascii=False,
    ).encode()
    signature = sign(body, secret)

    _run(body, secret, signature)

    with pytest.raises(AssertionError):
        _run(body + b" ", secret, signature)
    with pytest.raises(AssertionError):
        _run(body, "whsec_" + secrets.token_urlsafe(32), signature)
