"""The medical-waste handover register (医疗废物交接登记): each medical-waste batch an
organization handed to, or took from, another organization, with the user who recorded each
side.

《医疗废物管理条例》第十二条: 医疗废物登记资料至少保存3年. The custody log that every register
reads is append-only (migration 0017's trigger refuses UPDATE and DELETE), so nothing is ever
removed; each handover row states the day until which it must be kept."""

from datetime import date
from typing import Any

from tortoise import connections

from wastetrack.core.cityday import local_date
from wastetrack.core.metrics import period_bounds
from wastetrack.core.timefmt import local_time
from wastetrack.custody.rules import EventType
from wastetrack.medical.service import MEDICAL_STREAM
from wastetrack.registers.movements import (
    REFUSED_REMAINDER,
    Scope,
    aware,
    batch_columns,
    is_refused_part,
    movements,
    organization_names,
    party,
)
from wastetrack.registers.movements import giver as movement_giver

MEDICAL_HANDOVER_RETENTION_YEARS = 3

# Per handover (batch, seq, giving and receiving organization, and the user who recorded the
# giving, where the movement names one): that user, else the user of the giving side who
# recorded the nearest event on the batch at or before the handover; and the user of the
# receiving side who recorded the nearest one at or after it.
_SIDES = """
SELECT k.i, COALESCE(gu.username, g.username) AS giver_username,
       COALESCE(gu.full_name, g.full_name) AS giver_full_name,
       r.username AS receiver_username, r.full_name AS receiver_full_name
FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[])
    WITH ORDINALITY AS k(batch_id, seq, giver, receiver, giver_user, i)
LEFT JOIN app_user gu ON gu.id = k.giver_user
LEFT JOIN LATERAL (
    SELECT u.username, u.full_name FROM custody_event e JOIN app_user u ON u.id = e.actor_id
    WHERE e.batch_id = k.batch_id AND e.seq <= k.seq AND e.organization_id = k.giver
    ORDER BY e.seq DESC LIMIT 1
) g ON TRUE
LEFT JOIN LATERAL (
    SELECT u.username, u.full_name FROM custody_event e JOIN app_user u ON u.id = e.actor_id
    WHERE e.batch_id = k.batch_id AND e.seq >= k.seq AND e.organization_id = k.receiver
    ORDER BY e.seq LIMIT 1
) r ON TRUE
ORDER BY k.i
"""


async def medical_handovers(
    *, scope: Scope, date_from: date, date_to: date, timezone: str
) -> list[dict[str, Any]]:
    """医疗废物交接登记: each medical-waste batch the organization handed to, or took from,
    another organization in the period — source, type, weight, time, carrier, treatment,
    destination, and the user who recorded it on each side (none yet: not confirmed)."""
    start, end = period_bounds(date_from, date_to, timezone)
    org = scope.organization.id
    handovers = []
    for r in await movements(scope, until=end):
        if r["stream_id"] != MEDICAL_STREAM or aware(r["moved_at"]) < start:
            continue
        # A refused part goes back from the receiver that refused it to its deliverer.
        giver = movement_giver(r)
        receiver = r["custodian"]
        if receiver is None and r["event_type"] == EventType.aggregated:
            receiver = r["actor_org"]
        if giver is None or receiver is None or giver == receiver:
            continue
        handovers.append((r, giver, receiver))
    names = await organization_names(
        [
            {"g": g, "r": rv, "p": r["producer_id"], "c": r["carrier_id"], "d": r["destination_id"]}
            for r, g, rv in handovers
        ],
        "g",
        "r",
        "p",
        "c",
        "d",
    )
    sides = await connections.get("default").execute_query_dict(
        _SIDES,
        [
            [r["batch_id"] for r, _, _ in handovers],
            [r["seq"] for r, _, _ in handovers],
            [g for _, g, _ in handovers],
            [rv for _, _, rv in handovers],
            [r["refused_actor"] if is_refused_part(r) else None for r, _, _ in handovers],
        ],
    )
    out = []
    for (r, giver, receiver), side in zip(handovers, sides, strict=True):
        moved = aware(r["moved_at"])
        out.append(
            {
                "time": moved,
                "local_time": local_time(moved, timezone),
                **batch_columns(r),
                "source": party(names, r["producer_id"]),
                "handed_by_organization": party(names, giver),
                "handed_by": _recorder(side, "giver"),
                "received_by_organization": party(names, receiver),
                "received_by": _recorder(side, "receiver"),
                "how": REFUSED_REMAINDER if is_refused_part(r) else r["event_type"],
                "carrier": party(names, r["carrier_id"]),
                "treatment_mode": r["mode"] or None,
                "fate": r["fate"],
                "destination": party(names, r["destination_id"]),
                "keep_until": _years_after(
                    local_date(moved, timezone), MEDICAL_HANDOVER_RETENTION_YEARS
                ),
                "direction": "out" if giver == org else "in",
            }
        )
    return out


def _recorder(side: dict[str, Any], who: str) -> dict[str, Any] | None:
    if side[f"{who}_username"] is None:
        return None
    return {"username": side[f"{who}_username"], "full_name": side[f"{who}_full_name"]}


def _years_after(day: date, years: int) -> date:
    if (day.month, day.day) == (2, 29):
        return date(day.year + years, 3, 1)
    return day.replace(year=day.year + years)
