"""The dashboard in a real headless Chromium against the service on uvicorn with the demo."""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import cli_env, free_port, run  # noqa: F401  (cli_env is a fixture)

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


@pytest.fixture
def served(cli_env: dict[str, str]) -> Iterator[str]:  # noqa: F811
    assert run(cli_env, "demo").returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wastetrack.cli", "serve", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
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


def test_manager_logs_in_and_sees_every_panel(served: str, browser: webdriver.Chrome) -> None:
    browser.get(f"{served}/dashboard")
    assert browser.current_url.endswith("/dashboard/login")
    browser.find_element(By.ID, "username").send_keys("demo_manager")
    browser.find_element(By.ID, "password").send_keys("demo-manager-2025")
    browser.find_element(By.ID, "login").click()
    wait = WebDriverWait(browser, 20)
    for chart in ("utilization", "sorting", "cells"):
        wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, f"#{chart} canvas"))
        )
    text = browser.find_element(By.ID, "indicators").text
    assert "渔港污水和垃圾收集处置率" in text and "系统计算" in text
    shot = os.environ.get("WASTETRACK_DASHBOARD_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
    alerts = browser.find_element(By.ID, "alerts")
    before = alerts.find_element(By.TAG_NAME, "h2").text
    alerts.find_element(By.TAG_NAME, "button").click()
    # The acknowledgement reloads the page: wait for the new count, not the old page's.
    patient = WebDriverWait(browser, 20, ignored_exceptions=[StaleElementReferenceException])
    patient.until(lambda b: b.find_element(By.CSS_SELECTOR, "#alerts h2").text != before)
    browser.get(f"{served}/dashboard/batches")
    code = _a_batch_code(served)
    browser.find_element(By.ID, "code").send_keys(code)
    browser.find_element(By.ID, "find").click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#map canvas")))
    assert code in browser.find_element(By.ID, "timeline").text


def _a_batch_code(base: str) -> str:
    tokens = httpx.post(
        f"{base}/m/v1/auth/token",
        data={"username": "demo_manager", "password": "demo-manager-2025"},
    ).json()
    page = httpx.get(
        f"{base}/m/v1/batches",
        params={"limit": 1, "state": "treated"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ).json()
    return str(page["items"][0]["code"])
