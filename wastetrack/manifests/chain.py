"""A manifest's steps in the custody chain: the events its signatures and decision record for
each of its batches, made by the domain as a phone would send them (`ManifestStep`, under the
keyed ids of `step_id`)."""

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from wastetrack.core.errors import ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.custody import recorder
from wastetrack.custody.commands import EventCommand
from wastetrack.manifests.commands import ManifestStep


async def record(
    principal: Principal,
    events: list[dict[str, Any]],
    secret: str,
    *,
    fields: Mapping[str, str] | None = None,
) -> None:
    """Record the events as the signing party; the first refusal is raised, naming the field of
    the request or manifest its value came from (`fields`: an event's field → that one). A
    value no custody event may hold (a batch's share of the received quantity above what a
    batch may weigh, say) is such a refusal too (422), never a 500."""
    names = fields or {}
    try:
        submissions: list[EventCommand] = [ManifestStep.model_validate(e) for e in events]
    except ValidationError as error:
        raise ValidationFailed.of(error, fields=names) from None
    for outcome in await recorder.record_events(
        principal=principal, submissions=submissions, secret=secret
    ):
        if outcome.error is not None:
            refusal = outcome.error
            refusal.field = names.get(refusal.field or "", refusal.field)
            raise refusal
