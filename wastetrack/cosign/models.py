"""Producers' one-time PIN lists: how a producer without an account of its own (a small clinic,
a farmer) confirms that its waste left it. The codes themselves are never stored: they are
derived from the key ring (see `wastetrack.cosign.service`); only lists and spent codes are."""

from datetime import datetime
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from wastetrack.auth.models import User
    from wastetrack.registry.models import Organization


class PinList(Model):
    """One printed list of a producer's one-time PINs; issuing a new one revokes the last."""

    id = fields.IntField(primary_key=True)
    organization_id: int
    organization: fields.ForeignKeyRelation["Organization"] = fields.ForeignKeyField(
        "wastetrack.Organization", related_name="pin_lists", on_delete=fields.RESTRICT
    )
    serial = fields.IntField(description="the producer's n-th list, printed on it")
    key_version = fields.IntField(description="the master key version its codes derive from")
    size = fields.IntField()
    issued_at = fields.DatetimeField()
    issued_by_id: int | None
    issued_by: fields.ForeignKeyNullableRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="pin_lists_issued", null=True, on_delete=fields.RESTRICT
    )
    revoked_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "producer_pin_list"
        unique_together = (("organization", "serial"),)


class PinUse(Model):
    """A spent code: the list and its position, who used it and for which handover."""

    id = fields.IntField(primary_key=True)
    pin_list_id: int
    pin_list: fields.ForeignKeyRelation["PinList"] = fields.ForeignKeyField(
        "wastetrack.PinList", related_name="uses", on_delete=fields.RESTRICT
    )
    position = fields.IntField(description="1-based, as printed")
    used_by_id: int
    used_by: fields.ForeignKeyRelation["User"] = fields.ForeignKeyField(
        "wastetrack.User", related_name="pin_uses", on_delete=fields.RESTRICT
    )
    device_time = fields.DatetimeField(description="the handover's time by the phone's clock")
    used_at = fields.DatetimeField()

    class Meta:
        table = "producer_pin_use"
        unique_together = (("pin_list", "position"),)
