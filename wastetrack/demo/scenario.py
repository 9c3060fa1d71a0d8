"""The demo's data file and what its loaders share: references to the demo's organizations,
times relative to now, and posting custody events as a demo user."""

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from wastetrack.core import cityday
from wastetrack.core.principal import Principal
from wastetrack.core.settings import get_settings
from wastetrack.custody import recorder
from wastetrack.custody.commands import EventCommand
from wastetrack.registry.models import Organization

SCENARIO: dict[str, Any] = json.loads(
    (Path(__file__).with_name("scenario.json")).read_text(encoding="utf-8")
)


def after(offset: dict[str, float]) -> timedelta:
    """A relative time in the data file ({"days": -3, "hours": 2}) as a timedelta."""
    return timedelta(**offset)


@dataclass(slots=True)
class Demo:
    """The demo being loaded: its organizations and users by key, and the values saved by
    earlier steps (`$name` in the data file)."""

    orgs: dict[str, Organization]
    principals: dict[str, Principal]
    secret: str
    saved: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any, **local: Any) -> Any:
        """`@key` is an organization's id (or a value the caller names, e.g. `@weight`),
        `$name` a value saved by an earlier step; anything else stands for itself."""
        if isinstance(value, str) and value.startswith("@"):
            key = value[1:]
            return local[key] if key in local else self.orgs[key].id
        if isinstance(value, str) and value.startswith("$"):
            return self.saved[value[1:]]
        return value

    @property
    def timezone(self) -> str:
        return get_settings().timezone

    def day(self, instant: datetime) -> date:
        """The city's day of a moment of the story."""
        return cityday.local_date(instant, self.timezone)

    def fields(self, spec: dict[str, Any] | None, **local: Any) -> dict[str, Any]:
        return {name: self.resolve(value, **local) for name, value in (spec or {}).items()}

    async def post(self, who: str, *submissions: EventCommand) -> list[recorder.Recorded]:
        """Record custody events as a demo user (by their demo role name); the demo is built
        from events that must all be recorded, so a refused one stops the load."""
        outcomes = await recorder.record_events(
            principal=self.principals[who], secret=self.secret, submissions=list(submissions)
        )
        for outcome in outcomes:
            assert outcome.error is None, (who, outcome.error)
        return outcomes

    async def tag(self, who: str, when: datetime, **fields: Any) -> str:
        """Tag one new batch; its code."""
        (outcome,) = await self.post(who, event("tagged", None, when, **fields))
        code = outcome.result.batch_code
        assert code is not None
        return code


def event(event_type: str, code: str | None, when: datetime, **fields: Any) -> EventCommand:
    """One custody event as the phone would submit it."""
    return EventCommand.model_validate(
        {
            "client_event_id": uuid.uuid4(),
            "event_type": event_type,
            "batch": code,
            "device_time": when,
            **fields,
        }
    )
