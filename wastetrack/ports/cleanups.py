"""Clean-ups and floats: beach and sea-surface clean-ups (净滩行动), whose litter enters the
custody chain as one batch, and aquaculture float replacement (浮球整治)."""

from datetime import UTC, date, datetime
from typing import TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from wastetrack.auth.models import Role
from wastetrack.batches.models import Unit
from wastetrack.batches.tagging import MAX_QUANTITY
from wastetrack.core import paging
from wastetrack.core.data import read_data_file
from wastetrack.core.errors import Forbidden, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.reported import check_day_come, check_reported
from wastetrack.core.settings import get_settings
from wastetrack.custody import intake
from wastetrack.evidence import service as evidence
from wastetrack.ports import MARINE_STREAM
from wastetrack.ports.access import NEWEST_STARTED, readable, reasons
from wastetrack.ports.commands import CleanUpCommand, FloatReplacementCommand
from wastetrack.ports.models import CleanUp, FloatReplacement
from wastetrack.registry import service as registry

LITTER_ITEMS = {
    item["code"] for item in read_data_file("wastetrack.ports", "marine_litter_items.json")["items"]
}
BEACH_LITTER = "marine.beach_litter"
CLEANUP_ROLES = frozenset({Role.collector, Role.port_operator, Role.carrier})

M = TypeVar("M", bound=Model)


async def record_cleanup(
    *, principal: Principal, submission: CleanUpCommand, secret: str
) -> intake.RecordResult:
    """Record a beach or sea-surface clean-up; what it picked up enters the custody chain as
    one batch of beach litter in the team's hands. Exactly once per client_event_id."""

    async def apply(payload_digest: str) -> CleanUp:
        if principal.role not in CLEANUP_ROLES:
            raise Forbidden(f"a {principal.role.value} cannot record clean-ups", field="role")
        # Both ends, as every reported time (the end is also the batch's tagging time).
        now = datetime.now(UTC)
        for name in ("started_at", "ended_at"):
            check_reported(getattr(submission, name), now=now, field=name)
        if submission.total_weight_kg > MAX_QUANTITY[Unit.KG]:
            raise ValidationFailed(
                f"more than one batch holds ({MAX_QUANTITY[Unit.KG]} kg): record it in parts",
                field="total_weight_kg",
            )
        unknown = sorted(set(submission.item_counts) - LITTER_ITEMS)
        if unknown:
            raise ValidationFailed(
                f"unknown litter items {unknown}; see the taxonomy",
                field=f"item_counts.{unknown[0]}",
            )
        await registry.named_region(principal, submission.region_id)
        await evidence.require_photos(submission.photos, principal=principal, field="photos")
        (batch,) = await intake.take_in(
            principal=principal,
            record_id=submission.client_event_id,
            when=submission.ended_at,
            secret=secret,
            stream=MARINE_STREAM,
            lines=[intake.IntakeLine(BEACH_LITTER, submission.total_weight_kg, Unit.KG)],
            producer_id=principal.organization_id,
            handover_to=None,
            latitude=submission.latitude,
            longitude=submission.longitude,
        )
        return await CleanUp.create(
            **submission.model_dump(exclude={"client_event_id", "kind"}),
            organization_id=principal.organization_id,
            batch_id=batch.id,
            recorded_by_id=principal.user_id,
            client_event_id=submission.client_event_id,
            payload_digest=payload_digest,
        )

    return await intake.record_once(
        model=CleanUp, principal=principal, submission=submission, apply=apply
    )


def _reasons(principal: Principal) -> list[Q]:
    """Records of the user's organization, and for region readers every record in their
    region: clean-ups and float replacements alike."""
    return reasons(principal, organization=("organization_id",), region="region__path")


def _readable(query: QuerySet[M], principal: Principal) -> QuerySet[M]:
    return readable(query, _reasons(principal))


async def get_cleanup(*, principal: Principal, cleanup_id: int) -> CleanUp:
    """A clean-up the user's organization or region covers, with its batch."""
    found = (
        await _readable(CleanUp.filter(id=cleanup_id), principal).first().prefetch_related("batch")
    )
    if found is None:
        raise NotFound(f"no clean-up {cleanup_id}", field="cleanup_id")
    return found


async def list_cleanups(
    *, principal: Principal, limit: int = paging.DEFAULT_LIMIT, cursor: str | None = None
) -> paging.Page[CleanUp]:
    """Clean-ups of the user's organization (managers: in their region), newest first, a
    page at a time."""
    query = CleanUp.all().prefetch_related("batch")
    return await paging.page(
        query, NEWEST_STARTED, limit=limit, cursor=cursor, reasons=_reasons(principal)
    )


async def record_float_replacement(
    *, principal: Principal, submission: FloatReplacementCommand
) -> tuple[FloatReplacement, bool]:
    """Record aquaculture floats replaced (the plan's 浮球整治); a resend is not counted twice.
    The record, and whether this call made it."""
    principal.check_may_write()
    # A count dated ahead would fall in a period that has not come.
    check_day_come(submission.replaced_on, timezone=get_settings().timezone, field="replaced_on")

    async def create() -> FloatReplacement:
        await registry.named_region(principal, submission.region_id)
        return await FloatReplacement.create(
            **submission.model_dump(),
            organization_id=principal.organization_id,
            recorded_by_id=principal.user_id,
        )

    return await intake.kept_once(
        model=FloatReplacement,
        client_event_id=submission.client_event_id,
        content=submission.model_dump(exclude={"client_event_id"}),
        create=create,
        owned=lambda kept: kept.organization_id == principal.organization_id,
    )


LATEST_DAY = paging.Order("replaced_on", date)


async def list_float_replacements(
    *, principal: Principal, limit: int = paging.DEFAULT_LIMIT, cursor: str | None = None
) -> paging.Page[FloatReplacement]:
    """Float replacements of the user's organization (managers: in their region), latest
    day first, a page at a time."""
    return await paging.page(
        FloatReplacement.all(), LATEST_DAY, limit=limit, cursor=cursor, reasons=_reasons(principal)
    )
