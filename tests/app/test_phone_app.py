"""The phone app at /app in Debian's headless Chromium, against the service on uvicorn with
the tests' small world: log in, scan a real label through a fake camera, record a carrier's
round offline, sync it exactly once, correct and resend a rejected event, log out."""

import asyncio
import contextlib
import functools
import io
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pypdf
import pytest
from PIL import Image

from tests.cli.test_cli import free_port
from tests.factories import PASSWORD
from tests.serving import wait_until_serving
from wastetrack.core import codes, db

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        pytest.fail("CI must install Debian's chromium and chromium-driver", pytrace=False)
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    UnexpectedAlertPresentException,
)
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Set to write docs/app-scan.png and docs/app-result.png from this run.
SCREENSHOTS = os.environ.get("WASTETRACK_APP_SCREENSHOTS") == "1"
BAGS = 3
PLATE = "鲁K5W321"


@pytest.fixture(scope="module")
def env(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    url = db.with_database(server_url, f"wastetrack_app_{uuid.uuid4().hex[:8]}")
    yield {
        **os.environ,
        "WASTETRACK_DATABASE_URL": url,
        "WASTETRACK_DATA_DIR": str(tmp_path_factory.mktemp("app-data")),
        "WASTETRACK_SECRET_KEY": "app-test-secret-" + "q" * 32,
    }
    asyncio.run(db.drop_database(url))


@pytest.fixture(scope="module")
def small_world(env: dict[str, str], served: str) -> dict[str, Any]:
    """The tests' small world (tests/factories.py), made in a process of its own once the
    served app has migrated the database."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.app.world"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@contextlib.contextmanager
def serving(env: dict[str, str], cwd: Path | None = None) -> Iterator[str]:
    """`wastetrack serve` on a free port (from the code at `cwd`, if given), once healthy: its
    base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wastetrack.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=cwd,
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
def served(env: dict[str, str]) -> Iterator[str]:
    with serving(env) as base:
        yield base


@functools.cache
def _headers(base: str, username: str) -> dict[str, str]:
    """A user's bearer header, logged in once per server: the tests log in from one address,
    under the service's per-address login limit."""
    tokens = httpx.post(
        f"{base}/m/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    tokens.raise_for_status()
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


def _query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(fetch())


@pytest.fixture(scope="module")
def round_data(served: str, env: dict[str, str], small_world: dict[str, Any]) -> dict[str, Any]:
    """Three clinic bags for the carrier to pick up, and the label for the load."""
    carrier = small_world["orgs"]["carrier"]
    bags = [_clinic_bag(served, carrier, "2.5") for _ in range(BAGS)]
    label = httpx.get(
        f"{served}/m/v1/batches/{bags[0]}/label.png", headers=_headers(served, "clinic")
    )
    assert label.status_code == 200
    return {
        "carrier": small_world["orgs"]["carrier"],
        "clinic": small_world["orgs"]["clinic"],
        "bags": bags,
        "load": small_world["load"],
        "label_png": label.content,
        "db": env["WASTETRACK_DATABASE_URL"],
    }


def _clinic_bag(served: str, carrier: int, quantity: str) -> str:
    """A bag of infectious waste the clinic tagged for the carrier: its code."""
    tagged = httpx.post(
        f"{served}/m/v1/batches",
        headers=_headers(served, "clinic"),
        json={
            "client_event_id": str(uuid.uuid4()),
            "stream": "medical",
            "category": "med.infectious",
            "quantity": quantity,
            "unit": "kg",
            "carrier_organization_id": carrier,
            "device_time": _now(),
        },
    )
    assert tagged.status_code == 201, tagged.text
    code: str = tagged.json()["code"]
    return code


def _new_load_label(served: str, round_data: dict[str, Any]) -> str:
    """A label the manager issues to the carrier for a load: its code."""
    return _label_for(served, round_data, round_data["carrier"])


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _y4m(png: bytes, path: Path) -> Path:
    """The label as a few frames of 640×480 video, the way Chromium's fake camera reads it."""
    label = Image.open(io.BytesIO(png)).convert("RGB")
    label.thumbnail((600, 440))
    frame = Image.new("RGB", (640, 480), "white")
    frame.paste(label, ((640 - label.width) // 2, (480 - label.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    chroma = [c.resize((320, 240)) for c in (cb, cr)]
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(5):
            out.write(b"FRAME\n" + y.tobytes() + chroma[0].tobytes() + chroma[1].tobytes())
    return path


@pytest.fixture(scope="module")
def browser(
    round_data: dict[str, Any], served: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[webdriver.Chrome]:
    tmp_path = tmp_path_factory.mktemp("chromium-app")
    video = _y4m(round_data["label_png"], tmp_path / "label.y4m")
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
        # A reload in a new document (Chromium 150 on) loses the emulated network, so that the
        # app "reopened in airplane mode" would be online; one document per tab keeps it.
        "--disable-features=RenderDocument",
        "--window-size=420,900",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER or ""))
    driver.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": served, "permissions": ["geolocation"]}
    )
    driver.execute_cdp_cmd(
        "Emulation.setGeolocationOverride",
        {"latitude": 37.1652, "longitude": 122.4867, "accuracy": 10},
    )
    driver.execute_cdp_cmd("Network.enable", {})
    try:
        yield driver
    finally:
        driver.quit()


def _wait(browser: webdriver.Chrome, condition: Any, timeout: float = 15) -> Any:
    return WebDriverWait(browser, timeout).until(condition)


def _applied(browser: webdriver.Chrome, batch: str, event_type: str | None = None) -> None:
    """Wait until the queue holds a record on `batch` (of `event_type`, when given) that the
    server applied."""
    _wait(
        browser,
        lambda b: any(
            e["body"].get("batch") == batch
            and event_type in (None, e["body"].get("event_type"))
            and e["status"] == "applied"
            for e in b.execute_async_script(QUEUE)
        ),
    )


def _alert(browser: webdriver.Chrome) -> Any:
    """The app's question once it has asked it (it reads the queue first)."""

    def asked(b: webdriver.Chrome) -> Any:
        try:
            return b.switch_to.alert
        except NoAlertPresentException:
            return None

    return _wait(browser, asked)


def _find(browser: webdriver.Chrome, css: str) -> Any:
    """The element once the app has drawn it (the app draws after async IndexedDB reads)."""
    return _wait(browser, lambda b: (b.find_elements(By.CSS_SELECTOR, css) or [None])[0])


def _on(browser: webdriver.Chrome, css: str, act: Any) -> None:
    """`act` on the element once drawn; drawn again meanwhile (after another IndexedDB read,
    or new reference data), the element found goes stale, and the one that replaced it is
    acted on instead."""

    def acted(b: webdriver.Chrome) -> bool:
        try:
            act(b.find_element(By.CSS_SELECTOR, css))
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return True

    _wait(browser, acted)


def _visible(browser: webdriver.Chrome, element_id: str) -> bool:
    return bool(browser.find_element(By.ID, element_id).is_displayed())


def _look_up(browser: webdriver.Chrome, code: str) -> None:
    """Type a code on the scan screen and wait for its batch."""
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(code)
    browser.find_element(By.ID, "lookup").click()
    _wait(
        browser,
        lambda b: _visible(b, "result-view") and code in b.find_element(By.ID, "summary").text,
    )


def _network(browser: webdriver.Chrome, *, offline: bool) -> None:
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


QUEUE = """
const done = arguments[arguments.length - 1];
const open = indexedDB.open('wastetrack-app');
open.onsuccess = () => {
  const request = open.result.transaction('queue').objectStore('queue').getAll();
  request.onsuccess = () => { done(request.result); open.result.close(); };
};
"""


def test_collector_logs_in_and_the_app_is_installable(
    served: str, browser: webdriver.Chrome
) -> None:
    browser.get(f"{served}/app")
    assert browser.current_url == f"{served}/app/"
    _wait(browser, lambda b: _visible(b, "login-view"))
    browser.find_element(By.ID, "username").send_keys("carrier")
    browser.find_element(By.ID, "password").send_keys("wrong-password")
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda b: b.find_element(By.ID, "login-error").text)
    browser.find_element(By.ID, "password").clear()
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    assert browser.find_element(By.ID, "who").text == "carrier"
    scope = browser.execute_async_script(
        "const done = arguments[0];"
        "navigator.serviceWorker.ready.then(r => done(r.scope), () => done(null));"
    )
    assert scope == f"{served}/app/"
    manifest = httpx.get(f"{served}/app/manifest.webmanifest").json()
    assert manifest["start_url"] == "/app/" and manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        assert httpx.get(served + icon["src"]).headers["content-type"] == "image/png"
    # The reference data the forms need is cached with its version.
    streams = browser.execute_async_script(
        "const done = arguments[0];"
        "import('/static/app/store.js').then(async s => {"
        "  for (let i = 0; i < 50; i++) { const r = await s.getRef('categories');"
        "    if (r) return done(r); await new Promise(t => setTimeout(t, 100)); } done(null); });"
    )
    assert streams and streams["version"] and len(streams["items"]) > 10


def test_the_check_character_agrees_with_the_server(browser: webdriver.Chrome) -> None:
    rng = random.Random(14)
    bodies = ["".join(rng.choice(codes.ALPHABET) for _ in range(8)) for _ in range(3000)]
    typed = [
        codes.new_code().lower().replace("1", rng.choice("1iIlL")).replace("0", rng.choice("0oO"))
        for _ in range(300)
    ]
    typed += [
        c[:3] + rng.choice(codes.ALPHABET) + c[4:] for c in (codes.new_code() for _ in range(300))
    ]
    answer = browser.execute_async_script(
        "const [bodies, typed, done] = arguments;"
        "import('/static/app/checkchar.js').then(m => done({"
        "  checks: bodies.map(m.checkCharacter),"
        "  valid: typed.map(t => m.isValidCode(m.normalize(t)))}));",
        bodies,
        typed,
    )
    assert answer["checks"] == [codes.check_character(b) for b in bodies]
    assert answer["valid"] == [codes.is_valid_code(codes.normalize(t)) for t in typed]
    assert any(answer["valid"]) and not all(answer["valid"])


def test_a_mistyped_code_is_caught_before_it_is_sent(
    browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    code = round_data["bags"][1]
    wrong = code[:-1] + next(c for c in codes.ALPHABET if c != code[-1])
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(wrong)
    browser.find_element(By.ID, "lookup").click()
    assert "校验位" in browser.find_element(By.ID, "typed-error").text
    assert _visible(browser, "scan-view")
    typed.clear()
    typed.send_keys(code.lower())
    browser.find_element(By.ID, "lookup").click()
    _wait(browser, lambda b: _visible(b, "result-view"))
    assert code in browser.find_element(By.ID, "summary").text
    browser.find_element(By.ID, "back").click()


def test_times_show_in_the_citys_zone_whatever_the_phones(
    browser: webdriver.Chrome, round_data: dict[str, Any], served: str
) -> None:
    """A visiting crew's phone set to UTC shows a batch's tagging in the city's time."""
    code = round_data["bags"][2]
    batch = httpx.get(f"{served}/m/v1/batches/{code}", headers=_headers(served, "clinic")).json()
    shown = "return new Date(arguments[0]).toLocaleString('zh-CN', arguments[1])"
    city = browser.execute_script(shown, batch["tagged_at"], {"timeZone": "Asia/Shanghai"})
    utc = browser.execute_script(shown, batch["tagged_at"], {"timeZone": "UTC"})
    assert city != utc
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    try:
        _look_up(browser, code)
        summary = browser.find_element(By.ID, "summary").text
        assert city in summary and utc not in summary, summary
        browser.find_element(By.ID, "back").click()
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_the_camera_scans_a_printed_label(
    browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    code = round_data["bags"][0]
    browser.find_element(By.ID, "camera").click()
    _wait(browser, lambda b: _visible(b, "result-view"), timeout=20)
    summary = browser.find_element(By.ID, "summary").text
    assert code in summary and "已贴标" in summary and "Infectious waste" in summary
    actions = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#actions button")]
    assert any(a.startswith("收集") for a in actions), actions
    # Linux Chromium has no BarcodeDetector: the vendored reader decoded the frames.
    assert "jsQR" in (browser.find_element(By.ID, "reader").get_attribute("textContent") or "")
    if SCREENSHOTS:
        browser.save_screenshot(str(DOCS / "app-scan.png"))
    browser.find_element(By.ID, "back").click()


def test_an_offline_round_syncs_exactly_once(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    bags, load = round_data["bags"], round_data["load"]
    nowhere = next(c for c in (codes.new_code() for _ in range(10)) if c not in bags)
    _network(browser, offline=True)
    _wait(browser, lambda b: "离线" in b.find_element(By.ID, "net").text)
    # Reopened in airplane mode, the app starts from the service worker's cache.
    browser.refresh()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    assert "离线" in browser.find_element(By.ID, "net").text
    browser.find_element(By.ID, "round-start").click()
    for code in [load, *bags, nowhere]:
        field = browser.find_element(By.ID, "round-typed")
        field.send_keys(code)
        browser.find_element(By.ID, "round-add").click()
        _wait(browser, lambda b, c=code: c in b.find_element(By.ID, "round-view").text)
    # Offline the load's label is unknown: the app offers to tag it as a new load.
    _wait(browser, lambda b: _visible(b, "round-tag"))
    _on(browser, "#f-load_category option[value='med.infectious']", lambda e: e.click())
    browser.find_element(By.ID, "f-load_quantity").send_keys("7.5")
    browser.find_element(By.ID, "round-finish").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    queued = browser.execute_async_script(QUEUE)
    # tagged (the load), collected (each bag, and the code that names nothing), aggregated
    assert len(queued) == 1 + BAGS + 1 + 1 and {e["status"] for e in queued} == {"pending"}
    assert browser.find_element(By.ID, "queue-count").text == str(len(queued))
    assert all(e["body"].get("latitude") == pytest.approx(37.1652) for e in queued)

    _network(browser, offline=False)
    _wait(browser, lambda b: all(e["status"] != "pending" for e in b.execute_async_script(QUEUE)))
    browser.find_element(By.ID, "show-queue").click()
    done = browser.execute_async_script(QUEUE)
    status = {(e["body"]["event_type"], e["body"]["batch"]): e for e in done}
    assert status[("tagged", load)]["status"] == "applied"
    assert all(status[("collected", bag)]["status"] == "applied" for bag in bags)
    unknown = status[("collected", nowhere)]
    assert unknown["status"] == "rejected" and unknown["result"]["error"]["field"] == "batch"
    rejected = status[("aggregated", load)]
    assert rejected["status"] == "rejected"
    assert rejected["result"]["error"]["field"] == f"children[{BAGS}]"
    shown = _find(browser, f"li[data-id='{rejected['client_event_id']}']")
    assert "被拒" in shown.text and f"children[{BAGS}]" in shown.text
    assert rejected["result"]["error"]["detail"] in shown.text
    if SCREENSHOTS:
        browser.save_screenshot(str(DOCS / "app-result.png"))

    # The user discards the pickup of a bag that does not exist, drops it from the load
    # and sends the load again.
    _on(browser, f"li[data-id='{unknown['client_event_id']}'] button.discard", lambda e: e.click())
    _wait(browser, lambda b: len(b.execute_async_script(QUEUE)) == len(queued) - 1)
    gone = f"li[data-id='{unknown['client_event_id']}']"
    _wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, gone))
    _open_correction(browser, rejected["client_event_id"])
    children = _find(browser, "#f-edit-children")
    children.clear()
    children.send_keys("\n".join(bags))
    browser.find_element(By.ID, "resend").click()
    _wait(
        browser,
        lambda b: all(e["status"] == "applied" for e in b.execute_async_script(QUEUE)),
    )

    # Sent again whole (a phone that lost the answers): nothing is applied twice.
    browser.execute_async_script(
        "const done = arguments[0];"
        "import('/static/app/store.js').then(async s => {"
        "  for (const e of await s.entries()) { e.status = 'pending'; await s.putEntry(e); }"
        "  done(); });"
    )
    browser.find_element(By.ID, "sync").click()
    _wait(browser, lambda b: all(e["status"] != "pending" for e in b.execute_async_script(QUEUE)))
    final = browser.execute_async_script(QUEUE)
    assert {e["status"] for e in final} == {"duplicate"}

    url = round_data["db"]
    ids = [uuid.UUID(e["client_event_id"]) for e in final]
    rows = _query(
        url,
        "SELECT client_event_id, count(*) AS n FROM custody_event"
        " WHERE client_event_id = ANY($1::uuid[]) GROUP BY client_event_id",
        ids,
    )
    assert {r["client_event_id"] for r in rows} == set(ids) and {r["n"] for r in rows} == {1}
    states = _query(
        url,
        "SELECT b.code, b.state, p.code AS parent,"
        " (SELECT count(*) FROM custody_event e WHERE e.batch_id = b.id) AS events"
        " FROM batch b LEFT JOIN batch p ON p.id = b.parent_id WHERE b.code = ANY($1::text[])",
        [*bags, load],
    )
    found = {r["code"]: r for r in states}
    for bag in bags:  # tagged, collected, aggregated: each once
        assert (found[bag]["state"], found[bag]["parent"], found[bag]["events"]) == (
            "aggregated",
            load,
            3,
        )
    assert found[load]["events"] == 2  # tagged, aggregated
    carrier = _headers(served, "carrier")
    for code in [*bags, load]:
        verified = httpx.get(f"{served}/m/v1/batches/{code}/verify", headers=carrier).json()
        assert verified["valid"] is True, verified


def test_an_action_records_weight_position_and_a_downscaled_photo(
    browser: webdriver.Chrome, round_data: dict[str, Any], tmp_path: Path
) -> None:
    load = round_data["load"]
    Image.new("RGB", (3200, 2400), "orange").save(tmp_path / "bag.jpg", quality=95)
    browser.find_element(By.ID, "queue-back").click()
    _look_up(browser, load)
    browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='collected']").click()
    _on(browser, "#f-weight_kg", lambda e: e.send_keys("7.25"))
    browser.find_element(By.ID, "f-photo").send_keys(str(tmp_path / "bag.jpg"))
    _wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".photo-preview").is_displayed())
    browser.find_element(By.ID, "save").click()
    _applied(browser, load, "collected")
    (row,) = _query(
        round_data["db"],
        "SELECT e.weight_kg, e.latitude, p.width, p.height, p.size_bytes FROM custody_event e"
        " JOIN batch b ON b.id = e.batch_id JOIN photo p ON p.sha256 = e.photo_sha256"
        " WHERE b.code = $1 AND e.event_type = 'collected'",
        load,
    )
    assert row["weight_kg"] == Decimal("7.25") and row["latitude"] == pytest.approx(37.1652)
    assert (row["width"], row["height"]) == (1600, 1200)


SLOW_PHONE = """
window.fastImageBitmap = window.createImageBitmap;
window.createImageBitmap = async (...args) => {
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return window.fastImageBitmap(...args);
};
"""


def test_record_tapped_while_the_photo_is_kept_waits_for_it(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any], tmp_path: Path
) -> None:
    """Keeping a photo takes a second or more on a slow phone (here its decoding is made to
    take 1.5 s): a tap on Record at once used to save the record without it. The record waits
    for the photo chosen before the tap."""
    bag = _clinic_bag(served, round_data["carrier"], "1.5")
    Image.new("RGB", (3200, 2400), "teal").save(tmp_path / "big.jpg", quality=95)
    _look_up(browser, bag)
    browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='collected']").click()
    _on(browser, "#f-weight_kg", lambda e: e.send_keys("1.5"))
    browser.execute_script(SLOW_PHONE)
    try:
        browser.find_element(By.ID, "f-photo").send_keys(str(tmp_path / "big.jpg"))
        browser.find_element(By.ID, "save").click()  # no wait for the preview
    finally:
        browser.execute_script("window.createImageBitmap = window.fastImageBitmap;")
    _applied(browser, bag)
    (row,) = _query(
        round_data["db"],
        "SELECT p.width FROM custody_event e JOIN batch b ON b.id = e.batch_id"
        " JOIN photo p ON p.sha256 = e.photo_sha256 WHERE b.code = $1",
        bag,
    )
    assert row["width"] == 1600


def test_a_record_after_the_phones_clock_is_set_right_takes_the_clocks_time(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """Device times increase strictly within a round; a clock a day ahead and then set right
    stamped every later record with the wrong day's time plus a millisecond, until a reload."""
    _as(browser, served, "carrier")  # as the tests before it are
    codes_ = [_clinic_bag(served, round_data["carrier"], "1.5") for _ in range(2)]
    ahead = "window.realNow = Date.now; Date.now = () => window.realNow.call(Date) + 86400000;"
    entries: list[dict[str, Any]] = []
    try:
        for setting, code in zip((ahead, "Date.now = window.realNow;"), codes_, strict=True):
            browser.execute_script(setting)
            if _visible(browser, "result-view"):
                browser.find_element(By.ID, "back").click()
            _look_up(browser, code)
            browser.find_element(
                By.CSS_SELECTOR, "#actions button[data-action='collected']"
            ).click()
            _on(browser, "#f-weight_kg", lambda e: e.send_keys("1.5"))
            browser.find_element(By.ID, "save").click()
            _wait(browser, lambda b: _visible(b, "scan-view"))
        entries = [
            e for e in browser.execute_async_script(QUEUE) if e["body"].get("batch") in codes_
        ]
        stamped = {
            e["body"]["batch"]: datetime.fromisoformat(e["body"]["device_time"]) for e in entries
        }
        now = datetime.now(UTC)
        assert (stamped[codes_[0]] - now).total_seconds() > 80_000  # as the phone said
        assert abs((stamped[codes_[1]] - now).total_seconds()) < 120, stamped
    finally:
        browser.execute_script("if (window.realNow) Date.now = window.realNow;")
        browser.execute_async_script(DROP, [e["client_event_id"] for e in entries])


def test_a_rounds_device_times_keep_their_order_through_a_clock_jitter(
    browser: webdriver.Chrome,
) -> None:
    """main.js's own deviceTime, run in the browser against a stubbed clock: a round queued
    within one millisecond (tag, 500 collections, the aggregation) and then a clock jittering
    back 0.6 s keeps every record after the one before; a clock set back a day is taken."""
    source = (Path(__file__).parents[2] / "mobile_api/static/app/main.js").read_text()
    found = re.search(r"let lastTime = 0;\n.*?function deviceTime\(\) \{.*?\n\}\n", source, re.S)
    assert found, "deviceTime is not where this test reads it"
    start = 1_750_000_000_000
    readings = [start] * 502 + [start - 600, start - 599, start - 86_400_000]
    stamped = browser.execute_script(
        "const readings = arguments[0]; let i = 0; const clock = () => readings[i];"
        + found.group(0).replace("Date.now()", "clock()")
        + "const out = [];"
        " for (i = 0; i < readings.length; i++) out.push(Date.parse(deviceTime()));"
        " return out;",
        readings,
    )
    round_and_jitter = stamped[:-1]
    assert all(b > a for a, b in itertools.pairwise(round_and_jitter)), stamped[500:]
    assert stamped[-1] == start - 86_400_000


REFERENCE = """
const [name, done] = arguments;
import('/static/app/store.js').then(async s => done(await s.getRef(name)));
"""


def test_a_carrier_records_its_vehicle_and_the_producers_pin(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    bag = _clinic_bag(served, round_data["carrier"], "1.5")
    # The carrier registers a vehicle (from now on its medical collections name one) and the
    # manager prints the clinic's one-time PINs; reopened, the app offers the vehicle.
    carrier = _headers(served, "carrier")
    vehicle = httpx.post(
        f"{served}/m/v1/vehicles",
        headers=carrier,
        json={"plate": PLATE, "permit_number": "鲁交运管荣字371082000001", "capacity_kg": "2000"},
    )
    assert vehicle.status_code == 201, vehicle.text
    pins = httpx.post(
        f"{served}/m/v1/organizations/{round_data['clinic']}/pins",
        headers=_headers(served, "manager"),
    )
    assert pins.status_code == 201, pins.text
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pins.content)).pages)
    pin = re.findall(r"(?<!\d)\d{6}(?!\d)", text)[0]
    browser.refresh()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _wait(browser, lambda b: PLATE in str(b.execute_async_script(REFERENCE, "vehicles")))
    # Reference lists come a page at a time: the app follows each page's Link to the last.
    for n in range(3):
        driver = httpx.post(
            f"{served}/m/v1/drivers",
            headers=carrier,
            json={"name": f"司机{n}", "licence_number": f"3710821980010100{n:02d}"},
        )
        assert driver.status_code == 201, driver.text
    whole = httpx.get(f"{served}/m/v1/drivers?limit=500", headers=carrier)
    walked = browser.execute_async_script(
        "const done = arguments[0];"
        "import('/static/app/api.js').then("
        "  async (a) => done(await a.callAll('/m/v1/drivers?limit=1')), (e) => done(String(e)));"
    )
    assert [d["id"] for d in walked] == [d["id"] for d in whole.json()] and len(walked) >= 3
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(bag)
    browser.find_element(By.ID, "lookup").click()
    _wait(
        browser,
        lambda b: _visible(b, "result-view") and bag in b.find_element(By.ID, "summary").text,
    )
    browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='collected']").click()
    _find(browser, "#vehicle-plates option")
    offered = browser.find_elements(By.CSS_SELECTOR, "#vehicle-plates option")
    assert [o.get_attribute("value") for o in offered] == [PLATE]
    browser.find_element(By.ID, "f-vehicle_plate").send_keys(PLATE)
    browser.find_element(By.ID, "f-producer_pin").send_keys(pin)
    browser.find_element(By.ID, "save").click()
    _applied(browser, bag, "collected")
    (row,) = _query(
        round_data["db"],
        "SELECT e.details FROM custody_event e JOIN batch b ON b.id = e.batch_id"
        " WHERE b.code = $1 AND e.event_type = 'collected'",
        bag,
    )
    details = json.loads(row["details"])
    assert details["vehicle_plate"] == PLATE
    assert details["producer_confirmed"] == "pin"


def test_a_clinics_label_tags_the_clinics_waste_and_a_handover_takes_no_pin(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A carrier scans a clinic's unused pre-printed label: the tagging form names the clinic
    as the producer, and the batch is the clinic's. Its handover form has no PIN field: a PIN
    confirms only a collection from the producer's hands."""
    clinic = round_data["clinic"]
    issued = httpx.post(
        f"{served}/m/v1/labels",
        headers=_headers(served, "manager"),
        json={"organization_id": clinic, "stream": "medical", "count": 1},
    )
    assert issued.status_code == 201, issued.text
    (row,) = _query(
        round_data["db"],
        "SELECT code FROM label WHERE organization_id = $1 AND bound_at IS NULL",
        clinic,
    )
    label = row["code"]
    _look_up(browser, label)
    browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='tagged']").click()
    producer = _find(browser, "#f-producer_organization_id")
    assert producer.get_attribute("value") == str(clinic)
    browser.find_element(By.ID, "f-quantity").send_keys("1.5")
    browser.find_element(By.ID, "save").click()
    _applied(browser, label, "tagged")
    (batch,) = _query(round_data["db"], "SELECT producer_id FROM batch WHERE code = $1", label)
    assert batch["producer_id"] == clinic
    collected = httpx.post(
        f"{served}/m/v1/events",
        headers=_headers(served, "carrier"),
        json={
            "client_event_id": str(uuid.uuid4()),
            "event_type": "collected",
            "batch": label,
            "device_time": _now(),
            "vehicle_plate": PLATE,
        },
    )
    assert collected.status_code == 201, collected.text
    _look_up(browser, label)
    browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='handed_over']").click()
    _find(browser, "#f-vehicle_plate")
    assert not browser.find_elements(By.ID, "f-producer_pin")
    browser.find_element(By.ID, "back").click()


def _farm_clinic(served: str, carrier: int) -> int:
    """A village clinic without a user account, served by the carrier: its handovers need a
    one-time PIN (the medical stream's rule `producer_pin: without_users`)."""
    admin = _headers(served, "admin")
    regions = httpx.get(f"{served}/admin/v1/regions", headers=admin).json()
    village = next(r["id"] for r in regions if r["code"] == "371082001001")
    made = httpx.post(
        f"{served}/admin/v1/organizations",
        headers=admin,
        json={"name": "西村卫生室", "kind": "clinic", "region_id": village, "bed_count": 0},
    )
    assert made.status_code == 201, made.text
    clinic: int = made.json()["id"]
    agreed = httpx.post(
        f"{served}/admin/v1/service-agreements",
        headers=admin,
        json={
            "provider_organization_id": carrier,
            "client_organization_id": clinic,
            "streams": ["medical"],
            "valid_from": "2020-01-01",
        },
    )
    assert agreed.status_code == 201, agreed.text
    return clinic


def test_a_round_records_the_vehicle_and_each_producers_pin(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """Since the carrier registered a vehicle (the test before), its collections name one; a
    clinic without the app confirms with a PIN. The round sends the round's plate with each
    bag's collection and the PIN typed beside the bag, and the load takes the bags."""
    carrier, url = round_data["carrier"], round_data["db"]
    farm = _farm_clinic(served, carrier)
    pins = httpx.post(
        f"{served}/m/v1/organizations/{farm}/pins", headers=_headers(served, "manager")
    )
    assert pins.status_code == 201, pins.text
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pins.content)).pages)
    pin = re.findall(r"(?<!\d)\d{6}(?!\d)", text)[0]
    tagged = httpx.post(
        f"{served}/m/v1/batches",
        headers=_headers(served, "carrier"),
        json={
            "client_event_id": str(uuid.uuid4()),
            "stream": "medical",
            "category": "med.infectious",
            "quantity": "0.8",
            "unit": "kg",
            "producer_organization_id": farm,
            "device_time": _now(),
        },
    )
    assert tagged.status_code == 201, tagged.text
    farm_bag, clinic_bag = tagged.json()["code"], _clinic_bag(served, carrier, "1.1")
    issued = httpx.post(
        f"{served}/m/v1/labels",
        headers=_headers(served, "manager"),
        json={"organization_id": carrier, "stream": "medical", "count": 1},
    )
    assert issued.status_code == 201, issued.text
    (label,) = _query(
        url, "SELECT code FROM label WHERE organization_id = $1 AND bound_at IS NULL", carrier
    )
    load = label["code"]

    if _visible(browser, "result-view"):
        browser.find_element(By.ID, "back").click()
    browser.find_element(By.ID, "round-start").click()
    _find(browser, "#round-plates option")
    offered = browser.find_elements(By.CSS_SELECTOR, "#round-plates option")
    assert [o.get_attribute("value") for o in offered] == [PLATE]
    # A clinic's label never tagged is no bag to collect: refused on the spot, not at sync.
    issued = httpx.post(
        f"{served}/m/v1/labels",
        headers=_headers(served, "manager"),
        json={"organization_id": round_data["clinic"], "stream": "medical", "count": 1},
    )
    assert issued.status_code == 201, issued.text
    untagged = _query(
        url,
        "SELECT code FROM label WHERE organization_id = $1 AND bound_at IS NULL",
        round_data["clinic"],
    )[0]["code"]
    for code in [load, untagged, farm_bag, clinic_bag]:
        browser.find_element(By.ID, "round-typed").send_keys(code)
        browser.find_element(By.ID, "round-add").click()
        if code == untagged:
            _wait(
                browser, lambda b: "tag the bag first" in b.find_element(By.ID, "round-error").text
            )
            browser.find_element(By.ID, "round-typed").clear()
            continue
        _wait(browser, lambda b, c=code: c in b.find_element(By.ID, "round-view").text)
    assert untagged not in browser.find_element(By.ID, "round-bags").text
    _wait(browser, lambda b: _visible(b, "round-tag"))  # the unused label becomes the load
    _on(browser, "#f-load_category option[value='med.infectious']", lambda e: e.click())
    browser.find_element(By.ID, "f-load_quantity").send_keys("2")
    browser.find_element(By.ID, "round-plate").send_keys(PLATE)
    _on(
        browser,
        f"#round-bags li[data-code='{farm_bag}'] input.round-pin",
        lambda e: e.send_keys(pin),
    )
    browser.find_element(By.ID, "round-finish").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))

    def mine(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in entries if e["body"].get("batch") in (load, farm_bag, clinic_bag)]

    _wait(
        browser,
        lambda b: (
            len(mine(b.execute_async_script(QUEUE))) == 4
            and all(e["status"] != "pending" for e in mine(b.execute_async_script(QUEUE)))
        ),
    )
    sent = {
        (e["body"]["event_type"], e["body"]["batch"]): e
        for e in mine(browser.execute_async_script(QUEUE))
    }
    assert {k: e["status"] for k, e in sent.items()} == {
        ("tagged", load): "applied",
        ("collected", farm_bag): "applied",
        ("collected", clinic_bag): "applied",
        ("aggregated", load): "applied",
    }, {k: (e["result"] or {}).get("error") for k, e in sent.items()}
    # Empty fields are left out, and the load's aggregation names no vehicle.
    assert "producer_pin" not in sent[("collected", clinic_bag)]["body"]
    assert "vehicle_plate" not in sent[("aggregated", load)]["body"]
    rows = _query(
        url,
        "SELECT b.code, b.state, p.code AS parent, e.details FROM batch b"
        " JOIN custody_event e ON e.batch_id = b.id AND e.event_type = 'collected'"
        " LEFT JOIN batch p ON p.id = b.parent_id WHERE b.code = ANY($1::text[])",
        [farm_bag, clinic_bag],
    )
    found = {r["code"]: (r["state"], r["parent"], json.loads(r["details"])) for r in rows}
    assert found[farm_bag][:2] == found[clinic_bag][:2] == ("aggregated", load)
    assert found[farm_bag][2]["vehicle_plate"] == found[clinic_bag][2]["vehicle_plate"] == PLATE
    assert found[farm_bag][2]["producer_confirmed"] == "pin"
    assert "producer_confirmed" not in found[clinic_bag][2]


TOKENS = """
const [access, done] = arguments;
import('/static/app/store.js').then(async s => {
  const tokens = await s.getKv('tokens');
  if (access !== null) await s.setKv('tokens', { ...tokens, access });
  done(tokens);
});
"""


def test_an_expired_access_token_is_refreshed_silently(
    browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    before = browser.execute_async_script(TOKENS, "not-a-valid-token")
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(round_data["bags"][2])
    browser.find_element(By.ID, "lookup").click()
    _wait(
        browser,
        lambda b: (
            _visible(b, "result-view")
            and round_data["bags"][2] in b.find_element(By.ID, "summary").text
        ),
    )
    after = browser.execute_async_script(TOKENS, None)
    assert after["access"] not in (before["access"], "not-a-valid-token")
    assert after["refresh"] != before["refresh"]  # the refresh token is used once


def test_a_second_tap_on_record_records_once(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """The form waits for the position before it closes: a second tap meanwhile is ignored."""
    code = _clinic_bag(served, round_data["carrier"], "1.5")
    if _visible(browser, "result-view"):
        browser.find_element(By.ID, "back").click()
    _look_up(browser, code)
    browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='collected']").click()
    _on(browser, "#f-vehicle_plate", lambda e: e.send_keys(PLATE))
    browser.execute_script("const s = document.getElementById('save'); s.click(); s.click();")
    _wait(browser, lambda b: _visible(b, "scan-view"))
    time.sleep(0.5)  # a second entry, if any, would be queued by now
    queued = [
        e
        for e in browser.execute_async_script(QUEUE)
        if e["body"].get("batch") == code and e["body"].get("event_type") == "collected"
    ]
    assert len(queued) == 1


UNPLATED = """
const [code, done] = arguments;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected', batch: code,
                device_time: new Date().toISOString()};
  await s.enqueue(body, `unplated ${code}`, me.user_id);
  done(body.client_event_id);
});
"""


def test_a_refusal_naming_a_field_the_record_lacks_can_be_corrected(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A pickup queued without the vehicle's plate, which the carrier's registered vehicles
    make required: the correction form offers the field the server named."""
    code = _clinic_bag(served, round_data["carrier"], "1.2")
    entry = browser.execute_async_script(UNPLATED, code)
    if _visible(browser, "result-view"):
        browser.find_element(By.ID, "back").click()
    browser.find_element(By.ID, "show-queue").click()
    browser.find_element(By.ID, "sync").click()
    _wait(
        browser,
        lambda b: any(
            e["client_event_id"] == entry
            and e["status"] == "rejected"
            and e["result"]["error"]["field"] == "vehicle_plate"
            for e in b.execute_async_script(QUEUE)
        ),
    )
    browser.find_element(By.ID, "queue-back").click()  # the list is drawn again on return
    browser.find_element(By.ID, "show-queue").click()
    _open_correction(browser, entry)
    _on(browser, "#f-edit-vehicle_plate", lambda e: e.send_keys(PLATE))
    browser.find_element(By.ID, "resend").click()
    _wait(
        browser,
        lambda b: any(
            e["client_event_id"] == entry and e["status"] == "applied"
            for e in b.execute_async_script(QUEUE)
        ),
    )
    browser.find_element(By.ID, "queue-back").click()


def test_logging_out_wipes_the_tokens(browser: webdriver.Chrome) -> None:
    browser.find_element(By.ID, "logout").click()
    _wait(browser, lambda b: _visible(b, "login-view"))
    names = browser.execute_async_script(
        "const done = arguments[0]; indexedDB.databases().then(d => done(d.map(x => x.name)));"
    )
    assert "wastetrack-app" not in names
    browser.refresh()
    _wait(browser, lambda b: _visible(b, "login-view"))


FOREIGN = """
const [done] = arguments;
import('/static/app/store.js').then(async s => {
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString()};
  await s.enqueue(body, 'left by another', -1);
  done();
});
"""


def test_another_users_records_wait_for_them(browser: webdriver.Chrome) -> None:
    """A shared phone: what one collector recorded is never sent as another's."""
    browser.execute_async_script(FOREIGN)
    browser.find_element(By.ID, "username").send_keys("carrier")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _wait(
        browser,
        lambda b: "another user" in b.find_element(By.ID, "status").get_attribute("textContent"),
    )
    _wait(
        browser,
        lambda b: "synced" in b.find_element(By.ID, "sync-status").get_attribute("textContent"),
    )
    (left,) = [e for e in browser.execute_async_script(QUEUE) if e["summary"] == "left by another"]
    assert (left["status"], left["result"]) == ("pending", None)


SYNC_IN_HALVES = """
const [done] = arguments;
const real = window.fetch;
const sizes = [];
// A server that takes one record a request (a lower limit configured there).
window.fetch = async (url, options) => {
  if (String(url).endsWith('/m/v1/sync')) {
    const count = JSON.parse(options.body).events.length;
    sizes.push(count);
    if (count > 1) {
      const refusal = {status: 422, detail: 'send at most 1 entries per sync', field: 'events'};
      return new Response(JSON.stringify(refusal), {status: 422});
    }
  }
  return real(url, options);
};
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  for (let i = 0; i < 3; i++) {
    const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                  batch: 'ABCDEFGH2', device_time: new Date().toISOString()};
    await s.enqueue(body, `halves ${i}`, me.user_id);
  }
  const sync = await import('/static/app/sync.js');
  const answer = await sync.syncNow();
  window.fetch = real;
  done({answer, sizes});
});
"""


def test_a_sync_refused_for_its_size_goes_again_in_halves(browser: webdriver.Chrome) -> None:
    result = browser.execute_async_script(SYNC_IN_HALVES)
    assert result["answer"]["sent"] == 3
    assert result["sizes"][:2] == [3, 1]
    assert all(n <= 1 for n in result["sizes"][1:])
    queued = [e for e in browser.execute_async_script(QUEUE) if e["summary"].startswith("halves")]
    assert {e["status"] for e in queued} == {"rejected"}  # answered, no longer pending


ONE_TOO_LARGE = """
const [done] = arguments;
const real = window.fetch;
// A server whose body limit one record passes alone (a long note typed in the correction form).
window.fetch = async (url, options) => {
  if (String(url).endsWith('/m/v1/sync') && options.body.includes('TOOLARGE')) {
    const refusal = {status: 413, code: 'too_large', detail: 'the body is larger than 2 MB'};
    return new Response(JSON.stringify(refusal), {status: 413});
  }
  return real(url, options);
};
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  for (const batch of ['ABCDEFGH2', 'TOOLARGE', 'ABCDEFGH2']) {
    const body = {client_event_id: crypto.randomUUID(), event_type: 'collected', batch,
                  device_time: new Date().toISOString()};
    await s.enqueue(body, `one too large ${batch}`, me.user_id);
  }
  const sync = await import('/static/app/sync.js');
  const answer = await sync.syncNow();
  window.fetch = real;
  done(answer);
});
"""


def test_a_record_too_large_to_send_is_refused_on_the_phone_and_the_rest_go(
    browser: webdriver.Chrome,
) -> None:
    answer = browser.execute_async_script(ONE_TOO_LARGE)
    assert answer["sent"] == 3
    queued = {
        e["summary"]: e
        for e in browser.execute_async_script(QUEUE)
        if e["summary"].startswith("one too large")
    }
    assert {e["status"] for e in queued.values()} == {"rejected"}  # none left pending
    too_large = queued["one too large TOOLARGE"]["result"]["error"]
    assert (too_large["code"], too_large["detail"]) == ("too_large", "the body is larger than 2 MB")


ONE_UNREADABLE = """
const [done] = arguments;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  // The middle note holds half of an emoji (a note cut short between its two halves), which
  // JSON.stringify writes as an escape no JSON parser may read as text.
  for (const [name, note] of [['first', 'whole'], ['cut', 'cut \\uD83D'], ['last', 'whole']]) {
    const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                  batch: 'ABCDEFGH2', device_time: new Date().toISOString(), note};
    await s.enqueue(body, `unreadable ${name}`, me.user_id);
  }
  const sync = await import('/static/app/sync.js');
  const answer = await sync.syncNow();
  // Their answers, and the records gone from the queue: the cut note is no text the browser
  // driver can hand back either.
  const ours = (await s.entriesIn(['pending', 'rejected'])).filter(
    (e) => e.summary.startsWith('unreadable'));
  for (const e of ours) await s.dropEntry(e.client_event_id);
  done({answer, errors: Object.fromEntries(ours.map((e) => [e.summary, e.result.error]))});
});
"""


def test_a_record_the_server_cannot_read_is_refused_on_the_phone_and_the_rest_go(
    browser: webdriver.Chrome,
) -> None:
    """One record the server reads as no JSON (a lone surrogate) refused the whole sync
    (422 naming no field), and the phone sent the same body again and again: the queue
    behind it never went. It is split as a sync too large is, the one record refused on the
    phone with the server's reason."""
    synced = browser.execute_async_script(ONE_UNREADABLE)
    assert synced["answer"] is not None and synced["answer"]["sent"] == 3, synced
    queued = synced["errors"]
    assert len(queued) == 3
    cut = queued["unreadable cut"]
    assert (cut["code"], cut["field"]) == ("validation_failed", None), cut
    # The other two reached the server and were judged on their own (no such batch here).
    assert {queued["unreadable first"]["field"], queued["unreadable last"]["field"]} == {"batch"}, (
        queued
    )


LATER_PASS = """
const [done] = arguments;
const real = window.fetch;
let release;
const gate = new Promise((resolve) => { release = resolve; });
let seen = 0;
// The first sync request waits until a second record is saved meanwhile.
window.fetch = async (url, options) => {
  if (String(url).endsWith('/m/v1/sync') && seen++ === 0) await gate;
  return real(url, options);
};
Promise.all([import('/static/app/store.js'), import('/static/app/api.js'),
             import('/static/app/sync.js')]).then(async ([s, a, sync]) => {
  const me = await a.profile();
  const queue = async (summary) => s.enqueue({client_event_id: crypto.randomUUID(),
    event_type: 'collected', batch: 'ABCDEFGH2', device_time: new Date().toISOString()},
    summary, me.user_id);
  await queue('before the sync');
  const first = sync.syncNow();
  while (!seen) await new Promise((t) => setTimeout(t, 20));
  await queue('during the sync');
  const second = sync.syncNow();
  release();
  const answers = [await first, await second];
  window.fetch = real;
  done(answers);
});
"""


def test_a_record_saved_during_a_sync_is_sent_by_it(browser: webdriver.Chrome) -> None:
    answers = browser.execute_async_script(LATER_PASS)
    assert answers[1]["sent"] == 2, answers
    queued = [e for e in browser.execute_async_script(QUEUE) if "the sync" in e["summary"]]
    assert len(queued) == 2 and all(e["status"] != "pending" for e in queued)


PHOTO_RACE = """
const [done] = arguments;
const real = window.fetch;
let release;
const gate = new Promise((resolve) => { release = resolve; });
const log = [];
let uploads = 0;
// The first photo's upload waits until a record with a photo of its own is saved meanwhile.
window.fetch = async (url, options) => {
  const path = String(url);
  if (path.endsWith('/m/v1/photos')) {
    log.push(['photo', options.body.get('file').name.slice(0, 1)]);
    if (uploads++ === 0) await gate;
  } else if (path.endsWith('/m/v1/sync')) {
    log.push(['sync', JSON.parse(options.body).events.map((e) => e.client_event_id)]);
  }
  return real(url, options);
};
Promise.all([import('/static/app/store.js'), import('/static/app/api.js'),
             import('/static/app/sync.js')]).then(async ([s, a, sync]) => {
  const me = await a.profile();
  const record = async (summary, photo) => {
    const id = crypto.randomUUID();
    await s.putPhoto(photo, new Blob([summary], {type: 'image/jpeg'}));
    await s.enqueue({client_event_id: id, event_type: 'collected', batch: 'ABCDEFGH2',
      device_time: new Date().toISOString(), photo_sha256: photo}, summary, me.user_id);
    return id;
  };
  const first = await record('photo race 1', 'a'.repeat(64));
  const pass = sync.syncNow();
  while (!uploads) await new Promise((t) => setTimeout(t, 20));
  const second = await record('photo race 2', 'b'.repeat(64));
  sync.syncNow();
  release();
  await pass;
  window.fetch = real;
  for (const id of [first, second]) await s.dropEntry(id);
  done([log, first, second]);
});
"""


def test_a_record_saved_while_photos_upload_goes_after_its_own_photo(
    browser: webdriver.Chrome,
) -> None:
    """A sync reads the photos to upload, then sends the records: one saved with a new photo
    while the first upload was on its way went in the same request, before its photo, and came
    back refused on photo_sha256. It now waits for the next pass, after its photo."""
    log, first, second = browser.execute_async_script(PHOTO_RACE)
    assert log == [["photo", "a"], ["sync", [first]], ["photo", "b"], ["sync", [second]]], log


MADE_IN_A_RUSH = """
const done = arguments[arguments.length - 1];
import('/static/app/store.js').then(async (s) => {
  const made = [];
  for (let i = 0; i < 200; i += 1) {
    const id = crypto.randomUUID();
    made.push(id);
    await s.enqueue({ client_event_id: id }, `rush ${i}`, -1);
  }
  const kept = (await s.entries()).map((e) => e.client_event_id).filter((id) => made.includes(id));
  for (const id of made) await s.dropEntry(id);
  done([made, kept]);
});
"""


def test_the_queue_keeps_the_order_records_were_made(browser: webdriver.Chrome) -> None:
    """A round queues its load's tagging, each bag's collection and the aggregation within a
    millisecond or two: the queue sends them in the order made (the server keeps a batch's
    events in the order sent), never two of one millisecond in a random order."""
    made, kept = browser.execute_async_script(MADE_IN_A_RUSH)
    assert kept == made


PLANTED = """
const [body, field, status, done] = arguments;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  const entry = await s.enqueue(body, `refused on ${field}`, me.user_id);
  entry.status = status;
  entry.result = {status, error: {field, detail: 'planted refusal'}};
  await s.putEntry(entry);
  done();
});
"""


def _correct(browser: webdriver.Chrome, body: dict[str, Any], field: str) -> None:
    """A record the server refused naming `field`, opened for correction in the queue."""
    browser.execute_async_script(PLANTED, body, field, "rejected")
    for view in ("queue-back", "back"):
        if browser.find_element(By.ID, view).is_displayed():
            browser.find_element(By.ID, view).click()
    browser.find_element(By.ID, "show-queue").click()
    _open_correction(browser, body["client_event_id"])


def _open_correction(browser: webdriver.Chrome, entry: str) -> None:
    """Click the queued `entry`'s correct button (the queue on screen) and wait for its form."""

    def clicked(b: webdriver.Chrome) -> bool:
        # The queue is drawn after an IndexedDB read: a button of a list being redrawn goes
        # stale, and is clicked again in the list that replaced it.
        try:
            b.find_element(By.CSS_SELECTOR, f"li[data-id='{entry}'] button.fix").click()
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return True

    _wait(browser, clicked)
    # A form left from an earlier correction holds inputs of the same names until this
    # entry's form replaces them (again after a read): wait for this entry's.
    _wait(
        browser,
        lambda b: (
            (form := b.find_element(By.ID, "edit-form")).is_displayed()
            and form.get_attribute("data-id") == entry
        ),
    )


def _resent(browser: webdriver.Chrome, entry: str) -> dict[str, Any]:
    """The entry once its correction is saved (the server may refuse it again)."""
    browser.find_element(By.ID, "resend").click()

    def saved(b: webdriver.Chrome) -> dict[str, Any] | None:
        for e in b.execute_async_script(QUEUE):
            if e["client_event_id"] == entry and (
                e["result"] is None or e["result"]["error"]["detail"] != "planted refusal"
            ):
                return dict(e)
        return None

    found: dict[str, Any] = _wait(browser, saved)
    return found


def _checked_pickup(*, photo_sha256: str | None) -> dict[str, Any]:
    """A pickup of kitchen waste whose quality check failed, as the app queues it."""
    return {
        "client_event_id": str(uuid.uuid4()),
        "kind": "pickup",
        "site": "ABCDEFGH2",
        "category": "hh.kitchen",
        "weight_kg": "1.5",
        "device_time": _now(),
        "quality": {"passed": False, "contamination_share": "0.2", "photo_sha256": photo_sha256},
    }


def test_a_refusal_inside_a_field_is_corrected_in_that_field(browser: webdriver.Chrome) -> None:
    """`quality.photo_sha256` names a part of `quality`: the form offers `quality`, and the
    resent record gains no key the server would refuse as unknown."""
    body = _checked_pickup(photo_sha256="0" * 64)
    _correct(browser, body, "quality.photo_sha256")
    label = _find(browser, "label[for='f-edit-quality']")
    assert "error" in (label.get_attribute("class") or "")
    resent = _resent(browser, body["client_event_id"])
    assert [k for k in resent["body"] if "." in k] == []
    assert resent["body"]["quality"] == body["quality"]


# Typed numbers a number input would read otherwise than the user meant, or not at all: a
# comma (7,5 became 75), a Chinese numeral, a sign, an exponent.
UNREADABLE = ["7,5", "七点五", "-3", "1e400"]


def _queued_for(browser: webdriver.Chrome, code: str) -> list[dict[str, Any]]:
    queued = browser.execute_async_script(QUEUE)
    return [e["body"] for e in queued if e["body"].get("batch") == code]


def _type_in_round(browser: webdriver.Chrome, code: str) -> None:
    """Type a code into the round and add it (what the round then shows is the caller's)."""
    typed = browser.find_element(By.ID, "round-typed")
    typed.clear()
    typed.send_keys(code)
    browser.find_element(By.ID, "round-add").click()


def _offer_as_load(browser: webdriver.Chrome, code: str) -> str:
    """Begin a round and type `code` as its load, until the round takes it or says why not:
    the load the round then shows ("—" where it refused it)."""
    browser.find_element(By.ID, "round-start").click()
    _wait(browser, lambda b: _visible(b, "round-view"))
    _type_in_round(browser, code)
    _wait(
        browser,
        lambda b: (
            b.find_element(By.ID, "round-error").text
            or b.find_element(By.ID, "round-load").text != "—"
        ),
    )
    load: str = browser.find_element(By.ID, "round-load").text
    return load


def _start_round(browser: webdriver.Chrome, *scanned: str) -> None:
    """A carrier's round begun with these codes typed, the load's first."""
    browser.find_element(By.ID, "round-start").click()
    for code in scanned:
        _type_in_round(browser, code)
        _wait(browser, lambda b, c=code: c in b.find_element(By.ID, "round-view").text)


def _each_refused(
    browser: webdriver.Chrome,
    typed_in: Any,
    button: str,
    shown: str,
    label: str,
    batches: list[str],
) -> None:
    """Each UNREADABLE number typed in `typed_in`, then `button` tapped: refused in `shown`,
    naming the field's `label` and what was typed, and nothing queued for `batches`."""
    for typed in UNREADABLE:
        typed_in.clear()
        typed_in.send_keys(typed)
        browser.find_element(By.ID, button).click()
        _wait(browser, lambda b, t=typed: t in b.find_element(By.ID, shown).text)
        assert label in browser.find_element(By.ID, shown).text
        assert all(_queued_for(browser, code) == [] for code in batches)


def test_a_number_the_app_cannot_read_is_refused_naming_the_field(
    browser: webdriver.Chrome,
) -> None:
    """What the user typed is read as typed: a weight it cannot read records nothing and says
    which field and why; a full-width one is the number it shows."""
    _to_scan(browser)
    code = codes.new_code()
    _network(browser, offline=True)
    try:
        _look_up(browser, code)
        _on(browser, "#actions button[data-action='collected']", lambda e: e.click())
        weight = _find(browser, "#f-weight_kg")
        _each_refused(browser, weight, "save", "form-error", "称重 Weight (kg)", [code])
        weight.clear()
        weight.send_keys("７.５")  # full-width digits, as a Chinese keyboard may type them
        browser.find_element(By.ID, "save").click()
        _wait(browser, lambda b: _queued_for(b, code))
        assert [body["weight_kg"] for body in _queued_for(browser, code)] == ["7.5"]
        browser.execute_async_script(
            "const [code, done] = arguments;"
            "import('/static/app/store.js').then(async (s) => {"
            "  for (const e of await s.entries()) if (e.body.batch === code)"
            "    await s.dropEntry(e.client_event_id);"
            "  done(); });",
            code,
        )
    finally:
        _network(browser, offline=False)


def test_a_rounds_load_quantity_the_app_cannot_read_is_refused(browser: webdriver.Chrome) -> None:
    """The load's quantity is not a bag count the app makes up when it cannot read what was
    typed: the round says so and queues nothing."""
    _to_scan(browser)
    load, bag = codes.new_code(), codes.new_code()
    _network(browser, offline=True)
    try:
        _start_round(browser, load, bag)
        quantity = _find(browser, "#f-load_quantity")
        _each_refused(browser, quantity, "round-finish", "round-error", "袋数或重量", [load, bag])
        browser.find_element(By.ID, "round-cancel").click()
    finally:
        _network(browser, offline=False)


def test_a_correction_that_is_not_json_is_refused_naming_the_field(
    browser: webdriver.Chrome,
) -> None:
    """A field kept as JSON (`quality`) typed broken: the form says which field, and the
    record waits as it was, not a button that does nothing."""
    body = _checked_pickup(photo_sha256=None)
    _correct(browser, body, "quality")
    typed = _find(browser, "#f-edit-quality")
    typed.clear()
    typed.send_keys('{"passed": false, "contamination_share": 0,2}')
    browser.find_element(By.ID, "resend").click()
    _wait(browser, lambda b: "quality" in b.find_element(By.ID, "edit-error").text)
    (entry,) = [
        e
        for e in browser.execute_async_script(QUEUE)
        if e["client_event_id"] == body["client_event_id"]
    ]
    assert (entry["status"], entry["body"]["quality"]) == ("rejected", body["quality"])
    browser.execute_async_script(
        "const [id, done] = arguments;"
        "import('/static/app/store.js').then(async (s) => { await s.dropEntry(id); done(); });",
        body["client_event_id"],
    )
    _to_scan(browser)


def test_a_refused_device_time_is_corrected_in_the_citys_time(browser: webdriver.Chrome) -> None:
    """Shown and typed as the city's clock reads, whatever the phone's zone (here UTC)."""
    body = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": "collected",
        "batch": "ABCDEFGH2",
        "device_time": "2001-02-03T04:05:06.000Z",
    }
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    try:
        _correct(browser, body, "device_time")
        shown = _find(browser, "#f-edit-device_time")
        assert shown.get_attribute("type") == "datetime-local"
        assert shown.get_attribute("value") == "2001-02-03T12:05:06"  # 04:05 UTC is 12:05 here
        browser.execute_script("arguments[0].value = '2024-05-06T07:08:09';", shown)
        resent = _resent(browser, body["client_event_id"])
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})
    assert resent["body"]["device_time"] == "2024-05-05T23:08:09.000Z"


PHOTO = """
const [done] = arguments;
import('/static/app/store.js').then(async (s) => {
  const canvas = new OffscreenCanvas(64, 48);
  const context = canvas.getContext('2d');
  context.fillStyle = `hsl(${Math.floor(Math.random() * 360)}, 70%, 50%)`;
  context.fillRect(0, 0, 64, 48);
  const blob = await canvas.convertToBlob({type: 'image/jpeg', quality: 0.8});
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  const sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  await s.putPhoto(sha, blob);
  done(sha);
});
"""

PHOTOS = """
const [done] = arguments;
import('/static/app/store.js').then(async (s) => done((await s.photos()).map(([k]) => k)));
"""

NAMING = """
const [sha, done] = arguments;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString(), photo_sha256: sha};
  await s.enqueue(body, 'names a photo', me.user_id);
  done(body.client_event_id);
});
"""

DROP_PHOTO = """
const [sha, done] = arguments;
import('/static/app/store.js').then(async (s) => { await s.dropPhoto(sha); done(); });
"""


def _answered_by(status: int, body: str, media_type: str = "text/html") -> str:
    """A script that has every request of the API answered with this status and body: run
    before a script, it stands in for the network until `window.fetch = window.realFetch`."""
    return f"""
window.realFetch = window.realFetch || window.fetch;
window.fetch = async (url, options) => String(url).startsWith('/m/')
  ? new Response({json.dumps(body)},
                 {{status: {status}, headers: {{'Content-Type': '{media_type}'}}}})
  : window.realFetch(url, options);
"""


# A hotel or village Wi-Fi login page answers every request of the API with its own HTML.
PORTAL = _answered_by(200, "<html>Log in to the Wi-Fi</html>")
# A proxy or gateway in front of the service, on a weak network: its own error page.
GATEWAY = _answered_by(504, "<html><body>504 Gateway Time-out</body></html>")

CAPTIVE = (
    PORTAL
    + """
const [done] = arguments;
import('/static/app/sync.js').then(async (sync) => {
  const answer = await sync.syncNow().catch((error) => `failed: ${error}`);
  window.fetch = window.realFetch;
  done(answer);
});
"""
)


def test_a_photo_answered_by_a_captive_portal_is_kept(browser: webdriver.Chrome) -> None:
    sha = browser.execute_async_script(PHOTO)
    entry = browser.execute_async_script(NAMING, sha)  # a sync sends only photos records name
    try:
        assert browser.execute_async_script(CAPTIVE) is None  # offline, as far as the app knows
        assert sha in browser.execute_async_script(PHOTOS)
    finally:
        browser.execute_async_script(DROP, [entry])
        browser.execute_async_script(DROP_PHOTO, sha)


# How a script names what a call threw: offline, the service's refusal, or anything else.
SAYS = """
const says = (a, error) => error instanceof a.Offline ? 'offline'
  : error instanceof a.Problem ? `problem ${error.status}` : `${error.name}: ${error.message}`;
"""


LOGIN = (
    SAYS
    + """
const [done] = arguments;
Promise.all([import('/static/app/api.js'), import('/static/app/store.js')]).then(async ([a, s]) => {
  const before = JSON.stringify(await s.getKv('tokens'));
  let said;
  try {
    await a.logIn('carrier', 'whatever');
    said = 'logged in';
  } catch (error) {
    said = says(a, error);
  }
  window.fetch = window.realFetch;
  done([said, JSON.stringify(await s.getKv('tokens')) === before]);
});
"""
)


@pytest.mark.parametrize("network", [PORTAL, GATEWAY], ids=["portal-200", "gateway-504"])
def test_a_login_answered_by_a_page_not_the_services_is_offline(
    browser: webdriver.Chrome, network: str
) -> None:
    """A Wi-Fi login page answering the log-in with its own HTML was read as tokens: the login
    screen said "登录失败 · Cannot read properties of null"; a gateway's 504 page was the
    service refusing the password (diff review). It is offline ("cannot log in offline"), and
    nothing is kept."""
    assert browser.execute_async_script(network + LOGIN) == ["offline", True]


# The renewal of an expired login answered by someone not the service (an authenticating
# proxy's or a firewall's own page, a gateway's JSON refusal): the call is offline or fails
# with that refusal, and the login is kept.
RENEWAL = (
    SAYS
    + """
const [status, page, type, done] = arguments;
Promise.all([import('/static/app/api.js'), import('/static/app/store.js')]).then(async ([a, s]) => {
  const kept = await s.getKv('tokens');
  await s.setKv('tokens', { ...kept, access: 'expired' });  // the service answers 401
  window.realFetch = window.realFetch || window.fetch;
  window.fetch = async (url, options) => String(url).startsWith('/m/v1/auth/refresh')
    ? new Response(page, { status, headers: { 'Content-Type': type } })
    : window.realFetch(url, options);
  let said;
  try {
    await a.call('/m/v1/catalog/categories');
    said = 'answered';
  } catch (error) {
    said = says(a, error);
  }
  window.fetch = window.realFetch;
  const after = await s.getKv('tokens');
  await s.setKv('tokens', kept);
  done([said, after !== null && after.refresh === kept.refresh]);
});
"""
)


@pytest.mark.parametrize(
    ("status", "page", "media_type"),
    [
        (403, "<html><body>403 Forbidden</body></html>", "text/html"),
        (413, "<html><body>413 Request Entity Too Large</body></html>", "text/html"),
        (200, '{"hello": "world"}', "application/json"),
        # A gateway's own refusal in JSON: the call fails with it, the login is kept.
        (403, '{"error": "blocked by policy"}', "application/json"),
    ],
    ids=["proxy-403", "proxy-413", "json-without-tokens", "gateway-json-403"],
)
def test_a_renewal_answered_by_a_page_not_the_services_keeps_the_login(
    served: str,
    browser: webdriver.Chrome,
    round_data: dict[str, Any],
    status: int,
    page: str,
    media_type: str,
) -> None:
    """A proxy's HTML 403 to the renewal was read as the service refusing the refresh token:
    the tokens were deleted and every tab said the login had ended, though the service never
    saw the token (diff review); JSON holding no tokens was kept as tokens. The renewal reads
    answers by the same rule as every call and the log-in."""
    _as(browser, served, "carrier")
    said = "problem 403" if media_type == "application/json" and status == 403 else "offline"
    assert browser.execute_async_script(RENEWAL, status, page, media_type) == [said, True]


CALLS = (
    SAYS
    + """
const [done] = arguments;
import('/static/app/api.js').then(async (a) => {
  const said = [];
  const asked = [() => a.call('/m/v1/scan?qr=X'), () => a.callAll('/m/v1/catalog/categories')];
  for (const asking of asked) {
    try {
      said.push(JSON.stringify(await asking()));
    } catch (error) {
      said.push(says(a, error));
    }
  }
  window.fetch = window.realFetch;
  done(said);
});
"""
)


@pytest.mark.parametrize(
    ("network", "said"),
    [
        (PORTAL, "offline"),
        (GATEWAY, "offline"),
        (_answered_by(502, ""), "offline"),
        # A body too large says so whoever answers (a proxy's limit too): the sync sends less.
        (_answered_by(413, "<html>Request Entity Too Large</html>"), "problem 413"),
        # The service's own refusal stays its refusal.
        (_answered_by(503, '{"detail": "busy"}', "application/problem+json"), "problem 503"),
    ],
    ids=["portal-200", "gateway-504", "empty-502", "proxy-413", "service-503"],
)
def test_any_call_answered_by_a_page_not_the_services_is_offline(
    browser: webdriver.Chrome, network: str, said: str
) -> None:
    """A Wi-Fi login page's 200 was a `null` answer to a call (a scan kept it over the bag's
    last known state) and a TypeError to a list's reading (shown on the status line); a
    gateway's 504 page was the service refusing the code (phoneapp review): every call takes
    an answer with no JSON as offline, but a 413, one rule in `exchange`."""
    assert browser.execute_async_script(network + CALLS) == [said, said]


KEPT_SCAN = """
const [qr, done] = arguments;
import('/static/app/store.js').then(async (s) => done((await s.getKv(`scan:${qr}`)) ?? null));
"""


@pytest.mark.parametrize("network", [PORTAL, GATEWAY], ids=["portal-200", "gateway-504"])
def test_a_scan_behind_a_captive_portal_shows_the_last_known_batch(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any], network: str
) -> None:
    """docs/app.md: a page that is not the API's counts as offline, and offline a bag scanned
    before shows its last known state: the portal's answer erased it ("recorded now"), and a
    gateway's 504 page said 查无此码 *no such code* (phoneapp review)."""
    _as(browser, served, "carrier")
    code = round_data["bags"][0]
    _look_up(browser, code)  # online: the phone keeps what it found
    _to_scan(browser)
    browser.execute_script(network)
    try:
        _look_up(browser, code)
        summary = browser.find_element(By.ID, "summary").text
        kept = browser.execute_async_script(KEPT_SCAN, code)
    finally:
        browser.execute_script("window.fetch = window.realFetch;")
    assert kept is not None and kept["kind"] == "batch", kept
    assert "offline: last known" in summary and code in summary, summary


def test_a_look_up_the_service_refuses_but_for_no_such_code_says_so(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """Every refusal of a look-up said 查无此码 *no such code*: only the service's 404 does; a
    busy service's own 503 says the look-up failed, in its words (phoneapp review)."""
    _as(browser, served, "carrier")
    said = {}
    for name, code in (("busy", round_data["bags"][0]), ("unknown", codes.new_code())):
        _to_scan(browser)
        if name == "busy":
            browser.execute_script(
                _answered_by(
                    503, '{"detail": "the database is not ready"}', "application/problem+json"
                )
            )
        try:
            typed = browser.find_element(By.ID, "typed")
            typed.clear()
            typed.send_keys(code)
            browser.find_element(By.ID, "lookup").click()
            _wait(browser, lambda b: b.find_element(By.ID, "scan-error").text)
            said[name] = browser.find_element(By.ID, "scan-error").text
        finally:
            browser.execute_script("window.fetch = window.realFetch || window.fetch;")
    assert said["busy"] == "查询失败 · look-up failed · the database is not ready", said
    assert said["unknown"].startswith("查无此码 · "), said


FORGET_SCAN = """
const [qr, done] = arguments;
import('/static/app/store.js').then(async (s) => done(await s.setKv(`scan:${qr}`, undefined)));
"""


def test_a_bag_scanned_by_camera_is_known_offline_when_its_code_is_typed(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md: offline, only a code the phone has not seen cannot be looked up. The
    label's QR URL and the 9 characters printed under it are one bag: scanned by the camera
    online, then typed offline (too dark to focus), it shows its last known state. The phone
    kept it under the URL scanned, so the typed code was a stranger ("recorded now")."""
    _as(browser, served, "carrier")
    code = round_data["bags"][0]
    browser.execute_async_script(FORGET_SCAN, code)  # what earlier stories kept of it
    browser.find_element(By.ID, "camera").click()  # the fake camera shows bags[0]'s label
    _wait(browser, lambda b: _visible(b, "result-view"), timeout=20)
    assert code in browser.find_element(By.ID, "summary").text
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        _look_up(browser, code)
        summary = browser.find_element(By.ID, "summary").text
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert "offline: last known" in summary and "Infectious waste" in summary, summary


SEEN_QR = """
const done = arguments[arguments.length - 1];
window.seenQr = [];
window.plainFetch = window.plainFetch || window.fetch;
window.fetch = (input, init) => {
  const url = String(input.url || input);
  const found = /\\/m\\/v1\\/scan\\?qr=([^&]*)/.exec(url);
  if (found) window.seenQr.push(decodeURIComponent(found[1]));
  return window.plainFetch(input, init);
};
done(true);
"""

AS_BEFORE_THE_UPDATE = """
const [qr, code, done] = arguments;
import('/static/app/store.js').then(async (s) => {
  const found = await s.getKv(`scan:${code}`);
  await s.setKv(`scan:${qr}`, found);   // where the app before 9f54ec3 kept it
  await s.setKv(`scan:${code}`, undefined);
  done(found ? found.kind : null);
});
"""


def test_a_bag_scanned_before_the_update_is_still_known_offline(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md: offline, a scan shows "the bag's last known state". An app of before
    December 2026 kept what it learned under the text scanned (`scan:<url>`); the app now
    keeps it under the code, and finds (and moves) an answer kept the old way: the same label
    scanned offline after the update was a stranger ("recorded now")."""
    _as(browser, served, "carrier")
    code = round_data["bags"][0]
    browser.execute_async_script(SEEN_QR)
    try:
        browser.find_element(By.ID, "camera").click()  # the fake camera shows bags[0]'s label
        _wait(browser, lambda b: _visible(b, "result-view"), timeout=20)
        qr = browser.execute_script("return window.seenQr[0];")
    finally:
        browser.execute_script("window.fetch = window.plainFetch;")
    assert qr and f"/q/{code}." in qr, qr
    # The phone as the app before the update left it: what it learned, under the URL scanned.
    assert browser.execute_async_script(AS_BEFORE_THE_UPDATE, qr, code) == "batch"
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        browser.find_element(By.ID, "camera").click()
        _wait(browser, lambda b: _visible(b, "result-view"), timeout=20)
        summary = browser.find_element(By.ID, "summary").text
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert "offline: last known" in summary, summary


def test_a_producers_bag_is_not_taken_as_the_rounds_load(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/custody.md: the scan offers no packing into another producer's batch, and the round
    refuses another organization's unused label as the load on the spot. A clinic's bag as
    the load (its scan offers no `aggregated`) was taken all the same: Finish then queued the
    bags' collections and a packing the server refuses (409 on `batch`)."""
    _as(browser, served, "carrier")
    clinic_bag = round_data["bags"][2]
    try:
        load = _offer_as_load(browser, clinic_bag)
        error = browser.find_element(By.ID, "round-error").text
    finally:
        browser.find_element(By.ID, "round-cancel").click()
    assert load == "—" and error, (load, error)


def test_a_places_plate_is_no_bag_of_a_round(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A round takes a load, then bags: a collection point's plate scanned as a bag was listed,
    and Finish queued a collection of the plate that the sync refused."""
    _as(browser, served, "carrier")
    plate = _collection_point(served, "环卫七号点")
    browser.find_element(By.ID, "round-start").click()
    _wait(browser, lambda b: _visible(b, "round-view"))
    try:
        for code in (round_data["bags"][1], plate):
            typed = browser.find_element(By.ID, "round-typed")
            typed.clear()
            typed.send_keys(code)
            browser.find_element(By.CSS_SELECTOR, "#round-typed-form button").click()
        _wait(browser, lambda b: b.find_element(By.ID, "round-error").text)
        listed = browser.find_elements(By.CSS_SELECTOR, "#round-bags li")
        assert plate not in [li.get_attribute("data-code") for li in listed]
        assert "plate" in browser.find_element(By.ID, "round-error").text
    finally:
        browser.find_element(By.ID, "round-cancel").click()


def test_a_label_the_phone_tagged_as_a_load_is_not_tagged_again_offline(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md: what the phone knows of a code is the server's last answer and the
    phone's own records since. A label scanned online as unused and tagged as a round's load
    stayed "unused" on the phone: the next round, offline, tagged it again (refused at sync as
    bound already, a record to discard) and its scan offered tagging it."""
    carrier = round_data["carrier"]
    first, second = (_clinic_bag(served, carrier, "0.4") for _ in range(2))
    load = _new_load_label(served, round_data)
    _as(browser, served, "carrier")
    _start_round(browser, load, first)  # online: the scan answers, and the phone keeps, unused
    _on(browser, "#f-load_category option[value='med.infectious']", lambda e: e.click())
    browser.find_element(By.ID, "f-load_quantity").send_keys("0.4")
    browser.find_element(By.ID, "round-plate").send_keys(PLATE)
    browser.find_element(By.ID, "round-finish").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _applied(browser, load, "aggregated")
    _network(browser, offline=True)
    try:
        browser.execute_async_script(COLLECTED, second, PLATE)  # picked up alone, offline
        _look_up(browser, load)
        summary = browser.find_element(By.ID, "summary").text
        offered = [
            b.get_attribute("data-action")
            for b in browser.find_elements(By.CSS_SELECTOR, "#actions button")
        ]
        _to_scan(browser)
        _start_round(browser, load, second)
        if _visible(browser, "round-tag"):  # what the round offers for the load, as it stands
            _on(browser, "#f-load_category option[value='med.infectious']", lambda e: e.click())
            browser.find_element(By.ID, "f-load_quantity").send_keys("0.4")
        browser.find_element(By.ID, "round-plate").send_keys(PLATE)
        browser.find_element(By.ID, "round-finish").click()
        _wait(browser, lambda b: _visible(b, "scan-view"))
        made = [body["event_type"] for body in _queued_for(browser, load)]
        pickups = [body["event_type"] for body in _queued_for(browser, second)]
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert "recorded on this phone since" in summary and "tagged" not in offered, (
        summary,
        offered,
    )
    assert made.count("tagged") == 1 and made.count("aggregated") == 2, made
    assert pickups == ["collected"], pickups  # not collected again by the round

    def sent(b: webdriver.Chrome) -> bool:
        ours = [
            e for e in b.execute_async_script(QUEUE) if e["body"].get("batch") in (load, second)
        ]
        return all(e["status"] != "pending" for e in ours)

    _wait(browser, sent)
    children = _query(
        round_data["db"],
        "SELECT b.code FROM batch b JOIN batch p ON p.id = b.parent_id WHERE p.code = $1",
        load,
    )
    assert {r["code"] for r in children} == {first, second}


AS_VERSION_1 = """
const [entry, done] = arguments;
const req = (r) => new Promise((ok, ko) => {
  r.onsuccess = () => ok(r.result);
  r.onerror = () => ko(r.error);
});
const open = (version, upgrade) => {
  const r = indexedDB.open('wastetrack-app', version);
  if (upgrade) r.onupgradeneeded = () => upgrade(r.result);
  return req(r);
};
(async () => {
  // What the phone holds, as the app before the queue's indexes (database version 1) kept it.
  const now = await open();
  const dump = {};
  for (const store of ['kv', 'ref', 'queue', 'photos']) {
    const kept = now.transaction(store).objectStore(store);
    dump[store] = [await req(kept.getAllKeys()), await req(kept.getAll())];
  }
  now.close();
  await req(indexedDB.deleteDatabase('wastetrack-app'));
  const old = await open(1, (d) => {
    d.createObjectStore('kv');
    d.createObjectStore('ref');
    d.createObjectStore('queue', { keyPath: 'client_event_id' }).createIndex('seq', 'seq');
    d.createObjectStore('photos');
  });
  const tx = old.transaction(['kv', 'ref', 'queue', 'photos'], 'readwrite');
  for (const store of ['kv', 'ref', 'photos']) {
    const [keys, values] = dump[store];
    keys.forEach((key, i) => tx.objectStore(store).put(values[i], key));
  }
  for (const { named, ...kept } of [...dump.queue[1], entry]) tx.objectStore('queue').put(kept);
  await new Promise((ok) => { tx.oncomplete = ok; });
  old.close();
  done(old.version);
})();
"""

INDEXES = """
const done = arguments[arguments.length - 1];
const open = indexedDB.open('wastetrack-app');
open.onsuccess = () => {
  const queue = open.result.transaction('queue').objectStore('queue');
  done([open.result.version, [...queue.indexNames]]);
  open.result.close();
};
"""


def test_a_queue_kept_before_its_indexes_is_indexed_and_still_known_offline(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A scan, the count of waiting records and a sync read the queue by index (the codes a
    record names, its status), not whole: a phone keeps every applied record until log-out.
    A phone whose queue the app kept before the indexes has them made at the update, with
    every record it holds, so a label it tagged and synced before is still known as tagged
    offline, never offered as a new label."""
    _as(browser, served, "carrier")
    label = _new_load_label(served, round_data)
    me = browser.execute_async_script(
        "const [done] = arguments;"
        " import('/static/app/api.js').then(async (a) => done((await a.profile()).user_id));"
    )
    tagged = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": "tagged",
        "batch": label.lower()[:3] + "-" + label[3:],  # as typed: the index keys the code
        "category": "med.infectious",
        "quantity": "0.4",
        "unit": "kg",
        "device_time": _now(),
    }
    entry = {
        "client_event_id": tagged["client_event_id"],
        "seq": 1,
        "user_id": me,
        "body": tagged,
        "summary": f"tagged {label}",
        "status": "applied",
        "result": {"status": "applied", "batch_code": label},
        "answered": 1,
    }
    browser.get(f"{served}/healthz")  # the origin's storage, with no app holding it open
    assert browser.execute_async_script(AS_VERSION_1, entry) == 1
    browser.get(f"{served}/app/")
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _network(browser, offline=True)
    try:
        _look_up(browser, label)
        summary = browser.find_element(By.ID, "summary").text
        offered = [
            b.get_attribute("data-action")
            for b in browser.find_elements(By.CSS_SELECTOR, "#actions button")
        ]
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    version, indexes = browser.execute_async_script(INDEXES)
    assert version == 2 and {"seq", "named", "status"} <= set(indexes), (version, indexes)
    kept = [
        e
        for e in browser.execute_async_script(QUEUE)
        if e["client_event_id"] == entry["client_event_id"]
    ]
    assert [e["named"] for e in kept] == [[label]], kept
    assert "recorded on this phone since" in summary and "tagged" not in offered, (
        summary,
        offered,
    )
    assert browser.find_element(By.ID, "who").text == "carrier"


def test_a_drum_recorded_by_its_gs_separated_identifier_is_recorded_since_under_its_code(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/labels.md: an identifier is taken "with a scanner's group separator (GS, 0x1D)
    between [segments]; the phone sends the text it scanned"; docs/app.md: "A record names
    the code by any name the answer gives it, its batch's code or a drum's HJ 1276
    identifier". The server reads GS as a gap (Python's `\\s`), the phone's `codeOf` (JS `\\s`)
    keeps it: the record's `named` key is the identifier with GS inside, which no scan of the
    drum's code or identifier asks the index for, so the kept answer ("collect") showed as if
    nothing had been recorded since (diff review of 08f5ebd)."""
    from wastetrack.batches import identifiers

    def with_gs(identifier: str) -> str:  # as a scanner writes it
        return "\x1d".join(identifiers.segments(identifier))

    bag, identifier = _scanned_by_identifier(served, browser, round_data, "1.4", 77, with_gs)
    scanned = with_gs(identifier)
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        # What the app queues when the user records a collection on that scan: batch = qr.
        browser.execute_async_script(COLLECTED, scanned, PLATE)
        _look_up(browser, bag)
        by_code = browser.find_element(By.ID, "summary").text
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert "recorded on this phone since" in by_code, by_code


def _camera_reads(browser: webdriver.Chrome, text: str) -> str:
    """The fake camera reads `text`; the result or the error shown."""
    browser.execute_async_script(FAKE_CAMERA, text)
    try:
        browser.find_element(By.ID, "camera").click()
        _wait(
            browser,
            lambda b: _visible(b, "result-view") or b.find_element(By.ID, "scan-error").text,
        )
    finally:
        browser.execute_async_script(REAL_CAMERA)
    if _visible(browser, "result-view"):
        return str(browser.find_element(By.ID, "summary").text)
    return "error: " + str(browser.find_element(By.ID, "scan-error").text)


def _typed(browser: webdriver.Chrome, code: str) -> str:
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(code)
    browser.find_element(By.ID, "lookup").click()
    _wait(browser, lambda b: _visible(b, "result-view"))
    return str(browser.find_element(By.ID, "summary").text)


def test_a_text_naming_two_codes_is_the_last_one_to_the_phone_as_to_the_server(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """codes.js: codeOf reads a text as the server does (`ScanReader.code`). The server reads
    the last `/q/CODE.SIG` (anchored at the end), the phone read the first `/q/CODE.`: a text
    naming A then B's signed URL was B to the server, A to the phone, which kept B's answer
    under A; offline, A's own label then showed as B (diff review of 89d2b80)."""
    a = _clinic_bag(served, round_data["carrier"], "1.1")
    b = _clinic_bag(served, round_data["carrier"], "1.2")
    url_b = httpx.get(f"{served}/m/v1/batches/{b}", headers=_headers(served, "clinic")).json()[
        "qr_url"
    ]
    hostile = f"{served}/q/{a}.0" + url_b[url_b.index("/q/") :]
    _as(browser, served, "carrier")
    _to_scan(browser)
    online = _camera_reads(browser, hostile)
    assert b in online, online  # the server read B
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        offline = _typed(browser, a)
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert b not in offline, f"A's code typed offline shows B's batch: {offline!r}"


def test_a_gs_inside_a_scanned_nine_character_code_is_no_code_to_the_phone_either(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """For a 9-character code the server (codes.normalize) drops spaces and hyphens only: a GS
    inside the code is no code (查无此码 online), where the phone read it as the code and,
    offline, showed its kept answer and offered its actions, for a record the server refuses
    (diff review of 89d2b80)."""
    bag = _clinic_bag(served, round_data["carrier"], "1.3")
    _as(browser, served, "carrier")
    _to_scan(browser)
    assert bag in _typed(browser, bag)  # known to the phone
    _to_scan(browser)
    text = bag[:4] + "\x1d" + bag[4:]
    online = _camera_reads(browser, text)
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        offline = _camera_reads(browser, text)
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert online.startswith("error:"), online  # the server reads no code
    assert bag not in offline or "批次 Batch" not in offline, (
        f"online: {online!r}; offline the phone shows the batch: {offline!r}"
    )


def _posted_event(served: str, user: str, body: dict[str, Any]) -> None:
    """An event the user records through the API (another phone, say)."""
    posted = httpx.post(
        f"{served}/m/v1/events",
        headers=_headers(served, user),
        json={"client_event_id": str(uuid.uuid4()), "device_time": _now(), **body},
    )
    assert posted.status_code == 201, posted.text


def test_a_round_collects_a_bag_handed_back_to_its_clinic_before_packing_it(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """The carrier handed a clinic's bag back to the clinic; the server offers to collect it
    again (docs/custody.md), and the round picks it up as a tagged bag before packing it. It
    judged "to collect" by the state `tagged` alone, a copy of the spec's rule: no pickup was
    queued and the packing was refused (diff review of 1b06ad9)."""
    carrier, clinic = round_data["carrier"], round_data["clinic"]
    bag = _clinic_bag(served, carrier, "1.3")
    _posted_event(
        served, "carrier", {"event_type": "collected", "batch": bag, "vehicle_plate": PLATE}
    )
    _posted_event(
        served, "carrier", {"event_type": "handed_over", "batch": bag, "to_organization_id": clinic}
    )
    load = _new_load_label(served, round_data)
    _as(browser, served, "carrier")
    _start_round(browser, load, bag)
    _wait(browser, lambda b: _visible(b, "round-tag"))
    _on(browser, "#f-load_category option[value='med.infectious']", lambda e: e.click())
    browser.find_element(By.ID, "f-load_quantity").send_keys("1.3")
    browser.find_element(By.ID, "round-plate").send_keys(PLATE)
    browser.find_element(By.ID, "round-finish").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _applied(browser, load, "aggregated")
    made = [body["event_type"] for body in _queued_for(browser, bag)]
    assert made == ["collected"], made
    held = _query(
        round_data["db"],
        "SELECT b.state, p.code FROM batch b JOIN batch p ON p.id = b.parent_id WHERE b.code = $1",
        bag,
    )
    assert [(r["state"], r["code"]) for r in held] == [("aggregated", load)], held


COLLECTED = """
const [code, plate, done] = arguments;
const modules = [import('/static/app/store.js'), import('/static/app/api.js')];
Promise.all(modules).then(async ([s, a]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected', batch: code,
                vehicle_plate: plate, device_time: new Date().toISOString()};
  await s.enqueue(body, `collected ${code}`, me.user_id);
  done(true);
});
"""

FAKE_CAMERA = """
const [text, done] = arguments;
import('/static/app/scanner.js').then((m) => {
  // The camera reads `text` at once (another system's drum label, say).
  window.realStart = window.realStart || m.Scanner.prototype.start;
  m.Scanner.prototype.start = function (onCode) { onCode(text); return Promise.resolve(); };
  done(true);
});
"""

REAL_CAMERA = """
const [done] = arguments;
import('/static/app/scanner.js').then((m) => {
  if (window.realStart) m.Scanner.prototype.start = window.realStart;
  done(true);
});
"""


def _scanned_by_identifier(
    served: str,
    browser: webdriver.Chrome,
    round_data: dict[str, Any],
    quantity: str,
    seq: int,
    written: Callable[[str], str] = str,
) -> tuple[str, str]:
    """A clinic's bag given an HJ 1276 identifier (number `seq` of the day), scanned online by
    the carrier's camera reading the identifier as `written` gives it: the bag's code and the
    identifier."""
    from wastetrack.batches import identifiers

    bag = _clinic_bag(served, round_data["carrier"], quantity)
    digits = identifiers.waste_code_digits("841-001-01")
    identifier = f"91350100M000100Y43{digits}20261130{seq:03d}"
    _query(round_data["db"], "UPDATE batch SET identifier = $1 WHERE code = $2", identifier, bag)
    _as(browser, served, "carrier")
    browser.execute_async_script(FAKE_CAMERA, written(identifier))
    try:
        browser.find_element(By.ID, "camera").click()
        _wait(
            browser,
            lambda b: _visible(b, "result-view") and bag in b.find_element(By.ID, "summary").text,
        )
    finally:
        browser.execute_async_script(REAL_CAMERA)
    return bag, identifier


def test_a_drum_scanned_by_its_identifier_is_known_offline_by_its_code(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md: seen is seen either way. A scanned HJ 1276 数字识别码 names its batch:
    the phone kept the answer under the identifier only, so the batch's 9 characters typed
    offline were a stranger ("recorded now")."""
    bag, _ = _scanned_by_identifier(served, browser, round_data, "1.1", 1)
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        _look_up(browser, bag)
        summary = browser.find_element(By.ID, "summary").text
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert "offline: last known" in summary, summary


SYNCED = """
const [done] = arguments;
import('/static/app/sync.js').then(async (s) => done(await s.syncNow()));
"""

# The phone's clock was an hour ahead when the sync answered (set right since): the entry's
# synced_at, written by that clock, is an hour past what the clock reads now.
CLOCK_WAS_AHEAD = """
const [code, done] = arguments;
import('/static/app/store.js').then(async (s) => {
  for (const e of await s.entries()) {
    if (e.body.batch === code && e.status === 'applied') {
      e.synced_at = new Date(Date.now() + 3600 * 1000).toISOString();
      await s.putEntry(e);
    }
  }
  done(true);
});
"""

# Another user's record left waiting on a shared phone (their login ended without a log-out).
THEIRS_WAITING = """
const [code, plate, done] = arguments;
import('/static/app/store.js').then(async (s) => {
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected', batch: code,
                vehicle_plate: plate, device_time: new Date().toISOString()};
  await s.enqueue(body, 'another user, waiting for them', -1);
  done(true);
});
"""

THEIRS_GONE = """
const [done] = arguments;
import('/static/app/store.js').then(async (s) => {
  for (const e of await s.entries()) if (e.user_id === -1) await s.dropEntry(e.client_event_id);
  done(true);
});
"""


def _offered(browser: webdriver.Chrome) -> list[str]:
    return [
        str(b.get_attribute("data-action"))
        for b in browser.find_elements(By.CSS_SELECTOR, "#actions button")
    ]


def test_a_batch_the_phone_collected_offline_is_not_tagged_as_a_new_load(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A clinic's bag, scanned online (kept: a batch, another producer's, no packing into it),
    then collected by this phone offline. The next round offline took it as its load as "a
    new label", ticked, dropping the kept answer because a record followed it, and queued a
    tagging of an existing batch and a packing into another producer's bag, both refused at
    sync (diff review of 5c8385f). A batch stays a batch: refused as the load on the spot."""
    theirs = _clinic_bag(served, round_data["carrier"], "0.6")
    _as(browser, served, "carrier")
    _look_up(browser, theirs)  # online: kept as the clinic's batch
    assert "aggregated" not in _offered(browser)
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        browser.execute_async_script(COLLECTED, theirs, PLATE)  # picked up alone, offline
        load = _offer_as_load(browser, theirs)
        shown = _visible(browser, "round-tag")
        browser.find_element(By.ID, "round-cancel").click()
        made = [body["event_type"] for body in _queued_for(browser, theirs)]
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert (load, shown, made) == ("—", False, ["collected"])


def test_a_drum_collected_by_its_identifier_is_recorded_since_under_its_code(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md: a drum scanned by its HJ 1276 identifier is known by its batch's code too,
    and what the phone knows of a code is the last answer and its own records since. The phone
    recorded a collection on the drum scanned by its identifier (the record names the
    identifier, which the server resolves); the drum's code typed offline shows the kept
    answer (still with its producer, "collect") as if nothing had been recorded since:
    recordedSince matched the scanned text and the answer's code, not the answer's
    identifier (diff review of 5c8385f)."""
    bag, identifier = _scanned_by_identifier(served, browser, round_data, "1.3", 2)
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        # What the app queues when the user records a collection on that scan: batch = qr.
        browser.execute_async_script(COLLECTED, identifier, PLATE)
        _look_up(browser, bag)
        by_code = browser.find_element(By.ID, "summary").text
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    browser.execute_async_script(SYNCED)
    _applied(browser, identifier, "collected")  # the server takes the record by identifier
    assert "recorded on this phone since" in by_code, by_code


def test_a_fresh_online_answer_is_not_hidden_by_a_record_synced_under_a_fast_clock(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """The phone ordered its kept answers and sync answers by its wall clock (kept_at,
    synced_at). A collection synced while the clock ran an hour fast (set right since): the
    server's answer asked online afterwards already shows it, yet the phone read the record as
    "applied after the answer was kept", hid the fresh answer's actions behind "recorded on
    this phone since" for an hour, and a round would not collect the bag. Answers are
    numbered in the order taken now (diff review of 5c8385f)."""
    bag = _clinic_bag(served, round_data["carrier"], "0.7")
    _as(browser, served, "carrier")
    browser.execute_async_script(COLLECTED, bag, PLATE)
    browser.execute_async_script(SYNCED)
    _applied(browser, bag, "collected")
    browser.execute_async_script(CLOCK_WAS_AHEAD, bag)
    _look_up(browser, bag)  # online, after the sync: the server's answer shows the collection
    summary = browser.find_element(By.ID, "summary").text
    _to_scan(browser)
    assert "recorded on this phone since" not in summary, summary


def test_another_users_waiting_record_does_not_stop_this_users_round_collecting(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A shared phone: another user's collection of a bag waits on the phone for them (their
    login ended without a log-out; sync sends only the logged-in user's records). This user's
    round, online, scans the bag (the server: still with the clinic) and the load label: the
    round takes the other user's waiting record as this phone's, does not collect the bag, and
    queues only a packing of a bag the carrier does not hold -- refused at sync (diff review
    of 5c8385f)."""
    carrier = round_data["carrier"]
    bag = _clinic_bag(served, carrier, "0.8")
    load = _new_load_label(served, round_data)
    _as(browser, served, "carrier")
    browser.execute_async_script(THEIRS_WAITING, bag, PLATE)
    try:
        _start_round(browser, load, bag)
        _on(browser, "#f-load_category option[value='med.infectious']", lambda e: e.click())
        browser.find_element(By.ID, "f-load_quantity").send_keys("0.8")
        browser.find_element(By.ID, "round-plate").send_keys(PLATE)
        browser.find_element(By.ID, "round-finish").click()
        _wait(browser, lambda b: _visible(b, "scan-view"))
        queued = browser.execute_async_script(QUEUE)
    finally:
        browser.execute_async_script(THEIRS_GONE)
    ours = [
        e["body"]["event_type"]
        for e in queued
        if e["body"].get("batch") == bag and e["user_id"] != -1
    ]
    _wait(
        browser,
        lambda b: all(
            e["status"] != "pending"
            for e in b.execute_async_script(QUEUE)
            if e["user_id"] != -1 and e["body"].get("batch") == load
        ),
    )
    packed = [
        (e["body"]["event_type"], e["status"])
        for e in browser.execute_async_script(QUEUE)
        if e["body"].get("batch") == load and e["body"]["event_type"] == "aggregated"
    ]
    assert ours == ["collected"], (ours, packed)


def _login_as(browser: webdriver.Chrome, username: str) -> None:
    """Log `username` in on the login screen the app shows, until the scan screen names them."""
    _wait(browser, lambda b: _visible(b, "login-view"))
    typed = browser.find_element(By.ID, "username")
    typed.clear()
    typed.send_keys(username)
    browser.find_element(By.ID, "password").clear()
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _wait(browser, lambda b: b.find_element(By.ID, "who").text == username)


# The login ends without a log-out (revoked on the server): the app shows the login screen and
# keeps the user's records.
END_LOGIN = """
const [done] = arguments;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const t = await s.getKv('tokens');
  await fetch('/m/v1/auth/logout', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({refresh_token: t.refresh})});
  await s.setKv('tokens', {...t, access: 'expired-access-token'});
  const answer = await a.call('/m/v1/vehicles').then(
    () => 'answered', (e) => `refused ${e.status}`);
  done(answer);
});
"""

COUNTER = """
const [done] = arguments;
import('/static/app/store.js').then(async (s) => done(await s.answersSoFar()));
"""


def test_a_shared_phones_answer_count_is_not_restarted_under_records_it_numbered(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md (Offline): what the phone knows of a code is the server's last answer and
    the user's own records "answered by a sync after the answer was asked for (the phone
    numbers the answers it takes ...)". The count of answers lives in kv, which a log-in of
    another user (forgetAnother) and a log-out (leave) clear, while the records it numbered
    stay on a shared phone for their user. The count started again at 0 under them: the
    carrier's collection, applied long before, read as answered after every answer asked
    since, so a fresh online scan of the bag said "recorded on this phone since: collected"
    and offered the field actions instead of the server's (diff review of 61d59d6)."""
    bag = _clinic_bag(served, round_data["carrier"], "0.9")
    _as(browser, served, "carrier")
    browser.execute_async_script(COLLECTED, bag, PLATE)
    browser.execute_async_script(SYNCED)
    _applied(browser, bag, "collected")
    numbered = [
        e["answered"] for e in browser.execute_async_script(QUEUE) if e["body"].get("batch") == bag
    ]
    _to_scan(browser)
    # The carrier's login ends without a log-out; the clinic uses the phone, then logs out.
    assert browser.execute_async_script(END_LOGIN) == "refused 401"
    _login_as(browser, "clinic")
    browser.find_element(By.ID, "logout").click()
    _wait(browser, lambda b: _visible(b, "login-view"))
    # The carrier again, online: the server's answer asked now shows the collection.
    _login_as(browser, "carrier")
    counted = browser.execute_async_script(COUNTER)
    _look_up(browser, bag)
    summary = browser.find_element(By.ID, "summary").text
    _to_scan(browser)
    assert "recorded on this phone since" not in summary, (summary, numbered, counted)


# What the tagging form queues on another organization's label: that organization chosen as
# the producer (docs/app.md, Scan and record).
TAGGED_FOR = """
const [code, producer, done] = arguments;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'tagged', batch: code,
                category: 'med.infectious', quantity: '1.5', unit: 'kg',
                producer_organization_id: producer, device_time: new Date().toISOString()};
  await s.enqueue(body, `tagged ${code}`, me.user_id);
  done(true);
});
"""


def _label_for(served: str, round_data: dict[str, Any], organization: int) -> str:
    """A medical label the manager issues to the organization: its code."""
    before = {
        r["code"]
        for r in _query(
            round_data["db"], "SELECT code FROM label WHERE organization_id = $1", organization
        )
    }
    issued = httpx.post(
        f"{served}/m/v1/labels",
        headers=_headers(served, "manager"),
        json={"organization_id": organization, "stream": "medical", "count": 1},
    )
    assert issued.status_code == 201, issued.text
    (code,) = {
        r["code"]
        for r in _query(
            round_data["db"], "SELECT code FROM label WHERE organization_id = $1", organization
        )
    } - before
    return str(code)


def test_a_clinics_label_the_carrier_tagged_for_the_clinic_is_not_the_rounds_load(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md: the round refuses, as the load, another organization's label and "a batch
    the scan offers no packing into (another producer's bag: a load is one the carrier tagged
    itself)". A clinic's unused label scanned online by its carrier (kept: the clinic's label)
    and tagged by the carrier for the clinic (the form chooses the clinic as producer): the
    tagging, recorded on this phone, makes the round skip every check of the load
    (`label = ... && !tagged`, the batch check needs kind 'batch'), so it takes the clinic's
    bag as the load and queued a packing into another producer's bag, refused at sync
    (transitions.refuse_on_batch; diff review of 61d59d6)."""
    clinic = round_data["clinic"]
    label = _label_for(served, round_data, clinic)
    bag = _clinic_bag(served, round_data["carrier"], "0.5")
    _as(browser, served, "carrier")
    _look_up(browser, label)  # online: the clinic's unused label, kept
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        browser.execute_async_script(TAGGED_FOR, label, clinic)
        load = _offer_as_load(browser, label)
        if load != "—":
            _type_in_round(browser, bag)
            _wait(browser, lambda b: bag in b.find_element(By.ID, "round-view").text)
            browser.find_element(By.ID, "round-plate").send_keys(PLATE)
            browser.find_element(By.ID, "round-finish").click()
            _wait(browser, lambda b: _visible(b, "scan-view"))
        else:
            browser.find_element(By.ID, "round-cancel").click()
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    browser.execute_async_script(SYNCED)
    _wait(
        browser,
        lambda b: all(
            e["status"] != "pending"
            for e in b.execute_async_script(QUEUE)
            if e["body"].get("batch") in (label, bag)
        ),
    )
    answered = [
        (e["body"]["event_type"], e["status"], (e["result"] or {}).get("error"))
        for e in browser.execute_async_script(QUEUE)
        if e["body"].get("batch") in (label, bag)
    ]
    assert all(status == "applied" for _, status, _ in answered), (load, answered)


# A slow network: the scan's request goes at once, its answer reaches the app only when the
# test lets it (window.__release()).
HOLD_SCAN = """
const [done] = arguments;
const real = window.fetch;
window.__realFetch = real;
window.__held = [];
window.__release = () => { for (const go of window.__held.splice(0)) go(); };
window.fetch = (input, init) => {
  const url = String((input && input.url) || input);
  const answer = real(input, init);
  if (!url.includes('/m/v1/scan')) return answer;
  return new Promise((resolve, reject) => window.__held.push(() => answer.then(resolve, reject)));
};
done(true);
"""

HELD = "const [done] = arguments; done(window.__held ? window.__held.length : -1);"
RELEASE = (
    "const [done] = arguments; window.fetch = window.__realFetch; window.__release(); done(true);"
)

KV = """
const [done] = arguments;
const open = indexedDB.open('wastetrack-app');
open.onsuccess = () => {
  const database = open.result;
  if (!database.objectStoreNames.contains('kv')) { done({}); database.close(); return; }
  const store = database.transaction('kv').objectStore('kv');
  const keys = store.getAllKeys();
  const values = store.getAll();
  values.onsuccess = () => {
    const out = {};
    keys.result.forEach((k, i) => { out[String(k)] = values.result[i]; });
    done(out);
    database.close();
  };
};
"""


def _scan_answered_after_log_out(
    browser: webdriver.Chrome, served: str, round_data: dict[str, Any], code: str
) -> None:
    """The carrier, with sync answers taken (the count above 0), types `code` on the scan
    screen and logs out before the server's answer reaches the phone; then it does."""
    _as(browser, served, "carrier")
    bags = [_clinic_bag(served, round_data["carrier"], "0.3") for _ in range(3)]
    for bag in bags:
        browser.execute_async_script(COLLECTED, bag, PLATE)
    browser.execute_async_script(SYNCED)
    for bag in bags:
        _applied(browser, bag, "collected")
    _to_scan(browser)
    browser.execute_async_script(HOLD_SCAN)
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(code)
    browser.find_element(By.ID, "lookup").click()
    _wait(browser, lambda b: b.execute_async_script(HELD) == 1)
    _log_out(browser)
    browser.execute_async_script(RELEASE)


def test_a_scan_answered_after_the_log_out_is_not_kept_on_the_phone(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md (Offline): Log out "deletes from the phone the tokens, the kept data, ...;
    a reference list or a vessel look-up answered after the log-out is kept for nobody". A scan
    answered after the log-out was kept all the same (keepScan wrote whoever was logged in,
    unlike keepRef), into the database the log-out had just deleted; the next user's log-in
    cleared nothing (forgetAnother finds no profile), so the carrier's label answer was there
    for whoever logged in next, and its count of sync answers above the count begun again
    (diff review of 94572af)."""
    label = _new_load_label(served, round_data)
    _scan_answered_after_log_out(browser, served, round_data, label)
    time.sleep(2)  # the answer's write, if any
    _login_as(browser, "clinic")
    kv = browser.execute_async_script(KV)
    _as(browser, served, "carrier")  # as the stories after this one expect
    scans = sorted(k for k in kv if k.startswith("scan:"))
    assert scans == [], (scans, {k: kv[k] for k in scans})


def test_a_scan_asked_before_a_log_out_is_not_kept_for_the_same_users_next_login(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md (Offline): Log out "deletes from the phone ... the kept data ...; a reference
    list, a vessel look-up or a scan answered after the log-out is kept for nobody", and
    main.js keepFor: "kept for the login that asked for it". The carrier asks a scan, logs out
    before the answer comes, logs in again as the carrier; the answer of the ended login was
    then written into the new login's emptied phone, keepFor comparing user ids only (diff
    review of 40b71fb)."""
    label = _new_load_label(served, round_data)
    _as(browser, served, "carrier")
    _to_scan(browser)
    browser.execute_async_script(HOLD_SCAN)
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(label)
    browser.find_element(By.ID, "lookup").click()
    _wait(browser, lambda b: b.execute_async_script(HELD) == 1)
    _log_out(browser)
    _login_as(browser, "carrier")
    browser.execute_async_script(RELEASE)
    time.sleep(2)  # the answer's write, if any
    kv = browser.execute_async_script(KV)
    _to_scan(browser)
    scans = sorted(k for k in kv if k.startswith("scan:"))
    assert scans == [], (scans, {k: kv[k] for k in scans})


def test_a_clinics_label_the_carrier_tagged_naming_no_producer_is_not_the_rounds_load(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """docs/app.md (Offline): a label this phone tagged is the waste of the producer the tagging
    named, else the user's own, on a label of the user's organization or that producer. A
    clinic's label, kept from an online scan, tagged offline by the carrier with no producer
    chosen: the round read its producer as the carrier and took the clinic's label as the
    load; the server refuses that tagging (batches/tagging.py) and the packing (diff review of
    40b71fb)."""
    label = _label_for(served, round_data, round_data["clinic"])
    _as(browser, served, "carrier")
    _look_up(browser, label)  # online: the clinic's unused label, kept
    _to_scan(browser)
    _network(browser, offline=True)
    try:
        browser.execute_async_script(TAGGED_FOR, label, None)
        load = _offer_as_load(browser, label)
        browser.find_element(By.ID, "round-cancel").click()
    finally:
        _network(browser, offline=False)
        _to_scan(browser)
    assert load == "—", load


ENDED = """
const [done] = arguments;
// Once any sync still running has ended, the tokens become ones the server refuses.
const modules = [import('/static/app/store.js'), import('/static/app/sync.js')];
Promise.all(modules).then(async ([s, sync]) => {
  await sync.syncNow().catch(() => null);
  await s.setKv('tokens', {access: 'revoked-access-token', refresh: 'revoked-refresh-token'});
  done();
});
"""


def test_an_ended_login_keeps_the_queue_and_its_photos_for_the_next_login(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """The server refuses to renew the login (revoked, or expired after weeks offline): the
    app asks for a log-in, keeps the record and its photo, and sends both once the same
    collector has logged in again."""
    bag = _clinic_bag(served, round_data["carrier"], "1.3")
    browser.execute_async_script(ENDED)
    sha = browser.execute_async_script(PHOTO)
    entry = browser.execute_async_script(UNPLATED, bag)
    browser.execute_async_script(
        "const [id, sha, plate, done] = arguments;"
        "import('/static/app/store.js').then(async s => { const e = await s.getEntry(id);"
        "  Object.assign(e.body, {photo_sha256: sha, vehicle_plate: plate});"
        "  await s.putEntry(e); done(); });",
        entry,
        sha,
        PLATE,
    )
    for view in ("queue-back", "back"):
        if browser.find_element(By.ID, view).is_displayed():
            browser.find_element(By.ID, view).click()
    browser.find_element(By.ID, "show-queue").click()
    browser.find_element(By.ID, "sync").click()
    _wait(browser, lambda b: _visible(b, "login-view"))
    assert "kept" in browser.find_element(By.ID, "login-error").text
    assert sha in browser.execute_async_script(PHOTOS)
    (left,) = [e for e in browser.execute_async_script(QUEUE) if e["client_event_id"] == entry]
    assert left["status"] == "pending"

    assert browser.find_element(By.ID, "username").get_attribute("value") == "carrier"
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _wait(
        browser,
        lambda b: any(
            e["client_event_id"] == entry and e["status"] == "applied"
            for e in b.execute_async_script(QUEUE)
        ),
    )
    assert sha not in browser.execute_async_script(PHOTOS)
    (row,) = _query(
        round_data["db"],
        "SELECT e.photo_sha256 FROM custody_event e JOIN batch b ON b.id = e.batch_id"
        " WHERE b.code = $1 AND e.event_type = 'collected'",
        bag,
    )
    assert row["photo_sha256"] == sha


def test_an_ended_login_is_told_in_every_tab(served: str, browser: webdriver.Chrome) -> None:
    """The tab whose renewal the server refused showed the login screen; another tab of the
    app kept showing the collector logged in, and its Sync now did nothing and said nothing
    (records made there waited unsent, no one told why). Every tab shows it."""
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    second = browser.current_window_handle
    try:
        browser.get(f"{served}/app/")
        _wait(browser, lambda b: _visible(b, "scan-view"))
        browser.switch_to.window(first)
        browser.execute_async_script(ENDED)
        # This tab's next call is refused and its renewal too (whichever tab calls first, the
        # other is told).
        browser.execute_async_script(
            "const [done] = arguments; import('/static/app/api.js').then((a) =>"
            " a.call('/m/v1/batches?limit=1').catch(() => null)).then(() => done());"
        )
        for tab in (first, second):
            browser.switch_to.window(tab)
            _wait(browser, lambda b: _visible(b, "login-view"))
            assert "登录已失效" in browser.find_element(By.ID, "login-error").text
            assert browser.find_element(By.ID, "username").get_attribute("value") == "carrier"
            assert not browser.find_element(By.ID, "logout").is_displayed()
    finally:
        browser.switch_to.window(second)
        browser.close()
        browser.switch_to.window(first)
    _log_in(browser)


THEIRS = """
const [sha, done] = arguments;
import('/static/app/store.js').then(async (s) => {
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString(), photo_sha256: sha};
  await s.enqueue(body, 'left by another, with a photo', -1);
  done();
});
"""


def test_logging_out_keeps_another_users_records_and_ends_the_login(
    served: str, browser: webdriver.Chrome
) -> None:
    """A shared phone: the collector who logs out takes away their own records and photos;
    another user's records and the photos they name stay for them. The server ends the login."""
    theirs, mine = browser.execute_async_script(PHOTO), browser.execute_async_script(PHOTO)
    browser.execute_async_script(THEIRS, theirs)
    own = {"client_event_id": str(uuid.uuid4()), "photo_sha256": mine}
    browser.execute_async_script(PLANTED, own, "batch", "rejected")
    # A sync sends this user's photos only: the server would take another's as evidence for
    # this user's organization, and the other user's record would lose it.
    synced = browser.execute_async_script(
        "const [done] = arguments; import('/static/app/sync.js')"
        ".then(async (s) => done(await s.syncNow().catch((e) => `failed: ${e}`)));"
    )
    assert not str(synced).startswith("failed"), synced
    assert browser.execute_async_script(PHOTOS) == [theirs]
    tokens = browser.execute_async_script(TOKENS, None)
    for view in ("queue-back", "back"):
        if browser.find_element(By.ID, view).is_displayed():
            browser.find_element(By.ID, view).click()
    browser.find_element(By.ID, "logout").click()
    asked = _alert(browser)
    question = asked.text
    asked.accept()
    assert "other users stay" in question
    _wait(browser, lambda b: _visible(b, "login-view"))
    names = browser.execute_async_script(
        "const done = arguments[0]; indexedDB.databases().then(d => done(d.map(x => x.name)));"
    )
    assert "wastetrack-app" in names
    left = browser.execute_async_script(QUEUE)
    assert left and all(e["user_id"] == -1 for e in left)
    assert browser.execute_async_script(PHOTOS) == [theirs]  # `mine` went with its record
    assert browser.execute_async_script(TOKENS, None) is None
    renewed = httpx.post(f"{served}/m/v1/auth/refresh", json={"refresh_token": tokens["refresh"]})
    assert renewed.status_code == 401


def _log_in(browser: webdriver.Chrome) -> None:
    """The carrier logs in again on the login screen."""
    username = browser.find_element(By.ID, "username")
    username.clear()
    username.send_keys("carrier")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))


def _to_scan(browser: webdriver.Chrome) -> None:
    for view in ("queue-back", "back"):
        if browser.find_element(By.ID, view).is_displayed():
            browser.find_element(By.ID, view).click()


def test_the_citys_zone_is_known_though_the_api_does_not_answer(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """The city's zone comes with the labels, which the service worker serves offline: they
    are read first, so an API that does not answer (a dead cell) leaves no phone in its own
    zone."""
    _log_in(browser)
    browser.execute_async_script(
        "const [done] = arguments; import('/static/app/store.js')"
        ".then(async s => { await s.setRef('labels', null); done(); });"
    )
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/m/v1/catalog/*"]})
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    try:
        browser.refresh()
        _wait(browser, lambda b: _visible(b, "scan-view"))
        _wait(
            browser,
            lambda b: (
                (b.execute_async_script(REFERENCE, "labels") or {}).get("items", {}).get("timezone")
            ),
        )
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        code = round_data["bags"][2]
        tagged = httpx.get(
            f"{served}/m/v1/batches/{code}", headers=_headers(served, "clinic")
        ).json()["tagged_at"]
        shown = "return new Date(arguments[0]).toLocaleString('zh-CN', arguments[1])"
        city = browser.execute_script(shown, tagged, {"timeZone": "Asia/Shanghai"})
        _look_up(browser, code)
        assert city in browser.find_element(By.ID, "summary").text
        browser.find_element(By.ID, "back").click()
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


THEIRS_REFUSED = """
const [done] = arguments;
import('/static/app/store.js').then(async (s) => {
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString()};
  const entry = await s.enqueue(body, 'refused, another user', -1);
  entry.status = 'rejected';
  entry.result = {status: 'rejected', error: {field: 'batch', detail: 'planted refusal'}};
  await s.putEntry(entry);
  done(body.client_event_id);
});
"""

DROP = """
const [ids, done] = arguments;
import('/static/app/store.js').then(async (s) => {
  for (const id of ids) await s.dropEntry(id);
  done();
});
"""


def test_the_queue_offers_only_the_users_own_records(browser: webdriver.Chrome) -> None:
    """A shared phone: the queue lists, corrects and discards the logged-in user's records
    only; another user's refused record waits for them, counted in a line of its own."""
    theirs = browser.execute_async_script(THEIRS_REFUSED)
    own = {"client_event_id": str(uuid.uuid4()), "event_type": "collected", "batch": "ABCDEFGH2"}
    browser.execute_async_script(PLANTED, own, "batch", "rejected")
    try:
        _to_scan(browser)
        browser.find_element(By.ID, "show-queue").click()
        _find(browser, f"li[data-id='{own['client_event_id']}'] button.fix")
        assert not browser.find_elements(By.CSS_SELECTOR, f"li[data-id='{theirs}']")
        assert "records of other users" in browser.find_element(By.ID, "queue-others").text
        browser.find_element(By.ID, "queue-back").click()
    finally:
        browser.execute_async_script(DROP, [theirs, own["client_event_id"]])


def test_a_conflicting_record_can_only_be_discarded(browser: webdriver.Chrome) -> None:
    """`conflict`: the server keeps other content under the record's id, so it cannot be
    corrected and sent again under it; the queue offers to discard it, and nothing else."""
    body = {"client_event_id": str(uuid.uuid4()), "event_type": "collected", "batch": "ABCDEFGH2"}
    browser.execute_async_script(PLANTED, body, "client_event_id", "conflict")
    try:
        _to_scan(browser)
        browser.find_element(By.ID, "show-queue").click()
        item = f"li[data-id='{body['client_event_id']}']"
        discard = _find(browser, f"{item} button.discard")
        assert not browser.find_elements(By.CSS_SELECTOR, f"{item} button.fix")
        discard.click()
        _wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, item))
        queued = [e["client_event_id"] for e in browser.execute_async_script(QUEUE)]
        assert body["client_event_id"] not in queued
        browser.find_element(By.ID, "queue-back").click()
    finally:
        browser.execute_async_script(DROP, [body["client_event_id"]])


LATE_ANSWER = """
const [done] = arguments;
const real = window.fetch;
let release;
const gate = new Promise((resolve) => { release = resolve; });
let answered = false;
// The server has answered the sync, but the answer reaches the queue only after the record
// has been corrected meanwhile (in another tab, or here while the request was on its way).
window.fetch = async (url, options) => {
  if (!String(url).endsWith('/m/v1/sync')) return real(url, options);
  const answer = await real(url, options);
  answered = true;
  await gate;
  return answer;
};
Promise.all([import('/static/app/store.js'), import('/static/app/api.js'),
             import('/static/app/sync.js')]).then(async ([s, a, sync]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString()};
  await s.enqueue(body, 'answered late', me.user_id);
  const syncing = sync.syncNow();
  while (!answered) await new Promise((t) => setTimeout(t, 20));
  const corrected = await s.getEntry(body.client_event_id);
  corrected.body = {...body, batch: 'ABCDEFGH3'};
  await s.correctEntry(corrected);
  release();
  await syncing;
  window.fetch = real;
  const kept = await s.getEntry(body.client_event_id);
  await s.dropEntry(body.client_event_id);
  done(kept);
});
"""


def test_a_late_answer_does_not_undo_a_correction(browser: webdriver.Chrome) -> None:
    """The answer is about the body sent: a correction saved while it was on its way stays
    queued, to be sent by the next sync, and is not marked with the old body's refusal."""
    kept = browser.execute_async_script(LATE_ANSWER)
    assert kept["body"]["batch"] == "ABCDEFGH3"
    assert (kept["status"], kept["result"], kept["revision"]) == ("pending", None, 1)


STALLED_SYNC = """
const [done] = arguments;
const real = window.fetch;
// An older phone's browser: no AbortSignal.any nor AbortSignal.timeout.
const [any, timeout] = [AbortSignal.any, AbortSignal.timeout];
AbortSignal.any = undefined;
AbortSignal.timeout = undefined;
// A sync request the network never answers (a dead cell that keeps the connection open).
window.fetch = (url, options) => (String(url).endsWith('/m/v1/sync')
  ? new Promise((_, reject) => options.signal.addEventListener(
      'abort', () => reject(options.signal.reason)))
  : real(url, options));
Promise.all([import('/static/app/store.js'), import('/static/app/api.js'),
             import('/static/app/sync.js')]).then(async ([s, a, sync]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString()};
  await s.enqueue(body, 'stalled', me.user_id);
  const limit = a.limits.requestMs;
  a.limits.requestMs = 1000;
  const started = performance.now();
  const answer = await Promise.race([
    sync.syncNow(), new Promise((t) => setTimeout(() => t('hung'), 10000))]);
  const waited = performance.now() - started;
  if (answer === 'hung') await sync.stopSync();
  a.limits.requestMs = limit;
  window.fetch = real;
  const next = await sync.syncNow();  // the network answers again
  [AbortSignal.any, AbortSignal.timeout] = [any, timeout];
  const entry = await s.getEntry(body.client_event_id);
  await s.dropEntry(body.client_event_id);
  done({answer, waited, next, status: entry.status});
});
"""


def test_a_sync_the_network_never_answers_is_given_up(browser: webdriver.Chrome) -> None:
    """A stalled request counts as offline once its time is up (shortened here to 1 s), so
    the app's next sync can go; otherwise every later sync would wait on it for good. Also
    in a browser without AbortSignal.any or AbortSignal.timeout (an older phone's)."""
    found = browser.execute_async_script(STALLED_SYNC)
    assert found["answer"] is None, found
    assert 1000 <= found["waited"] < 10000
    assert found["next"]["sent"] >= 1 and found["status"] != "pending"


NO_LABELS = """
window.fetch = ((real) => (url, options) => (String(url).includes('/app/labels.json')
  ? Promise.reject(new TypeError('Failed to fetch')) : real(url, options)))(window.fetch);
"""


def test_a_refused_time_is_not_corrected_in_the_phones_own_zone(browser: webdriver.Chrome) -> None:
    """Until the phone has read the city's zone once, a refused device_time is shown (in UTC)
    but not offered for correction: typed in the phone's own zone, it would be sent wrong."""
    body = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": "collected",
        "batch": "ABCDEFGH2",
        "device_time": "2001-02-03T04:05:06.000Z",
    }
    browser.execute_async_script(
        "const [done] = arguments; import('/static/app/store.js')"
        ".then(async s => { await s.setRef('labels', null); done(); });"
    )
    added = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NO_LABELS})
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    try:
        browser.refresh()
        _wait(browser, lambda b: _visible(b, "scan-view"))
        _correct(browser, body, "device_time")
        shown = _find(browser, "#f-edit-device_time")
        assert shown.get_attribute("type") != "datetime-local"
        assert shown.get_attribute("value") == body["device_time"]
        assert "time zone is not known" in browser.find_element(By.ID, "no-zone").text
        browser.find_element(By.ID, "queue-back").click()
    finally:
        browser.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
        )
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})
        browser.execute_async_script(DROP, [body["client_event_id"]])
    browser.refresh()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    _wait(browser, lambda b: (b.execute_async_script(REFERENCE, "labels") or {}).get("items"))


def test_a_record_is_of_the_scan_it_was_made_on(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """Reading the position takes up to three seconds: a tap on Back and another scan
    meanwhile neither moves the record to the new bag nor closes the new bag's screen."""
    first, second = (_clinic_bag(served, round_data["carrier"], "1.1") for _ in range(2))
    _to_scan(browser)
    # A phone slow to find its position: the app gives up after three seconds.
    browser.execute_script("navigator.geolocation.getCurrentPosition = () => {};")
    try:
        _look_up(browser, first)
        browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='collected']").click()
        _on(browser, "#f-vehicle_plate", lambda e: e.send_keys(PLATE))
        browser.find_element(By.ID, "save").click()
        browser.find_element(By.ID, "back").click()
        _look_up(browser, second)

        def collected(b: webdriver.Chrome) -> list[dict[str, Any]]:
            return [
                e
                for e in b.execute_async_script(QUEUE)
                if e["body"].get("event_type") == "collected"
                and e["body"].get("batch") in (first, second)
            ]

        (made,) = _wait(browser, collected)
        assert made["body"]["batch"] == first
        assert made["body"]["vehicle_plate"] == PLATE
        time.sleep(0.5)  # the screen the record would close
        assert _visible(browser, "result-view")
        assert second in browser.find_element(By.ID, "summary").text
        browser.find_element(By.ID, "back").click()
    finally:
        browser.execute_script("delete navigator.geolocation.getCurrentPosition;")
    _wait(browser, lambda b: all(e["status"] != "pending" for e in collected(b)))


def test_a_round_is_the_one_finished(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """Finishing a round reads the position (up to three seconds) before it queues: a new
    round started meanwhile takes nothing from it, and the finished one is queued whole."""
    carrier = round_data["carrier"]
    bag = _clinic_bag(served, carrier, "0.9")
    load = _new_load_label(served, round_data)
    _to_scan(browser)
    browser.execute_script("navigator.geolocation.getCurrentPosition = () => {};")
    try:
        _start_round(browser, load, bag)
        _on(browser, "#f-load_category option[value='med.infectious']", lambda e: e.click())
        browser.find_element(By.ID, "f-load_quantity").send_keys("0.9")
        browser.find_element(By.ID, "round-plate").send_keys(PLATE)
        browser.find_element(By.ID, "round-finish").click()
        browser.find_element(By.ID, "round-cancel").click()
        browser.find_element(By.ID, "round-start").click()

        def queued(b: webdriver.Chrome) -> list[dict[str, Any]]:
            ours = (load, bag)
            return [e for e in b.execute_async_script(QUEUE) if e["body"].get("batch") in ours]

        _wait(browser, lambda b: len(queued(b)) == 3)
        made = {e["body"]["event_type"]: e["body"] for e in queued(browser)}
        assert made["aggregated"]["children"] == [bag]
        assert made["collected"]["vehicle_plate"] == PLATE
        assert made["tagged"]["category"] == "med.infectious"
        time.sleep(0.5)  # the screen the round would close
        assert _visible(browser, "round-view")  # the new round stays
        assert browser.find_element(By.ID, "round-load").text == "—"
        browser.find_element(By.ID, "round-cancel").click()
    finally:
        browser.execute_script("delete navigator.geolocation.getCurrentPosition;")
    _wait(browser, lambda b: all(e["status"] != "pending" for e in queued(b)))


FAILING_SYNC = """
const [done] = arguments;
const real = window.fetch;
window.syncFails = true;
// A cell that is dead while the phone says online: every sync request fails to connect.
window.fetch = async (url, options) => {
  const dead = String(url).endsWith('/m/v1/sync') && window.syncFails;
  if (dead) throw new TypeError('Failed to fetch');
  return real(url, options);
};
window.realFetch = real;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString()};
  await s.enqueue(body, 'retried', me.user_id);
  done(body.client_event_id);
});
"""


def test_a_failed_sync_is_tried_again(browser: webdriver.Chrome) -> None:
    """No `online` event comes when a dead cell recovers or a busy server answers again: while
    the user's records wait, the app tries again on a timer (30 s first), and at once when the
    collector comes back to the app."""
    entry = browser.execute_async_script(FAILING_SYNC)

    def answered(b: webdriver.Chrome, entry_id: str) -> bool:
        return any(
            e["client_event_id"] == entry_id and e["status"] != "pending"
            for e in b.execute_async_script(QUEUE)
        )

    try:
        _to_scan(browser)
        browser.find_element(By.ID, "show-queue").click()
        browser.find_element(By.ID, "sync").click()
        _wait(browser, lambda b: "offline" in b.find_element(By.ID, "sync-status").text)
        browser.execute_script("window.syncFails = false;")
        assert not answered(browser, entry)
        _wait(browser, lambda b: answered(b, entry), timeout=75)
        browser.find_element(By.ID, "queue-back").click()
        # Back to the app: a record waiting is sent at once.
        later = browser.execute_async_script(UNPLATED, "ABCDEFGH2")
        time.sleep(1)
        assert not answered(browser, later)
        browser.execute_script("document.dispatchEvent(new Event('visibilitychange'));")
        _wait(browser, lambda b: answered(b, later))
        browser.execute_async_script(DROP, [entry, later])
    finally:
        browser.execute_script("window.fetch = window.realFetch;")


REFRESHED_AFTER_LOG_OUT = """
const [password, done] = arguments;
const real = window.fetch;
let release;
const gate = new Promise((resolve) => { release = resolve; });
let asked = false;
// The server renews the login, but its answer arrives after the user has logged out.
window.fetch = async (url, options) => {
  if (!String(url).endsWith('/m/v1/auth/refresh')) return real(url, options);
  asked = true;
  const answer = await real(url, options);
  await gate;
  return answer;
};
Promise.all([import('/static/app/store.js'), import('/static/app/api.js')]).then(async ([s, a]) => {
  const tokens = await s.getKv('tokens');
  await s.setKv('tokens', {...tokens, access: 'expired-access-token'});
  const calling = a.call('/m/v1/vehicles').then(() => 'answered', (e) => `refused ${e.status}`);
  while (!asked) await new Promise((t) => setTimeout(t, 20));
  await s.setKv('tokens', null);  // log-out meanwhile
  release();
  const answer = await calling;
  const left = await s.getKv('tokens');
  window.fetch = real;
  await a.logIn('carrier', password);  // as before, for the tests after this one
  done({answer, left});
});
"""


def test_a_renewal_answered_after_log_out_keeps_no_tokens(browser: webdriver.Chrome) -> None:
    """The renewed tokens would log the phone back in after log-out: they are kept only while
    the refresh token sent for them is still the phone's."""
    result = browser.execute_async_script(REFRESHED_AFTER_LOG_OUT, PASSWORD)
    assert result["left"] is None, result
    assert result["answer"] == "refused 401"


SECOND_TAB = """
const [done] = arguments;
// Another tab of the app: a same-origin document with its own copy of the app's modules.
const frame = document.createElement('iframe');
frame.id = 'second-tab';
frame.onload = () => {
  const modules = frame.contentWindow.eval(
    "Promise.all([import('/static/app/store.js'), import('/static/app/api.js')])");
  frame.contentWindow.modules = modules;
  modules.then(async ([s]) => { await s.entries(); done(true); }, (e) => done(String(e)));
};
frame.src = '/static/app/app.css';
document.body.append(frame);
"""

BOTH_TABS_RENEW = """
const [done] = arguments;
const frame = document.getElementById('second-tab');
const wait = (ms) => new Promise((t) => setTimeout(t, ms));
let refused = 0;
let renewals = 0;
// Both tabs' calls are refused (their access token has expired) before either renews it.
for (const w of [window, frame.contentWindow]) {
  const real = w.fetch;
  let first = true;
  w.fetch = async (url, options) => {
    if (String(url).endsWith('/m/v1/auth/refresh')) renewals += 1;
    const answer = await real(url, options);
    if (first && String(url).endsWith('/m/v1/vehicles')) {
      first = false;
      refused += 1;
      while (refused < 2) await wait(10);
    }
    return answer;
  };
  w.realFetch = real;
}
Promise.all([import('/static/app/store.js'), import('/static/app/api.js'),
             frame.contentWindow.modules]).then(async ([s, a, [, other]]) => {
  const tokens = await s.getKv('tokens');
  await s.setKv('tokens', {...tokens, access: 'expired-access-token'});
  const answers = await Promise.all([a.call('/m/v1/vehicles'), other.call('/m/v1/vehicles')]
    .map((p) => p.then(() => 'answered', (e) => `refused ${e.status}: ${e.message}`)));
  for (const w of [window, frame.contentWindow]) w.fetch = w.realFetch;
  const after = await s.getKv('tokens');
  frame.remove();
  done({answers, renewals, renewed: Boolean(after) && after.refresh !== tokens.refresh});
});
"""


def test_two_tabs_renew_the_login_once(browser: webdriver.Chrome) -> None:
    """Two tabs whose access token expired together renew it once, the second using what the
    first got: a refresh token presented twice makes the server revoke the whole login as
    stolen (past a short grace)."""
    assert browser.execute_async_script(SECOND_TAB) is True
    result = browser.execute_async_script(BOTH_TABS_RENEW)
    assert result["answers"] == ["answered", "answered"], result
    assert result["renewals"] == 1, result
    assert result["renewed"]


HELD_SYNC = """
const [done] = arguments;
const real = window.fetch;
let asked = false;
// A sync request slow to go (a weak cell); it goes when released, unless aborted first.
window.fetch = async (url, options) => {
  if (!String(url).endsWith('/m/v1/sync')) return real(url, options);
  asked = true;
  const signal = options.signal;
  await Promise.race([
    new Promise((resolve) => { window.releaseSync = resolve; }),
    new Promise((resolve) => signal && signal.addEventListener('abort', resolve)),
  ]);
  return real(url, options);
};
window.realFetch = real;
Promise.all([import('/static/app/store.js'), import('/static/app/api.js'),
             import('/static/app/sync.js')]).then(async ([s, a, sync]) => {
  const me = await a.profile();
  const body = {client_event_id: crypto.randomUUID(), event_type: 'collected',
                batch: 'ABCDEFGH2', device_time: new Date().toISOString()};
  await s.enqueue(body, 'held', me.user_id);
  window.heldSync = sync.syncNow().catch(() => null);
  while (!asked) await new Promise((t) => setTimeout(t, 20));
  done(body.client_event_id);
});
"""

RELEASED = """
const [done] = arguments;
if (window.releaseSync) window.releaseSync();
Promise.resolve(window.heldSync).then(async () => {
  window.fetch = window.realFetch;
  await new Promise((t) => setTimeout(t, 500));
  const s = await import('/static/app/store.js');
  done((await s.entries()).map((e) => e.client_event_id));
});
"""


def test_logging_out_during_a_sync_leaves_nothing_behind(browser: webdriver.Chrome) -> None:
    """Log-out stops the sync running: an answer arriving afterwards does not bring back the
    records log-out deleted."""
    entry = browser.execute_async_script(HELD_SYNC)
    _to_scan(browser)
    browser.find_element(By.ID, "logout").click()
    _alert(browser).accept()
    _wait(browser, lambda b: _visible(b, "login-view"))
    assert entry not in browser.execute_async_script(RELEASED)


def test_logging_out_while_another_tab_is_open(browser: webdriver.Chrome) -> None:
    """Log-out deletes the database once no tab holds it: another tab lets go at once (log-out
    does not hang) and opens it again on its next use."""
    browser.execute_script("document.getElementById('sync-status').textContent = '';")
    _log_in(browser)
    _wait(
        browser,
        lambda b: "synced" in b.find_element(By.ID, "sync-status").get_attribute("textContent"),
    )
    # The records other users left in the tests before: with none, log-out deletes it all.
    left = [e["client_event_id"] for e in browser.execute_async_script(QUEUE)]
    browser.execute_async_script(DROP, left)
    assert browser.execute_async_script(SECOND_TAB) is True
    browser.find_element(By.ID, "logout").click()
    _wait(browser, lambda b: _visible(b, "login-view"))
    names = browser.execute_async_script(
        "const done = arguments[0]; indexedDB.databases().then(d => done(d.map(x => x.name)));"
    )
    assert "wastetrack-app" not in names
    # The other tab opens it again to record: kept, not lost to a delete that ran late.
    kept = browser.execute_async_script(
        "const [done] = arguments; const w = document.getElementById('second-tab').contentWindow;"
        "w.modules.then(async ([s]) => {"
        "  const body = {client_event_id: crypto.randomUUID()};"
        "  await s.enqueue(body, 'second tab', -1);"
        "  const kept = (await s.entries()).map((e) => e.client_event_id);"
        "  await s.dropEntry(body.client_event_id);"
        "  document.getElementById('second-tab').remove();"
        "  done(kept.includes(body.client_event_id)); });"
    )
    assert kept is True


REINSTALL = """
const [done] = arguments;
(async () => {
  // A new version of the worker (another script URL counts as one): it installs afresh.
  for (const name of await caches.keys()) await caches.delete(name);
  const registration = await navigator.serviceWorker.register(
    `/app/sw.js?version=${Date.now()}`, {scope: '/app/'});
  const worker = registration.installing || registration.waiting || registration.active;
  while (worker.state !== 'activated') {
    await new Promise((resolve) => worker.addEventListener('statechange', resolve, {once: true}));
  }
  const cached = await caches.match('/static/app/app.css');
  done(cached ? await cached.text() : null);
})().catch((error) => done(`failed: ${error}`));
"""


def test_the_worker_installs_the_apps_files_from_the_server(browser: webdriver.Chrome) -> None:
    """A new version of the app is installed from the server, never from the browser's HTTP
    cache: an old module cached there beside a new one would fail to link offline."""
    css = Path(__file__).resolve().parents[2] / "mobile_api" / "static" / "app" / "app.css"
    original = css.read_bytes()
    # The browser has the stylesheet in its HTTP cache (heuristically fresh: the file is old).
    browser.execute_async_script(
        "const [done] = arguments; fetch('/static/app/app.css').then((r) => r.text()).then(done);"
    )
    marker = f"/* {uuid.uuid4()} */\n"
    try:
        css.write_bytes(original + marker.encode())
        installed = browser.execute_async_script(REINSTALL)
    finally:
        css.write_bytes(original)
    assert marker in str(installed), installed


# ---- the forms record only what the record carries, and nothing made up --------------------
# These switch users (a collector, a port's operator, the carrier): they come last.


def _log_out(browser: webdriver.Chrome) -> None:
    """Tap Log out, saying yes where the app asks first (records of the user wait), until the
    login screen shows."""
    browser.find_element(By.ID, "logout").click()

    def out(b: webdriver.Chrome) -> bool:
        try:
            b.switch_to.alert.accept()
        except NoAlertPresentException:
            pass
        try:
            return _visible(b, "login-view")
        except UnexpectedAlertPresentException:
            # The question came as the screen was looked at, and the driver dismissed it
            # (which keeps the user logged in): tap again — unless the question is back
            # already, which the next look accepts (a fresh-clone CI run met it so).
            with contextlib.suppress(UnexpectedAlertPresentException):
                b.find_element(By.ID, "logout").click()
            return False

    _wait(browser, out)


def _as(browser: webdriver.Chrome, served: str, username: str) -> None:
    """`username` logged in on the scan screen (whoever was before logged out, their records
    discarded with them)."""
    browser.get(f"{served}/app/")
    _wait(browser, lambda b: _visible(b, "login-view") or _visible(b, "scan-view"))
    if _visible(browser, "scan-view"):
        if browser.find_element(By.ID, "who").text == username:
            return
        _log_out(browser)
    typed = browser.find_element(By.ID, "username")
    typed.clear()
    typed.send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))


def _collection_point(served: str, name: str) -> str:
    """A collection point (投放点) with its plate in the collector's village: its code."""
    admin = _headers(served, "admin")
    regions = httpx.get(f"{served}/admin/v1/regions", headers=admin).json()
    village = next(r for r in regions if r["name"] == "北山社区")
    org = httpx.post(
        f"{served}/admin/v1/organizations",
        headers=admin,
        json={"name": f"{name}单位", "kind": "collection_point", "region_id": village["id"]},
    )
    assert org.status_code == 201, org.text
    site = httpx.post(
        f"{served}/admin/v1/sites",
        headers=admin,
        json={
            "organization_id": org.json()["id"],
            "name": name,
            "region_id": village["id"],
            "latitude": 37.1652,
            "longitude": 122.4867,
        },
    )
    assert site.status_code == 201, site.text
    return str(site.json()["code"])


def _open_plate(browser: webdriver.Chrome, code: str, field: str) -> None:
    """A plate's code typed on the scan screen: its form, once it shows `field`."""
    _to_scan(browser)
    typed = browser.find_element(By.ID, "typed")
    typed.clear()
    typed.send_keys(code)
    browser.find_element(By.ID, "lookup").click()
    _wait(browser, lambda b: _visible(b, "action-form") and b.find_elements(By.ID, f"f-{field}"))


def _photo_file(tmp_path: Path, name: str, colour: tuple[int, int, int]) -> str:
    path = tmp_path / name
    Image.new("RGB", (300, 200), colour).save(path)
    return str(path)


def _kept_once_shown(browser: webdriver.Chrome, before: list[str]) -> str:
    """The photo the form kept, once its preview shows."""
    _wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "img.photo-preview").is_displayed())
    (sha,) = set(browser.execute_async_script(PHOTOS)) - set(before)
    return str(sha)


def _recorded(browser: webdriver.Chrome, key: str, code: str, count: int) -> dict[str, Any]:
    """The last of `count` records the queue holds naming `code` in `key`, once answered."""

    def answered(b: webdriver.Chrome) -> dict[str, Any] | None:
        made = [e for e in b.execute_async_script(QUEUE) if e["body"].get(key) == code]
        done = len(made) == count and all(e["status"] != "pending" for e in made)
        return dict(max(made, key=lambda e: e["seq"])) if done else None

    found: dict[str, Any] = _wait(browser, answered, timeout=30)
    return found


def test_a_pickups_photo_is_its_sorting_checks(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any], tmp_path: Path
) -> None:
    """A pickup carries a photo only in its sorting check: the photo is offered once a check is
    chosen, and goes in it. One chosen before the check was set back to none is let go: the
    pickup does not name it, and the sync never uploads it attached to nothing."""
    from selenium.webdriver.support.ui import Select

    code = _collection_point(served, "东山投放点")
    _as(browser, served, "collector")
    _open_plate(browser, code, "weight_kg")
    assert not browser.find_element(By.ID, "f-photo").is_displayed()  # no check, no photo
    Select(browser.find_element(By.ID, "f-quality_passed")).select_by_value("no")
    assert browser.find_element(By.ID, "f-photo").is_displayed()
    browser.find_element(By.ID, "f-weight_kg").send_keys("1.5")
    browser.find_element(By.ID, "f-contamination_share").send_keys("0.2")
    before = browser.execute_async_script(PHOTOS)
    browser.find_element(By.ID, "f-photo").send_keys(_photo_file(tmp_path, "a.jpg", (200, 30, 30)))
    checked = _kept_once_shown(browser, before)
    browser.find_element(By.ID, "save").click()
    entry = _recorded(browser, "site", code, 1)
    assert entry["status"] == "applied", entry
    assert entry["body"]["quality"] == {
        "passed": False,
        "contamination_share": "0.2",
        "photo_sha256": checked,
    }
    (row,) = _query(
        round_data["db"],
        "SELECT photo_sha256 FROM pickup WHERE client_event_id = $1",
        uuid.UUID(entry["client_event_id"]),
    )
    assert row["photo_sha256"] == checked

    # A photo chosen with a check, the check then set back to none: let go with it.
    _open_plate(browser, code, "weight_kg")
    check = Select(browser.find_element(By.ID, "f-quality_passed"))
    check.select_by_value("yes")
    before = browser.execute_async_script(PHOTOS)
    browser.find_element(By.ID, "f-photo").send_keys(_photo_file(tmp_path, "b.jpg", (30, 200, 30)))
    dropped = _kept_once_shown(browser, before)
    check.select_by_value("")
    assert not browser.find_element(By.ID, "f-photo").is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, "img.photo-preview").is_displayed()
    browser.find_element(By.ID, "f-weight_kg").send_keys("2")
    browser.find_element(By.ID, "save").click()
    entry = _recorded(browser, "site", code, 2)
    assert entry["status"] == "applied", entry
    assert "quality" not in entry["body"] and dropped not in json.dumps(entry["body"])
    uploaded = _query(
        round_data["db"], "SELECT sha256 FROM photo WHERE sha256 = ANY($1::text[])", [dropped]
    )
    assert uploaded == []


def test_a_photo_no_record_names_is_never_uploaded(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A photo kept on a form left without recording is evidence of nothing: a sync does not
    upload it (the server would keep it for the organization, attached to nothing)."""
    _as(browser, served, "collector")
    sha = browser.execute_async_script(PHOTO)
    try:
        synced = browser.execute_async_script(
            "const [done] = arguments; import('/static/app/sync.js')"
            ".then(async (s) => done(await s.syncNow().catch((e) => `failed: ${e}`)));"
        )
        assert isinstance(synced, dict), synced
        assert _query(round_data["db"], "SELECT sha256 FROM photo WHERE sha256 = $1", sha) == []
        assert sha in browser.execute_async_script(PHOTOS)  # it goes at log-out
    finally:
        browser.execute_async_script(DROP_PHOTO, sha)


def test_a_failed_check_needs_its_contamination_share(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A failed sorting check with no share typed is not recorded as a share of 0: refused on
    the spot, naming the field, and nothing is recorded."""
    from selenium.webdriver.support.ui import Select

    code = _collection_point(served, "西山投放点")
    _as(browser, served, "collector")
    _open_plate(browser, code, "weight_kg")
    browser.find_element(By.ID, "f-weight_kg").send_keys("2")
    Select(browser.find_element(By.ID, "f-quality_passed")).select_by_value("no")
    browser.find_element(By.ID, "save").click()
    _wait(browser, lambda b: "Contamination share" in b.find_element(By.ID, "form-error").text)
    time.sleep(0.5)  # what a record would take to be queued
    assert [e for e in browser.execute_async_script(QUEUE) if e["body"].get("site") == code] == []


def _berth(served: str, admin: dict[str, str], port: int, name: str) -> str:
    """The port registered (its grade and place) with a berth of this name: the plate's code."""
    registered = httpx.put(
        f"{served}/admin/v1/ports/{port}",
        headers=admin,
        json={"grade": "一级", "latitude": 36.9, "longitude": 122.4},
    )
    assert registered.status_code == 200, registered.text
    berth = httpx.post(
        f"{served}/admin/v1/ports/{port}/berths",
        headers=admin,
        json={"name": name, "latitude": 36.9, "longitude": 122.4},
    )
    assert berth.status_code == 201, berth.text
    return str(berth.json()["code"])


def _other_port(served: str, admin: dict[str, str], name: str) -> int:
    """A second fishing port, in 崖头街道: the home of visiting vessels."""
    regions = httpx.get(f"{served}/admin/v1/regions", headers=admin).json()
    town = next(r for r in regions if r["name"] == "崖头街道")
    made = httpx.post(
        f"{served}/admin/v1/organizations",
        headers=admin,
        json={"name": name, "kind": "fishing_port", "region_id": town["id"]},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _vessel(served: str, admin: dict[str, str], name: str, number: str, home: int) -> int:
    """A vessel registered at its home port: its id."""
    made = httpx.post(
        f"{served}/admin/v1/vessels",
        headers=admin,
        json={
            "name": name,
            "registration_number": number,
            "gross_tonnage": "60",
            "home_port_id": home,
        },
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def test_the_delivery_form_offers_no_photo(
    served: str, browser: webdriver.Chrome, small_world: dict[str, Any]
) -> None:
    """A delivery carries no photo: its form offers none (one chosen there was kept on the
    phone, named by no record, and uploaded attached to nothing)."""
    from selenium.webdriver.support.ui import Select

    admin = _headers(served, "admin")
    port = small_world["orgs"]["port"]
    code = _berth(served, admin, port, "1号泊位")
    vessel = _vessel(served, admin, "鲁荣渔1号", "R-0001", port)
    _as(browser, served, "port")
    _wait(browser, lambda b: (b.execute_async_script(REFERENCE, "vessels") or {}).get("items"))
    _open_plate(browser, code, "volume_m3")
    assert browser.find_elements(By.ID, "f-photo") == []
    Select(browser.find_element(By.ID, "f-vessel_id")).select_by_value(str(vessel))
    browser.find_element(By.ID, "f-volume_m3").send_keys("1.2")
    browser.find_element(By.ID, "save").click()
    entry = _recorded(browser, "berth", code, 1)
    assert entry["status"] == "applied", entry


def test_a_berth_plate_kept_on_the_phone_opens_the_delivery_form_offline(
    served: str, browser: webdriver.Chrome, small_world: dict[str, Any]
) -> None:
    """docs/app.md: a berth plate opens the delivery form, and the port operator's berths are
    kept on the phone for the forms. Offline, a berth of the list never scanned on this phone
    was an unknown code offering batch actions; it opens the delivery form."""
    admin = _headers(served, "admin")
    code = _berth(served, admin, small_world["orgs"]["port"], "7号泊位")
    _as(browser, served, "port")

    def kept(b: webdriver.Chrome) -> list[str]:
        items = (b.execute_async_script(REFERENCE, "berths") or {}).get("items") or []
        return [x["code"] for x in items]

    _wait(browser, lambda b: code in kept(b))
    _network(browser, offline=True)
    try:
        _to_scan(browser)
        typed = browser.find_element(By.ID, "typed")
        typed.clear()
        typed.send_keys(f"{code[:4]}-{code[4:]}".lower())  # as typed from the plate
        browser.find_element(By.ID, "lookup").click()
        _wait(browser, lambda b: _visible(b, "result-view"))
        offered = [
            b.get_attribute("data-action")
            for b in browser.find_elements(By.CSS_SELECTOR, "#actions button")
        ]
        assert offered == ["delivery"], browser.find_element(By.ID, "summary").text
        _wait(browser, lambda b: b.find_elements(By.ID, "f-vessel_id"))
    finally:
        _network(browser, offline=False)
        _to_scan(browser)


# (a weak cell): the user logs out meanwhile.
HELD_LOOKUP = """
const [done] = arguments;
const real = window.fetch;
window.lookupAsked = false;
window.fetch = async (url, options) => {
  const answer = await real(url, options);
  if (String(url).includes('registration_number=')) {
    window.lookupAsked = true;
    await new Promise((resolve) => { window.releaseLookup = resolve; });
  }
  return answer;
};
window.realFetch = real;
done(true);
"""

RELEASE_LOOKUP = """
const [done] = arguments;
window.releaseLookup();
window.fetch = window.realFetch;
setTimeout(async () => {
  const s = await import('/static/app/store.js');
  done((await s.getRef('vessels')) || null);
}, 1000);
"""


def test_a_look_up_answered_after_log_out_keeps_no_vessel_for_the_next_user(
    served: str, browser: webdriver.Chrome, small_world: dict[str, Any]
) -> None:
    """docs/app.md: log-out "deletes from the phone the tokens, the kept data"; another user
    "starts as after a log-out". A vessel the port operator looked up, whose answer arrives
    after the log-out, is not kept: a reference is kept only for the login that asked
    (`keepRef`), so the next user — a clinic that may not read the visiting vessel — is never
    offered it."""
    admin = _headers(served, "admin")
    port = small_world["orgs"]["port"]
    code = _berth(served, admin, port, "9号泊位")
    number = "R-LATE-9"
    _vessel(served, admin, "鲁远渔9号", number, _other_port(served, admin, "远方渔港"))
    clinic_reads = httpx.get(f"{served}/admin/v1/vessels", headers=_headers(served, "clinic"))
    assert number not in clinic_reads.text  # the clinic may not read the visiting vessel

    _as(browser, served, "port")
    _open_plate(browser, code, "vessel_id")
    assert browser.execute_async_script(HELD_LOOKUP) is True
    browser.find_element(By.ID, "f-registration_number").send_keys(number)
    browser.find_element(By.ID, "vessel-lookup").click()
    _wait(browser, lambda b: b.execute_script("return window.lookupAsked"))
    browser.find_element(By.ID, "back").click()
    _log_out(browser)
    left = browser.execute_async_script(RELEASE_LOOKUP)
    _as(browser, served, "clinic")
    # The clinic's own reference refresh has run.
    _wait(browser, lambda b: (b.execute_async_script(REFERENCE, "vessels") or {}).get("fetched_at"))
    kept = browser.execute_async_script(REFERENCE, "vessels") or {}
    numbers = [v["registration_number"] for v in kept.get("items") or []]
    assert number not in numbers, (left, kept)


def test_a_visiting_vessels_delivery_is_recorded_by_its_registration_number(
    served: str,
    browser: webdriver.Chrome,
    small_world: dict[str, Any],
    round_data: dict[str, Any],
) -> None:
    """A port receives every vessel's waste: the delivery form offers the port's own vessels
    with none chosen (Record refused on the form until one is, nothing queued), and any other
    vessel by its registration number, looked up online and then kept on the phone. The
    visitor's delivery is recorded and synced under the visitor, not the port's own vessel."""
    from selenium.webdriver.support.ui import Select

    admin = _headers(served, "admin")
    port = small_world["orgs"]["port"]
    code = _berth(served, admin, port, "3号泊位")
    _vessel(served, admin, "鲁荣渔3号", "R-0003", port)
    visitor = _vessel(
        served, admin, "鲁石渔7号", "R-VISIT-7", _other_port(served, admin, "石岛渔港")
    )

    def kept(b: webdriver.Chrome) -> list[str]:
        items = (b.execute_async_script(REFERENCE, "vessels") or {}).get("items") or []
        return [v["registration_number"] for v in items]

    _as(browser, served, "port")
    _wait(browser, lambda b: "R-0003" in kept(b))
    assert "R-VISIT-7" not in kept(browser)  # the port does not list a visiting vessel
    _open_plate(browser, code, "vessel_id")
    chosen = Select(browser.find_element(By.ID, "f-vessel_id"))
    assert chosen.first_selected_option.get_attribute("value") == ""  # none chosen
    assert any("R-0003" in o.text for o in chosen.options)

    # Record with no vessel chosen: refused on the form, naming the vessel; nothing queued.
    browser.find_element(By.ID, "f-volume_m3").send_keys("1.5")
    browser.find_element(By.ID, "save").click()
    _wait(browser, lambda b: "Vessel" in b.find_element(By.ID, "form-error").text)
    time.sleep(0.5)  # what a record would take to be queued
    assert [e for e in browser.execute_async_script(QUEUE) if e["body"].get("berth") == code] == []

    # A number no vessel has: said on the form, none chosen.
    typed = browser.find_element(By.ID, "f-registration_number")
    typed.send_keys("R-NOWHERE")
    browser.find_element(By.ID, "vessel-lookup").click()
    _wait(browser, lambda b: "no vessel" in b.find_element(By.ID, "vessel-found").text)
    assert chosen.first_selected_option.get_attribute("value") == ""

    # The visitor's number, as typed (spaces around it): found, chosen, and kept on the phone.
    typed.clear()
    typed.send_keys("  R-VISIT-7 ")
    browser.find_element(By.ID, "vessel-lookup").click()
    _wait(browser, lambda b: chosen.first_selected_option.get_attribute("value") == str(visitor))
    assert "R-VISIT-7" in kept(browser)
    browser.find_element(By.ID, "save").click()
    entry = _recorded(browser, "berth", code, 1)
    assert entry["status"] == "applied", entry
    assert entry["body"]["vessel_id"] == visitor
    rows = _query(
        round_data["db"],
        "SELECT vessel_id FROM delivery WHERE client_event_id = $1",
        uuid.UUID(entry["client_event_id"]),
    )
    assert [r["vessel_id"] for r in rows] == [visitor]

    # Next time, offline: the visitor is offered (none chosen) and found on the phone by its
    # number; a vessel not on the phone cannot be looked up, and the user is told so.
    _open_plate(browser, code, "vessel_id")
    chosen = Select(browser.find_element(By.ID, "f-vessel_id"))
    assert chosen.first_selected_option.get_attribute("value") == ""
    assert any("R-VISIT-7" in o.text for o in chosen.options)
    _network(browser, offline=True)
    try:
        typed = browser.find_element(By.ID, "f-registration_number")
        typed.send_keys("R-VISIT-7")
        browser.find_element(By.ID, "vessel-lookup").click()
        _wait(
            browser, lambda b: chosen.first_selected_option.get_attribute("value") == str(visitor)
        )
        typed.clear()
        typed.send_keys("R-ELSEWHERE")
        browser.find_element(By.ID, "vessel-lookup").click()
        _wait(browser, lambda b: "needs the network" in b.find_element(By.ID, "vessel-found").text)
        assert chosen.first_selected_option.get_attribute("value") == ""
    finally:
        _network(browser, offline=False)
    _to_scan(browser)


def test_a_deliverys_times_are_corrected_in_the_citys_time(
    served: str, browser: webdriver.Chrome
) -> None:
    """A delivery refused on its started_at offers its start and end in the city's time,
    whatever the phone's zone (here UTC), each sent back as the instant it names; a time left
    as shown is sent as it was, to the millisecond."""
    _as(browser, served, "carrier")
    body = {
        "client_event_id": str(uuid.uuid4()),
        "kind": "delivery",
        "berth": "ABCDEFGH2",
        "vessel_id": 1,
        "started_at": "2001-02-03T04:05:06.000Z",
        "ended_at": "2001-02-03T04:35:06.789Z",
        "lines": [{"category": "mar.garbage", "volume_m3": "1", "mass_kg": None}],
    }
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    _network(browser, offline=True)
    try:
        _correct(browser, body, "started_at")
        shown = {
            key: (field.get_attribute("type"), field.get_attribute("value"))
            for key in ("started_at", "ended_at")
            for field in [_find(browser, f"#f-edit-{key}")]
        }
        # 04:05:06 UTC is 12:05:06 in Asia/Shanghai
        assert shown == {
            "started_at": ("datetime-local", "2001-02-03T12:05:06"),
            "ended_at": ("datetime-local", "2001-02-03T12:35:06"),
        }
        started = browser.find_element(By.ID, "f-edit-started_at")
        browser.execute_script("arguments[0].value = '2001-02-03T12:00:00';", started)
        resent = _resent(browser, body["client_event_id"])
    finally:
        _network(browser, offline=False)
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})
        browser.execute_async_script(DROP, [body["client_event_id"]])
    assert resent["body"]["started_at"] == "2001-02-03T04:00:00.000Z"
    assert resent["body"]["ended_at"] == body["ended_at"]


def test_a_corrected_number_is_read_as_the_forms_read_it(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A weight kept as a decimal string, corrected as `1e3` (the server read it as 1000 kg) or
    `7,5`, or a share typed bare in a field kept as JSON: refused there, naming the field, and
    the record waits as it was; a number as typed is sent as the decimal string."""
    _as(browser, served, "carrier")
    bag = _clinic_bag(served, round_data["carrier"], "1.0")
    body = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": "collected",
        "batch": bag,
        "device_time": _now(),
        "vehicle_plate": PLATE,
        "weight_kg": "1.5",
    }
    _correct(browser, body, "weight_kg")
    weight = _find(browser, "#f-edit-weight_kg")
    for typed in ("1e3", "7,5", "-3"):
        weight.clear()
        weight.send_keys(typed)
        browser.find_element(By.ID, "resend").click()
        _wait(browser, lambda b, t=typed: t in b.find_element(By.ID, "edit-error").text)
        assert "weight_kg" in browser.find_element(By.ID, "edit-error").text
        (entry,) = [
            e
            for e in browser.execute_async_script(QUEUE)
            if e["client_event_id"] == body["client_event_id"]
        ]
        assert (entry["status"], entry["body"]["weight_kg"]) == ("rejected", "1.5")
    weight.clear()
    weight.send_keys("2.5")
    assert _resent(browser, body["client_event_id"])["body"]["weight_kg"] == "2.5"
    _applied(browser, bag, "collected")
    (row,) = _query(
        round_data["db"],
        "SELECT weight_kg FROM custody_event WHERE client_event_id = $1",
        uuid.UUID(body["client_event_id"]),
    )
    assert row["weight_kg"] == Decimal("2.5")

    pickup = _checked_pickup(photo_sha256=None)
    _correct(browser, pickup, "quality")
    quality = _find(browser, "#f-edit-quality")
    quality.clear()
    quality.send_keys('{"passed": false, "contamination_share": 1e-1, "photo_sha256": null}')
    browser.find_element(By.ID, "resend").click()
    _wait(
        browser,
        lambda b: "quality.contamination_share" in b.find_element(By.ID, "edit-error").text,
    )
    (entry,) = [
        e
        for e in browser.execute_async_script(QUEUE)
        if e["client_event_id"] == pickup["client_event_id"]
    ]
    assert (entry["status"], entry["body"]["quality"]) == ("rejected", pickup["quality"])
    browser.execute_async_script(DROP, [pickup["client_event_id"]])

    # An id kept as a number is read as typed too: `0x10` is not 16, nor `1e1` 10 (first
    # written by an independent review).
    sent_on = {
        "client_event_id": str(uuid.uuid4()),
        "event_type": "in_transit",
        "batch": bag,
        "device_time": _now(),
        "destination_organization_id": 999999,
    }
    _correct(browser, sent_on, "destination_organization_id")
    typed_id = _find(browser, "#f-edit-destination_organization_id")
    for typed in ("0x10", "1e1", "Infinity"):
        typed_id.clear()
        typed_id.send_keys(typed)
        browser.find_element(By.ID, "resend").click()
        _wait(browser, lambda b, t=typed: t in b.find_element(By.ID, "edit-error").text)
        error = browser.find_element(By.ID, "edit-error").text
        assert "destination_organization_id" in error, error
        (entry,) = [
            e
            for e in browser.execute_async_script(QUEUE)
            if e["client_event_id"] == sent_on["client_event_id"]
        ]
        assert entry["body"]["destination_organization_id"] == 999999
    browser.execute_async_script(DROP, [sent_on["client_event_id"]])


def test_a_rounds_load_left_without_a_quantity_is_refused(
    served: str, browser: webdriver.Chrome
) -> None:
    """The load's quantity left empty is not made up from the bag count (2 bags became 2 kg,
    the unit select's default): the round says so, naming the field, and queues nothing."""
    _as(browser, served, "carrier")
    load, bags = codes.new_code(), [codes.new_code() for _ in range(2)]
    _network(browser, offline=True)
    try:
        _start_round(browser, load, *bags)
        _wait(browser, lambda b: _visible(b, "round-tag"))
        assert browser.find_element(By.ID, "f-load_quantity").get_attribute("value") == ""
        browser.find_element(By.ID, "round-finish").click()
        _wait(browser, lambda b: "袋数或重量" in b.find_element(By.ID, "round-error").text)
        time.sleep(0.5)  # what a round would take to be queued
        assert all(_queued_for(browser, code) == [] for code in [load, *bags])
        assert _visible(browser, "round-view")
        browser.find_element(By.ID, "round-cancel").click()
    finally:
        _network(browser, offline=False)


CAUGHT = """
window.__caught = [];
window.addEventListener('error', (e) => window.__caught.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.__caught.push(String(e.reason)));
"""


def test_a_camera_started_on_one_screen_stops_when_the_app_leaves_it(
    served: str, browser: webdriver.Chrome
) -> None:
    """A camera hands what it reads to the screen that started it. Scan tapped, then the round
    before anything was read: the scan's camera went on reading in the round and took the app
    out of it to the label's bag. A round's Scan, then Cancel: its camera went on reading on
    the scan screen and handed the label to the round that was gone (a TypeError). Leaving a
    screen stops its camera, whichever of the two it is."""
    _as(browser, served, "carrier")
    browser.execute_script(CAUGHT)
    on = "return Boolean(document.getElementById('video').srcObject)"
    # Both taps in one go, before the fake camera (the label from its first frame) is open.
    browser.execute_script(
        "document.getElementById('camera').click();document.getElementById('round-start').click();"
    )
    time.sleep(3)  # far longer than the camera takes to open and read the label
    assert _visible(browser, "round-view") and not _visible(browser, "result-view")
    assert not browser.execute_script(on)
    browser.execute_script(
        "document.getElementById('round-scan').click();"
        "document.getElementById('round-cancel').click();"
    )
    time.sleep(3)
    assert _visible(browser, "scan-view")
    assert not browser.execute_script(on)
    assert browser.execute_script("return window.__caught") == []
    # The camera still reads for the screen that starts it.
    browser.find_element(By.ID, "camera").click()
    _wait(browser, lambda b: _visible(b, "result-view"), timeout=20)
    browser.find_element(By.ID, "back").click()


def test_a_screen_left_while_its_camera_opens_or_its_code_is_looked_up_stays_left(
    served: str, browser: webdriver.Chrome
) -> None:
    """The round tapped as the scan's camera starts to play: the camera stops, and the scan
    screen says nothing of a camera error (stopping cut the video's play short; nothing is
    wrong with the camera). The round tapped while a code the scan read is being looked up
    (a slow network): its answer no longer takes the app out of the round to the bag."""
    _as(browser, served, "carrier")
    browser.execute_script(CAUGHT)
    browser.execute_script(
        """
        const play = HTMLMediaElement.prototype.play;
        HTMLMediaElement.prototype.play = function () {
          const pending = play.call(this);
          if (!window.__tapped) {
            window.__tapped = true;
            document.getElementById('round-start').click();
          }
          return pending;
        };
        """
    )
    browser.execute_script("document.getElementById('camera').click();")
    time.sleep(3)
    assert browser.execute_script("return window.__tapped")
    assert _visible(browser, "round-view")
    assert not browser.execute_script("return Boolean(document.getElementById('video').srcObject)")
    browser.find_element(By.ID, "round-cancel").click()
    _wait(browser, lambda b: _visible(b, "scan-view"))
    assert browser.find_element(By.ID, "scan-error").text == ""
    assert browser.execute_script("return window.__caught") == []
    _as(browser, served, "carrier")  # the page again, as it was
    browser.execute_script(
        """
        const real = window.fetch;
        window.fetch = async (...args) => {
          if (String((args[0] && args[0].url) || args[0]).includes('/m/v1/scan')) {
            window.__looking = true;
            await new Promise((resolve) => setTimeout(resolve, 2000));
          }
          return real(...args);
        };
        """
    )
    browser.find_element(By.ID, "camera").click()
    _wait(browser, lambda b: b.execute_script("return window.__looking === true"), timeout=20)
    browser.find_element(By.ID, "round-start").click()
    time.sleep(4)
    shown = [v for v in ("scan-view", "result-view", "round-view") if _visible(browser, v)]
    assert shown == ["round-view"], shown
    browser.find_element(By.ID, "round-cancel").click()


def _shown(browser: webdriver.Chrome) -> list[str]:
    views = ("login-view", "scan-view", "result-view", "round-view", "queue-view")
    return [v for v in views if _visible(browser, v)]


@pytest.mark.parametrize(
    ("button", "view", "quantity"),
    [("round-start", "round-view", "1.2"), ("show-queue", "queue-view", "1.4")],
)
def test_a_screen_opened_while_a_record_reads_the_position_stays_on_screen(
    served: str,
    browser: webdriver.Chrome,
    round_data: dict[str, Any],
    button: str,
    view: str,
    quantity: str,
) -> None:
    """Record tapped on a bag's screen; the position takes up to three seconds. Meanwhile the
    carrier taps Back and then Carrier's round, or Queue (to correct a refused record, say):
    once the record is saved, that screen stays (it jumped to the scan screen, losing the round
    begun or the correction being typed). First written by an independent review."""
    _as(browser, served, "carrier")
    bag = _clinic_bag(served, round_data["carrier"], quantity)
    browser.execute_script("navigator.geolocation.getCurrentPosition = () => {};")
    try:
        _look_up(browser, bag)
        browser.find_element(By.CSS_SELECTOR, "#actions button[data-action='collected']").click()
        _on(browser, "#f-vehicle_plate", lambda e: e.send_keys(PLATE))
        browser.find_element(By.ID, "save").click()
        browser.find_element(By.ID, "back").click()
        browser.find_element(By.ID, button).click()
        assert _shown(browser) == [view]
        _wait(
            browser,
            lambda b: any(
                e["body"].get("batch") == bag and e["body"].get("event_type") == "collected"
                for e in b.execute_async_script(QUEUE)
            ),
        )
        time.sleep(1)  # the screen change that follows the save
        assert _shown(browser) == [view]
    finally:
        browser.execute_script("delete navigator.geolocation.getCurrentPosition;")
        _as(browser, served, "carrier")


SLOW_SCANS = """
// A slow network: the first look-up answers after 1 s, the second after 3 s.
const real = window.fetch;
window.__asked = [];
window.fetch = async (...args) => {
  const url = String((args[0] && args[0].url) || args[0]);
  if (url.includes('/m/v1/scan')) {
    window.__asked.push(url);
    const wait = window.__asked.length === 1 ? 1000 : 3000;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  return real(...args);
};
"""


def test_the_last_code_asked_on_the_scan_screen_is_the_one_shown(
    served: str, browser: webdriver.Chrome, round_data: dict[str, Any]
) -> None:
    """A slow network: the collector looks up one bag's code, then, still on the scan screen,
    the right one. The first answer is dropped (a later code was asked) and the second shown:
    painting the first must not count as the collector leaving the screen."""
    _as(browser, served, "carrier")
    wrong, right = (_clinic_bag(served, round_data["carrier"], "0.7") for _ in range(2))
    browser.execute_script(SLOW_SCANS)
    try:
        for code in (wrong, right):
            typed = browser.find_element(By.ID, "typed")
            typed.clear()
            typed.send_keys(code)
            browser.find_element(By.ID, "lookup").click()
        time.sleep(5)  # both answered
        assert browser.execute_script("return window.__asked.length") == 2
        summary = browser.find_element(By.ID, "summary").text
        assert _shown(browser) == ["result-view"]
        assert right in summary and wrong not in summary, summary
    finally:
        _as(browser, served, "carrier")
