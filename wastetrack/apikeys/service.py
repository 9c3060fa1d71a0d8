"""Issuing, listing, revoking and authenticating API keys.

A key reads `wt_<prefix>_<secret>`: the prefix (12 hex digits) finds the row, the whole key is
checked against an HMAC-SHA256 under the ring's api_key purpose key. The secret carries 256
random bits, so a fast keyed hash is enough (no password hashing); the key itself is shown
once, at issue, and stored nowhere. Each key acts as its own service user of its
organization, in a role no wider than an organization member's (never admin), and its scopes
narrow that further (see scopes.py)."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from wastetrack.apikeys.models import ApiKey
from wastetrack.apikeys.scopes import Scope, allows, needed
from wastetrack.audit import service as audit
from wastetrack.auth.models import Role, User
from wastetrack.core import keys, ratelimit
from wastetrack.core.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings
from wastetrack.registry import access, roles
from wastetrack.registry import service as registry

TOKEN_PREFIX = "wt_"
_TOKEN = re.compile(r"^wt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# last_used_at is written at most this often per key, not on every request.
TOUCH_EVERY = timedelta(minutes=1)
# No password hashes to argon2: the service user cannot log in with a password.
_NO_PASSWORD = "!api-key"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    token: str  # shown once


def _digest(token: str, *, secret: str, version: int) -> str:
    return hmac.new(
        keys.ring(secret).key(keys.API_KEY, version), token.encode(), hashlib.sha256
    ).hexdigest()


def _public(key: ApiKey) -> dict[str, Any]:
    return audit.snapshot(key, without=frozenset({"hash_version"}))


async def issue_key(
    *,
    principal: Principal,
    name: str,
    scopes: list[Scope],
    secret: str,
    organization_id: int | None = None,
    role: Role | None = None,
) -> IssuedKey:
    """Issue a key for an organization (the issuer's own by default); only people issue keys."""
    if principal.api_key_id is not None:
        raise Forbidden("API keys cannot issue keys; only people can", field="scope")
    if not scopes:
        raise ValidationFailed("name at least one scope", field="scopes")
    org = await registry.get_organization(organization_id or principal.organization_id)
    # What the organization's own staff do, unless the issuer names another role its kind
    # holds (registry.roles: the map user creation reads too).
    acting = role or roles.default_role(org.kind)
    if acting == Role.admin:
        raise ValidationFailed("an API key never acts as an administrator", field="role")
    roles.check_role_fits(acting, org.kind)
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    version = keys.ring(secret).current
    user = await User.create(
        username=f"apikey.{prefix}",
        password_hash=_NO_PASSWORD,
        role=acting,
        organization=org,
        full_name=name[:64],
    )
    key = await ApiKey.create(
        organization=org,
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=_digest(token, secret=secret, version=version),
        hash_version=version,
        scopes=sorted({s.value for s in scopes}),
        created_by_id=principal.user_id,
    )
    await audit.record(
        action="api_key.issued",
        subject=key,
        organization_id=org.id,
        region_path=org.region.path,
        after={**_public(key), "role": acting.value},
    )
    return IssuedKey(key=key, token=token)


async def list_keys(*, principal: Principal, organization_id: int | None = None) -> list[ApiKey]:
    """Keys of the organizations the principal may read (one of them when named), oldest first."""
    query = ApiKey.all()
    if organization_id is not None:
        query = query.filter(organization_id=organization_id)
    query = access.readable(query, principal)
    return await query.prefetch_related("created_by", "user").order_by("id")


async def revoke_key(*, principal: Principal, key_id: int) -> ApiKey:
    """Revoke a key at once (its service user is deactivated too); revoking twice is harmless."""
    key = (
        await access.readable(ApiKey.filter(id=key_id), principal)
        .select_for_update()
        .prefetch_related("organization__region", "created_by", "user")
        .first()
    )
    if key is None:
        raise NotFound(f"no API key {key_id}", field="key_id")
    if key.revoked_at is not None:
        return key
    await User.filter(id=key.user_id).update(is_active=False)
    await _revoked(key)
    return key


async def revoke_keys_of(user_id: int) -> None:
    """A key whose service user was deactivated (an administrator's `user deactivate`) is
    refused from then on, and is revoked so: listed and audited as `DELETE` leaves it."""
    keys_of = ApiKey.filter(user_id=user_id, revoked_at=None).select_for_update()
    for key in await keys_of.prefetch_related("organization__region", "created_by", "user"):
        await _revoked(key)


async def _revoked(key: ApiKey) -> None:
    before = _public(key)
    key.revoked_at = datetime.now(UTC)
    await key.save(update_fields=["revoked_at"])
    await audit.record(
        action="api_key.revoked",
        subject=key,
        organization_id=key.organization_id,
        region_path=key.organization.region.path,
        before=before,
        after=_public(key),
    )


async def authenticate(
    *, token: str, settings: Settings, address: str = "unknown"
) -> tuple[Principal, frozenset[Scope]]:
    """The service principal a key speaks for and its scopes; 401 for an unknown, malformed
    or revoked key. Rate-limited: requests per key, and refused keys per client address — an
    address that used those up is refused any key it does not hold (429 with Retry-After); a
    right key always works (it carries 256 random bits: guessing is no threat, and a
    proxy's address shared by every client must not let one integrator lock out the rest)."""
    failures = settings.rate_limit_api_key_failures
    try:
        principal, scopes = await key_principal(token=token, secret=settings.secret_key)
    except Unauthorized:
        await ratelimit.hit(scope="api-key-failures", key=address, rate=failures)
        raise
    await count_use(principal, settings)
    return principal, scopes


async def count_use(principal: Principal, settings: Settings) -> None:
    """One request of the key against WASTETRACK_RATE_LIMIT_API_KEY, 429 (with Retry-After)
    past it: every request the key sends, a resend answered from a kept answer too."""
    await ratelimit.hit(
        scope="api-key", key=str(principal.api_key_id), rate=settings.rate_limit_api_key
    )


async def key_principal(*, token: str, secret: str) -> tuple[Principal, frozenset[Scope]]:
    """The key's service principal and scopes, 401 for an unknown, malformed or revoked key
    (`authenticate` without its rate limits: also what the Idempotency-Key middleware asks
    before it answers from a kept response); notes the use at most once a minute."""
    match = _TOKEN.match(token)
    if match is None:
        raise Unauthorized("invalid API key")
    key = await ApiKey.get_or_none(prefix=match.group(1)).select_related(
        "user", "organization__region"
    )
    if key is None or key.hash_version not in keys.ring(secret).masters:
        raise Unauthorized("invalid API key")
    expected = _digest(token, secret=secret, version=key.hash_version)
    if not hmac.compare_digest(expected, key.secret_hash):
        raise Unauthorized("invalid API key")
    if key.revoked_at is not None or not key.user.is_active:
        raise Unauthorized("API key revoked")
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
        # Conditional, so concurrent requests of one key write it once.
        await ApiKey.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_EVERY), id=key.id
        ).update(last_used_at=now)
    principal = Principal(
        user_id=key.user.id,
        username=key.user.username,
        role=key.user.role,
        organization_id=key.organization.id,
        region_path=key.organization.region.path,
        api_key_id=key.id,
    )
    return principal, frozenset(Scope(s) for s in key.scopes)


def check_scope(*, scopes: frozenset[Scope], method: str, route_path: str) -> None:
    """Refuse (403, naming the scope) a route the key's scopes do not open."""
    scope = needed(method, route_path)
    if scope is None:
        raise Forbidden(
            f"no API key scope allows {method.upper()} {route_path}: only people may",
            field="scope",
        )
    if not allows(scopes, scope):
        raise Forbidden(f"this needs an API key with the scope {scope.value!r}", field="scope")
