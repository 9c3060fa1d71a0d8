"""The columns every idempotent stream record shares (a pickup, a delivery, a clean-up, a
packaging return, a consignment): the phone's own id for it and the digest of what it sent, so
a resend is told apart from a new record (see custody.intake.record_once)."""

from tortoise import fields
from tortoise.models import Model


class IdempotentRecord(Model):
    id = fields.IntField(primary_key=True)
    client_event_id = fields.UUIDField(unique=True)
    payload_digest = fields.CharField(max_length=64)
    recorded_by_id: int
    """Who recorded it (each record names its recording user, with its own back-relation)."""

    class Meta:
        abstract = True

    def recorded_for(self) -> int | None:
        """The organization the record was made for — its recorder's at the time, kept on the
        record itself, so a recorder who later moves organization takes none of it along: a
        resend from any other organization is not answered from it."""
        raise NotImplementedError
