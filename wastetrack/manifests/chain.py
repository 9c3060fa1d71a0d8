"""A manifest's steps in the custody chain: the events its signatures and decision record for
each of its batches, made by the domain as a phone would send them."""

import uuid
from typing import Any

from wastetrack.core.principal import Principal
from wastetrack.custody import recorder
from wastetrack.custody.commands import EventCommand
from wastetrack.manifests.models import Manifest


async def record(principal: Principal, events: list[dict[str, Any]], secret: str) -> None:
    """Record the events as the signing party; the first refusal is raised."""
    submissions = [EventCommand.model_validate(e) for e in events]
    for outcome in await recorder.record_events(
        principal=principal, submissions=submissions, secret=secret
    ):
        if outcome.error is not None:
            raise outcome.error


def event_id(manifest: Manifest, step: str, code: str) -> uuid.UUID:
    """The same for the same manifest, step and batch: a repeated step is applied once."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"manifest:{manifest.number}:{step}:{code}")
