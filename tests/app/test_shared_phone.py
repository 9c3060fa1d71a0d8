"""A shared phone after a login that ended without a log-out (revoked, or expired offline):
the next user to log in is not shown what the phone kept for the one before — their scans,
the actions those offered, their reference lists (docs/app.md, Offline). First written by an
independent review."""

import time
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.app.test_phone_app import (
    END_LOGIN,
    _as,
    _clinic_bag,
    _headers,
    _login_as,
    _look_up,
    _network,
    _wait,
    browser,
    env,
    round_data,
    served,
    small_world,
)

__all__ = ["browser", "env", "round_data", "served", "small_world"]


REF = """
const [name, done] = arguments;
import('/static/app/store.js').then(async s => done(await s.getRef(name)));
"""


def test_an_ended_login_leaves_no_cached_scan_for_the_next_user(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md (Scan and record): another organization's label/batch is, "to anyone else
    ... unknown, as a code never printed". A shared phone whose login ended (revoked, or
    expired offline): the next user who logs in, offline, is shown the previous user's cached
    scan of a batch the server refuses to show them."""
    bag = _clinic_bag(served, round_data["carrier"], "2.5")
    # The server itself says the bag is unknown to the other clinic's user.
    other = httpx.get(
        f"{served}/m/v1/scan", params={"qr": bag}, headers=_headers(served, "other_clinic")
    )
    assert other.status_code == 404, other.text
    browser.get(f"{served}/app/")
    _login_as(browser, "clinic")
    _look_up(browser, bag)  # online: the answer is kept for offline use
    assert "Infectious" in browser.find_element(By.ID, "summary").text
    browser.find_element(By.ID, "back").click()
    assert browser.execute_async_script(END_LOGIN) == "refused 401"
    _wait(browser, lambda b: "登录已失效" in b.find_element(By.ID, "login-error").text)
    _login_as(browser, "other_clinic")
    _network(browser, offline=True)
    try:
        _wait(browser, lambda b: "离线" in b.find_element(By.ID, "net").text)
        _look_up(browser, bag)
        summary = browser.find_element(By.ID, "summary").text
        actions = [
            b.get_attribute("data-action")
            for b in browser.find_elements(By.CSS_SELECTOR, "#actions button")
        ]
    finally:
        _network(browser, offline=False)
    assert "Infectious" not in summary and "2.5" not in summary, (summary, actions)


def test_an_ended_login_leaves_no_reference_lists_for_the_next_user(
    served: str, browser: webdriver.Chrome
) -> None:
    """The manager's organizations list (fetched for managers only) stays on the phone after the
    manager's login ended, and is what the next user's forms offer."""
    _as(browser, served, "manager")
    _wait(browser, lambda b: (b.execute_async_script(REF, "organizations") or {}).get("items"))
    assert browser.execute_async_script(END_LOGIN) == "refused 401"
    _wait(browser, lambda b: "登录已失效" in b.find_element(By.ID, "login-error").text)
    _login_as(browser, "other_clinic")
    time.sleep(3)  # the reference data is refreshed for the new user
    kept = browser.execute_async_script(REF, "organizations")
    names = [o["name"] for o in (kept or {}).get("items", [])]
    assert names == [], names
