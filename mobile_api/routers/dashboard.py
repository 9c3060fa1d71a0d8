"""The managers' dashboard: server-rendered pages in Chinese, charts by the vendored ECharts,
the same accounts as the API (the access token rides in an HttpOnly cookie)."""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from mobile_api.deps import AppSettings, Transaction
from wastetrack.alerts import service as alerts
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.cells import service as cells
from wastetrack.core.errors import DomainError
from wastetrack.core.metrics import ratio
from wastetrack.core.principal import Principal
from wastetrack.custody import service as custody
from wastetrack.household import service as household
from wastetrack.indicators import service as indicators
from wastetrack.rollups import service as rollups

COOKIE = "wt_session"
READERS = (Role.manager, Role.admin, Role.auditor)
ALERT_ZH = {
    "overdue_storage": "医废暂存超时",
    "manifest_overdue": "联单逾期未确认",
    "weight_discrepancy": "重量差异",
    "idle_batch": "批次长时间未流转",
    "scan_anomaly": "扫码异常",
}
STREAM_ZH = {
    "household": "生活垃圾",
    "medical": "医疗废物",
    "hazardous": "危险废物",
    "agri_packaging": "农药包装废弃物",
    "marine": "船舶及海洋垃圾",
}
STATUS_ZH = {
    "on_track": "进展顺利",
    "at_risk": "存在风险",
    "off_track": "明显滞后",
    "no_data": "暂无数据",
    "no_target": "无量化目标",
}
templates = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)


async def _reader(request: Request, settings: AppSettings) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = await auth.principal_from_access_token(token=token, settings=settings)
    except DomainError:
        return None
    return principal if principal.role in READERS else None


Reader = Annotated[Principal | None, Depends(_reader)]
TO_LOGIN = "/dashboard/login"


def _today(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, error: str | None = None) -> Response:
    """The login page."""
    return templates.TemplateResponse(request, "login.html", {"error": error})


@router.post("/login")
async def login(
    request: Request,
    settings: AppSettings,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    """Log in with the same account as the API; managers, auditors and admins get in."""
    try:
        user = await auth.authenticate(username=username, password=password, settings=settings)
    except DomainError as error:
        return templates.TemplateResponse(
            request, "login.html", {"error": error.detail}, status_code=error.status
        )
    if user.role not in READERS:
        return templates.TemplateResponse(
            request, "login.html", {"error": "仪表盘仅供管理人员使用"}, status_code=403
        )
    tokens = await auth.issue_tokens(user=user, settings=settings)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        str(tokens["access_token"]),
        httponly=True,
        samesite="strict",
        max_age=settings.access_token_minutes * 60,
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse(TO_LOGIN, status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, user: Reader, settings: AppSettings, _: Transaction
) -> Response:
    """Indicators against targets, utilization by stream over 12 months, sorting coverage by
    town, zero-waste cells and open alerts."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    today = _today(settings.timezone)
    first = today.replace(day=1)
    months = []
    for back in range(11, -1, -1):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        months.append(date(year, month + 1, 1))
    series = await rollups.monthly_series(region_path=user.region_path, months=months)
    sorting = await household.sorting_metrics(
        principal=user,
        date_from=today - timedelta(days=365),
        date_to=today,
        timezone=settings.timezone,
    )
    charts: dict[str, Any] = {
        "utilization": {
            "months": [m.strftime("%Y-%m") for m in months],
            # A month with nothing finally treated is a gap, not 0 %.
            "streams": {
                stream: [
                    None if v["rate"]["rate"] is None else float(v["rate"]["rate"]) * 100
                    for v in values.values()
                ]
                for stream, values in series.items()
            },
        },
        "sorting": {
            "towns": [t["name"] for t in sorting["towns"]],
            "covered": [float(t["coverage"]["rate"] or 0) * 100 for t in sorting["towns"]],
        },
    }
    year_from, year_to = months[0], first - timedelta(days=1)
    streams = _by_stream(
        await rollups.utilization(
            region_path=user.region_path, date_from=year_from, date_to=year_to
        ),
        await rollups.mass_balance(
            region_path=user.region_path, date_from=year_from, date_to=year_to
        ),
    )
    achievement = await cells.achievement(principal=user, today=today)
    charts["cells"] = {
        "types": [t["name_zh"] for t in achievement["types"]],
        "share": [float(t["share"]["rate"] or 0) * 100 for t in achievement["types"]],
    }
    return templates.TemplateResponse(
        request,
        "overview.html",
        {
            "user": user,
            "today": today,
            "status_zh": STATUS_ZH,
            "alert_zh": ALERT_ZH,
            "stream_zh": STREAM_ZH,
            "indicators": await indicators.overview(
                principal=user, today=today, timezone=settings.timezone
            ),
            "sorting": sorting,
            "cells": achievement,
            "streams": streams,
            "year": (year_from, year_to),
            "alerts": await alerts.list_alerts(
                principal=user,
                open_only=True,
                weight_tolerance=settings.weight_discrepancy_tolerance,
                idle_hours=settings.idle_batch_hours,
            ),
            "charts": json.dumps(charts, ensure_ascii=False),
        },
    )


def _by_stream(utilization: dict[str, Any], balance: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stream: generated, finally treated and recovered kg, and declared vs received kg."""
    rows: dict[str, dict[str, Decimal]] = {}
    zero = {
        "generated": Decimal(0),
        "final": Decimal(0),
        "recovered": Decimal(0),
        "declared": Decimal(0),
        "received": Decimal(0),
    }
    for c in utilization["categories"]:
        row = rows.setdefault(c["stream"], dict(zero))
        row["generated"] += Decimal(c["generated_kg"])
        row["final"] += Decimal(c["harmless_treatment_rate"]["numerator"])
        row["recovered"] += Decimal(c["utilization_rate"]["numerator"])
    for c in balance["categories"]:
        row = rows.setdefault(c["stream"], dict(zero))
        row["declared"] += Decimal(c["declared_kg"])
        row["received"] += Decimal(c["received_kg"])
    return [
        {
            "stream": name,
            **values,
            "harmless": ratio(values["final"], values["generated"], "kg"),
            "utilization": ratio(values["recovered"], values["final"], "kg"),
            "balance": ratio(values["received"], values["declared"], "kg"),
        }
        for name, values in sorted(rows.items())
    ]


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(alert_id: int, user: Reader, _: Transaction) -> Response:
    """Acknowledge an alert from the dashboard."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    await alerts.acknowledge(principal=user, alert_id=alert_id)
    return RedirectResponse("/dashboard#alerts", status_code=303)


@router.get("/batches", response_class=HTMLResponse)
async def trace(request: Request, user: Reader, settings: AppSettings, code: str = "") -> Response:
    """The trace of one batch: a timeline of its custody events and their points on a map."""
    if user is None:
        return RedirectResponse(TO_LOGIN, status_code=303)
    context: dict[str, Any] = {"user": user, "code": code, "batch": None, "events": []}
    if code:
        try:
            batch, events = await custody.history(principal=user, code=code.strip().upper())
        except DomainError as error:
            context["error"] = error.detail
        else:
            tz = ZoneInfo(settings.timezone)
            context.update(
                batch=batch,
                events=events,
                tz=tz,
                points=json.dumps(
                    [
                        {"name": f"{e.seq} {e.event_type}", "value": [e.longitude, e.latitude]}
                        for e in events
                        if e.latitude is not None
                    ]
                ),
            )
    return templates.TemplateResponse(request, "trace.html", context)
