"""Alert rules that watch the custody log, and their acknowledgement."""

from datetime import UTC, datetime

from tortoise import connections
from tortoise.expressions import Q

from wastetrack.alerts.models import Alert
from wastetrack.auth.models import Role
from wastetrack.core.errors import Conflict, Forbidden, NotFound
from wastetrack.core.principal import Principal

OVERDUE_STORAGE = "overdue_storage"
MANIFEST_OVERDUE = "manifest_overdue"


async def refresh(*, now: datetime | None = None) -> int:
    """Raise an alert for every batch still waiting at its producer past its category's
    storage limit (医疗废物: 48 h by default). One statement; raising twice is impossible."""
    now = now or datetime.now(UTC)
    rows = await connections.get("default").execute_query_dict(
        "INSERT INTO alert (kind, subject, batch_id, organization_id, region_path, raised_at,"
        " due_at, details)"
        " SELECT $1, b.code, b.id, b.producer_id, b.region_path, $2,"
        "  b.tagged_at + make_interval(hours => c.storage_limit_hours),"
        "  jsonb_build_object('code', b.code, 'category', c.key,"
        "   'limit_hours', c.storage_limit_hours)"
        " FROM batch b JOIN waste_category c ON c.key = b.category_id"
        " WHERE b.state = 'tagged' AND c.storage_limit_hours IS NOT NULL"
        "  AND b.tagged_at + make_interval(hours => c.storage_limit_hours) < $2"
        " ON CONFLICT (kind, subject) DO NOTHING RETURNING id",
        [OVERDUE_STORAGE, now],
    )
    return len(rows) + await _overdue_manifests(now)


async def _overdue_manifests(now: datetime) -> int:
    """Raise an alert for every manifest whose receiver has not decided within 5 working days
    of arrival (危险废物转移管理办法)."""
    from wastetrack.manifests.service import overdue_for_decision

    raised = 0
    for manifest in await overdue_for_decision(now=now):
        _, created = await Alert.get_or_create(
            kind=MANIFEST_OVERDUE,
            subject=manifest.number,
            defaults={
                "organization_id": manifest.receiver_id,
                "region_path": manifest.region_path,
                "raised_at": now,
                "due_at": manifest.decision_due_at,
                "details": {"manifest": manifest.number, "producer": manifest.producer_id},
            },
        )
        raised += created
    return raised


def _scope(principal: Principal) -> Q:
    if principal.role == Role.admin:
        return Q()
    scope = Q(organization_id=principal.organization_id)
    if principal.sees_region:
        scope |= Q(region_path__startswith=principal.region_path)
    return scope


async def list_alerts(*, principal: Principal, open_only: bool) -> list[Alert]:
    """Alerts of the user's organization (managers: their region), newest first."""
    await refresh()
    query = Alert.filter(_scope(principal)).order_by("-raised_at", "-id")
    if open_only:
        query = query.filter(acknowledged_at=None)
    return await query.limit(500)


async def acknowledge(*, principal: Principal, alert_id: int) -> Alert:
    """A manager acknowledges an alert; who and when are kept."""
    if principal.role not in (Role.manager, Role.admin):
        raise Forbidden("only managers acknowledge alerts", field="role")
    alert = await Alert.filter(_scope(principal), id=alert_id).select_for_update().first()
    if alert is None:
        raise NotFound(f"no alert {alert_id}", field="alert_id")
    if alert.acknowledged_at is not None:
        raise Conflict("the alert is acknowledged already", field="alert_id")
    alert.acknowledged_by_id = principal.user_id
    alert.acknowledged_at = datetime.now(UTC)
    await alert.save(update_fields=["acknowledged_by_id", "acknowledged_at"])
    return alert
