"""Log in and refresh tokens (OAuth2 password flow)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from mobile_api.deps import AppSettings, Transaction
from schemas.auth import RefreshCreate, TokenRead
from wastetrack.auth import service as auth

router = APIRouter(prefix="/m/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenRead)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], settings: AppSettings
) -> dict:
    """Exchange a username and password for an access token and a refresh token."""
    # No request transaction here: a refused login must still count towards the throttle.
    user = await auth.authenticate(
        username=form.username, password=form.password, settings=settings
    )
    return await auth.issue_tokens(user=user, settings=settings)


@router.post("/refresh", response_model=TokenRead)
async def refresh(body: RefreshCreate, settings: AppSettings, _: Transaction) -> dict:
    """Exchange a refresh token for new tokens; the old refresh token stops working."""
    return await auth.refresh(refresh_token=body.refresh_token, settings=settings)
