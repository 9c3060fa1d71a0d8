"""Waiting for a `wastetrack serve` a test started: one rule for every test that starts one."""

import subprocess
import time

import httpx

START_SECONDS = 180
"""Starting migrates a fresh database: about 10 s alone, several times that on a busy machine."""


def wait_until_serving(
    server: subprocess.Popen[bytes], base: str, *, seconds: float = START_SECONDS
) -> httpx.Response:
    """The first answer of `base`'s /healthz. A server that exits, or does not answer within
    `seconds`, fails here (with the end of what it printed, when its stderr is a pipe), not in
    the test's first request."""
    deadline = time.monotonic() + seconds
    while True:
        if server.poll() is not None:
            said = server.stderr.read().decode(errors="replace")[-3000:] if server.stderr else ""
            raise AssertionError(f"wastetrack serve exited ({server.returncode}):\n{said}")
        try:
            return httpx.get(f"{base}/healthz", timeout=2)
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"wastetrack serve did not answer in {seconds} s"
        time.sleep(0.2)
