"""Batches, scans and label stock."""

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from fastapi import UploadFile
from pydantic import Field

from schemas.base import Id, Integer, Moment, Schema, Text
from schemas.events import Latitude, Longitude
from schemas.ports import BerthRead
from schemas.registry import SiteRead
from wastetrack.batches.models import Unit
from wastetrack.core.commands import Hazards, Located
from wastetrack.custody.commands import QUANTITY_BOUND


class BatchCreate(Schema, Located):
    """Tag a new batch, or bind a pre-printed label (give its code or scanned URL as `label`)."""

    client_event_id: UUID
    label: Text | None = Field(None, max_length=512)
    stream: Text | None = Field(None, max_length=32)
    category: Text = Field(max_length=64)
    waste_code: Text | None = Field(None, max_length=16)
    hazard: Hazards | None = None
    quantity: Decimal = Field(gt=0, le=QUANTITY_BOUND, max_digits=12, decimal_places=3)
    unit: Unit
    producer_organization_id: Id | None = None
    origin_site_id: Id | None = None
    carrier_organization_id: Id | None = None
    destination_organization_id: Id | None = None
    device_time: Moment
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    photo_sha256: Text | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    note: Text | None = Field(None, max_length=1000)


class BatchRead(Schema):
    code: str
    identifier: str | None = Field(
        None,
        description="the HJ 1276-2022 数字识别码 of a hazardous-waste batch (37 characters:"
        " credit code, waste code digits, YYYYMMDD, sequence); searchable like code",
    )
    qr_url: str
    stream: str = Field(validation_alias="stream_id")
    category: str = Field(validation_alias="category_id")
    waste_code: str | None
    hazard: list[str] | None
    producer_id: int
    origin_site_id: int | None
    quantity: Decimal
    unit: Unit
    state: str
    holder_id: int
    carrier_id: int | None
    destination_id: int | None
    parent_id: int | None
    tagged_at: datetime
    created_at: datetime
    last_seq: int
    split_from: str | None = Field(
        None, description="the batch whose partial acceptance left this one as its refused part"
    )
    remainders: list[str] = Field(
        default_factory=list,
        description="batches split off as the refused part of partial acceptances of this one",
    )


class BatchPage(Schema):
    items: list[BatchRead]
    next_cursor: str | None


class LabelRead(Schema):
    code: str
    stream: str
    organization_id: int


class ScanRead(Schema):
    kind: Literal["batch", "label", "berth", "site"]
    batch: BatchRead | None = None
    label: LabelRead | None = None
    berth: BerthRead | None = None
    site: SiteRead | None = None
    actions: list[str]


class LabelIssue(Schema):
    organization_id: Id
    stream: Text = Field(max_length=32)
    count: Integer = Field(ge=1, le=1000)


class PhotoForm(Schema):
    """An evidence photo, sent as a multipart form: its one `file` part and no other (an unknown
    part is refused by name, as an unknown key of a JSON body is)."""

    file: UploadFile = Field(description="JPEG or PNG")


class PhotoRead(Schema):
    sha256: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    created: bool


class FateRead(Schema):
    code: str
    state: str
    containers: list[str] = Field(description="containers it was aggregated into, innermost first")
    fate_state: str = Field(description="the state of the batch or its outermost container")
    fate: str | None = Field(
        description="the fate the metrics count (docs/metrics.md §4): recovered,"
        " disposed_harmless, disposed_not_harmless, pending, rejected, in_progress, cancelled;"
        " `container` for a container, whose contents are counted instead"
    )
    method: str | None = Field(description="the treatment method, after corrections")
    mode: str | None
    treated_at: datetime | None = Field(
        description="when the treatment step giving `method` was recorded; for a pending"
        " method (storage or grouping, fate `pending`) when the waste went into it, not a"
        " final treatment"
    )
