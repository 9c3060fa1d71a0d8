"""The managers' dashboard: server-rendered pages in Chinese, charts by the vendored ECharts,
the same accounts as the API (the access token rides in an HttpOnly cookie)."""

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BeforeValidator

from mobile_api import errors
from mobile_api.bodies import Router
from mobile_api.deps import (
    AppSettings,
    ClientAddress,
    LoginRateLimit,
    ReplicaRead,
    Transaction,
    acting,
    proxied,
    served_over_https,
)
from mobile_api.routers.auth import NO_STORE
from schemas.base import INT32_MAX, Id, SearchedFor, Text
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.catalog import service as catalog
from wastetrack.core import metrics
from wastetrack.core.errors import Conflict, DomainError, Forbidden, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.timefmt import local_time
from wastetrack.custody import chain, labels
from wastetrack.dashboard import service as dashboard
from wastetrack.fleet import tracking
from wastetrack.household.service import SortingMetrics

COOKIE = "wt_session"
READERS = (Role.manager, Role.admin, Role.auditor)
STATUS_ZH = {
    "on_track": "进展顺利",
    "at_risk": "存在风险",
    "off_track": "明显滞后",
    "no_data": "暂无数据",
    "no_target": "无量化目标",
}
UNITS_ZH = {
    "communities and villages": "个社区和村庄",
    "communities": "个社区",
    "villages": "个村庄",
    "institutions": "家机构",
    "containers": "件",
    "cells": "个细胞",
    "quality checks": "次检查",
    "ports": "个渔港",
    "vessels": "艘船舶",
}
"""What a rate's numerator and denominator count (its `unit`), in words; a unit of measure
(kg, m³) is shown as it is."""
templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
templates.env.filters["local_time"] = local_time
router = Router(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)


async def _reader(request: Request, settings: AppSettings) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = await auth.principal_from_access_token(token=token, settings=settings)
    except DomainError:
        return None
    return acting(principal) if principal.role in READERS else None


Reader = Annotated[Principal | None, Depends(_reader)]


async def _same_origin(request: Request, settings: AppSettings) -> None:
    """A dashboard form posts from the dashboard's own pages. A browser says where a post
    comes from: Sec-Fetch-Site (every current browser), else Origin. SameSite=Strict alone
    lets a page on a sibling subdomain through, since it is the same site; this refuses it,
    and a forged login too."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site in ("same-origin", "none"):
            return
    else:
        origin = request.headers.get("origin")
        if origin is None:
            return  # no browser of this century: SameSite keeps the cookie from it
        forwarded = proxied(request, settings, "x-forwarded-host")
        # The service's own public address too: a proxy may pass Host as its upstream's.
        ours = {forwarded or request.headers.get("host"), urlsplit(settings.base_url).netloc}
        found = urlsplit(origin).netloc
        if found and found in ours:  # never an empty one (Origin: null, a base URL unparsed)
            return
    raise Forbidden("dashboard forms are posted from the dashboard's own pages", field="origin")


SameOrigin = Depends(_same_origin)
TO_LOGIN = "/dashboard/login"


async def _zh() -> dict[str, dict[str, str]]:
    """Every Chinese label a page may need, by kind of key: the catalog's names and the
    custody log's labels."""
    snap = await catalog.snapshot()
    return {
        "streams": {code: s.name_zh for code, s in snap.streams.items()},
        "categories": {key: labels.category_label(c) for key, c in snap.categories.items()},
        "methods": {code: m.name_zh for code, m in snap.methods.items()},
        "modes": dict(labels.MODE_LABELS),
        "events": {str(k): v for k, v in labels.EVENT_TYPE_LABELS.items()},
        "states": {str(k): v for k, v in labels.STATE_LABELS.items()},
        "alerts": {str(k): v for k, v in alerts.KINDS_ZH.items()},
        "status": STATUS_ZH,
        "units": UNITS_ZH,
    }


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    """The login page (its only messages are the login's own answers: a link cannot put
    words on it)."""
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", dependencies=[SameOrigin, LoginRateLimit])
async def login(
    request: Request,
    settings: AppSettings,
    address: ClientAddress,
    username: Annotated[Text, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    """Log in with the same account as the API; managers, auditors and admins get in."""
    try:
        user = await auth.authenticate(
            username=username, password=password, settings=settings, address=address
        )
    except DomainError as error:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": error.detail},
            status_code=error.status,
            headers=errors.headers_of(error),
        )
    if user.role not in READERS:
        return templates.TemplateResponse(
            request, "login.html", {"error": "仪表盘仅供管理人员使用"}, status_code=403
        )
    tokens = await auth.issue_tokens(user=user, settings=settings)
    # The cookie is a token: kept by no cache, as the API's token answers.
    response = RedirectResponse("/dashboard", status_code=303, headers=NO_STORE)
    response.set_cookie(
        COOKIE,
        str(tokens["access_token"]),
        httponly=True,
        secure=served_over_https(request, settings),
        samesite="strict",
        max_age=settings.access_token_minutes * 60,
    )
    return response


@router.post("/logout", dependencies=[SameOrigin])
async def logout() -> Response:
    response = RedirectResponse(TO_LOGIN, status_code=303)
    response.delete_cookie(COOKIE)
    return response


def percent(rate: Mapping[str, Any] | None, places: int = 1) -> str:
    """A rate as a page prints it (`metrics.percent`: its exact quotient rounded once, a share
    short of all never 100 % nor one above nothing 0 %), with its sign; no rate reads "—"."""
    return _written(None if rate is None else metrics.percent(rate, places), places)


def _written(shown: Decimal | None, places: int) -> str:
    return "—" if shown is None else f"{shown:.{places}f}%"


templates.env.filters["percent"] = percent


def _point(rate: Any, without_mass: int = 0) -> dict[str, Any] | None:
    """A rate for the charts: its height in % and what its tooltip says, one reading
    (`metrics.percent`: 19,999 of 20,000 is drawn at 99.9, not at the top, and 1 of 20,001 at
    0.1, not as nothing), with numerator and denominator, and the batches of no known mass left
    out of it (`without_mass`, docs/metrics.md §5). No rate is a gap in the chart, not 0 %:
    none at all where nothing was generated, a point of no height that says why where only
    batches of no known mass were."""
    shown = None if rate is None else metrics.percent(rate, 1)
    if shown is None and not without_mass:
        return None
    point: dict[str, Any] = {
        "value": None if shown is None else float(shown),
        "text": _written(shown, 1),
        "numerator": None if rate is None else str(rate["numerator"]),
        "denominator": None if rate is None else str(rate["denominator"]),
    }
    if without_mass:
        point["batches_without_mass"] = without_mass
    return point


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, user: Reader, settings: AppSettings, _: ReplicaRead
) -> Response:
    """Indicators against targets (each over its own period), the twelve months ending today
    by stream, sorting coverage by town, zero-waste cells and open alerts by kind."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    seen = await dashboard.overview(principal=user, timezone=settings.timezone)
    zh = await _zh()
    charts: dict[str, Any] = {
        "utilization": {
            "months": [m.strftime("%Y-%m") for m in seen.months],
            # A month with nothing generated has no rate: a gap, not 0 %.
            "streams": {
                zh["streams"].get(stream, stream): [
                    _point(v["rate"], v["batches_without_mass"]) for v in values.values()
                ]
                for stream, values in seen.monthly.items()
            },
        },
        "sorting": _sorting_bars(seen.sorting, seen.area),
        "cells": {
            "types": [t["name_zh"] for t in seen.cells["types"]],
            "share": [_point(t["share"]) for t in seen.cells["types"]],
            # The loaded edition's target, as the heading says it (cells.achievement).
            "target": float(seen.cells["target_share"]) * 100,
        },
    }
    return templates.TemplateResponse(
        request,
        "overview.html",
        {
            "user": user,
            "today": seen.today,
            "area": seen.area,
            "tz": settings.timezone,
            "zh": zh,
            "indicators": seen.indicators,
            "sorting": seen.sorting,
            "cells": seen.cells,
            "streams": seen.streams,
            "period": seen.period,
            # The chart's buckets are calendar months: its span is their first day to today.
            "chart_span": (seen.months[0], seen.today),
            "alert_counts": seen.alert_counts,
            "charts": charts,
        },
    )


def _sorting_bars(sorting: SortingMetrics, area: str) -> dict[str, list[Any]]:
    """The sorting chart's bars: the JSON answer's town rows (every village lies in a town,
    so their coverage adds up to the caption's). The row of an area inside a town holds the
    area's part of it, and is named so."""
    towns = sorting["towns"]
    return {
        "towns": [f"{t['name']}（{area}）" if t["partial"] else t["name"] for t in towns],
        # A town without villages (a cell type without cells) has no rate: a gap, not 0 %.
        "covered": [_point(t["coverage"]) for t in towns],
    }


ALERTS_PER_PAGE = 20
AlertState = Literal["open", "acknowledged", "all"]
ALERT_STATES: dict[AlertState, bool | None] = {"open": False, "acknowledged": True, "all": None}


def _alert_subject(alert: Alert, zh: dict[str, dict[str, str]]) -> str:
    """What the alert is about, in words: the batch code with its state or category, the
    event, the receipt or the manifest (never the stored subject key, e.g. `CODE:state`)."""
    details: dict[str, Any] = alert.details if isinstance(alert.details, dict) else {}
    code = details.get("code")
    if alert.kind == alerts.IDLE_BATCH and code:
        return f"{code} · {zh['states'].get(details.get('state', ''), '状态未知')}"
    if alert.kind == alerts.OVERDUE_STORAGE and code:
        return f"{code} · {zh['categories'].get(details.get('category', ''), '类别未知')}"
    if alert.kind == alerts.SCAN_ANOMALY:
        if code and details.get("seq") is not None:
            return f"{code} · 第 {details['seq']} 条事件（设备时钟倒退）"
        if details.get("receipt"):
            return f"交付回执 {details['receipt']}"
    if alert.kind == alerts.WEIGHT_DISCREPANCY and code:
        # Alerts raised before the rule read the mass balance's facts call it `received_kg`.
        weighed = details.get("weighed_kg", details.get("received_kg"))
        return f"{code} · 申报 {details.get('declared_kg')} kg，称重 {weighed} kg"
    if alert.kind == alerts.MANIFEST_OVERDUE:
        return f"联单 {details.get('manifest', alert.subject)}"
    if alert.kind == alerts.LEG_OVERDUE and details.get("manifest"):
        return f"联单 {details['manifest']} · 第 {details.get('leg')} 段"
    if alert.kind == alerts.WEBHOOK_DISABLED:
        return f"推送订阅 #{details.get('webhook_id', '?')}"
    return str(code or alert.subject)


def _alerts_url(kind: str | None, state: str, page: int = 1) -> str:
    query = urlencode({k: v for k, v in (("kind", kind), ("state", state), ("page", page)) if v})
    return f"/dashboard/alerts?{query}"


@router.get("/alerts", response_class=HTMLResponse)
async def alert_list(
    request: Request,
    user: Reader,
    settings: AppSettings,
    _: Transaction,
    # The filter form's "every kind" sends `kind=` (empty): no filter, not an unknown kind.
    kind: Annotated[alerts.Kind | None, BeforeValidator(lambda v: v or None), Query()] = None,
    state: Annotated[AlertState, Query()] = "open",
    page: Annotated[int, Query(ge=1, le=INT32_MAX)] = 1,
) -> Response:
    """Alerts grouped by kind with counts, filtered by kind and state, a page at a time."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    zh = await _zh()
    found, total = await alerts.alert_page(
        principal=user,
        kind=kind,
        acknowledged=ALERT_STATES[state],
        offset=(page - 1) * ALERTS_PER_PAGE,
        limit=ALERTS_PER_PAGE,
    )
    pages = max(1, -(-total // ALERTS_PER_PAGE))
    return templates.TemplateResponse(
        request,
        "alerts.html",
        {
            "user": user,
            "tz": settings.timezone,
            "zh": zh,
            "counts": await alerts.count_by_kind(principal=user),
            "kind": kind,
            "state": state,
            "page": page,
            "pages": pages,
            "total": total,
            "here": _alerts_url(kind, state, page),
            "previous": _alerts_url(kind, state, page - 1) if page > 1 else None,
            "next": _alerts_url(kind, state, page + 1) if page < pages else None,
            "filter_url": lambda k, s: _alerts_url(k, s),
            "rows": [
                {
                    "id": a.id,
                    "kind": zh["alerts"].get(a.kind, a.kind),
                    "subject": _alert_subject(a, zh),
                    "raised_at": a.raised_at,
                    "acknowledged_at": a.acknowledged_at,
                }
                for a in found
            ],
            "can_acknowledge": user.role in (Role.manager, Role.admin),
        },
    )


# The page an alerts form returns to (checked by `_back`): text of a URL's length, no NUL.
Back = Annotated[Text, Form(max_length=2000)]


def _back(url: str) -> str:
    """Back to the alerts page the form was on; any other target is refused (no open
    redirect through the form)."""
    return (
        url
        if url.startswith("/dashboard/alerts?") or url == "/dashboard/alerts"
        else ("/dashboard/alerts")
    )


@router.post("/alerts/ack", dependencies=[SameOrigin])
async def acknowledge_many(
    user: Reader,
    _: Transaction,
    ids: Annotated[list[Id] | None, Form()] = None,
    back: Back = "/dashboard/alerts",
) -> Response:
    """Acknowledge the alerts ticked on the alerts page (ones acknowledged meanwhile are
    skipped)."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    if not ids:
        raise ValidationFailed("tick at least one alert to acknowledge", field="ids")
    for alert_id in sorted(set(ids)):
        try:
            await alerts.acknowledge(principal=user, alert_id=alert_id)
        except Conflict:
            continue
    return RedirectResponse(_back(back), status_code=303)


@router.post("/alerts/{alert_id}/ack", dependencies=[SameOrigin])
async def acknowledge(
    alert_id: Id,
    user: Reader,
    _: Transaction,
    back: Back = "/dashboard/alerts",
) -> Response:
    """Acknowledge one alert from the dashboard."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    await alerts.acknowledge(principal=user, alert_id=alert_id)
    return RedirectResponse(_back(back), status_code=303)


@router.get("/batches", response_class=HTMLResponse)
async def trace(
    request: Request,
    user: Reader,
    settings: AppSettings,
    code: Annotated[SearchedFor, Query()] = "",
) -> Response:
    """The trace of one batch: a timeline of its custody events and their points on a map. It
    is named as the API names a batch: by what was typed or scanned (a scanner's GS too)."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    context: dict[str, Any] = {"user": user, "code": code, "batch": None, "events": []}
    if code:
        try:
            batch, events = await chain.history(principal=user, code=code)
        except DomainError as error:
            context["error"] = error.detail
        else:
            zh = await _zh()
            carried = await tracking.trajectory(principal=user, code=batch.code)
            context.update(
                batch=batch,
                track=[[lon, lat] for _, lat, lon in carried.points],
                events=events,
                tz=ZoneInfo(settings.timezone),
                zh=zh,
                points=[
                    {
                        "name": f"{e.seq} {zh['events'].get(e.event_type, e.event_type)}",
                        "value": [e.longitude, e.latitude],
                    }
                    for e in events
                    if e.latitude is not None
                ],
            )
    return templates.TemplateResponse(request, "trace.html", context)
