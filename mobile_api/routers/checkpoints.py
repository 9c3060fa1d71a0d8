"""Signed daily checkpoints of the custody log, for managers and auditors to keep outside it."""

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, PublicRateLimit, Transaction, require
from schemas.checkpoints import CheckpointRead, EventProofRead
from wastetrack.auth.models import Role
from wastetrack.core.commands import Day
from wastetrack.core.principal import Principal
from wastetrack.custody import checkpoints

router = Router(prefix="/m/v1/checkpoints", tags=["checkpoints"])

Overseer = Annotated[Principal, Depends(require(Role.manager, Role.auditor, Role.admin))]


@router.get("", response_model=list[CheckpointRead])
async def list_checkpoints(
    _: Overseer,
    __: Transaction,
    since: Annotated[Day | None, Query(description="the first day to list")] = None,
) -> object:
    """Every sealed day: event count, Merkle root, Ed25519 signature and public key."""
    return await checkpoints.list_checkpoints(since=since)


@router.get("/proof", response_model=EventProofRead)
async def event_proof(
    user: Overseer, settings: AppSettings, __: Transaction, event_id: Annotated[UUID, Query()]
) -> object:
    """The audit path from one custody event of a batch you may see to its day's signed
    checkpoint root."""
    return await checkpoints.inclusion_proof(
        principal=user, event_id=event_id, timezone=settings.timezone
    )


public_router = Router(prefix="/p/v1/checkpoints", tags=["checkpoints"])


@public_router.get("/key", dependencies=[PublicRateLimit])
async def public_key(settings: AppSettings) -> dict[str, str]:
    """The installation's checkpoint public key, and how signed messages and leaves are made:
    what anyone needs to check an exported checkpoint or an event's proof (no login)."""
    return checkpoints.public_key_read(settings.data_dir)
