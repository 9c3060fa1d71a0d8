"""Updates of the phone app's shell: a deploy that changes two modules together never leaves a
phone with one old and one new (the worker installs a version whole, sw.js), and a Wi-Fi login
page answering 200 for everything never takes the app's place offline. A real chromium against a
service run from a copy of the code (its static files changed as a deploy changes them), and
behind a proxy that turns into a captive portal."""

import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.app.test_phone_app import (
    _log_in,
    _network,
    _visible,
    _wait,
    browser,
    env,
    round_data,
    served,
    serving,
    small_world,
)
from tests.cli.test_cli import free_port

__all__ = [
    "browser",
    "env",
    "round_data",
    "served",
    "small_world",
]  # the fixtures the app's tests share

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deployed(
    env: dict[str, str], served: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The same service run from a copy of the code (its own static files, which the test
    changes as a deploy would), on another port: another origin for the browser."""
    root = tmp_path_factory.mktemp("deployed")
    for name in ("mobile_api", "wastetrack", "schemas", "migrations"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    with serving(env, cwd=root) as base:
        yield base, root / "mobile_api" / "static" / "app"


def _installed(browser: webdriver.Chrome, base: str) -> None:
    """The app opened from `base`, logged in, and open again under its service worker."""
    browser.get(f"{base}/app/")
    _wait(browser, lambda b: _visible(b, "login-view") or _visible(b, "scan-view"))
    if _visible(browser, "login-view"):
        _log_in(browser)
    browser.execute_async_script(
        "const done = arguments[0]; navigator.serviceWorker.ready.then(() => done());"
    )
    browser.refresh()
    _wait(browser, lambda b: _visible(b, "scan-view"))


SW_FILES = """
const [done] = arguments;
(async () => {
  const out = {};
  for (const name of ['main.js', 'api.js']) {
    const hit = await caches.match('/static/app/' + name);
    out[name] = hit ? (await hit.text()).includes('reviewMarker') : null;
  }
  out.controlled = Boolean(navigator.serviceWorker.controller);
  done(out);
})().catch((e) => done(String(e)));
"""


def test_a_deploy_never_leaves_the_phone_with_mixed_modules(
    deployed: tuple[str, Path], browser: webdriver.Chrome
) -> None:
    """docs/app.md (Offline, last paragraph): the app's files come from the server itself, never
    from the browser's HTTP cache, "so an offline phone never mixes an old module with a new
    one". A deploy that changes main.js and api.js together (main.js importing a new export)."""
    base, static = deployed
    month = time.time() - 30 * 86400
    for f in static.iterdir():
        os.utime(f, (month, month))
    # main.js was changed by a deploy shortly before the phone first opened the app
    recent = time.time() - 20
    os.utime(static / "main.js", (recent, recent))
    assert "reviewMarker" not in httpx.get(f"{base}/static/app/main.js").text
    try:
        _installed(browser, base)
        first = browser.execute_async_script(SW_FILES)
        assert first == {"main.js": False, "api.js": False, "controlled": True}, first
        # The deploy: api.js gains an export that main.js now imports.
        main, api = static / "main.js", static / "api.js"
        main.write_text(
            "import { reviewMarker } from './api.js';\nwindow.reviewMarker = reviewMarker;\n"
            + main.read_text()
        )
        api.write_text(api.read_text() + "\nexport const reviewMarker = 'v2';\n")
        assert "reviewMarker" in httpx.get(f"{base}/static/app/api.js").text
        # The collector opens the app online: the worker of the new version installs the whole
        # shell behind it, and takes over once every file has come.
        browser.refresh()
        _wait(browser, lambda b: _visible(b, "scan-view"))
        deadline = time.monotonic() + 30
        while (cached := browser.execute_async_script(SW_FILES))["main.js"] is not True:
            assert time.monotonic() < deadline, cached
            time.sleep(0.5)
        assert cached == {"main.js": True, "api.js": True, "controlled": True}, cached
        # Later, in airplane mode: the new version starts, its modules linked.
        _network(browser, offline=True)
        browser.refresh()
        _wait(browser, lambda b: _visible(b, "scan-view"))
        assert browser.execute_script("return window.reviewMarker") == "v2"
    finally:
        _network(browser, offline=False)


PORTAL = b"<!doctype html><html><body><h1 id='portal'>Log in to the Wi-Fi</h1></body></html>"
HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-encoding",
    "content-length",
    "host",
    "accept-encoding",
    "upgrade",
    "proxy-connection",
}


@pytest.fixture(scope="module")
def portal(served: str) -> Iterator[tuple[str, dict[str, bool]]]:
    """The service behind a network that, once `captive` is set, answers every request with its
    own login page (200, text/html), as a hotel's or village's Wi-Fi does before log-in."""
    mode = {"captive": False}
    client = httpx.Client(base_url=served, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if mode["captive"]:
                status, headers, content = 200, [("Content-Type", "text/html")], PORTAL
            else:
                answer = client.request(
                    self.command,
                    self.path,
                    content=body,
                    headers=[(k, v) for k, v in self.headers.items() if k.lower() not in HOP],
                )
                status, content = answer.status_code, answer.content
                headers = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in HOP]
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", mode
    finally:
        server.shutdown()
        client.close()


def test_a_captive_portal_never_replaces_the_offline_app(
    portal: tuple[str, dict[str, bool]], browser: webdriver.Chrome
) -> None:
    """docs/app.md: the app "keeps working in airplane mode"; "a page that is not the API's (a
    Wi-Fi login page answering 200) counts as offline". The collector opens the app once on a
    Wi-Fi that wants a log-in, then goes on the round in airplane mode."""
    base, mode = portal
    try:
        _installed(browser, base)
        assert browser.execute_script("return Boolean(navigator.serviceWorker.controller)")
        mode["captive"] = True
        browser.refresh()  # opened on the hotel's Wi-Fi: the worker serves the app
        _wait(browser, lambda b: _visible(b, "scan-view"))
        time.sleep(3)
        _network(browser, offline=True)
        browser.refresh()  # later, in airplane mode
        time.sleep(3)
        shown = browser.find_element(By.TAG_NAME, "body").text
        portal_shown = bool(browser.find_elements(By.ID, "portal"))
        assert not portal_shown and browser.find_elements(By.ID, "scan-view"), shown
    finally:
        mode["captive"] = False
        _network(browser, offline=False)
