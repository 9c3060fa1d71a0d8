"""What the public pages behind printed QR codes answer when asked for JSON."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from schemas.base import Schema


class PublicBatchRead(Schema):
    """A batch (or an issued label not yet used: state ``unbound``); no parties."""

    kind: Literal["batch"] = "batch"
    code: str
    stream_zh: str
    stream_en: str
    category_zh: str | None
    category_en: str | None
    category_code: str | None
    state: str
    state_zh: str
    tagged_at: datetime | None
    updated_at: datetime | None
    split_from: str | None = Field(
        None, description="the batch whose partial acceptance left this one as its refused part"
    )
    remainders: list[str] = Field(
        default_factory=list, description="the refused parts split off this batch on receipt"
    )


class PublicPlateRead(Schema):
    """A fixed QR plate: a household-waste collection point or a berth."""

    kind: Literal["collection_point", "site", "berth"]
    code: str
    name: str
    operator: str


class PublicReceiptLineRead(Schema):
    category_code: str
    category_zh: str
    category_en: str
    volume_m3: Decimal | None
    mass_kg: Decimal | None
    mass_derived: bool = Field(
        description="the mass is estimated from the category's density or unit mass"
    )
    corrected: bool = Field(description="the line's batch was corrected since the receipt")
    acceptance: Literal["pending", "accepted", "partially_accepted", "rejected"] = Field(
        description="where the line stands with the reception facility, as its batch stands"
        " now: pending (declared by the vessel, no receipt decided yet), accepted,"
        " partially_accepted (a refused part remains) or rejected (its latest receipt)"
    )
    acceptance_zh: str


class PublicReceiptRead(Schema):
    """A waste delivery receipt: which vessel delivered what, where and when."""

    kind: Literal["receipt"] = "receipt"
    number: str
    port: str
    berth: str
    ship_name: str
    registration_number: str
    started_at: datetime
    ended_at: datetime
    recorded_by: Literal["port", "vessel"] = Field(
        description="port: the port recorded the delivery and signed for it; vessel: the"
        " crew's declaration, which the port has not signed"
    )
    lines: list[PublicReceiptLineRead]


class PublicManifestRead(Schema):
    """A hazardous-waste transfer manifest as its paper shows it, to check one by the other."""

    kind: Literal["manifest"] = "manifest"
    number: str
    state: str
    waste_name: str
    waste_code: str
    hazard: list[str]
    quantity_kg: Decimal
    producer: str
    receiver: str
    producer_signed_at: datetime | None
    arrived_at: datetime | None
    decision: str | None
    received_quantity_kg: Decimal | None
    receiver_signed_at: datetime | None
