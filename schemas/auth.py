"""Tokens and users."""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from schemas.base import Id, Schema, Text
from wastetrack.auth.models import USERNAME, Role


class PasswordForm(Schema):
    """The OAuth2 password grant (RFC 6749 §4.3), sent as a form; a password is taken as typed."""

    model_config = ConfigDict(str_strip_whitespace=False)

    grant_type: Literal["password"] | None = None
    username: Text = Field(max_length=64)  # the column's length: no longer name exists
    password: str = Field(max_length=256)
    # Unused (a token's scope is its role; clients are not registered), yet text as any input:
    # no control character, a bound.
    scope: Text = Field("", max_length=1024)
    client_id: Text | None = Field(None, max_length=255)
    client_secret: Text | None = Field(None, max_length=255)


class TokenRead(Schema):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class RefreshCreate(Schema):
    # Any non-empty text: one that is no token of ours is refused by the refresh (401) and
    # ignored by the logout (RFC 7009), not told apart as too short.
    refresh_token: Text = Field(min_length=1, max_length=2000)


class UserCreate(Schema):
    # The pattern in the annotation: `Text`'s own pattern would replace one given beside it.
    username: Annotated[str, StringConstraints(pattern=USERNAME)]
    # Taken as typed, as the login form takes it: trimmed, it would not be the one the admin
    # gives the user.
    password: Annotated[Text, StringConstraints(strip_whitespace=False)] = Field(
        min_length=8, max_length=256
    )
    role: Role
    organization_id: Id
    full_name: Text = Field("", max_length=64)


class UserRead(Schema):
    id: int
    username: str
    full_name: str
    role: Role
    organization_id: int
    is_active: bool


class SessionsRevokedRead(Schema):
    revoked: int = Field(description="refresh tokens revoked (each device's login ends with it)")
