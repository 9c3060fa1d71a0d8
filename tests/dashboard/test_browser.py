"""The dashboard in a real headless Chromium against the service on uvicorn with the demo."""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cli.test_cli import free_port, run
from tests.serving import wait_until_serving
from wastetrack.catalog import loader
from wastetrack.core import db
from wastetrack.custody.labels import MODE_LABELS
from wastetrack.custody.rules import EventType, State

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        pytest.fail("CI must install Debian's chromium and chromium-driver", pytrace=False)
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def demo_env(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One demo database for the whole module: loading it is the slow part."""
    url = db.with_database(server_url, f"wastetrack_browser_{uuid.uuid4().hex[:8]}")
    yield {
        **os.environ,
        "WASTETRACK_DATABASE_URL": url,
        "WASTETRACK_DATA_DIR": str(tmp_path_factory.mktemp("browser-data")),
        "WASTETRACK_SECRET_KEY": "browser-test-secret-" + "z" * 32,
    }
    asyncio.run(db.drop_database(url))


@pytest.fixture(scope="module")
def served(demo_env: dict[str, str]) -> Iterator[str]:
    done = run(demo_env, "demo")
    assert done.returncode == 0, done.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wastetrack.cli", "serve", "--port", str(port)],
        env=demo_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    tmp_path = tmp_path_factory.mktemp("chromium")
    options = Options()
    options.binary_location = CHROMIUM or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1500",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER or ""))
    try:
        yield driver
    finally:
        driver.quit()


def _internal_keys() -> set[str]:
    """Every key the code stores that a person must never read: event types, states, stream
    codes, category keys (e.g. `hw.08`, `med.infectious`), treatment modes, alert kinds."""
    keys = {str(k) for k in (*EventType, *State)} | set(MODE_LABELS)
    keys |= {"overdue_storage", "manifest_overdue", "weight_discrepancy", "idle_batch"}
    keys.add("scan_anomaly")
    keys |= {s["code"] for s in loader.read_edition("streams.json")["items"]}
    for stream in keys & {"household", "medical", "hazardous", "agri_packaging", "marine"}:
        data = loader.read_edition(loader.category_file(stream))
        keys |= {item["key"] for item in data["items"]}
    return keys


INTERNAL_KEYS = _internal_keys()
# A key on its own, not inside a longer word, code or username (e.g. demo_manager).
KEY = re.compile(
    r"(?<![\w.])("
    + "|".join(sorted(map(re.escape, INTERNAL_KEYS), key=len, reverse=True))
    + r")(?![\w.])"
)
CHART_TEXT = """
return [...document.querySelectorAll('.chart, .map')].map(el => {
  const chart = echarts.getInstanceByDom(el);
  if (!chart) return '';
  const o = chart.getOption();
  return JSON.stringify([(o.series || []).map(s => [s.name, (s.data || []).map(d => d && d.name)]),
                         (o.xAxis || []).map(a => a.data), (o.legend || []).map(l => l.data)]);
}).join(' ');
"""


def _leaked(browser: webdriver.Chrome) -> set[str]:
    """Internal keys in the page's visible text and in its charts' names and labels."""
    text = browser.find_element(By.TAG_NAME, "body").text + browser.execute_script(CHART_TEXT)
    return set(KEY.findall(text))


def _wait(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    """A wait that reads the page again when a navigation replaced the element it was reading
    (a click that submits a form: the old page's nodes go stale before the new page is up)."""
    return WebDriverWait(browser, 20, ignored_exceptions=[StaleElementReferenceException])


def _text_of(browser: webdriver.Chrome, css: str) -> str:
    """An element's text, read in one script: no element handle to go stale (Chromium reports
    a node the navigation replaced as an unknown error, not a stale element, at times)."""
    text = browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
    )
    return str(text)


def _log_in(browser: webdriver.Chrome, base: str) -> None:
    browser.get(f"{base}/dashboard")
    if not browser.current_url.endswith("/dashboard/login"):
        return
    browser.find_element(By.ID, "username").send_keys("demo_manager")
    browser.find_element(By.ID, "password").send_keys("demo-manager-2025")
    browser.find_element(By.ID, "login").click()
    _wait(browser).until(expected_conditions.url_to_be(f"{base}/dashboard"))


def test_the_key_pattern_catches_keys_and_spares_words() -> None:
    assert {"hw.08", "handed_over", "treated", "med.infectious"} <= INTERNAL_KEYS
    assert KEY.findall("B645ECYS4:in_transit · 废矿物油 (HW08) hw.08") == ["in_transit", "hw.08"]
    assert KEY.findall("demo_manager HW08 untreated") == []


def test_manager_logs_in_and_sees_every_panel(served: str, browser: webdriver.Chrome) -> None:
    browser.get(f"{served}/dashboard")
    assert browser.current_url.endswith("/dashboard/login")
    _log_in(browser, served)
    wait = _wait(browser)
    for chart in ("utilization", "sorting", "cells"):
        wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, f"#{chart} canvas"))
        )
    text = browser.find_element(By.ID, "indicators").text
    assert "渔港污水和垃圾收集处置率" in text and "系统计算" in text
    # Each indicator says its own period (a standing: its day), whatever the page's period.
    shown = 0
    for indicator in _manager_get(served, "/m/v1/indicators")["indicators"]:
        cell = browser.find_element(
            By.CSS_SELECTOR, f'tr[data-code="{indicator["code"]}"] td.period'
        )
        actual = indicator["actual"]
        if actual is None:
            assert cell.text == "—"
            continue
        start, end = actual.get("period_start"), actual["period_end"]
        assert cell.text == (f"截至 {end}" if start in (None, end) else f"{start} 至 {end}")
        shown += 1
    assert shown >= 2
    assert "口径：" in text
    period = browser.find_element(By.ID, "period").text
    assert "近12个月" in period and "各规划指标的统计期见其所在行" in period
    shot = os.environ.get("WASTETRACK_DASHBOARD_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
    browser.get(f"{served}/dashboard/batches")
    code = _a_batch_code(served, "treated")
    browser.find_element(By.ID, "code").send_keys(code)
    browser.find_element(By.ID, "find").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#map canvas")))
    wait.until(lambda b: b.find_element(By.ID, "map").get_attribute("data-ready") == "1")
    assert code in browser.find_element(By.ID, "timeline").text


def test_no_page_shows_an_internal_key(served: str, browser: webdriver.Chrome) -> None:
    _log_in(browser, served)
    wait = _wait(browser)
    pages = ["/dashboard", "/dashboard/alerts", "/dashboard/alerts?state=all&page=2"]
    pages += [
        f"/dashboard/batches?code={_a_batch_code(served, s)}" for s in ("treated", "in_transit")
    ]
    for page in pages:
        browser.get(served + page)
        if page == "/dashboard":
            wait.until(
                expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#cells canvas"))
            )
        if "code=" in page:
            wait.until(lambda b: b.find_element(By.ID, "map").get_attribute("data-ready") == "1")
        assert _leaked(browser) == set(), page


SHOW_TIP = """
const chart = echarts.getInstanceByDom(document.getElementById(arguments[0]));
const series = chart.getOption().series;
const s = series.findIndex(x => (x.data || []).some(d => d));
if (s < 0) return null;
const i = series[s].data.findIndex(d => d);
chart.dispatchAction({type: 'showTip', seriesIndex: s, dataIndex: i});
return series[s].data[i];
"""


def test_a_charts_tooltip_says_the_rate_with_its_numerator_and_denominator(
    served: str, browser: webdriver.Chrome
) -> None:
    """A chart drew its shares as bare heights: its tooltip said 99.95 with no count behind it
    (rdash review). It says the page's reading and what it is a share of."""
    _log_in(browser, served)
    browser.get(f"{served}/dashboard")
    wait = _wait(browser)
    for chart in ("utilization", "sorting", "cells"):
        wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, f"#{chart} canvas"))
        )
        point = browser.execute_script(SHOW_TIP, chart)
        assert point is not None, f"the demo draws no {chart} point"
        said = f"{point['text']}（{point['numerator']} / {point['denominator']}）"
        wait.until(lambda b, c=chart, t=said: t in _text_of(b, f"#{c}"))


def test_alerts_are_grouped_paginated_and_acknowledged_in_bulk(
    served: str, browser: webdriver.Chrome
) -> None:
    _log_in(browser, served)
    browser.get(f"{served}/dashboard/alerts")
    groups = browser.find_elements(By.CSS_SELECTOR, "#groups tr.group")
    assert len(groups) >= 2
    open_total = sum(int(g.find_elements(By.TAG_NAME, "td")[1].text) for g in groups)
    assert f"（{open_total} 条）" in browser.find_element(By.CSS_SELECTOR, "#alerts h2").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.alert")) == 20
    assert "第 1 /" in browser.find_element(By.ID, "pages").text
    browser.find_element(By.ID, "next").click()
    _wait(browser).until(lambda b: "第 2 /" in _text_of(b, "#pages"))
    browser.get(f"{served}/dashboard/alerts")
    browser.find_element(By.ID, "select-all").click()
    picks = browser.find_elements(By.CSS_SELECTOR, "input.pick")
    assert picks and all(p.is_selected() for p in picks)
    browser.find_element(By.ID, "select-all").click()
    picks[0].click()
    picks[1].click()
    browser.find_element(By.ID, "ack-selected").click()
    patient = _wait(browser)
    patient.until(lambda b: f"（{open_total - 2} 条）" in _text_of(b, "#alerts h2"))
    browser.find_elements(By.CSS_SELECTOR, "button.ack-one")[0].click()
    patient.until(lambda b: f"（{open_total - 3} 条）" in _text_of(b, "#alerts h2"))


def _manager_get(base: str, path: str, params: dict[str, str | int] | None = None) -> Any:
    """What the API answers the demo's manager on a path."""
    tokens = httpx.post(
        f"{base}/m/v1/auth/token",
        data={"username": "demo_manager", "password": "demo-manager-2025"},
    ).json()
    return httpx.get(
        f"{base}{path}",
        params=params,
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ).json()


def _a_batch_code(base: str, state: str) -> str:
    page = _manager_get(base, "/m/v1/batches", {"limit": 1, "state": state})
    return str(page["items"][0]["code"])


def test_the_api_reference_renders_from_the_service_alone(
    served: str, browser: webdriver.Chrome
) -> None:
    """/docs lists the routes with assets the service serves itself: no CDN, and nothing the
    pages' Content-Security-Policy refuses."""
    browser.get_log("browser")  # what the module's earlier pages logged is not this page's
    browser.get(f"{served}/docs")
    wait = _wait(browser)
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/m/v1/sync" in paths and "/m/v1/auth/logout" in paths
    refused = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
        or ("Failed to load" in entry["message"] and "/favicon.ico" not in entry["message"])
    ]
    assert refused == []
    scripts = [e.get_attribute("src") for e in browser.find_elements(By.CSS_SELECTOR, "script")]
    assert all(src.startswith(served) for src in scripts if src)
