"""The `wastetrack` command and the service on a real uvicorn, against their own database."""

import asyncio
import io
import json
import os
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pypdf
import pytest
import zxingcpp
from PIL import Image

from tests.serving import wait_until_serving
from wastetrack.core import db


@pytest.fixture
def cli_env(server_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    url = db.with_database(server_url, f"wastetrack_cli_{uuid.uuid4().hex[:8]}")
    yield {
        **os.environ,
        "WASTETRACK_DATABASE_URL": url,
        "WASTETRACK_DATA_DIR": str(tmp_path),
        "WASTETRACK_SECRET_KEY": "cli-test-secret-" + "y" * 32,
    }
    asyncio.run(db.drop_database(url))


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wastetrack.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def run_json(env: dict[str, str], *args: str) -> dict:
    done = run(env, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def register_clinic(env: dict[str, str], *, username: str, role: str) -> dict:
    """A city, a clinic in it and one user of the clinic, made through the CLI."""
    city = run_json(
        env, "registry", "region", "--code", "371082", "--name", "荣成市", "--level", "city"
    )
    clinic = run_json(env, "registry", "org", "--name", "卫生室", "--kind", "clinic",
                      "--region", str(city["id"]), "--beds", "5")  # fmt: skip
    run_json(env, "user", "create", "--username", username, "--role", role, "--org",
             str(clinic["id"]), "--password", f"{username}-password")  # fmt: skip
    return {"city": city["id"], "clinic": clinic["id"]}


def test_registry_users_and_labels_from_the_command_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    ids = register_clinic(cli_env, username="nurse", role="generator")
    # A clinic holds no administrator (wastetrack.registry.roles): its reach would be the region.
    misfit = run(cli_env, "user", "create", "--username", "boss", "--role", "admin",
                 "--org", str(ids["clinic"]), "--password", "boss-password")  # fmt: skip
    assert misfit.returncode == 2 and "role" in misfit.stderr, misfit.stderr
    # An administrator belongs to an authority; labels are issued in its name.
    bureau = run_json(cli_env, "registry", "org", "--name", "生态环境局", "--kind", "authority",
                      "--region", str(ids["city"]))  # fmt: skip
    run_json(cli_env, "user", "create", "--username", "root", "--role", "admin",
             "--org", str(bureau["id"]), "--password", "root-admin-password")  # fmt: skip
    refused = run(
        cli_env,
        "registry",
        "org",
        "--name",
        "x",
        "--kind",
        "carrier",
        "--region",
        str(ids["city"]),
        "--beds",
        "5",
    )
    assert refused.returncode == 2
    assert "bed_count" in refused.stderr
    carrier = run_json(cli_env, "registry", "org", "--name", "运输公司", "--kind", "carrier",
                       "--region", str(ids["city"]))  # fmt: skip
    # A vessel with its owner, the producer of what it delivers (the command took none: ports
    # review); an owner of another kind is refused naming it.
    port = run_json(cli_env, "registry", "org", "--name", "石岛渔港", "--kind", "fishing_port",
                    "--region", str(ids["city"]))  # fmt: skip
    owner = run_json(cli_env, "registry", "org", "--name", "荣成远洋渔业", "--kind",
                     "vessel_owner", "--region", str(ids["city"]))  # fmt: skip
    vessel = ("registry", "vessel", "--name", "鲁荣渔1", "--registration", "R1", "--gt", "80",
              "--home-port", str(port["id"]))  # fmt: skip
    owned = run_json(cli_env, *vessel, "--owner", str(owner["id"]))
    assert owned["owner_id"] == owner["id"]
    misowned = run(cli_env, *vessel[:5], "R2", *vessel[6:], "--owner", str(ids["clinic"]))
    assert misowned.returncode == 2 and "owner_id" in misowned.stderr, misowned.stderr
    agreement = ("registry", "agreement", "--provider", str(carrier["id"]),
                 "--client", str(ids["clinic"]), "--stream", "medical")  # fmt: skip
    bad_day = run(cli_env, *agreement, "--from", "2026-13-01")
    assert bad_day.returncode == 2 and "--from" in bad_day.stderr
    made = run_json(cli_env, *agreement, "--from", "2026-11-01", "--to", "2027-10-31")
    assert made["streams"] == ["medical"]
    out = tmp_path / "labels.pdf"
    out.write_bytes(b"an older sheet, readable by all")
    out.chmod(0o644)
    umask = os.umask(0o022)  # the usual one, which leaves new files readable by everyone
    try:
        issued = run_json(cli_env, "labels", "issue", "--org", str(ids["clinic"]),
                          "--stream", "medical", "--count", "5", "--out", str(out))  # fmt: skip
    finally:
        os.umask(umask)
    assert issued["issued"] == 5
    # A sheet may end with the producer's one-time PINs (docs/transport.md): the file, put in
    # the older one's place, is readable by its owner only, as a backup is.
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    page = pypdf.PdfReader(out).pages[0]
    urls = [
        r.text for p in page.images for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(p.data)))
    ]
    assert len(urls) == 5 and all("/q/" in u for u in urls)
    # Labels are issued by an active administrator: the first one gone, by the next, and one
    # deactivated is not asked for by name (the stock would be issued by someone who left).
    run_json(cli_env, "user", "create", "--username", "root2", "--role", "admin",
             "--org", str(bureau["id"]), "--password", "root2-admin-password")  # fmt: skip
    # A username is read as a login reads it, its case folded (`ROOT` is `root`).
    run_json(cli_env, "user", "deactivate", "--username", "ROOT")
    label = ("labels", "issue", "--org", str(ids["clinic"]), "--stream", "medical",
             "--count", "1", "--out", str(out))  # fmt: skip
    again = run_json(cli_env, *label)
    assert issuer_of(cli_env["WASTETRACK_DATABASE_URL"], again["first"]) == "root2"
    named = run(cli_env, *label, "--manager", "root")
    assert (named.returncode, "manager" in named.stderr) == (2, True), named.stderr
    by_name = run_json(cli_env, *label, "--manager", "Root2")
    assert issuer_of(cli_env["WASTETRACK_DATABASE_URL"], by_name["first"]) == "root2"


def issuer_of(url: str, code: str) -> str:
    """Who issued the label `code`, read from the database."""

    async def read() -> str:
        conn = await asyncpg.connect(**db.credentials_from_url(url))
        try:
            return str(
                await conn.fetchval(
                    "SELECT u.username FROM label l JOIN app_user u ON u.id = l.issued_by_id"
                    " WHERE l.code = $1",
                    code,
                )
            )
        finally:
            await conn.close()

    return asyncio.run(read())


def test_demo_loads_once_and_ends_with_the_logins(cli_env: dict[str, str]) -> None:
    first = run(cli_env, "demo")
    assert first.returncode == 0, first.stderr
    logins = json.loads(first.stdout.strip().splitlines()[-1])
    assert set(logins) == {
        "manager",
        "collector",
        "clinic",
        "carrier",
        "facility",
        "port_operator",
        "shop",
        "admin",
    }
    second = run(cli_env, "demo")
    assert "nothing changed" in second.stdout
    before = asyncio.run(_rollups(cli_env["WASTETRACK_DATABASE_URL"]))
    assert run_json(cli_env, "rollups-rebuild")["rollup_rows"] > 0
    assert asyncio.run(_rollups(cli_env["WASTETRACK_DATABASE_URL"])) == before
    assert json.loads(second.stdout.strip().splitlines()[-1]) == logins
    counts = asyncio.run(_demo_counts(cli_env["WASTETRACK_DATABASE_URL"]))
    assert counts["streams"] == 5  # batches of every stream
    assert counts["port_calls"] >= 10 and counts["deliveries"] >= 10
    assert counts["cleanups"] == 1 and counts["treated"] > 200
    assert counts["pickups"] == 40 and counts["alerts"] >= 1
    assert counts["returns"] == 30


async def _rollups(url: str) -> list[tuple]:
    """The daily sums as a reader sees them: the folded layer plus the changes not folded yet."""
    measures = (
        "mass_kg",
        "estimated_kg",
        "balance_weighed_kg",
        "balance_declared_kg",
        "volume_m3",
        "items",
        "batches",
    )
    columns = ", ".join(
        ("day", "region_path", "stream_id", "category_id", "fate", "mode", *measures)
    )
    sums = ", ".join(f"SUM({m})" for m in measures)
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        rows = await conn.fetch(
            f"SELECT day, region_path, stream_id, category_id, fate, mode, {sums} FROM ("
            f" SELECT {columns} FROM cohort_daily UNION ALL SELECT {columns} FROM cohort_delta"
            ") s GROUP BY 1, 2, 3, 4, 5, 6"
            " HAVING SUM(mass_kg) <> 0 OR SUM(balance_declared_kg) <> 0 OR SUM(volume_m3) <> 0"
            " OR SUM(items) <> 0 OR SUM(batches) <> 0 ORDER BY 1, 2, 3, 4, 5, 6"
        )
        return [tuple(row) for row in rows]
    finally:
        await conn.close()


async def _demo_counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(**db.credentials_from_url(url))
    try:
        return {
            "streams": await conn.fetchval("SELECT count(DISTINCT stream_id) FROM batch"),
            "treated": await conn.fetchval("SELECT count(*) FROM batch WHERE state = 'treated'"),
            "port_calls": await conn.fetchval("SELECT count(*) FROM port_call"),
            "deliveries": await conn.fetchval("SELECT count(*) FROM delivery"),
            "cleanups": await conn.fetchval("SELECT count(*) FROM cleanup"),
            "pickups": await conn.fetchval("SELECT count(*) FROM pickup"),
            "alerts": await conn.fetchval("SELECT count(*) FROM alert"),
            "returns": await conn.fetchval("SELECT count(*) FROM packaging_return"),
        }
    finally:
        await conn.close()


def test_service_on_uvicorn_tags_and_serves_a_decodable_label(cli_env: dict[str, str]) -> None:
    register_clinic(cli_env, username="nurse", role="generator")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wastetrack.cli", "serve", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base)
        with httpx.Client(base_url=base, timeout=10) as http:
            tokens = http.post(
                "/m/v1/auth/token", data={"username": "nurse", "password": "nurse-password"}
            ).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            batch = http.post(
                "/m/v1/batches",
                headers=headers,
                json={
                    "client_event_id": str(uuid.uuid4()),
                    "stream": "medical",
                    "category": "med.sharps",
                    "quantity": "1.2",
                    "unit": "kg",
                    "device_time": datetime.now(UTC).isoformat(),
                },
            )
            assert batch.status_code == 201, batch.text
            assert batch.json()["qr_url"].startswith(f"{base}/q/")
            png = http.get(f"/m/v1/batches/{batch.json()['code']}/label.png", headers=headers)
            decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))]
            assert decoded == [batch.json()["qr_url"]]
            public = http.get(batch.json()["qr_url"].removeprefix(base))
            assert "损伤性废物" in public.text
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_bad_arguments_are_refused_naming_them_and_change_nothing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The registry commands read their input by the API's own contract, and a file that
    cannot be written where asked is said: each bad argument exits 2 with a message naming
    it, never a traceback, and nothing is written (no vessel, no licence, no half backup)."""
    too_long = "名" * 200
    vessel = ["registry", "vessel", "--name", "鲁荣渔1", "--registration", "R1", "--home-port", "1"]
    licence = ["registry", "licence", "--org", "1", "--category", "hw.08"]
    cases = [
        ([*vessel, "--gt", "abc"], "gross_tonnage"),
        ([*vessel, "--gt", "NaN"], "gross_tonnage"),
        ([*vessel, "--gt", "1e20"], "gross_tonnage"),
        ([*vessel, "--gt", "0.001"], "gross_tonnage"),
        ([*vessel[:3], "", *vessel[4:], "--gt", "12"], "name"),
        ([*licence, "--methods", " , "], "method_codes"),
        ([*licence, "--methods", "R1", "--valid-from", "notaday"], "valid_from"),
        (["registry", "org", "--name", too_long, "--kind", "clinic", "--region", "1"], "name"),
        (
            ["registry", "site", "--org", "1", "--name", too_long, "--lat", "1", "--lon", "1"],
            "name",
        ),
        (["checkpoints", "export", "--out", str(tmp_path)], "out"),
        (["checkpoints", "export", "--out", str(tmp_path / "missing" / "c.json")], "out"),
        (["backup", "--out", str(tmp_path)], "out"),
        (["serve", "--port", "70000"], "port"),
        # Users, agreements and calendar days by the admin API's contracts too.
        (
            [
                "user",
                "create",
                "--username",
                "nurse2",
                "--role",
                "generator",
                "--org",
                "1",
                "--password",
                "long-enough",
                "--full-name",
                "名" * 65,
            ],
            "full_name",
        ),
        (
            [
                "user",
                "create",
                "--username",
                "nurse3",
                "--role",
                "generator",
                "--org",
                "1",
                "--password",
                "p" * 257,
            ],
            "password",
        ),
        (
            [
                "user",
                "create",
                "--username",
                "nurse4",
                "--role",
                "generator",
                "--org",
                "99999999999",
                "--password",
                "long-enough",
            ],
            "organization_id",
        ),
        (
            [
                "registry",
                "agreement",
                "--provider",
                "99999999999",
                "--client",
                "1",
                "--stream",
                "medical",
                "--from",
                "2026-11-01",
            ],
            "provider_organization_id",
        ),
        (
            [
                "registry",
                "agreement",
                "--provider",
                "1",
                "--client",
                "2",
                "--stream",
                "medical",
                "--from",
                "9999-12-31",
            ],
            "valid_from",
        ),
        (["calendar", "set", "9999-12-31", "--holiday", "--reason", "x"], "day"),
        (["calendar", "set", "2031-02-30", "--holiday"], "day"),
        # Ids no contract held reached the database as a traceback (out of int4's range).
        (
            [*licence[:2], "--org", "99999999999", *licence[4:], "--methods", "R1"],
            "organization_id",
        ),
        (
            [
                "labels",
                "issue",
                "--org",
                "99999999999",
                "--stream",
                "medical",
                "--count",
                "2",
                "--out",
                str(tmp_path / "l.pdf"),
            ],
            "organization_id",
        ),
        (["backup", "--out", str(tmp_path / "a-file" / "b.tar")], "out"),
    ]
    (tmp_path / "a-file").write_text("not a folder")
    for args, field in cases:
        done = run(cli_env, *args)
        said = (done.returncode, "Traceback" in done.stderr, field in done.stderr)
        assert said == (2, False, True), (args, done.stderr[-600:])
    assert not list(tmp_path.glob("*.partial"))
    city = run_json(cli_env, "registry", "region", "--code", "371082", "--name", "荣成市",
                    "--level", "city")  # fmt: skip
    assert city["id"] == 1  # the first region: nothing before it was written


def test_a_file_that_cannot_be_written_is_said_before_the_database_is_reached(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Where --out cannot take the file, the command says so (exit 2 naming `out`) before it
    connects: with no database reachable it was a connection traceback."""
    away = {**cli_env, "WASTETRACK_DATABASE_URL": "postgres://u:p@127.0.0.1:1/none"}
    (tmp_path / "a-file").write_text("not a folder")
    for args in (
        ["checkpoints", "export", "--out", str(tmp_path / "missing" / "c.json")],
        [
            "labels",
            "issue",
            "--org",
            "1",
            "--stream",
            "medical",
            "--count",
            "2",
            "--out",
            str(tmp_path / "missing" / "l.pdf"),
        ],
        ["backup", "--out", str(tmp_path / "a-file" / "b.tar")],
        ["backup", "--out", str(tmp_path)],
    ):
        done = run(away, *args)
        said = (done.returncode, "Traceback" in done.stderr, "error (out)" in done.stderr)
        assert said == (2, False, True), (args, done.stderr[-600:])


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WASTETRACK_TIMEZONE", "Asia/Beijing"),
        # Files of the system's zone folder Python opens and PostgreSQL does not know: every
        # dated command failed with a traceback (`verify` with its "chain broken" status).
        ("WASTETRACK_TIMEZONE", "posix/Asia/Shanghai"),
        ("WASTETRACK_TIMEZONE", "localtime"),
        # Past what the database's integer holds, or no finite number of seconds: every alert
        # round (or login) failed, or a background round stopped without a word.
        ("WASTETRACK_IDLE_BATCH_HOURS", "3000000000"),
        ("WASTETRACK_LOGIN_MAX_FAILURES", "99999999999"),
        ("WASTETRACK_ALERT_REFRESH_SECONDS", "inf"),
        ("WASTETRACK_WEBHOOKS_DISABLE_AFTER_HOURS", "1e11"),
        ("WASTETRACK_DATA_DIR", "~wastetrack_no_such_user/data"),
        ("WASTETRACK_RATE_LIMIT_LOGIN", "lots"),
        # Read as rates, then a window past PostgreSQL's interval made every login a 500, and
        # a count of 0 refused every one for ever.
        ("WASTETRACK_RATE_LIMIT_LOGIN_FAILURES", "1/1000000000 years"),
        ("WASTETRACK_RATE_LIMIT_LOGIN", "0/minute"),
        ("WASTETRACK_RATE_LIMIT_API_KEY", "0 per 10 seconds"),
        ("WASTETRACK_COSIGN_PIN_FAILURES", "five"),
        ("WASTETRACK_ENVIRONMENT", "staging"),
        ("WASTETRACK_SYNC_MAX_EVENTS", "-1"),
        ("WASTETRACK_ACCESS_TOKEN_MINUTES", "-5"),
        ("WASTETRACK_PORT", "0"),
        # Read first by logging's set-up, the pool or the key files, each a traceback there.
        ("WASTETRACK_LOG_LEVEL", "LOUD"),
        ("WASTETRACK_DATABASE_URL", "mysql://u:p@127.0.0.1:3306/db"),
        ("WASTETRACK_DATABASE_URL", "postgres://u:p@127.0.0.1:notaport/db"),
        # Read only as a worker started, after serve had migrated: a traceback there.
        ("WASTETRACK_REPLICA_URL", "mysql://u:p@127.0.0.1:3306/db"),
        # Read as the working directory, where the database, keys and photos then went.
        ("WASTETRACK_DATA_DIR", ""),
        ("WASTETRACK_SECRET_FILE", "/nonexistent/wastetrack-master.key"),
        ("WASTETRACK_DATA_DIR", "/etc/passwd"),
        ("WASTETRACK_DATA_DIR", "/etc/passwd/wastetrack"),
        # Printed on every label; `serve` reads its host (an unclosed bracket: a traceback).
        ("WASTETRACK_PUBLIC_BASE_URL", "http://[::1"),
        ("WASTETRACK_PUBLIC_BASE_URL", "wastetrack.example.cn"),
        ("WASTETRACK_PUBLIC_BASE_URL", "ftp://wastetrack.example.cn"),
        ("WASTETRACK_PUBLIC_BASE_URL", "http://wastetrack.example.cn:notaport"),
        ("WASTETRACK_PUBLIC_BASE_URL", "https://wastetrack.example.cn/?from=qr"),
        # Printed as written: a bare `?`, a blank or a tab would be in every QR code.
        ("WASTETRACK_PUBLIC_BASE_URL", "https://wastetrack.example.cn/?"),
        ("WASTETRACK_PUBLIC_BASE_URL", " https://wastetrack.example.cn"),
        ("WASTETRACK_PUBLIC_BASE_URL", "https://wastetrack.example.cn\t"),
    ],
)
def test_a_setting_the_service_cannot_use_is_a_message_naming_its_variable(
    cli_env: dict[str, str], variable: str, value: str
) -> None:
    """Refused as the settings are read, before any command runs: a rate the limits library
    cannot read made every login a 500 once the service was up."""
    done = run({**cli_env, variable: value}, "migrate")
    said = (done.returncode, "Traceback" in done.stderr, f"error ({variable})" in done.stderr)
    assert said == (2, False, True), done.stderr[-600:]


@pytest.mark.parametrize("secret", [True, False])
def test_a_data_directory_through_the_home_that_is_a_file_is_a_message_naming_it(
    cli_env: dict[str, str], tmp_path: Path, secret: bool
) -> None:
    """`~/a-file` was checked as written (no such path) and then used expanded: a traceback
    where the key files were made, or, with no secret configured, an error of "settings"."""
    (tmp_path / "a-file").write_text("not a folder")
    env = {**cli_env, "HOME": str(tmp_path), "WASTETRACK_DATA_DIR": "~/a-file"}
    if not secret:
        env.pop("WASTETRACK_SECRET_KEY")
    done = run(env, "migrate")
    said = (
        done.returncode,
        "Traceback" in done.stderr,
        "error (WASTETRACK_DATA_DIR)" in done.stderr,
    )
    assert said == (2, False, True), done.stderr[-600:]


@pytest.mark.parametrize("name", ["wastetrack data", "R&D", "waste,track"])
def test_an_embedded_database_folder_a_shell_would_split_is_a_message_naming_it(
    cli_env: dict[str, str], tmp_path: Path, name: str
) -> None:
    """The embedded server's wheel hands its folder to pg_ctl through a shell, unquoted: a
    space split it and `&` ran the rest as a command; PostgreSQL reads a comma there as a list
    of socket folders: each a traceback. Refused before anything
    is made; with an external database the same folder holds photos and keys, and serves."""
    data_dir = tmp_path / name / "data"
    embedded = {k: v for k, v in cli_env.items() if k != "WASTETRACK_DATABASE_URL"}
    done = run({**embedded, "WASTETRACK_DATA_DIR": str(data_dir)}, "migrate")
    named = "error (WASTETRACK_DATA_DIR)" in done.stderr
    assert (done.returncode, "Traceback" in done.stderr, named) == (2, False, True), done.stderr
    assert not (tmp_path / name).exists()
    done = run({**cli_env, "WASTETRACK_DATA_DIR": str(data_dir)}, "migrate")
    assert done.returncode == 0, done.stderr[-600:]


def test_the_default_data_directory_is_checked_too(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The per-user default (macOS's lies under `Application Support`) is held to the same
    rule as one set: with a space in it, a message naming the variable, not pg_ctl's
    traceback."""
    home = tmp_path / "a home"
    embedded = {
        k: v
        for k, v in cli_env.items()
        if k not in ("WASTETRACK_DATABASE_URL", "WASTETRACK_DATA_DIR")
    }
    done = run({**embedded, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}, "migrate")
    named = "error (WASTETRACK_DATA_DIR)" in done.stderr
    assert (done.returncode, "Traceback" in done.stderr, named) == (2, False, True), done.stderr
    assert not home.exists()


def test_a_secret_file_of_raw_bytes_is_a_message_naming_it(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`head -c 32 /dev/urandom > secret` makes no text secret: said naming the variable and
    the file, not as a codec's error about "settings"."""
    secret = tmp_path / "master.secret"
    secret.write_bytes(bytes(range(128, 256)))
    env = {k: v for k, v in cli_env.items() if k != "WASTETRACK_SECRET_KEY"}
    done = run({**env, "WASTETRACK_SECRET_FILE": str(secret)}, "migrate")
    assert (done.returncode, "Traceback" in done.stderr) == (2, False), done.stderr[-600:]
    assert f"WASTETRACK_SECRET_FILE ({secret}) is not UTF-8 text" in done.stderr
