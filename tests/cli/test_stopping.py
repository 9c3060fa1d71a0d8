"""`wastetrack serve` on the embedded server stops that server when it is told to stop."""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from tests.serving import wait_until_serving
from wastetrack.core import db
from wastetrack.core.backup import pg_tool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _migrated_embedded_server(data_dir: Path, migrated_url: str) -> None:
    """Make the embedded server of data_dir, holding a copy of the session's migrated database
    as `wastetrack`, and stop it again: serve then starts it and finds nothing to migrate
    (migrating a fresh database takes about a minute; a copy, seconds)."""
    server = db._embedded_server(data_dir)
    try:
        url = db.with_database(server.get_uri(), "wastetrack")
        asyncio.run(db.ensure_database(url))
        dump = subprocess.run(
            [pg_tool("pg_dump", database_url=migrated_url, external=False), "-Fc", migrated_url],
            capture_output=True,
            check=True,
        )
        subprocess.run(
            [
                pg_tool("pg_restore", database_url=url, external=False),
                "--no-owner",
                "--no-privileges",
                "-d",
                url,
            ],
            input=dump.stdout,
            capture_output=True,
            check=True,
        )
    finally:
        server.cleanup()  # this process was its only user: it stops


def _gone(process: psutil.Process) -> bool:
    """Exited (a zombie its new parent has not reaped yet counts as exited)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigterm_to_a_single_worker_serve_stops_the_embedded_server(
    database_url: str, tmp_path: Path
) -> None:
    # A folder name of other scripts and a `+` (the server's URL names it as it is, and a `+`
    # read as a space there was a folder that does not exist).
    tmp_path = tmp_path / "c++数据"
    _migrated_embedded_server(tmp_path, database_url)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("WASTETRACK_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        {
            "WASTETRACK_DATA_DIR": str(tmp_path),  # its own embedded server, under tmp_path
            "WASTETRACK_SECRET_KEY": secrets.token_hex(24),
            "WASTETRACK_ALERT_REFRESH_SECONDS": "3600",
        }
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wastetrack.cli", "serve", "--workers", "1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    postmaster = tmp_path / "pgdata" / "postmaster.pid"
    postgres: psutil.Process | None = None
    try:
        assert wait_until_serving(server, f"http://127.0.0.1:{port}").status_code == 200
        postgres = psutil.Process(int(postmaster.read_text().split()[0]))
        assert postgres.is_running()

        server.send_signal(signal.SIGTERM)  # what `kill <pid>` and supervisors send
        server.wait(timeout=30)
        assert server.returncode == 0, server.stderr.read().decode()  # type: ignore[union-attr]
        # Stopped before serve exited (pg_ctl stop -w), so no waiting beyond that.
        assert not postmaster.exists()
        assert _gone(postgres)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if postgres is not None and not _gone(postgres):
            postgres.kill()  # the server this test started, should it have outlived serve
