"""Digits other than ASCII's in what a client sends where a number is read: "²" is a digit to
`str.isdigit` but not to `int()`, and "٣" or "３" are to both; none is a number here."""

import httpx
import jwt
import pytest

from tests.factories import World
from wastetrack.core import keys
from wastetrack.core.commands import ascii_digits

PROBLEM = "application/problem+json"
# {"alg": "HS256", "kid": "\u00b2"}: a key id that `str.isdigit` takes and `int()` refuses.
SUPERSCRIPT_KID = "eyJhbGciOiAiSFMyNTYiLCAia2lkIjogIlx1MDBiMiJ9.e30.AAAA"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", True),
        ("123", True),
        ("", False),
        ("²", False),
        ("١٢", False),
        ("１２", False),
        ("+1", False),
        ("1_0", False),
        (" 1", False),
        ("9" * 20, False),
    ],
)
def test_only_a_few_ascii_digits_are_digits(text: str, expected: bool) -> None:
    assert ascii_digits(text, most=19) is expected


def _signed_with_kid(world: World, kid: str, typ: str = "access") -> str:
    claims = jwt.decode(world.tokens["clinic"], options={"verify_signature": False})
    ring = keys.ring(world.settings.secret_key)
    return jwt.encode(
        {**claims, "typ": typ}, ring.key(keys.JWT), algorithm="HS256", headers={"kid": kid}
    )


async def test_a_token_whose_key_id_is_no_ascii_number_is_an_invalid_token(
    client: httpx.AsyncClient, world: World
) -> None:
    forged = [SUPERSCRIPT_KID, _signed_with_kid(world, "１"), _signed_with_kid(world, "9" * 30)]
    for token in forged:
        bearer = {"Authorization": f"Bearer {token}"}
        answers = [
            await client.get("/m/v1/batches", headers=bearer),
            await client.post("/m/v1/auth/refresh", json={"refresh_token": token}),
            # The Idempotency-Key middleware reads the token before any route does.
            await client.post(
                "/m/v1/webhooks",
                json={"url": "https://example.com/h", "events": ["alert.raised"]},
                headers={**bearer, "Idempotency-Key": "k-1"},
            ),
        ]
        for response in answers:
            assert response.status_code == 401, response.text
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["detail"] == "invalid token"
        logout = await client.post("/m/v1/auth/logout", json={"refresh_token": token})
        assert logout.status_code == 204  # an invalid token ends nothing and is no error


@pytest.mark.parametrize("after", ["²", "١٢", "１２", "9" * 30])
async def test_an_audit_cursor_of_other_digits_is_refused_naming_after(
    client: httpx.AsyncClient, world: World, after: str
) -> None:
    response = await client.get(
        "/m/v1/audit", params={"after": after}, headers=world.headers("admin")
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == "after"
