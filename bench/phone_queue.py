"""The phone's look-ups as its queue grows: what a scan reads of the user's records on a code
(`store.entriesNaming`, by the queue's `named` index) and what the count of waiting records and
a sync read (`store.entriesIn`, by its `status` index), on a small and on a large queue, beside
the whole-queue read the app made before the indexes (`store.entries`, then a filter).

    python bench/phone_queue.py --json [--small 500] [--large 50000] [--rounds 7]

Serves the app's static files (mobile_api/static, as /static) from a local HTTP server, opens
them in headless Chromium (Debian's `chromium` and `chromedriver`), and fills the app's own
IndexedDB database (opened by store.js, so with its indexes) with `--small` and then `--large`
applied records, each naming a code of its own, and 20 waiting ones. Each look-up is timed
`--rounds` times in the page, by `performance.now()`, and the median kept. Prints one JSON
object: per queue size the look-ups' median ms, `lookup_growth` = large ÷ small for the
indexed look-ups and for the whole-queue read, and `indexed_share_of_whole_queue`: the slower
indexed look-up ÷ the whole-queue read doing the same, on the large queue (a reference measured
in the same run, which grows with the queue). Target: `indexed_share_of_whole_queue` <= 0.05
(a scan on a month of records costs a twentieth of what it did, or less).
"""

import argparse
import contextlib
import functools
import http.server
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

STATIC = Path(__file__).resolve().parents[1] / "mobile_api"

FILL = """
const [count, waiting, done] = arguments;
import('/static/app/store.js').then(async (s) => {
  await s.getKv('answers');  // opens the database as the app does, with its indexes
  const open = indexedDB.open('wastetrack-app');
  open.onsuccess = () => {
    const database = open.result;
    const tx = database.transaction('queue', 'readwrite');
    const queue = tx.objectStore('queue');
    queue.clear();
    for (let i = 0; i < count + waiting; i += 1) {
      const code = `C${String(i).padStart(8, '0')}`;
      const status = i < count ? 'applied' : 'pending';
      queue.put({
        client_event_id: crypto.randomUUID(), seq: i + 1, user_id: 1, status, answered: i + 1,
        body: { event_type: 'collected', batch: code, device_time: new Date().toISOString() },
        named: [code], summary: `collected ${code}`, result: { status },
      });
    }
    tx.oncomplete = () => { database.close(); done(true); };
  };
});
"""

TIME = """
const [code, rounds, done] = arguments;
import('/static/app/store.js').then(async (s) => {
  const median = async (look) => {
    const took = [];
    for (let i = 0; i < rounds; i += 1) {
      const start = performance.now();
      await look();
      took.push(performance.now() - start);
    }
    took.sort((a, b) => a - b);
    return took[Math.floor(took.length / 2)];
  };
  const naming = (e) => e.body.batch === code;
  done({
    named: await median(() => s.entriesNaming([code])),
    waiting: await median(() => s.entriesIn(['pending'])),
    whole_queue_named: await median(async () => (await s.entries()).filter(naming)),
    whole_queue_waiting: await median(
      async () => (await s.entries()).filter((e) => e.status === 'pending'),
    ),
  });
});
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def _static_server() -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def _browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit("needs Debian's chromium and chromium-driver")
    with tempfile.TemporaryDirectory() as profile:
        options = Options()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"):
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        browser = webdriver.Chrome(options=options, service=Service(driver))
        browser.set_script_timeout(600)
        try:
            yield browser
        finally:
            browser.quit()


def measure(small: int, large: int, rounds: int) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    with _static_server() as base, _browser() as browser:
        browser.get(f"{base}/static/app/app.css")  # the origin, with no app running
        for count in (small, large):
            browser.execute_async_script(FILL, count, 20)
            code = f"C{count // 2:08d}"  # a record in the middle of the queue
            sizes[str(count)] = browser.execute_async_script(TIME, code, rounds)
    big, few = sizes[str(large)], sizes[str(small)]
    growth = {
        "indexed": max(big[k] / max(few[k], 0.1) for k in ("named", "waiting")),
        "whole_queue": big["whole_queue_named"] / max(few["whole_queue_named"], 0.1),
    }
    share = max(
        big["named"] / big["whole_queue_named"], big["waiting"] / big["whole_queue_waiting"]
    )
    return {
        "records": sizes,
        "lookup_growth": growth,
        "indexed_share_of_whole_queue": share,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    result = measure(args.small, args.large, args.rounds)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
