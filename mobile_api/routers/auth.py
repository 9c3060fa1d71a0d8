"""Log in and refresh tokens (OAuth2 password flow)."""

from collections.abc import Mapping
from typing import Annotated

from fastapi import Form, Response

from mobile_api.bodies import Router
from mobile_api.deps import (
    AppSettings,
    ClientAddress,
    LoginRateLimit,
    RefreshRateLimit,
    Transaction,
)
from schemas.auth import PasswordForm, RefreshCreate, TokenRead
from wastetrack.auth import service as auth

router = Router(prefix="/m/v1/auth", tags=["auth"])

# Tokens are kept by no cache (RFC 6749 §5.1), nor as an Idempotency-Key's answer.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post("/token", response_model=TokenRead, dependencies=[LoginRateLimit])
async def login(
    form: Annotated[PasswordForm, Form()],
    settings: AppSettings,
    address: ClientAddress,
    response: Response,
) -> Mapping[str, object]:
    """Exchange a username and password for an access token and a refresh token."""
    response.headers.update(NO_STORE)
    # No request transaction here: a refused login must still count towards the throttle.
    user = await auth.authenticate(
        username=form.username, password=form.password, settings=settings, address=address
    )
    return await auth.issue_tokens(user=user, settings=settings)


@router.post("/refresh", response_model=TokenRead, dependencies=[RefreshRateLimit])
async def refresh(
    body: RefreshCreate, settings: AppSettings, response: Response
) -> Mapping[str, object]:
    """Exchange a refresh token for new tokens; the old refresh token stops working, and
    presenting it again revokes every token of its login."""
    response.headers.update(NO_STORE)
    # No request transaction: refusing a reused token must still commit the revocation.
    return await auth.refresh(refresh_token=body.refresh_token, settings=settings)


@router.post("/logout", status_code=204, dependencies=[RefreshRateLimit])
async def logout(body: RefreshCreate, settings: AppSettings, _: Transaction) -> Response:
    """End this login (RFC 7009): its refresh token and every token of its family stop
    working; its access token ends within minutes. An invalid or already revoked token is not
    an error."""
    await auth.log_out(refresh_token=body.refresh_token, settings=settings)
    return Response(status_code=204, headers=NO_STORE)
