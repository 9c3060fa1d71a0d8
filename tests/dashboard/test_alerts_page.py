"""The dashboard's alerts page through the ASGI app: groups, filters, pages, acknowledgement."""

import re
from datetime import UTC, datetime, timedelta
from typing import get_args

import httpx
import pytest

from tests.dashboard.test_pages import login
from tests.factories import World
from wastetrack.alerts.models import Alert
from wastetrack.alerts.service import KINDS_ZH, Kind


async def raise_alerts(world: World, kind: str, count: int, **details: object) -> list[Alert]:
    """`count` alerts of one kind on batches of the clinic, one minute apart."""
    clinic = world.orgs["clinic"]
    region = world.principals["clinic"].region_path
    now = datetime.now(UTC)
    return [
        await Alert.create(
            kind=kind,
            subject=f"{kind[:8]}{n}:in_transit",
            organization_id=clinic.id,
            region_path=region,
            raised_at=now - timedelta(minutes=n),
            details={"code": f"B{n:04d}", "state": "in_transit", **details},
        )
        for n in range(count)
    ]


def ids_on(page: httpx.Response) -> list[int]:
    return [int(i) for i in re.findall(r'name="ids" value="(\d+)"', page.text)]


async def test_alerts_are_grouped_by_kind_and_paginated(
    client: httpx.AsyncClient, world: World
) -> None:
    await raise_alerts(world, "idle_batch", 25)
    await raise_alerts(world, "scan_anomaly", 2, seq=3)
    await login(client, "manager")
    page = await client.get("/dashboard/alerts")
    assert page.status_code == 200
    groups = page.text[page.text.index('id="groups"') : page.text.index('id="alerts"')]
    assert "批次长时间未流转</a></td><td>25</td>" in groups
    assert "扫码异常</a></td><td>2</td>" in groups
    assert len(ids_on(page)) == 20 and "第 1 / 2 页" in page.text
    second = await client.get("/dashboard/alerts", params={"page": 2})
    assert len(ids_on(second)) == 7 and not set(ids_on(second)) & set(ids_on(page))
    only = await client.get("/dashboard/alerts", params={"kind": "scan_anomaly"})
    assert len(ids_on(only)) == 2 and "第 3 条事件" in only.text
    # The stored subject key (code:state) never shows; the state's Chinese label does.
    assert ":in_transit" not in page.text and "B0000 · 运输中" in page.text


async def test_alerts_are_acknowledged_one_by_one_or_in_bulk(
    client: httpx.AsyncClient, world: World
) -> None:
    alerts = await raise_alerts(world, "idle_batch", 4)
    await login(client, "manager")
    # The page to return to is text: a NUL in it is refused, naming it, and changes nothing.
    for url in (f"/dashboard/alerts/{alerts[0].id}/ack", "/dashboard/alerts/ack"):
        nul = await client.post(
            url, data={"ids": [str(alerts[0].id)], "back": "/dashboard/alerts?kind=\x00"}
        )
        assert (nul.status_code, nul.json()["field"]) == (422, "back"), nul.text
    one = await client.post(
        f"/dashboard/alerts/{alerts[0].id}/ack", data={"back": "/dashboard/alerts?state=open"}
    )
    assert (one.status_code, one.headers["location"]) == (303, "/dashboard/alerts?state=open")
    bulk = await client.post(
        "/dashboard/alerts/ack",
        data={"ids": [str(alerts[0].id), str(alerts[1].id), str(alerts[2].id)], "back": "//evil"},
    )
    assert (bulk.status_code, bulk.headers["location"]) == (303, "/dashboard/alerts")
    still_open = await client.get("/dashboard/alerts", params={"state": "open"})
    assert ids_on(still_open) == [alerts[3].id]
    nothing = await client.post("/dashboard/alerts/ack", data={"back": "/dashboard/alerts"})
    assert nothing.status_code == 422 and nothing.json()["field"] == "ids"
    done = await client.get("/dashboard/alerts", params={"state": "acknowledged"})
    assert done.text.count('class="alert"') == 3 and ids_on(done) == []


async def test_a_rows_button_acknowledges_its_alert_while_others_are_ticked(
    client: httpx.AsyncClient, world: World
) -> None:
    """Each row's button posts the one form, ticked boxes and all, to its own route, which
    takes no `ids`: fields a route does not take may come twice (only its own once)."""
    alerts = await raise_alerts(world, "idle_batch", 3)
    await login(client, "manager")
    ticked = f"back=%2Fdashboard%2Falerts&ids={alerts[1].id}&ids={alerts[2].id}"
    one = await client.post(
        f"/dashboard/alerts/{alerts[0].id}/ack",
        content=ticked.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert one.status_code == 303, one.text
    assert [a.acknowledged_at is not None for a in await Alert.filter().order_by("id")] == [
        True,
        False,
        False,
    ]


async def test_an_auditor_reads_alerts_but_cannot_acknowledge(
    client: httpx.AsyncClient, world: World
) -> None:
    alerts = await raise_alerts(world, "idle_batch", 1)
    await login(client, "auditor")
    page = await client.get("/dashboard/alerts")
    assert "B0000" in page.text and ids_on(page) == []
    refused = await client.post("/dashboard/alerts/ack", data={"ids": [str(alerts[0].id)]})
    assert refused.status_code == 403


async def test_a_form_posted_from_another_site_acknowledges_nothing(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page on a sibling subdomain is the same site, so SameSite lets the cookie through: the
    browser's own word on where the post comes from refuses it; the dashboard's pages pass."""
    alerts = await raise_alerts(world, "idle_batch", 1)
    await login(client, "manager")
    url = f"/dashboard/alerts/{alerts[0].id}/ack"
    for foreign in (
        {"sec-fetch-site": "same-site", "origin": "http://evil.testserver"},
        {"origin": "http://evil.testserver"},
    ):
        refused = await client.post(url, data={}, headers=foreign)
        assert (refused.status_code, refused.json()["field"]) == (403, "origin")
    # A sandboxed page's Origin is "null": no address matches it, a base URL without its
    # scheme (no host to compare) neither.
    monkeypatch.setattr(world.settings, "public_base_url", "track.example.com")
    monkeypatch.setattr(world.settings, "allowed_hosts", "testserver")  # the client's Host
    null = await client.post(url, data={}, headers={"origin": "null"})
    assert (null.status_code, null.json()["field"]) == (403, "origin")
    monkeypatch.undo()
    assert (await Alert.get(id=alerts[0].id)).acknowledged_at is None
    # Behind a proxy passing Host as its upstream's, a browser without Sec-Fetch-Site names
    # the service's public address.
    proxied = {"origin": world.settings.base_url, "host": "127.0.0.1:8000"}
    assert (await client.post(url, data={}, headers=proxied)).status_code == 303
    assert (await Alert.get(id=alerts[0].id)).acknowledged_at is not None


async def test_every_kind_of_alert_has_its_name_and_filter(
    client: httpx.AsyncClient, world: World
) -> None:
    """Transport legs overdue and webhooks disabled are alerts too: named, and filtered."""
    await raise_alerts(world, "leg_overdue", 2, manifest="3710202600001", leg=1)
    await raise_alerts(world, "idle_batch", 1)
    await login(client, "manager")
    only = await client.get("/dashboard/alerts", params={"kind": "leg_overdue"})
    assert len(ids_on(only)) == 2 and "运输环节超时" in only.text
    assert "联单 3710202600001 · 第 1 段" in only.text
    # A link cannot put words on the login page.
    page = await client.get("/dashboard/login", params={"error": "请改用 http://evil.example 登录"})
    assert "evil.example" not in page.text


async def test_a_kind_or_state_the_page_does_not_know_is_refused_naming_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """Bad input is a 422 naming the field: a misspelt `state` or an unknown `kind` was
    replaced by `open` and every kind, so a link meant for acknowledged alerts of one kind
    showed all open alerts (rdash review). Every kind the service raises is a choice."""
    await login(client, "manager")
    for field, value in (("state", "acknowleged"), ("kind", "overdue_storag")):
        answer = await client.get("/dashboard/alerts", params={field: value})
        assert answer.status_code == 422, (field, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == field
    assert set(get_args(Kind)) == set(KINDS_ZH)
    for kind in KINDS_ZH:
        assert (await client.get("/dashboard/alerts", params={"kind": kind})).status_code == 200
    for state in ("open", "acknowledged", "all"):
        assert (await client.get("/dashboard/alerts", params={"state": state})).status_code == 200


async def test_alerts_filter_form_all_kinds_is_answered(
    client: httpx.AsyncClient, world: World
) -> None:
    """The page's own filter form (alerts.html) submits its first option, 全部类型, as
    `kind=` (empty): every kind, not an unknown one refused (diff review of ba75512)."""
    await raise_alerts(world, "idle_batch", 2)
    await raise_alerts(world, "scan_anomaly", 1, seq=3)
    await login(client, "manager")
    page = await client.get("/dashboard/alerts?kind=&state=open")
    assert page.status_code == 200, page.text
    assert len(ids_on(page)) == 3
