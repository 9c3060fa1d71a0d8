"""Batches as a user may see them, and label stock."""

import asyncio
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from PIL import Image
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from wastetrack.auth.models import Role
from wastetrack.batches import identifiers
from wastetrack.batches.hj1276 import HazardousLabelText, LabelSize, render_hj1276_png, size_for
from wastetrack.batches.labels import LabelText, render_label_png, render_label_sheet_pdf
from wastetrack.batches.models import Batch, Label
from wastetrack.catalog import service as catalog
from wastetrack.core import codes, paging, regions
from wastetrack.core.cityday import local_date
from wastetrack.core.errors import Forbidden, NotFound, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.cosign import service as cosign
from wastetrack.custody.rules import Party
from wastetrack.registry import access
from wastetrack.registry.models import Organization

NOT_FOUND = "no batch or label with this code"
# The columns naming an organization that sees the batch (its parties).
PARTY_COLUMNS = ("producer_id", "holder_id", "carrier_id", "destination_id")
MAX_LABELS_PER_SHEET_RUN = 1000


def reasons(principal: Principal) -> list[Q]:
    """The ways a user comes to see a batch: their organization produced, holds, carries or
    receives it (one reason per party); managers, in their region subtree; admins, any."""
    if principal.role == Role.admin:
        return [Q()]
    org = principal.organization_id
    party: list[dict[str, Any]] = [{column: org} for column in PARTY_COLUMNS]
    found = [Q(**where) for where in party]
    if principal.sees_region:
        found.append(regions.subtree(principal.region_path))
    return found


def visible_batches(principal: Principal) -> QuerySet[Batch]:
    """Batches the user sees for any of their `reasons`."""
    return Batch.filter(paging.any_of(reasons(principal)))


def parties(principal: Principal, batch: Batch) -> set[Party]:
    """How the user's organization stands to a batch."""
    org = principal.organization_id
    found = set()
    for party, org_id in (
        (Party.producer, batch.producer_id),
        (Party.holder, batch.holder_id),
        (Party.carrier, batch.carrier_id),
        (Party.destination, batch.destination_id),
    ):
        if org_id == org:
            found.add(party)
    if principal.role == Role.admin or (
        principal.sees_region and batch.region_path.startswith(principal.region_path)
    ):
        found.add(Party.region)
    return found


@dataclass(frozen=True, slots=True)
class ScanReader:
    """Reads the scanned or typed texts of one call: signed QR URLs and typed codes by their
    check (`codes.code_from_scan`), HJ 1276 数字识别码 by the batches they were issued to,
    looked up once for the call (`scan_reader`)."""

    secret: str
    by_identifier: dict[str, str] = field(default_factory=dict)
    # Each text read once a call: the recorder reads a text to find its batch and again to
    # digest the command (`Command.named`), and a signed URL's check is an HMAC.
    _read: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)

    def code(self, scanned: str) -> str | None:
        """The code a text names, or None when it is forged, mistyped or an unknown
        identifier."""
        if scanned in self._read:
            return self._read[scanned]
        identifier = identifiers.normalize(scanned)
        if identifier is not None:
            found = self.by_identifier.get(identifier)
        else:
            found = codes.code_from_scan(scanned, secret=self.secret)
        self._read[scanned] = found
        return found

    def resolve(self, scanned: str, *, field: str = "batch") -> str:
        """The code a text names; forged, mistyped and unknown ones are refused with the same
        answer as unknown codes."""
        code = self.code(scanned)
        if code is None:
            raise NotFound(NOT_FOUND, field=field)
        return code


async def scan_reader(texts: Iterable[str | None], *, secret: str) -> ScanReader:
    """The reader of a call's texts: one query for the identifiers among them, none when there
    are none (a phone sends the text it scanned, a label's QR code or an HJ 1276 label's)."""
    wanted = {found for text in texts if text and (found := identifiers.normalize(text))}
    if not wanted:
        return ScanReader(secret)
    rows = await Batch.filter(identifier__in=wanted).values_list("identifier", "code")
    return ScanReader(secret, {str(identifier): str(code) for identifier, code in rows})


async def resolve_scan(scanned: str, *, secret: str, field: str = "batch") -> str:
    """The code behind a scanned URL, a typed code or an HJ 1276 数字识别码; unknown
    identifiers get the same answer as unknown codes."""
    return (await scan_reader([scanned], secret=secret)).resolve(scanned, field=field)


async def get_resent_tagging(code: str) -> Batch:
    """The batch a resent tagging made, for the answer to the resend. The recorder answers
    `duplicate` only to the organization that recorded the tagging, which may not see the
    batch (it tagged for another producer and carrier, or the batch has moved on since): the
    resend gets the batch all the same, as the first send did."""
    return await Batch.get(code=code)


async def get_visible_batch(principal: Principal, code: str, *, field: str = "code") -> Batch:
    """A batch the user may see, by its code (typed as a label prints it, `ABCD-EFGH-J`, in
    any case, with the typos the check character forgives) or its HJ 1276 数字识别码; a
    refusal names `field`, where the request gave the code."""
    identifier = identifiers.normalize(code)
    typed = codes.normalize(code)
    if identifier:
        where = {"identifier": identifier}
    elif codes.is_valid_code(typed):
        where = {"code": typed}
    else:
        raise NotFound(NOT_FOUND, field=field)
    batch = await visible_batches(principal).get_or_none(**where)
    if batch is None:
        raise NotFound(NOT_FOUND, field=field)
    return batch


@dataclass(frozen=True, slots=True)
class SplitLinks:
    """A partial acceptance's link, both ways: the batch this remainder was split from, and
    the remainders split from this batch (oldest first)."""

    split_from: str | None = None
    remainders: list[str] = field(default_factory=list)


async def split_links(batch: Batch) -> SplitLinks:
    """The codes a batch is linked to by partial acceptances."""
    split_from = (
        await Batch.filter(id=batch.split_from_id).values_list("code", flat=True)
        if batch.split_from_id is not None
        else []
    )
    remainders = (
        await Batch.filter(split_from_id=batch.id).order_by("id").values_list("code", flat=True)
    )
    return SplitLinks(
        split_from=str(split_from[0]) if split_from else None,
        remainders=[str(code) for code in remainders],
    )


async def get_label_for_binding(principal: Principal, code: str, *, on: date) -> Label | None:
    """An unbound label the user may tag a batch on, or None, as for an unknown code: its own
    organization's stock, or another's whose waste the user may tag on that stock (a carrier
    at a clinic's pre-printed bag), by the rule tagging applies with the label's organization
    as the producer (`access.may_tag_for`)."""
    label = await Label.get_or_none(code=code, bound_at=None)
    if label is None or not await access.may_tag_for(
        principal=principal,
        producer_id=label.organization_id,
        stream=label.stream_id,
        label_organization_id=label.organization_id,
        on=on,
    ):
        return None
    return label


NEWEST_CREATED = paging.Order("created_at", datetime)
"""The order of a user's batches."""


async def list_recent(
    principal: Principal, *, limit: int, cursor: str | None = None, state: str | None = None
) -> paging.Page[Batch]:
    """The user's batches, newest first, one page at a time: one keyset-ordered index scan per
    reason to see a batch (the indexes of migration 0019), merged (`paging.merged`)."""
    return await paging.page(
        _listed(state), NEWEST_CREATED, limit=limit, cursor=cursor, reasons=reasons(principal)
    )


def page_query(
    principal: Principal, *, limit: int, cursor: str | None, state: str | None
) -> tuple[str, list[object]]:
    """SQL and parameters for the keys (id, time) of the `limit` batches after `cursor` that
    `list_recent` reads first, for the list bench and the plan test (one statement for any
    number of reasons; `list_recent` reads a single reason's page in one query instead)."""
    return paging.merged(
        _listed(state), NEWEST_CREATED, reasons(principal), limit=limit, cursor=cursor
    )


def _listed(state: str | None) -> QuerySet[Batch]:
    query = Batch.all().prefetch_related("category")
    return query.filter(state=state) if state else query


async def issue_labels(
    principal: Principal, *, organization_id: int, stream: str, count: int
) -> list[Label]:
    """Issue unbound label codes for an organization's pre-printed stock."""
    if principal.role not in (Role.manager, Role.admin):
        raise Forbidden("only managers issue label stock", field="role")
    if not 1 <= count <= MAX_LABELS_PER_SHEET_RUN:
        raise ValidationFailed(
            f"count must lie between 1 and {MAX_LABELS_PER_SHEET_RUN}", field="count"
        )
    snap = await catalog.snapshot()
    if stream not in snap.streams:
        raise ValidationFailed(f"unknown stream {stream!r}", field="stream")
    # One outside the manager's region is 'not found', as one that does not exist.
    org = await access.readable_organization(principal, organization_id)
    labels = [
        Label(
            code=codes.new_code(),
            organization=org,
            stream_id=stream,
            issued_by_id=principal.user_id,
        )
        for _ in range(count)
    ]
    await Label.bulk_create(labels)
    return labels


async def _label_text(
    code: str,
    *,
    stream: str,
    category: str | None,
    tagged_on: date | None,
    base_url: str,
    secret: str,
) -> LabelText:
    snap = await catalog.snapshot()
    stream_row = snap.streams[stream]
    colour, category_zh, category_en = "#333333", stream_row.name_zh, stream_row.name_en
    if category is not None:
        for key in snap.ancestors(category):
            if snap.categories[key].colour:
                colour = snap.categories[key].colour or colour
                break
        category_zh, category_en = (
            snap.categories[category].name_zh,
            snap.categories[category].name_en,
        )
    return LabelText(
        code=code,
        url=codes.qr_url(code, base_url=base_url, secret=secret),
        category_zh=category_zh,
        category_en=category_en,
        stream_zh=stream_row.name_zh,
        stream_en=stream_row.name_en,
        colour=colour,
        tagged_on=tagged_on,
    )


async def label_png(
    *,
    principal: Principal,
    code: str,
    base_url: str,
    secret: str,
    timezone: str,
    size_mm: int | None = None,
    volume_l: Decimal | None = None,
) -> bytes:
    """The PNG label of a batch the user may see, dated by the city's calendar: for hazardous
    waste the HJ 1276-2022 label, sized by size_mm or the container's volume_l; else the
    50×30 mm label."""
    batch = await get_visible_batch(principal, code)
    snap = await catalog.snapshot()
    if identifiers.applies(snap.streams[batch.stream_id].rules):
        return await _hj1276_png(
            batch,
            size=size_for(side_mm=size_mm, volume_l=volume_l),
            base_url=base_url,
            secret=secret,
            timezone=timezone,
        )
    if size_mm is not None or volume_l is not None:
        raise ValidationFailed(
            "label sizes by container apply to hazardous-waste labels (HJ 1276) only",
            field="size" if size_mm is not None else "volume_l",
        )
    text = await _label_text(
        batch.code,
        stream=batch.stream_id,
        category=batch.category_id,
        tagged_on=local_date(batch.tagged_at, timezone),
        base_url=base_url,
        secret=secret,
    )
    return await asyncio.to_thread(render_label_png, text)  # CPU: off the event loop


async def issue_label_sheet(
    *,
    principal: Principal,
    organization_id: int,
    stream: str,
    count: int,
    base_url: str,
    secret: str,
) -> tuple[list[Label], bytes]:
    """Issue unbound codes and lay them out on A4 sheets; a producer whose handovers need its
    one-time PINs gets a new PIN list on the last page (wastetrack.cosign)."""
    issued = await issue_labels(
        principal, organization_id=organization_id, stream=stream, count=count
    )
    pins = await cosign.pins_for_label_sheet(
        principal=principal, organization_id=organization_id, stream=stream, secret=secret
    )
    texts = [
        await _label_text(
            label.code,
            stream=stream,
            category=None,
            tagged_on=None,
            base_url=base_url,
            secret=secret,
        )
        for label in issued
    ]
    sheet = await asyncio.to_thread(  # CPU: off the event loop
        render_label_sheet_pdf, texts, title=f"wastetrack labels {stream}", pins=pins
    )
    return issued, sheet


async def _hj1276_png(
    batch: Batch, *, size: LabelSize, base_url: str, secret: str, timezone: str
) -> bytes:
    snap = await catalog.snapshot()
    category = snap.categories[batch.category_id]
    hw = snap.hw_number(batch.category_id)
    producer = await Organization.get(id=batch.producer_id)
    quantity = format(batch.quantity.normalize(), "f")
    text = HazardousLabelText(
        code=batch.code,
        url=codes.qr_url(batch.code, base_url=base_url, secret=secret),
        identifier=batch.identifier,
        waste_name=category.name_zh,
        category=f"HW{hw} {category.name_zh}" if hw else category.name_zh,
        waste_code=batch.waste_code,
        hazards=tuple(batch.hazard or ()),
        producer=producer.name,
        contact=producer.contact_phone,
        tagged_on=local_date(batch.tagged_at, timezone),
        weight=f"{quantity} {batch.unit.value}",
    )
    png = await asyncio.to_thread(render_hj1276_png, text, size=size)  # CPU: off the event loop
    if _overflow(png):
        raise ValidationFailed(
            f"this batch's label does not fit {size.side_mm} × {size.side_mm} mm at"
            f" {size.text_mm:g} mm text: ask for a larger size",
            field="size",
        )
    return png


def _overflow(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as image:
        return int(image.info.get("OverflowPx", "0"))
