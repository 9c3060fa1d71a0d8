"""Alert rules that watch the custody log, and their acknowledgement."""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from tortoise import connections
from tortoise.expressions import Q
from tortoise.functions import Count

from wastetrack.alerts.models import Alert
from wastetrack.auth.models import Role
from wastetrack.core import paging, regions
from wastetrack.core.errors import Conflict, Forbidden, NotFound
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings, get_settings
from wastetrack.custody.aggregations import is_step
from wastetrack.custody.rules import FINAL_STATES, State, sql_list
from wastetrack.manifests.models import CANCELLED as MANIFEST_CANCELLED
from wastetrack.registers.movements import storage_limit_hours, tagging_clock
from wastetrack.rollups.facts import Fate

OVERDUE_STORAGE: Final = "overdue_storage"
MANIFEST_OVERDUE: Final = "manifest_overdue"
SCAN_ANOMALY: Final = "scan_anomaly"
LEG_OVERDUE: Final = "leg_overdue"
WEBHOOK_DISABLED: Final = "webhook_disabled"
WEIGHT_DISCREPANCY: Final = "weight_discrepancy"
IDLE_BATCH: Final = "idle_batch"
Kind = Literal[
    "overdue_storage",
    "manifest_overdue",
    "weight_discrepancy",
    "idle_batch",
    "scan_anomaly",
    "leg_overdue",
    "webhook_disabled",
]
"""Every kind of alert the service raises (each named in `KINDS_ZH`)."""
KINDS_ZH: dict[Kind, str] = {
    OVERDUE_STORAGE: "医废暂存超时",
    MANIFEST_OVERDUE: "联单逾期未确认",
    WEIGHT_DISCREPANCY: "重量差异",
    IDLE_BATCH: "批次长时间未流转",
    SCAN_ANOMALY: "扫码异常",
    LEG_OVERDUE: "运输环节超时",
    WEBHOOK_DISABLED: "推送订阅已停用",
}
"""Every kind of alert the service raises, with its name on the dashboard."""


DETAILS = (
    "code",
    "category",
    "state",
    "since",
    "limit_hours",
    "declared_kg",
    "weighed_kg",
    "manifest",
    "leg",
    "vehicle_plate",
    "producer",
    "receipt",
    "flags",
    "distance_m",
    "seq",
    "device_time",
    "previous_device_time",
    "behind_seconds",
    "client_event_id",
    "webhook_id",
    "url",
    "consecutive_failures",
    "last_error",
    "cleared_at",
)
"""Every detail an alert of any kind may hold, in the order a file of alerts gives them a
column each, whatever kinds the file holds: two files of one list stack."""

# The details that hold a moment: written as ISO 8601 text into the alert's JSON, by the rules'
# SQL (`since`, `cleared_at`) and by `flag_clock_anomalies`.
MOMENT_DETAILS = frozenset({"since", "cleared_at", "device_time", "previous_device_time"})


def details_with_moments(details: dict[str, Any]) -> dict[str, Any]:
    """An alert's details with its moments as datetimes, which a file puts on the city's clock
    as it does `raised_at` (the text would keep the zone it was written in)."""
    return {
        key: datetime.fromisoformat(value)
        if key in MOMENT_DETAILS and isinstance(value, str)
        else value
        for key, value in details.items()
    }


@dataclass(frozen=True, slots=True)
class ClockAnomaly:
    """An event whose device time lies before its batch's previous event's by more than the
    clock skew allowed: recorded, and flagged for the manager (a wrong clock, or a late sync)."""

    batch_id: int
    code: str
    seq: int
    organization_id: int
    region_path: str
    device_time: datetime
    previous_device_time: datetime
    client_event_id: uuid.UUID | None


# The live states, named by inclusion, so a scan reads the live batches through the state
# index, not every batch.
_LIVE = sql_list(s for s in State if s not in FINAL_STATES)
# Waste stored at its producer, which overdue_storage watches when its category has a storage
# limit: the batch row b, live and held by whoever produced it — as tagged, or back from a
# receiver that refused it or an organization that handed it back. SQL over b.
_AT_ITS_PRODUCER = f"b.state IN ({_LIVE}) AND b.holder_id = b.producer_id"
_HAS_STORAGE_LIMIT = (
    "EXISTS (SELECT 1 FROM waste_category c WHERE c.key = b.category_id"
    f" AND {storage_limit_hours('c')} IS NOT NULL)"
)

# A batch on a manifest on a signed leg, or arrived and awaiting the receiver's decision, is
# watched by its manifest's alerts (leg_overdue per leg, manifest_overdue once arrived), not by
# idle_batch: recording an arrival writes no custody event, so such a batch stays `in_transit`
# for as long as the receiver lawfully takes to decide. A submitted manifest's batches (the
# producer signed, the carrier not yet) have no manifest alert yet: idle_batch watches them;
# so it does a batch the receiver holds, handed over by scan, the arrival not recorded: no
# leg waits for it (`_AWAY_FROM_THE_RECEIVER`), no decision is due, and it is the receiver's
# to record the arrival of. SQL over the manifest row m and the batch row b.
_MANIFEST_WATCHES = (
    "m.state = 'arrived'"
    " OR (m.state LIKE 'in_transit_leg_%' AND b.holder_id IS DISTINCT FROM m.receiver_id)"
)
# Whether any of the manifest m's batches is away from its receiver (with any of its carriers,
# which may hand drums among themselves, every leg signed): the batches `_MANIFEST_WATCHES`
# leaves to its last leg. Read per listed code, by the batch's code index. SQL.
_AWAY_FROM_THE_RECEIVER = (
    "EXISTS (SELECT 1 FROM jsonb_array_elements_text(m.batch_codes) AS c(code)"
    " JOIN batch h ON h.code = c.code WHERE h.holder_id IS DISTINCT FROM m.receiver_id)"
)


def _on_a_manifest(states: str) -> str:
    """SQL: whether the batch row b is listed on a manifest whose state `states` accepts."""
    return f"EXISTS (SELECT 1 FROM manifest m WHERE m.batch_codes ? b.code AND ({states}))"


_WATCHED_BY_ITS_MANIFEST = _on_a_manifest(_MANIFEST_WATCHES)
# A batch on a manifest under way, submitted too: leg_overdue's batches in transit are those on
# none (a manifest's own legs are watched per leg).
_ON_MANIFEST_UNDER_WAY = _on_a_manifest(f"m.state = 'submitted' OR {_MANIFEST_WATCHES}")

# When a batch's idleness starts, SQL over the batch row b: its latest step, or the decision of
# a manifest that watched it, if later. A decision's receipts are timed at the arrival (the
# custody chain's moment), but the time from arrival to decision the manifest watched
# (`_MANIFEST_WATCHES`) is no idleness: a decision taken on time, a week after the arrival,
# left the batch idle at once. A part the decision refused is split from the batch it lists.
_IDLE_SINCE = (
    "greatest(b.last_device_time, (SELECT max(m.receiver_signed_at) FROM manifest m"
    " WHERE m.batch_codes ?| ARRAY[b.code,"
    " (SELECT s.code FROM batch s WHERE s.id = b.split_from_id)]))"
)

# An idle spell's subject, SQL over the batch row b: its code and the seq of its latest step
# (a correction is no step, nor an aggregation undone), which a corrected time cannot move: a
# tagging time corrected while the batch stays idle keeps the alert and its acknowledgement,
# and a new step (a decision's receipts too) begins a new spell.
IDLE_BATCH_SUBJECT = (
    "b.code || ':' || (SELECT max(e.seq) FROM custody_event e"
    f" WHERE e.batch_id = b.id AND {is_step('e')})"
)

# An overdue-storage alert's subject, SQL over the batch row b: its code, and `:contents` when
# its clock is the waste put into it, not its own tagging (`tagging_clock` is NULL for it).
OVERDUE_STORAGE_SUBJECT = (
    f"b.code || CASE WHEN {tagging_clock('b')} IS NULL THEN ':contents' ELSE '' END"
)

# Each rule is one set-based INSERT … SELECT; ON CONFLICT keeps an alert from being raised
# twice for the same subject. Parameters: $1 kind, $2 now, $3 the rule's threshold. The custody
# spec's state and event keys are formatted in once, at import.
_RULES: dict[str, str] = {
    # A batch still at its producer (`_AT_ITS_PRODUCER`: as tagged, or back there) past its
    # category's storage limit (医疗废物: 48 h; a sub-category without its own, its class's).
    # The clock starts with the waste: a bag's at
    # its tagging, a container's at the earliest of the batches put into it, down through
    # containers of containers — not at the empty box's tagging, and aggregating old bags does
    # not restart it. Limit and clock are the inventory's (registers.movements). The subject
    # is the batch, and `:contents` for a container whose clock its waste sets
    # (`OVERDUE_STORAGE_SUBJECT`): a box alerted while empty (from its own tagging) and
    # filled later raises a new alert once its waste is overdue, even if the first was
    # acknowledged; a clock that moves while the batch stays overdue (a corrected tagging
    # time, an older bag packed in) keeps its alert and acknowledgement, and takes the new
    # start into its details.
    OVERDUE_STORAGE: f"""
        WITH RECURSIVE tree (root_id, id, clock, limit_hours) AS (
            SELECT b.id, b.id, {tagging_clock("b")}, l.hours
            FROM batch b JOIN waste_category c ON c.key = b.category_id
            CROSS JOIN LATERAL (SELECT {storage_limit_hours("c")} AS hours) l
            WHERE {_AT_ITS_PRODUCER} AND l.hours IS NOT NULL
          UNION ALL
            SELECT t.root_id, k.id, {tagging_clock("k")}, t.limit_hours
            FROM tree t JOIN batch k ON k.parent_id = t.id
        ), clock AS (
            SELECT root_id, min(clock) AS since, min(limit_hours) AS limit_hours
            FROM tree GROUP BY root_id
        )
        SELECT $1, {OVERDUE_STORAGE_SUBJECT}, b.id, b.producer_id,
               b.region_path, $2::timestamptz, k.since + make_interval(hours => k.limit_hours),
               jsonb_build_object('code', b.code, 'category', b.category_id,
                                  'limit_hours', k.limit_hours, 'since', k.since)
        FROM clock k JOIN batch b ON b.id = k.root_id
        WHERE k.since + make_interval(hours => k.limit_hours) < $2""",
    # A batch's weighing differs from its declared kilograms beyond the tolerance: the mass
    # balance's own comparison, kept in its fact (rollups.facts) after corrections, for the
    # batches it compares (declared in kg less the parts refused from them, which their
    # remainders declare; not a remainder's estimated kg; a load against its bags', whose
    # shares of its weighing raise nothing of their own). Cleared
    # when a correction brings the two together.
    WEIGHT_DISCREPANCY: f"""
        SELECT $1, b.code, b.id, b.producer_id, b.region_path, $2::timestamptz, NULL::timestamptz,
               jsonb_build_object('code', b.code, 'declared_kg', f.balance_declared_kg,
                                  'weighed_kg', f.balance_weighed_kg)
        FROM batch_fact f JOIN batch b ON b.id = f.batch_id
        WHERE f.balance_declared_kg > 0
          AND abs(f.balance_weighed_kg - f.balance_declared_kg) / f.balance_declared_kg > $3
          -- A bag's share of its load's weighing: the load's own comparison raises the alert.
          AND NOT EXISTS (SELECT 1 FROM batch_fact l WHERE l.batch_id = b.parent_id
                          AND l.fate = '{Fate.container}' AND l.balance_declared_kg IS NOT NULL)""",
    # A batch left in one live state (tagged included) longer than allowed, since the last step
    # anyone took with it (its latest device time; a correction is not a step) or its
    # manifest's decision (`_IDLE_SINCE`), unless its manifest watches it
    # (`_WATCHED_BY_ITS_MANIFEST`) or overdue_storage does (it waits at its producer under a
    # storage limit). The subject names the spell by its latest step (`IDLE_BATCH_SUBJECT`),
    # so a batch idle again later raises a new alert; cleared once it moves. (Its latest step
    # is never later than that moment: read first, it spares the manifests' scan for the
    # batches that moved lately.)
    IDLE_BATCH: f"""
        SELECT $1, {IDLE_BATCH_SUBJECT}, b.id,
               b.holder_id, b.region_path, $2::timestamptz,
               i.since + make_interval(hours => $3::int),
               jsonb_build_object('code', b.code, 'state', b.state, 'since', i.since)
        FROM batch b CROSS JOIN LATERAL (SELECT {_IDLE_SINCE} AS since) i
        WHERE b.state IN ({_LIVE})
          AND b.last_device_time + make_interval(hours => $3::int) < $2
          AND i.since + make_interval(hours => $3::int) < $2
          AND NOT {_WATCHED_BY_ITS_MANIFEST}
          AND NOT ({_AT_ITS_PRODUCER} AND {_HAS_STORAGE_LIMIT})""",
    # A delivery scanned far from its berth, or with no open port call.
    SCAN_ANOMALY: """
        SELECT $1, d.receipt_number, NULL::int, d.port_id, o.region_path_, $2,
               NULL::timestamptz,
               jsonb_build_object('receipt', d.receipt_number, 'flags', d.flags,
                                  'distance_m', d.distance_m)
        FROM delivery d
        JOIN (SELECT o.id, r.path AS region_path_ FROM organization o
              JOIN region r ON r.id = o.region_id) o ON o.id = d.port_id
        WHERE jsonb_array_length(d.flags) > 0""",
    # A signed manifest leg whose next step (the next leg's signature; the last leg's, the
    # arrival recorded, or every batch handed over to the receiver by scan:
    # `_AWAY_FROM_THE_RECEIVER`) has not come within the expected hours of its handover; and
    # a batch in transit as long on no manifest under way (`_ON_MANIFEST_UNDER_WAY`), with the
    # plate of its latest step (not a correction's, nor an undone aggregation's).
    # Cleared (see _clear_resolved) once the step comes. A batch's subject carries the moment
    # its journey began, so a batch overdue again on a later journey raises a new alert (one
    # subject holds one alert).
    LEG_OVERDUE: f"""
        SELECT $1, m.number || ':' || l.seq, NULL::int, l.carrier_id, m.region_path, $2,
               l.handover_at + make_interval(hours => $3::int),
               jsonb_build_object('manifest', m.number, 'leg', l.seq,
                                  'vehicle_plate', l.vehicle_plate, 'since', l.handover_at)
        FROM manifest_leg l JOIN manifest m ON m.id = l.manifest_id
        LEFT JOIN manifest_leg n ON n.manifest_id = l.manifest_id AND n.seq = l.seq + 1
        WHERE l.handover_at IS NOT NULL AND m.state <> '{MANIFEST_CANCELLED}'
          AND l.handover_at + make_interval(hours => $3::int) < $2
          AND CASE WHEN n.id IS NULL THEN m.arrived_at IS NULL AND {_AWAY_FROM_THE_RECEIVER}
                   ELSE n.signed_at IS NULL END
      UNION ALL
        SELECT $1, b.code || ':' || extract(epoch FROM b.last_device_time)::bigint, b.id,
               b.holder_id, b.region_path, $2,
               b.last_device_time + make_interval(hours => $3::int),
               jsonb_build_object('code', b.code, 'vehicle_plate',
                                  (SELECT e.details->>'vehicle_plate' FROM custody_event e
                                   WHERE e.batch_id = b.id AND {is_step("e")}
                                   ORDER BY e.seq DESC LIMIT 1),
                                  'since', b.last_device_time)
        FROM batch b
        WHERE b.state = '{State.in_transit}'
          AND b.last_device_time + make_interval(hours => $3::int) < $2
          AND NOT {_ON_MANIFEST_UNDER_WAY}""",
}
# Rules whose alerts clear themselves when their condition ends (the leg arrived, the batch
# was collected or moved on).
_SELF_CLEARING = (LEG_OVERDUE, OVERDUE_STORAGE, IDLE_BATCH, WEIGHT_DISCREPANCY)


async def refresh(*, settings: Settings | None = None, now: datetime | None = None) -> int:
    """Raise every alert a rule calls for and has not raised yet; returns how many. Thresholds
    and the city's time zone are the app's `settings` (the CLI and the demo: the process's)."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    thresholds = {
        WEIGHT_DISCREPANCY: settings.weight_discrepancy_tolerance,
        IDLE_BATCH: settings.idle_batch_hours,
        LEG_OVERDUE: settings.leg_overdue_hours,
    }
    client = connections.get("default")
    raised = 0
    for kind, select in _RULES.items():
        params: list[object] = [kind, now]
        if kind in thresholds:
            params.append(thresholds[kind])
        rows = await client.execute_query_dict(
            "INSERT INTO alert (kind, subject, batch_id, organization_id, region_path,"
            f" raised_at, due_at, details) {select}"
            f" {_RAISE_AGAIN}",
            params,
        )
        raised += _raised_now(rows, now)
        if kind in _SELF_CLEARING:
            await _clear_resolved(select, params)
    return raised + await _overdue_manifests(now=now, timezone=settings.timezone)


# An alert whose condition ended (it cleared: `cleared_at` in its details, acknowledged by a
# person before or not) is raised again when its condition returns (a corrected time, a changed
# threshold, a deadline moved back, a bag back at its producer): a new occurrence, which no
# earlier acknowledgement covers. One still open, or acknowledged while its condition lasts,
# keeps its moment and acknowledgement, and takes the rule's details, due time and the
# organization concerned as they are now (a corrected weighing, a corrected state, a batch a
# corrected receipt gave back to its deliverer): it never shows what the record no longer
# holds, nor to whom it no longer concerns. Returns the ids and raised_at of the rows written:
# those raised now are `_raised_now`.
_RAISE_AGAIN = (
    "ON CONFLICT (kind, subject) DO UPDATE SET"
    " acknowledged_at = CASE WHEN alert.details ? 'cleared_at' THEN NULL"
    " ELSE alert.acknowledged_at END,"
    " acknowledged_by_id = CASE WHEN alert.details ? 'cleared_at' THEN NULL"
    " ELSE alert.acknowledged_by_id END,"
    " raised_at = CASE WHEN alert.details ? 'cleared_at' THEN EXCLUDED.raised_at"
    " ELSE alert.raised_at END,"
    " due_at = EXCLUDED.due_at, details = EXCLUDED.details,"
    " organization_id = EXCLUDED.organization_id, region_path = EXCLUDED.region_path"
    " WHERE alert.details ? 'cleared_at' OR alert.details IS DISTINCT FROM EXCLUDED.details"
    " OR alert.due_at IS DISTINCT FROM EXCLUDED.due_at"
    " OR alert.organization_id IS DISTINCT FROM EXCLUDED.organization_id"
    " OR alert.region_path IS DISTINCT FROM EXCLUDED.region_path"
    " RETURNING id, raised_at"
)


def _raised_now(rows: list[dict[str, Any]], now: datetime) -> int:
    """Of the rows `_RAISE_AGAIN` wrote, those raised (first or again) at `now`, not the open
    ones whose details it brought up to date."""
    return sum(row["raised_at"] == now for row in rows)


# Closing the alerts of kind $1 whose condition ended at $2, where the condition that follows
# holds: the time it cleared goes into its details; one still open is marked acknowledged by
# nobody, one a person acknowledged keeps who and when.
_CLEAR = (
    "UPDATE alert a SET acknowledged_at = coalesce(a.acknowledged_at, $2),"
    " details = a.details || jsonb_build_object('cleared_at', $2::timestamptz)"
    " WHERE a.kind = $1 AND NOT a.details ? 'cleared_at' AND "
)


async def _clear_resolved(select: str, params: list[object]) -> None:
    """Close the open alerts of a self-clearing rule that its query no longer selects."""
    await connections.get("default").execute_query(
        "WITH still (kind, subject, batch_id, organization_id, region_path, raised_at, due_at,"
        f" details) AS ({select}) {_CLEAR}"
        " NOT EXISTS (SELECT 1 FROM still s WHERE s.subject = a.subject)",
        params,
    )


async def _overdue_manifests(*, now: datetime, timezone: str) -> int:
    """Raise an alert for every manifest whose receiver has not decided within 5 working days
    of arrival (危险废物转移管理办法), counted in the city's days as `arrive()` counts them."""
    from wastetrack.manifests.queries import overdue_for_decision
    from wastetrack.manifests.receiving import settle_deadlines

    await settle_deadlines(timezone=timezone)
    # An alert is about one deadline of one undecided manifest (its subject carries the
    # deadline): it clears once the receiver decides (or the manifest is cancelled), and once
    # the official days move the deadline; the new deadline, if passed too, raises its own
    # below, so a manifest never holds two open overdue alerts.
    await connections.get("default").execute_query(
        f"{_CLEAR} NOT EXISTS (SELECT 1 FROM manifest m WHERE m.number = a.details->>'manifest'"
        " AND m.state = 'arrived' AND m.decision_due_at < $2 AND a.subject ="
        " m.number || ':' || extract(epoch FROM m.decision_due_at)::bigint)",
        [MANIFEST_OVERDUE, now],
    )
    raised = 0
    for manifest in await overdue_for_decision(now=now):
        # One alert per deadline: one the official days moved later may fall due again, and
        # one cleared when its deadline moved is raised again when it moves back.
        assert manifest.decision_due_at is not None  # overdue: it has one
        due = int(manifest.decision_due_at.timestamp())
        rows = await connections.get("default").execute_query_dict(
            "INSERT INTO alert (kind, subject, organization_id, region_path, raised_at, due_at,"
            f" details) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) {_RAISE_AGAIN}",
            [
                MANIFEST_OVERDUE,
                f"{manifest.number}:{due}",
                manifest.receiver_id,
                manifest.region_path,
                now,
                manifest.decision_due_at,
                json.dumps({"manifest": manifest.number, "producer": manifest.producer_id}),
            ],
        )
        raised += _raised_now(rows, now)
    return raised


async def flag_clock_anomalies(*, anomalies: list[ClockAnomaly], now: datetime) -> int:
    """Raise a scan_anomaly alert per event recorded with a device clock running backwards
    (one per batch event); returns how many were raised."""
    if not anomalies:
        return 0
    client = connections.get("default")
    raised = 0
    for anomaly in anomalies:
        behind = anomaly.previous_device_time - anomaly.device_time
        rows = await client.execute_query_dict(
            "INSERT INTO alert (kind, subject, batch_id, organization_id, region_path,"
            " raised_at, due_at, details) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7::jsonb)"
            " ON CONFLICT (kind, subject) DO NOTHING RETURNING id",
            [
                SCAN_ANOMALY,
                f"{anomaly.code}:{anomaly.seq}"[:32],
                anomaly.batch_id,
                anomaly.organization_id,
                anomaly.region_path,
                now,
                json.dumps(
                    {
                        "code": anomaly.code,
                        "seq": anomaly.seq,
                        "flags": ["device_clock_behind"],
                        "device_time": anomaly.device_time.isoformat(),
                        "previous_device_time": anomaly.previous_device_time.isoformat(),
                        "behind_seconds": int(behind.total_seconds()),
                        "client_event_id": str(anomaly.client_event_id),
                    }
                ),
            ],
        )
        raised += len(rows)
    return raised


async def flag_webhook_disabled(
    *,
    subscription_id: int,
    times_disabled: int,
    organization_id: int,
    region_path: str,
    url: str,
    failures: int,
    last_error: str | None,
    now: datetime,
) -> Alert:
    """Raise a webhook_disabled alert for the subscription's organization: its deliveries
    failed too often in a row and wait until someone enables it again (one alert each time)."""
    alert, _ = await Alert.get_or_create(
        kind=WEBHOOK_DISABLED,
        subject=f"webhook:{subscription_id}:{times_disabled}"[:32],
        defaults={
            "organization_id": organization_id,
            "region_path": region_path,
            "raised_at": now,
            "details": {
                "webhook_id": subscription_id,
                "url": url,
                "consecutive_failures": failures,
                "last_error": last_error,
            },
        },
    )
    return alert


async def clear_webhook_disabled(*, subscription_id: int, now: datetime) -> None:
    """Close the webhook_disabled alerts of a subscription enabled again or deleted: what they
    report (deliveries waiting on a disabled subscription) has ended, and an alert whose
    condition ended clears, as a self-clearing rule's does."""
    await connections.get("default").execute_query(
        f"{_CLEAR} a.details->>'webhook_id' = $3", [WEBHOOK_DISABLED, now, str(subscription_id)]
    )


def reasons(principal: Principal) -> list[Q]:
    """The ways a user comes to read an alert: any alert (administrators); one of their own
    organization; for region readers, one in their region."""
    if principal.role == Role.admin:
        return [Q()]
    found = [Q(organization_id=principal.organization_id)]
    if principal.sees_region:
        found.append(regions.subtree(principal.region_path))
    return found


def _scope(principal: Principal) -> Q:
    """The alerts a user may read, as one condition: for counts, lookups and the dashboard."""
    return paging.any_of(reasons(principal))


NEWEST_RAISED = paging.Order("raised_at", datetime)


async def list_alerts(
    *,
    principal: Principal,
    open_only: bool,
    limit: int = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> paging.Page[Alert]:
    """Alerts of the user's organization (managers: their region), newest first, a page at a
    time. Reading writes nothing: the service's background round
    (or POST /m/v1/alerts/refresh, or `wastetrack alerts-refresh`) raises them."""
    query = Alert.filter(acknowledged_at=None) if open_only else Alert.all()
    return await paging.page(
        query, NEWEST_RAISED, limit=limit, cursor=cursor, reasons=reasons(principal)
    )


async def count_by_kind(*, principal: Principal) -> dict[str, dict[str, int]]:
    """Per kind of alert the user may read: how many are open and how many acknowledged."""
    rows = (
        await Alert.filter(_scope(principal))
        .annotate(open=Count("id", _filter=Q(acknowledged_at=None)), total=Count("id"))
        .group_by("kind")
        .values("kind", "open", "total")
    )
    return {
        r["kind"]: {"open": r["open"], "acknowledged": r["total"] - r["open"]}
        for r in sorted(rows, key=lambda r: r["kind"])
    }


async def alert_page(
    *,
    principal: Principal,
    kind: str | None,
    acknowledged: bool | None,
    offset: int,
    limit: int,
) -> tuple[list[Alert], int]:
    """One page of the alerts the user may read, newest first, optionally of one kind and
    only open (acknowledged=False) or only acknowledged ones; with the count of all matches."""
    query = Alert.filter(_scope(principal))
    if kind is not None:
        query = query.filter(kind=kind)
    if acknowledged is not None:
        query = query.filter(acknowledged_at__isnull=not acknowledged)
    total = await query.count()
    return await query.order_by("-raised_at", "-id").offset(offset).limit(limit), total


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
