"""Passwords, tokens and throttled logins."""

import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from wastetrack.auth.models import LoginThrottle, RefreshToken, Role, User
from wastetrack.core.errors import Conflict, TooManyRequests, Unauthorized, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings
from wastetrack.registry import service as registry

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a refusal takes as long either way.
_DUMMY_HASH = _hasher.hash("wastetrack-no-such-user")
_REFUSED = "incorrect username or password"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def create_user(
    *, username: str, password: str, role: Role, organization_id: int, full_name: str = ""
) -> User:
    """Create a user bound to one organization."""
    if len(password) < 8:
        raise ValidationFailed("password must have at least 8 characters", field="password")
    if (
        not username
        or len(username) > 64
        or not username.replace("_", "").replace(".", "").isalnum()
    ):
        raise ValidationFailed(
            "username must be 1-64 letters, digits, dots or underscores", field="username"
        )
    org = await registry.get_organization(organization_id)
    if await User.exists(username=username):
        raise Conflict(f"username {username!r} is taken", field="username")
    return await User.create(
        username=username,
        password_hash=hash_password(password),
        role=role,
        organization=org,
        full_name=full_name,
    )


async def principal_for(user: User) -> Principal:
    await user.fetch_related("organization__region")
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        organization_id=user.organization.id,
        region_path=user.organization.region.path,
    )


async def authenticate(*, username: str, password: str, settings: Settings) -> User:
    """The user behind a correct password; refusals never say whether the user exists."""
    now = datetime.now(UTC)
    throttle = await LoginThrottle.get_or_none(username=username)
    if throttle and throttle.locked_until and throttle.locked_until > now:
        raise TooManyRequests(
            "too many failed logins; try again later",
            retry_after=int((throttle.locked_until - now).total_seconds()) + 1,
        )
    user = await User.get_or_none(username=username, is_active=True)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None
    except (VerifyMismatchError, InvalidHashError):
        ok = False
    if not ok or user is None:
        await _record_failure(username=username, now=now, settings=settings)
        raise Unauthorized(_REFUSED)
    if throttle:
        await throttle.delete()
    return user


async def _record_failure(*, username: str, now: datetime, settings: Settings) -> None:
    throttle, _ = await LoginThrottle.get_or_create(username=username)
    throttle.failures += 1
    throttle.last_failure_at = now
    if throttle.failures >= settings.login_max_failures:
        throttle.locked_until = now + timedelta(seconds=settings.login_lock_seconds)
        throttle.failures = 0
    await throttle.save()


async def issue_tokens(*, user: User, settings: Settings) -> dict[str, str | int]:
    """A short-lived access token and a one-use refresh token."""
    now = datetime.now(UTC)
    principal = await principal_for(user)
    # The access token carries the principal, so a request needs no user lookup; it lives
    # minutes, and refreshing it re-reads the user, so deactivation takes effect by expiry.
    access = jwt.encode(
        {
            "sub": str(user.id),
            "role": user.role.value,
            "name": user.username,
            "org": principal.organization_id,
            "region": principal.region_path,
            "typ": "access",
            "iat": now,
            "exp": now + timedelta(minutes=settings.access_token_minutes),
        },
        settings.secret_key,
        algorithm="HS256",
    )
    jti = uuid.uuid4()
    expires = now + timedelta(days=settings.refresh_token_days)
    await RefreshToken.create(jti=jti, user=user, expires_at=expires)
    refresh = jwt.encode(
        {"sub": str(user.id), "typ": "refresh", "jti": str(jti), "iat": now, "exp": expires},
        settings.secret_key,
        algorithm="HS256",
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": settings.access_token_minutes * 60,
    }


def _decode(token: str, *, expected: str, settings: Settings) -> dict:
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    if claims.get("typ") != expected:
        raise Unauthorized(f"an {expected} token is required")
    return claims


async def refresh(*, refresh_token: str, settings: Settings) -> dict[str, str | int]:
    """Exchange a refresh token for new tokens; the old one stops working."""
    claims = _decode(refresh_token, expected="refresh", settings=settings)
    stored = await RefreshToken.select_for_update().get_or_none(jti=claims.get("jti"))
    if stored is None or stored.revoked_at is not None:
        raise Unauthorized("refresh token revoked")
    stored.revoked_at = datetime.now(UTC)
    await stored.save(update_fields=["revoked_at"])
    user = await User.get_or_none(id=int(claims["sub"]), is_active=True)
    if user is None:
        raise Unauthorized("invalid token")
    return await issue_tokens(user=user, settings=settings)


# Phones send the same access token for its whole life; verifying its signature each time
# costs more than the rest of the request's authentication. Keyed by the token itself.
_verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
_VERIFIED_MAX = 4096


async def principal_from_access_token(*, token: str, settings: Settings) -> Principal:
    """The user an access token speaks for, read from its signed claims."""
    cached = _verified.get(token)
    if cached is not None and cached[0] > time.time():
        return cached[1]
    claims = _decode(token, expected="access", settings=settings)
    try:
        principal = Principal(
            user_id=int(claims["sub"]),
            username=claims["name"],
            role=Role(claims["role"]),
            organization_id=int(claims["org"]),
            region_path=claims["region"],
        )
    except (KeyError, ValueError):
        raise Unauthorized("invalid token") from None
    _verified[token] = (float(claims["exp"]), principal)
    if len(_verified) > _VERIFIED_MAX:
        _verified.popitem(last=False)
    return principal


async def list_users() -> list[User]:
    """All users, oldest first."""
    return await User.all().order_by("id")
