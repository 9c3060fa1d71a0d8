"""Request dependencies, declared once as Annotated aliases."""

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from tortoise.transactions import in_transaction

from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core.errors import Forbidden, Unauthorized
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings
from wastetrack.registry import service as registry

_bearer = OAuth2PasswordBearer(tokenUrl="/m/v1/auth/token", auto_error=False)


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_app_settings)]


async def _transaction() -> AsyncIterator[None]:
    """The request's one transaction: committed before the response leaves, rolled back on
    any error."""
    async with in_transaction():
        yield


Transaction = Annotated[None, Depends(_transaction, scope="function")]


async def _current_user(
    token: Annotated[str | None, Depends(_bearer)], settings: AppSettings
) -> Principal:
    if not token:
        raise Unauthorized("a bearer access token is required")
    return await auth.principal_from_access_token(token=token, settings=settings)


CurrentUser = Annotated[Principal, Depends(_current_user)]


def _require(*roles: Role):  # type: ignore[no-untyped-def]
    async def check(user: CurrentUser) -> Principal:
        if user.role not in roles:
            raise Forbidden(
                f"this needs the role {' or '.join(r.value for r in roles)}", field="role"
            )
        return user

    return check


ManagerOnly = Annotated[Principal, Depends(_require(Role.manager, Role.admin))]
AdminOnly = Annotated[Principal, Depends(_require(Role.admin))]


async def _region_scoped(
    user: ManagerOnly,
    region_id: Annotated[
        int | None, Query(description="narrow to this region's subtree (within yours)")
    ] = None,
) -> Principal:
    if region_id is None:
        return user
    path = await registry.subtree_path(
        within=user.region_path, region_id=region_id, admin=user.role == Role.admin
    )
    return replace(user, region_path=path)


# A manager whose region may be narrowed by ?region_id= for metrics over a sub-region.
RegionScoped = Annotated[Principal, Depends(_region_scoped)]
