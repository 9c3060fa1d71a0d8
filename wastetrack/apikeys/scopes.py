"""What each API key scope allows, declared once as data: read by authentication, the
authorization tests and the docs. Every key reads (GET); writes are allowed only on the routes
listed here, so a route added later is closed to keys until someone lists it."""

from enum import StrEnum


class Scope(StrEnum):
    read = "read"
    events = "events"
    manifests = "manifests"


READ_METHODS = frozenset({"GET", "HEAD"})

# (method, route path as declared) → the scope that opens it to a key.
WRITES: dict[tuple[str, str], Scope] = {
    ("POST", "/m/v1/events"): Scope.events,
    ("POST", "/m/v1/sync"): Scope.events,
    ("POST", "/m/v1/batches"): Scope.events,
    ("POST", "/m/v1/photos"): Scope.events,
    ("POST", "/m/v1/pickups"): Scope.events,
    ("POST", "/m/v1/port-calls"): Scope.events,
    ("POST", "/m/v1/port-calls/{port_call_id}/departure"): Scope.events,
    ("POST", "/m/v1/deliveries"): Scope.events,
    ("POST", "/m/v1/cleanups"): Scope.events,
    ("POST", "/m/v1/float-replacements"): Scope.events,
    ("POST", "/m/v1/pesticide/sales"): Scope.events,
    ("POST", "/m/v1/pesticide/sales/{sale_id}/cancel"): Scope.events,
    ("POST", "/m/v1/pesticide/returns"): Scope.events,
    ("POST", "/m/v1/pesticide/returns/{return_id}/cancel"): Scope.events,
    ("POST", "/m/v1/pesticide/consignments"): Scope.events,
    # A vehicle's GPS box reports its positions with a key of its carrier.
    ("POST", "/m/v1/vehicles/{plate}/positions"): Scope.events,
    ("POST", "/m/v1/manifests"): Scope.manifests,
    ("POST", "/m/v1/manifests/{manifest_id}/sign"): Scope.manifests,
    ("POST", "/m/v1/manifests/{manifest_id}/legs/{seq}/sign"): Scope.manifests,
    ("POST", "/m/v1/manifests/{manifest_id}/arrival"): Scope.manifests,
    ("POST", "/m/v1/manifests/{manifest_id}/decision"): Scope.manifests,
    ("POST", "/m/v1/manifests/{manifest_id}/revisions"): Scope.manifests,
    ("POST", "/m/v1/manifests/{manifest_id}/revisions/{revision_id}/{answer}"): Scope.manifests,
    ("POST", "/m/v1/manifests/sign"): Scope.manifests,
    ("POST", "/m/v1/manifests/{manifest_id}/cancel"): Scope.manifests,
}


def needed(method: str, route_path: str) -> Scope | None:
    """The scope a key needs for this route; None when no key may call it (people only)."""
    if method.upper() in READ_METHODS:
        return Scope.read
    return WRITES.get((method.upper(), route_path))


def allows(scopes: frozenset[Scope], needed_scope: Scope) -> bool:
    """Every key reads; `events` and `manifests` each add their writes."""
    return needed_scope == Scope.read or needed_scope in scopes
