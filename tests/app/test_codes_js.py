"""The phone's reading of a scanned or typed text (mobile_api/static/app/codes.js, `codeOf`)
against the server's (`ScanReader.code`), in headless Chromium over the app's static files: a
text the server reads as a code is that code to the phone, and one it reads as no code is no
code to the phone either (offline the phone would show that code's kept answer and offer its
actions for a record the server refuses; diff reviews of 89d2b80 and 719ac4f)."""

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from wastetrack.batches import identifiers
from wastetrack.batches.service import ScanReader
from wastetrack.core import codes
from wastetrack.core.commands import Scanned

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

STATIC = Path(__file__).resolve().parents[2] / "mobile_api"
SECRET = "codes-js-" + "s" * 32
BASE = "https://wastetrack.example"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    handler = functools.partial(_Quiet, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = Options()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('codes-js')}")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER or ""))
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/static/app/app.css")
        yield driver
    finally:
        driver.quit()
        with contextlib.suppress(Exception):
            server.shutdown()


def _code_of(page: webdriver.Chrome, texts: list[str]) -> list[str]:
    return list(
        page.execute_async_script(
            "const [texts, done] = arguments;"
            "import('/static/app/codes.js').then((m) => done(texts.map(m.codeOf)));",
            texts,
        )
    )


def _corpus() -> list[str]:
    code, other = codes.new_code(), codes.new_code()
    digits = identifiers.waste_code_digits("900-041-49")
    identifier = f"91350100M000100Y43{digits}20261130077"
    url, url_other = (codes.qr_url(c, base_url=BASE, secret=SECRET) for c in (code, other))
    texts = [code, code.lower(), codes.printed(code), f"  {code}  ", f"\t{code}\n"]
    texts += [code[:4] + gap + code[4:] for gap in ("\t", "\n", "\u3000", "\xa0", "\ufeff", "\x1d")]
    texts += ["\ufeff" + code, code + "\ufeff", code.replace("1", "I").replace("0", "O")]
    texts += [identifier, identifier.lower(), "\x1d".join(identifiers.segments(identifier))]
    texts += [
        " ".join(identifiers.segments(identifier)),
        "-".join(identifiers.segments(identifier)),
    ]
    two = f"{BASE}/q/{other}.0" + url[url.index("/q/") :]  # the server reads the last one
    texts += [url, url + "/", f" {url} ", two, url_other]
    texts += [f"{url}?x=1", f"{url}#top", "鲁K5W321", "", " ", f"{code}.", f"a/{code}"]
    # Refused at the edge (`Scanned`) before any reading: controls but GS, and length.
    texts += [code + c for c in ("\x1e", "\x1c", "\x1f", "\x0b", "\x0c", "\x85", "\x00")]
    texts += ["\x1e".join(identifiers.segments(identifier)), code + " " * 600, url + "\x85"]
    return texts


def test_the_phone_reads_every_text_as_the_server_does(page: webdriver.Chrome) -> None:
    reader = ScanReader(SECRET)
    texts = _corpus()
    phone = dict(zip(texts, _code_of(page, texts), strict=True))
    wrong = []
    scanned = TypeAdapter(Scanned)
    for text in texts:
        try:
            scanned.validate_python(text)
        except ValidationError:  # the server reads nothing: the phone keeps it as written
            if phone[text] != text:
                wrong.append((text, None, phone[text]))
            continue
        server = reader.code(text)
        identifier = identifiers.normalize(text)
        if identifier is not None:  # the server looks it up; the phone keeps it as a name
            if phone[text] != identifier:
                wrong.append((text, identifier, phone[text]))
        elif server is not None and phone[text] != server:
            wrong.append((text, server, phone[text]))
        elif server is None and "/q/" not in text and codes.is_valid_code(phone[text]):
            # A signed URL's signature is the server's to check; anything else is no code.
            wrong.append((text, server, phone[text]))
    assert not wrong, wrong
