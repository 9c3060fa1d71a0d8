"""`wastetrack serve` beyond loopback: not while the demo's published logins still work."""

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.factories import World
from tests.serving import wait_until_serving
from wastetrack import demo
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role, User
from wastetrack.core.errors import Forbidden
from wastetrack.core.settings import Settings


def _serve_env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"},
        "WASTETRACK_DATABASE_URL": database_url,
        "WASTETRACK_DATA_DIR": str(data_dir),
        "WASTETRACK_SECRET_KEY": secrets.token_hex(24),
        # One round of the background jobs at start-up, then none during the test.
        "WASTETRACK_ALERT_REFRESH_SECONDS": "3600",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(*options: str) -> list[str]:
    return [sys.executable, "-m", "wastetrack.cli", "serve", "--workers", "1", *options]


def _refused(command: list[str], env: dict[str, str] | None = None) -> str:
    """Run a command that must stop with exit status 2 (a refusal); what it said."""
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    return done.stderr


@pytest.fixture
async def demo_admin(world: World) -> User:
    """The demo's administrator with its published password, as `wastetrack demo` makes it."""
    username, role, _ = demo.DEMO_USERS["admin"]
    return await auth.create_user(
        username=username,
        password=demo.PASSWORDS["admin"],
        role=role,
        organization_id=world.orgs["bureau"].id,
    )


async def test_published_logins_are_the_active_demo_accounts_with_the_sources_password(
    world: World, demo_admin: User
) -> None:
    manager, collector = demo.DEMO_USERS["manager"][0], demo.DEMO_USERS["collector"][0]
    await auth.create_user(
        username=manager,
        password="a password of its own",
        role=Role.manager,
        organization_id=world.orgs["bureau"].id,
    )
    gone = await auth.create_user(
        username=collector,
        password=demo.PASSWORDS["collector"],
        role=Role.collector,
        organization_id=world.orgs["community"].id,
    )
    gone.is_active = False
    await gone.save(update_fields=["is_active"])
    assert await demo.published_logins() == [demo_admin.username]


def test_serve_beyond_loopback_refuses_published_demo_logins(
    demo_admin: User, database_url: str, tmp_path: Path
) -> None:
    env = _serve_env(database_url, tmp_path)
    stderr = _refused(_serve("--host", "0.0.0.0", "--port", str(_free_port())), env)
    assert demo_admin.username in stderr
    assert "wastetrack user deactivate" in stderr
    assert "--allow-demo-logins" in stderr


def test_serve_on_loopback_behind_a_tls_proxy_refuses_published_demo_logins(
    demo_admin: User, database_url: str, tmp_path: Path
) -> None:
    """docs/security.md's production set-up serves on loopback behind nginx: other machines
    reach it all the same, so the demo's published logins are refused there too."""
    env = {**_serve_env(database_url, tmp_path), "WASTETRACK_TRUST_PROXY": "true"}
    stderr = _refused(_serve("--host", "127.0.0.1", "--port", str(_free_port())), env)
    assert "error (WASTETRACK_TRUST_PROXY)" in stderr
    assert demo_admin.username in stderr


def test_demo_refuses_to_plant_its_logins_where_other_machines_reach_the_service(
    database_url: str, tmp_path: Path
) -> None:
    """`serve` checks once, at its start: on an empty database it passed, and `wastetrack demo`
    run then planted the published logins on the service other machines reach."""
    env = {**_serve_env(database_url, tmp_path), "WASTETRACK_TRUST_PROXY": "true"}
    stderr = _refused([sys.executable, "-m", "wastetrack.cli", "demo"], env)
    assert "error (WASTETRACK_TRUST_PROXY)" in stderr
    assert "--allow-demo-logins" in stderr


async def test_the_service_refuses_a_published_demo_login_where_others_reach_it(
    demo_admin: User, settings: Settings
) -> None:
    """`serve --host 0.0.0.0` started on an empty database, then `wastetrack demo` in a shell
    whose settings said loopback: the published administrator's login was let in. The service
    refuses it itself while other machines reach it (403 naming `username`), unless told to
    allow the demo's logins; on loopback it is let in."""
    password = demo.PASSWORDS["admin"]
    local = settings.model_copy(update={"public_base_url": "http://127.0.0.1:8000"})
    reached = local.model_copy(update={"host": "0.0.0.0"})
    with pytest.raises(Forbidden) as refused:
        await auth.authenticate(username=demo_admin.username, password=password, settings=reached)
    assert refused.value.field == "username" and "0.0.0.0" in refused.value.detail
    allowed = reached.model_copy(update={"allow_demo_logins": True})
    for told in (allowed, local):
        user = await auth.authenticate(
            username=demo_admin.username, password=password, settings=told
        )
        assert user.id == demo_admin.id


@pytest.mark.parametrize(
    ("host", "base_url"),
    [("::1", "http://[::1]:8000"), ("wastetrack.lan", "http://wastetrack.lan:8000")],
)
def test_the_labels_address_from_the_host_is_a_url(host: str, base_url: str) -> None:
    """Unset, the public base URL is `http://{HOST}:{PORT}`: `::1` printed `http://::1:8000`,
    no URL (no host, no port)."""
    assert Settings(secret_key=secrets.token_hex(24), host=host).base_url == base_url


@pytest.mark.parametrize("host", ["bad host", "", "a/b", "-lan", "x" * 64])
def test_a_host_that_is_no_ip_address_or_dns_name_is_refused_naming_it(host: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(secret_key=secrets.token_hex(24), host=host)
    assert refused.value.errors()[0]["loc"] == ("host",)
    assert "--host" in _refused(_serve("--host", host or "bad host"))


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({}, None),
        ({"public_base_url": "http://127.0.0.1:8000"}, None),
        ({"host": "0.0.0.0"}, "host"),
        ({"host": "wastetrack.lan"}, "host"),
        ({"trust_proxy": True}, "WASTETRACK_TRUST_PROXY"),
        ({"public_base_url": "https://wastetrack.example.cn"}, "WASTETRACK_PUBLIC_BASE_URL"),
        ({"environment": "production"}, "WASTETRACK_ENVIRONMENT"),
    ],
)
def test_other_machines_reach_the_service_by_any_setting_that_says_so(
    settings: dict[str, object], setting: str | None
) -> None:
    """Loopback with no proxy, no public address elsewhere and not in production is this
    machine alone (the quick start); each of the others says other machines reach it."""
    configured = Settings(secret_key=secrets.token_hex(24), **settings)  # type: ignore[arg-type]
    reached = configured.reached_by_others()
    assert (reached[0] if reached else None) == setting


def test_serve_beyond_loopback_with_demo_logins_when_told_to(
    demo_admin: User, database_url: str, tmp_path: Path
) -> None:
    env, port = _serve_env(database_url, tmp_path), _free_port()
    server = subprocess.Popen(
        _serve("--host", "0.0.0.0", "--port", str(port), "--allow-demo-logins"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_until_serving(server, f"http://127.0.0.1:{port}").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
