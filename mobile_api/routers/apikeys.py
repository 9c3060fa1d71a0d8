"""API keys for machines (weighbridges, plant software, BI tools): issued and revoked by
administrators; only people manage keys, a key never does."""

from typing import Annotated

from fastapi import Query, Response

from mobile_api.bodies import Router
from mobile_api.deps import AdminOnly, AppSettings, Transaction
from schemas.apikeys import ApiKeyCreate, ApiKeyIssued, ApiKeyRead
from schemas.base import Id
from wastetrack.apikeys import service as apikeys
from wastetrack.apikeys.models import ApiKey

router = Router(prefix="/m/v1/api-keys", tags=["api-keys"])


async def _read(key: ApiKey) -> ApiKeyRead:
    await key.fetch_related("user", "created_by")
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        organization_id=key.organization_id,
        role=key.user.role,
        scopes=key.scopes,
        prefix=key.prefix,
        created_by=key.created_by_id,
        created_by_username=key.created_by.username,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.post("", response_model=ApiKeyIssued, status_code=201)
async def issue_api_key(
    body: ApiKeyCreate,
    user: AdminOnly,
    settings: AppSettings,
    _: Transaction,
    response: Response,
) -> ApiKeyIssued:
    """Issue a scoped key for an organization; the key is in this response only."""
    response.headers["Cache-Control"] = "no-store"  # kept by no cache, nor as an answer
    issued = await apikeys.issue_key(
        principal=user,
        name=body.name,
        scopes=body.scopes,
        organization_id=body.organization_id,
        role=body.role,
        secret=settings.secret_key,
    )
    read = await _read(issued.key)
    return ApiKeyIssued(**read.model_dump(), key=issued.token)


@router.get("", response_model=list[ApiKeyRead])
async def list_api_keys(
    user: AdminOnly, organization_id: Annotated[Id | None, Query()] = None
) -> list[ApiKeyRead]:
    """Keys with their scopes, creator and last use (never the secret), oldest first."""
    return [
        await _read(key)
        for key in await apikeys.list_keys(principal=user, organization_id=organization_id)
    ]


@router.delete("/{key_id}", response_model=ApiKeyRead)
async def revoke_api_key(key_id: Id, user: AdminOnly, _: Transaction) -> ApiKeyRead:
    """Revoke a key: it is refused (401) from the next request on."""
    return await _read(await apikeys.revoke_key(principal=user, key_id=key_id))
