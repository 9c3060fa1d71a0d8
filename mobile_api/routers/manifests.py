"""Hazardous-waste transfer manifests: draft, signatures, arrival, decision, revisions, PDF."""

import asyncio
from typing import Literal

from fastapi import Response

from mobile_api.bodies import Router
from mobile_api.deps import AppSettings, CurrentUser, Paging, Transaction
from mobile_api.media import PDF, binary
from mobile_api.presenters import NEXT_PAGE, manifest_read
from schemas.base import Id, Int32, QueryBoolean
from schemas.cosign import BulkSign, BulkSigned, BulkSignResult
from schemas.manifests import (
    Arrival,
    Cancellation,
    Decision,
    LegSign,
    ManifestCreate,
    ManifestRead,
    RevisionCreate,
    RevisionRead,
)
from wastetrack.batches import identifiers
from wastetrack.manifests import cancelling, drafting, queries, receiving, revisions, signing
from wastetrack.manifests.pdf import render_manifest_pdf
from wastetrack.scan import public

router = Router(prefix="/m/v1/manifests", tags=["manifests"])


@router.post("", response_model=ManifestRead, status_code=201)
async def create_manifest(
    body: ManifestCreate, user: CurrentUser, settings: AppSettings, _: Transaction
) -> ManifestRead:
    """The producer drafts a manifest: one trip, one waste type, its batches and carriers."""
    made = await drafting.create_manifest(
        principal=user,
        submission=body,
        area_code=settings.manifest_area_code,
        secret=settings.secret_key,
        timezone=settings.timezone,
        tolerance=settings.manifest_quantity_tolerance,
    )
    return manifest_read(await queries.get_manifest(principal=user, manifest_id=made.id))


@router.post("/sign", response_model=BulkSigned)
async def sign_many(
    body: BulkSign, user: CurrentUser, settings: AppSettings, _: Transaction
) -> BulkSigned:
    """Sign many manifests of one round at once (carrier: your legs; producer: your sections):
    all or nothing, a refusal names its item (`manifests[3]`), a retry changes nothing."""
    done = await signing.sign_many(
        principal=user,
        role=body.role,
        signatures=[signing.Signature(**item.model_dump()) for item in body.manifests],
        secret=settings.secret_key,
        timezone=settings.timezone,
    )
    results = [
        BulkSignResult(
            manifest_id=signed.manifest.id,
            number=signed.manifest.number,
            seq=signed.seq,
            status="already_signed" if signed.already else "signed",
            state=signed.manifest.state,
        )
        for signed in done
    ]
    return BulkSigned(
        results=results,
        signed=sum(r.status == "signed" for r in results),
        already_signed=sum(r.status == "already_signed" for r in results),
    )


@router.get("", response_model=list[ManifestRead], responses={200: NEXT_PAGE})
async def list_manifests(
    user: CurrentUser, paged: Paging, discrepant: QueryBoolean = False
) -> list[ManifestRead]:
    """Manifests you are party to (managers and auditors: your region), newest first;
    discrepant=true for mismatches."""
    found, next_cursor = await queries.list_manifests(
        principal=user, discrepant=discrepant, limit=paged.limit, cursor=paged.cursor
    )
    return paged.answer([manifest_read(m) for m in found], next_cursor)


@router.get("/{manifest_id}", response_model=ManifestRead)
async def get_manifest(manifest_id: Id, user: CurrentUser) -> ManifestRead:
    """One manifest with its sections, discrepancies and revisions."""
    return manifest_read(await queries.get_manifest(principal=user, manifest_id=manifest_id))


@router.post("/{manifest_id}/sign", response_model=ManifestRead)
async def sign_producer(
    manifest_id: Id, user: CurrentUser, settings: AppSettings, _: Transaction
) -> ManifestRead:
    """The producer signs (and so locks) its section; the batches go to the first carrier."""
    await signing.sign_producer(
        principal=user,
        manifest_id=manifest_id,
        secret=settings.secret_key,
        timezone=settings.timezone,
    )
    return manifest_read(await queries.get_manifest(principal=user, manifest_id=manifest_id))


@router.post("/{manifest_id}/legs/{seq}/sign", response_model=ManifestRead)
async def sign_leg(
    manifest_id: Id,
    seq: Int32,
    body: LegSign,
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
) -> ManifestRead:
    """A carrier signs its leg at handover, with time and place."""
    await signing.sign_leg(
        principal=user,
        manifest_id=manifest_id,
        seq=seq,
        signature=body,
        secret=settings.secret_key,
        timezone=settings.timezone,
    )
    return manifest_read(await queries.get_manifest(principal=user, manifest_id=manifest_id))


@router.post("/{manifest_id}/arrival", response_model=ManifestRead)
async def arrive(
    manifest_id: Id, body: Arrival, user: CurrentUser, settings: AppSettings, _: Transaction
) -> ManifestRead:
    """The receiver records the arrival; the decision is due by the end of the 5th working day
    after the day of arrival (city time, official calendar with holidays and make-up days)."""
    await receiving.arrive(
        principal=user,
        manifest_id=manifest_id,
        arrived_at=body.arrived_at,
        timezone=settings.timezone,
    )
    return manifest_read(await queries.get_manifest(principal=user, manifest_id=manifest_id))


@router.post("/{manifest_id}/decision", response_model=ManifestRead)
async def decide(
    manifest_id: Id, body: Decision, user: CurrentUser, settings: AppSettings, _: Transaction
) -> ManifestRead:
    """The receiver accepts, partially accepts or rejects, and signs its section."""
    done = await receiving.decide(
        principal=user,
        manifest_id=manifest_id,
        decision=body,
        tolerance=settings.manifest_quantity_tolerance,
        secret=settings.secret_key,
        timezone=settings.timezone,
    )
    return manifest_read(done)


@router.post("/{manifest_id}/cancel", response_model=ManifestRead)
async def cancel(
    manifest_id: Id, body: Cancellation, user: CurrentUser, _: Transaction
) -> ManifestRead:
    """Cancel (作废) a manifest before it arrives, with the reason: its producer while no
    carrier has signed a leg, the region's manager until the arrival. The steps it recorded
    stay in the custody chain; its batches may go back to their producer."""
    await cancelling.cancel(principal=user, manifest_id=manifest_id, reason=body.reason)
    return manifest_read(await queries.get_manifest(principal=user, manifest_id=manifest_id))


@router.post("/{manifest_id}/revisions", response_model=RevisionRead, status_code=201)
async def propose_revision(
    manifest_id: Id, body: RevisionCreate, user: CurrentUser, settings: AppSettings, _: Transaction
) -> object:
    """Propose a correction; every other party must approve it."""
    return await revisions.propose_revision(
        principal=user,
        manifest_id=manifest_id,
        revision=body,
        tolerance=settings.manifest_quantity_tolerance,
    )


@router.post("/{manifest_id}/revisions/{revision_id}/{answer}", response_model=RevisionRead)
async def answer_revision(
    manifest_id: Id,
    revision_id: Id,
    answer: Literal["approve", "reject", "withdraw"],
    user: CurrentUser,
    settings: AppSettings,
    _: Transaction,
) -> object:
    """Approve or reject a proposed correction (another party), or withdraw it (the
    organization that proposed it)."""
    if answer == "withdraw":
        return await revisions.withdraw_revision(
            principal=user, manifest_id=manifest_id, revision_id=revision_id
        )
    return await revisions.answer_revision(
        principal=user,
        manifest_id=manifest_id,
        revision_id=revision_id,
        approve=answer == "approve",
        tolerance=settings.manifest_quantity_tolerance,
    )


@router.get(
    "/{manifest_id}/manifest.pdf",
    response_class=Response,
    responses=binary(PDF, description="The transfer manifest"),
)
async def manifest_pdf(manifest_id: Id, user: CurrentUser, settings: AppSettings) -> Response:
    """The manifest as a PDF with its QR code."""
    manifest = await queries.get_manifest(principal=user, manifest_id=manifest_id)
    names = await queries.party_names(manifest)
    labelled = await identifiers.of_codes(manifest.batch_codes)
    url = public.manifest_url(
        manifest.number, base_url=settings.base_url, secret=settings.secret_key
    )
    pdf = await asyncio.to_thread(  # CPU: off the event loop
        render_manifest_pdf,
        manifest,
        url=url,
        party_names=names,
        timezone=settings.timezone,
        identifiers=labelled,
    )
    return Response(pdf, media_type="application/pdf")
