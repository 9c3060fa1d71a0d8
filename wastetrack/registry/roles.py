"""Which roles fit which kind of organization: the one map read by user creation
(wastetrack.auth.service) and API keys (wastetrack.apikeys.service), so that a role's reach —
a manager's or an auditor's whole region subtree, a facility operator's receipts — only ever
goes to the staff of an organization whose work it is."""

from wastetrack.auth.models import Role
from wastetrack.core.errors import ValidationFailed
from wastetrack.registry.models import OrganizationKind

# Each kind's roles, its staff's usual role first (an API key acts in it when its issuer names
# none). Managers, auditors and administrators belong to an authority (环保/城管 bureau or
# office): their region is the authority's, so no clinic or shop ever reads a region.
ROLES_BY_KIND: dict[OrganizationKind, tuple[Role, ...]] = {
    OrganizationKind.collection_point: (Role.collector,),
    OrganizationKind.community: (Role.collector,),
    OrganizationKind.recovery_point: (Role.collector,),
    OrganizationKind.clinic: (Role.generator,),
    OrganizationKind.village_clinic: (Role.generator,),
    OrganizationKind.township_hospital: (Role.generator,),
    OrganizationKind.hospital: (Role.generator,),
    OrganizationKind.enterprise: (Role.generator,),
    OrganizationKind.agri_input_shop: (Role.generator,),
    OrganizationKind.vessel_owner: (Role.generator,),
    OrganizationKind.fishing_port: (Role.port_operator,),
    OrganizationKind.carrier: (Role.carrier,),
    OrganizationKind.treatment_facility: (Role.facility_operator,),
    OrganizationKind.authority: (Role.auditor, Role.manager, Role.admin),
}


def default_role(kind: OrganizationKind) -> Role:
    """The role the organization's own staff work in."""
    return ROLES_BY_KIND[kind][0]


def kinds_for(roles: frozenset[Role]) -> frozenset[OrganizationKind]:
    """The kinds of organization whose staff may hold one of `roles`."""
    return frozenset(kind for kind, fits in ROLES_BY_KIND.items() if roles & set(fits))


def check_role_fits(role: Role, kind: OrganizationKind, *, field: str = "role") -> None:
    """Refuse a role the organization's kind does not hold (a manager in a village clinic)."""
    fits = ROLES_BY_KIND[kind]
    if role not in fits:
        raise ValidationFailed(
            f"a {kind.value} has no {role.value}: its users are {', '.join(r.value for r in fits)}",
            field=field,
        )
