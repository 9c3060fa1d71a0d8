"""Who is acting: the authenticated user as the domain sees it."""

from dataclasses import dataclass

from wastetrack.auth.models import Role
from wastetrack.core.errors import Forbidden


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    role: Role
    organization_id: int
    region_path: str
    # Set when an API key authenticates: the key whose scopes narrow what this principal may do.
    api_key_id: int | None = None

    @property
    def sees_region(self) -> bool:
        """Managers and auditors see every batch produced in their region subtree."""
        return self.role in (Role.manager, Role.auditor)

    def check_may_write(self) -> None:
        """Auditors read; they never write (an event, a record, a photo): the one rule every
        write by whoever may record anything asks."""
        if self.role == Role.auditor:
            raise Forbidden("auditors read; they do not record", field="role")
