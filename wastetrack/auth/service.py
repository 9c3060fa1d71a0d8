"""Passwords, tokens and throttled logins."""

import asyncio
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from tortoise import connections
from tortoise.transactions import in_transaction

from wastetrack.apikeys import service as apikeys
from wastetrack.audit import service as audit
from wastetrack.auth.models import USERNAME, RefreshToken, Role, User
from wastetrack.core import keys, paging, ratelimit
from wastetrack.core.commands import ascii_digits
from wastetrack.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings
from wastetrack.registry import access, roles
from wastetrack.registry import service as registry

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a refusal takes as long either way.
_DUMMY_HASH = _hasher.hash("wastetrack-no-such-user")
_REFUSED = "incorrect username or password"


# argon2 takes tens of milliseconds of CPU and 64 MiB of memory per hash: it runs in this one
# thread, so the event loop keeps serving and a burst of logins cannot add 64 MiB each.
_ARGON2 = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
T = TypeVar("T")


async def _in_argon2_thread(work: Callable[..., T], *args: str) -> T:
    return await asyncio.get_running_loop().run_in_executor(_ARGON2, work, *args)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def password_matches(password_hash: str, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from (argon2, off the loop)."""
    try:
        await _in_argon2_thread(_hasher.verify, password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False
    return True


async def create_user(
    *, username: str, password: str, role: Role, organization_id: int, full_name: str = ""
) -> User:
    """Create a user bound to one organization, in a role its kind holds (registry.roles)."""
    if len(password) < 8:
        raise ValidationFailed("password must have at least 8 characters", field="password")
    if not re.fullmatch(USERNAME, username):
        raise ValidationFailed(
            "username must be 1-64 ASCII letters, digits, dots or underscores", field="username"
        )
    org = await registry.get_organization(organization_id)
    roles.check_role_fits(role, org.kind)
    name = account_name(username)
    async with in_transaction() as conn:
        # Two creations of one name at once take turns, on the name as folded.
        await conn.execute_query(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [f"user:{name}"]
        )
        taken = next(iter(await _alike(name)), None)
        if taken is not None:
            raise Conflict(
                f"username {username!r} is taken"
                + ("" if taken == username else f" (as {taken!r})"),
                field="username",
            )
        user = await User.create(
            username=username,
            password_hash=await _in_argon2_thread(hash_password, password),
            role=role,
            organization=org,
            full_name=full_name,
        )
        await audit.created("user.created", user, within=org)
    return user


def account_name(username: str) -> str:
    """What makes two usernames one account: the name with its case folded (`Clinic` beside
    `clinic` would read as one user in every list and audit entry), which is also the login
    back-off's key."""
    return username.casefold()


# The usernames that may fold to a name ($1, an `account_name`), each by an index of migration
# 0067: an ASCII one (every username since 41c7737) folds as PostgreSQL's lower() folds it,
# and one made before, of another script, is read whole (few) and folded in Python — reading
# every username was a refused login's cost for a name no account has, whose time told it.
_ALIKE = (
    "SELECT username FROM app_user WHERE lower(username) = $1"
    f" UNION SELECT username FROM app_user WHERE username !~ '{USERNAME}'"
)


async def _alike(name: str) -> list[str]:
    """The usernames that are the account `name` (an `account_name`), folded in Python as
    creation folds them (PostgreSQL's upper is no casefold: `ß` is not `SS`)."""
    rows = await connections.get("default").execute_query_dict(_ALIKE, [name])
    return sorted(u for u in (str(r["username"]) for r in rows) if account_name(u) == name)


async def find_account(username: str, *, active: bool | None = None) -> User | None:
    """The account a username names, as a login, a deactivation or a label issue reads it: the
    one written so, else the one account equal to it with the case folded as creation folds it
    (`account_name`: `CLINIC` is `clinic`, `strasse` is `Straße`). Of two accounts one name
    folds to (made before creation folded the case), only the one written so. The name is
    resolved first, over every account; `active` then asks the account named to be active (or
    inactive): a deactivated twin's name never names the other twin."""
    user = await User.get_or_none(username=username)
    if user is None:
        alike = await _alike(account_name(username))
        user = await User.get(username=alike[0]) if len(alike) == 1 else None
    if user is None or (active is not None and user.is_active != active):
        return None
    return user


async def principal_for(user: User) -> Principal:
    await user.fetch_related("organization__region")
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        organization_id=user.organization.id,
        region_path=user.organization.region.path,
    )


async def authenticate(
    *, username: str, password: str, settings: Settings, address: str = "unknown"
) -> User:
    """The user behind a correct password; refusals never say whether the user exists.

    Failures back off per client address and account (a wait that doubles), so another
    address can never lock an account out; failures per address across all accounts are
    capped, so spraying usernames from one address is throttled."""
    key = f"login|{address}|{account_name(username)}"
    # Each attempt counts as a failure from its start, so attempts sent at once are held to
    # the cap and the back-off as attempts one after another are; a right password takes its
    # counts back. One the cap refuses earns the account no back-off, and one the back-off
    # refuses uses none of the cap.
    failures = {
        "scope": "login-failures",
        "key": address,
        "rate": settings.rate_limit_login_failures,
    }
    await ratelimit.hit(**failures)
    try:
        await ratelimit.claim_failure(
            key=key,
            free=settings.login_max_failures,
            first=settings.login_lock_seconds,
            longest=settings.login_lock_max_seconds,
            forget_after=settings.login_forget_seconds,
        )
    except TooManyRequests:
        await ratelimit.refund(**failures)
        raise
    user = await find_account(username, active=True)
    # A missing user costs a hash all the same: the time taken tells nothing.
    matches = await password_matches(user.password_hash if user else _DUMMY_HASH, password)
    if not matches or user is None:
        raise Unauthorized(_REFUSED)
    await ratelimit.refund(**failures)
    await ratelimit.forget(key=key)
    refused = settings.demo_logins_refused()
    if refused is not None:
        from wastetrack import demo  # which reads this module

        if demo.is_published_login(user.username, password):
            # Checked here too, not only when `serve` starts or `demo` loads: the demo loaded
            # into a service started with `--host 0.0.0.0` (the demo's own settings said
            # loopback) let the published administrator's login in.
            raise Forbidden(
                f"the demo's logins are published in its source and {refused[1]}: an"
                " administrator deactivates the account (`wastetrack user deactivate`)",
                field="username",
            )
    return user


async def issue_tokens(
    *, user: User, settings: Settings, family: uuid.UUID | None = None
) -> dict[str, str | int]:
    """A short-lived access token and a one-use refresh token; a login starts a new token
    family, a refresh continues the family of the token it replaces."""
    now = datetime.now(UTC)
    ring = keys.ring(settings.secret_key)
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
        ring.key(keys.JWT),
        algorithm="HS256",
        headers={"kid": str(ring.current)},
    )
    jti = uuid.uuid4()
    expires = now + timedelta(days=settings.refresh_token_days)
    await RefreshToken.create(jti=jti, family=family or jti, user=user, expires_at=expires)
    refresh = jwt.encode(
        {"sub": str(user.id), "typ": "refresh", "jti": str(jti), "iat": now, "exp": expires},
        ring.key(keys.JWT),
        algorithm="HS256",
        headers={"kid": str(ring.current)},
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": settings.access_token_minutes * 60,
    }


def _decode(token: str, *, expected: str, settings: Settings) -> dict[str, Any]:
    ring = keys.ring(settings.secret_key)
    try:
        # The key id picks the key version; a token naming an unknown version is just invalid.
        kid = jwt.get_unverified_header(token).get("kid")
        if (
            not isinstance(kid, str)
            or not ascii_digits(kid, most=9)
            or int(kid) not in ring.masters
        ):
            raise Unauthorized("invalid token")
        claims = jwt.decode(token, ring.key(keys.JWT, int(kid)), algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except (jwt.PyJWTError, ValueError, TypeError, ArithmeticError):
        # Whatever a client's token makes the decoding raise, it is just not a valid token.
        raise Unauthorized("invalid token") from None
    if claims.get("typ") != expected:
        raise Unauthorized(f"an {expected} token is required")
    return claims


REFRESH_REUSE_GRACE = timedelta(seconds=60)
"""How long a rotated refresh token may be exchanged again while its login lives: a phone on
2G whose answer was lost (the server rotated, the phone kept the old token), or two tabs of
the app refreshing at once, would otherwise end the login as a theft. Okta's rotation grace
period, Auth0's reuse interval; at most 60 s, as theirs."""

LOGIN_LOCK_KEY = 0x6C6F6769
"""First half of the advisory lock key one user's refreshes, log-outs and revocations take
("logi" in ASCII); the user's id is the second."""


async def _take_turns(user_id: int) -> None:
    """Hold, until the transaction ends, the lock of the user's logins: a log-out or a
    revocation waits for a refresh under way to commit its new token (and revokes it), and a
    refresh waits for them (and finds its family revoked), never missing each other."""
    await connections.get("default").execute_query(
        "SELECT pg_advisory_xact_lock($1, $2)", [LOGIN_LOCK_KEY, user_id]
    )


async def refresh(*, refresh_token: str, settings: Settings) -> dict[str, str | int]:
    """Exchange a refresh token for new tokens. A login has one live token: the exchange
    replaces it. The token presented is that one; or, within `REFRESH_REUSE_GRACE` of its own
    rotation and while its login lives, the one it was rotated into, whose answer its holder
    never got (that successor is revoked, so the login still has one live token: a copy used
    meanwhile is caught at its next refresh). Any other rotated token presented revokes every
    token of its family. Runs its own transactions: a refused reuse must still commit the
    revocation."""
    claims = _decode(refresh_token, expected="refresh", settings=settings)
    async with in_transaction():
        await _take_turns(int(claims["sub"]))
        stored = await RefreshToken.get_or_none(jti=claims.get("jti"))
        if stored is None:
            raise Unauthorized("refresh token revoked")
        now = datetime.now(UTC)
        live = RefreshToken.filter(family=stored.family, revoked_at=None)
        reused = stored.revoked_at is not None and not (
            now - stored.revoked_at <= REFRESH_REUSE_GRACE and await live.exists()
        )
        # Reused: the thief and the owner hold the same family and cannot be told apart, so
        # it ends. Otherwise the login's live token (this one, or its successor) is replaced.
        await live.update(revoked_at=now)
        if not reused:
            user = await User.get_or_none(id=int(claims["sub"]), is_active=True)
            if user is None:
                raise Unauthorized("invalid token")
            return await issue_tokens(user=user, settings=settings, family=stored.family)
    raise Unauthorized("refresh token reused; every token of this login is revoked")


async def log_out(*, refresh_token: str, settings: Settings) -> None:
    """End the login a refresh token belongs to (RFC 7009): every token of its family stops
    working, the device's and any copy's; its access token ends within minutes. A token that
    is invalid, expired or revoked already ends nothing and is not an error."""
    try:
        claims = _decode(refresh_token, expected="refresh", settings=settings)
    except Unauthorized:
        return
    async with in_transaction():
        await _take_turns(int(claims["sub"]))
        stored = await RefreshToken.get_or_none(jti=claims.get("jti"))
        if stored is not None:
            await RefreshToken.filter(family=stored.family, revoked_at=None).update(
                revoked_at=datetime.now(UTC)
            )


async def revoke_sessions(*, user_id: int) -> int:
    """End every login of a user who keeps the account (a lost or stolen phone): its refresh
    tokens are revoked, so each device must log in again once its access token ends (within
    minutes); returns how many were revoked. Audited."""
    user = await User.get_or_none(id=user_id).prefetch_related("organization__region")
    if user is None:
        raise NotFound("no such user", field="user_id")
    await _take_turns(user_id)
    revoked = await RefreshToken.filter(user_id=user_id, revoked_at=None).update(
        revoked_at=datetime.now(UTC)
    )
    await audit.record(
        action="user.sessions_revoked",
        subject=user,
        organization_id=user.organization_id,
        region_path=user.organization.region.path,
        before=None,
        after={"revoked": revoked},
    )
    return int(revoked)


async def deactivate_user(*, user_id: int, acting_user_id: int | None = None) -> User:
    """Stop a user from logging in; their refresh tokens are revoked at once (by a database
    trigger, so any path that deactivates does it) and access tokens end within minutes.

    An administrator acting through the API (`acting_user_id`, else the request's actor)
    never deactivates themselves nor the last active administrator: either could leave nobody
    to manage accounts. Active administrators are locked while counted, so two deactivating
    each other at once cannot both succeed. The command line acts as nobody and may (the
    operator at the machine can always `wastetrack user create` another administrator, and
    deactivates the demo's before serving beyond loopback). A user deactivated already is
    answered as it stands."""
    acting = acting_user_id if acting_user_id is not None else audit.current_actor().user_id
    if acting == user_id:
        raise Conflict(
            f"user {user_id} is you: another administrator deactivates you", field="user_id"
        )
    async with in_transaction():
        user = await User.get_or_none(id=user_id).prefetch_related("organization__region")
        if user is None:
            raise NotFound("no such user", field="user_id")
        # Locked before it is judged, so two deactivations at once deactivate, and audit,
        # once. An administrator's row is locked with every active administrator's, in one
        # order, so two deactivating each other at once neither both succeed nor deadlock.
        guarded = acting is not None and user.role == Role.admin
        if guarded:
            locked = User.filter(role=Role.admin, is_active=True).order_by("id")
        else:
            locked = User.filter(id=user_id, is_active=True)
        active = {a.id for a in await locked.select_for_update()}
        if user.id not in active:
            user.is_active = False  # deactivated already: nothing changes, nothing is audited
            await apikeys.revoke_keys_of(user.id)  # but a key left live by an older release
            return user
        if guarded and active == {user.id}:
            raise Conflict(
                f"user {user_id} is the last active administrator: create another first",
                field="user_id",
            )
        await audit.updated("user.deactivated", user, within=user.organization, is_active=False)
        await apikeys.revoke_keys_of(user.id)
    return user


# Phones send the same access token for its whole life; verifying its signature each time
# costs more than the rest of the request's authentication. Keyed by the token itself. A token
# is trusted by its signature until it expires, cached or not (docs/security.md): revoking a
# user's sessions or deactivating them ends their refresh tokens, not an access token issued.
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


async def list_users(
    *, principal: Principal, limit: int = paging.DEFAULT_LIMIT, cursor: str | None = None
) -> paging.Page[User]:
    """The users `principal` may read (registry read scope), oldest first, a page at a time."""
    query = access.readable(User.all(), principal)
    return await paging.page(query, paging.OLDEST_ID, limit=limit, cursor=cursor)
