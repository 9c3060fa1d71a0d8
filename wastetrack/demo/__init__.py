"""A small, realistic Rongcheng data set (`scenario.json`), loaded through the same services
the API uses by one small loader per part of the city."""

from collections.abc import Callable
from typing import Any

from wastetrack.auth import service as auth
from wastetrack.auth.models import User
from wastetrack.core.errors import RuleViolation
from wastetrack.demo.cells import load_cells
from wastetrack.demo.custody import load_chains, load_messy_histories
from wastetrack.demo.manifests import load_manifests
from wastetrack.demo.marine import load_ports
from wastetrack.demo.registry import (
    CITY_CODE,
    DEMO_USERS,
    EXTRA_USERS,
    PASSWORDS,
    TOWNS,
    VILLAGES,
    load_registry,
    load_users,
    password_of,
)
from wastetrack.demo.scenario import SCENARIO, Demo
from wastetrack.demo.streams import load_household_and_medical, load_pesticide
from wastetrack.registry.models import Region

__all__ = [
    "CITY_CODE",
    "DEMO_USERS",
    "EXTRA_USERS",
    "PASSWORDS",
    "SCENARIO",
    "TOWNS",
    "VILLAGES",
    "is_published_login",
    "load_demo",
    "published_logins",
]


async def load_demo(
    *,
    secret: str,
    echo: Callable[[str], Any],
    environment: str,
    reached: tuple[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Create the demo registry and chains unless they exist; return the demo logins. Never in
    production: the demo's passwords, an administrator's among them, are published. Nor where
    other machines reach the service (`reached`: the setting that says so, and why;
    `Settings.reached_by_others`), as `serve` refuses to serve them while those logins work."""
    if environment.strip().lower() in ("production", "prod"):
        raise RuleViolation(
            "the demo's accounts have published passwords: it is not loaded in production",
            field="WASTETRACK_ENVIRONMENT",
        )
    if reached is not None:
        setting, why = reached
        raise RuleViolation(
            f"the demo's accounts have published passwords and {why}: pass"
            " --allow-demo-logins to show the demo to others on purpose",
            field=setting,
        )
    if await Region.exists(code=CITY_CODE):
        echo("demo data already loaded; nothing changed")
    else:
        orgs = await load_registry(echo)
        demo = Demo(orgs=orgs, principals=await load_users(orgs), secret=secret)
        count = await load_chains(demo)
        count += await load_ports(demo)
        count += await load_household_and_medical(demo)
        count += await load_pesticide(demo)
        count += await load_manifests(demo)
        count += await load_messy_histories(demo)
        await load_cells(demo)
        echo(f"loaded {len(orgs)} organizations and {count} batches with their custody chains")
    # Loaded before, an account may have been deactivated or given another password since:
    # the logins printed are those that still work.
    working = set(await published_logins())
    return {
        role: {"username": DEMO_USERS[role][0], "password": PASSWORDS[role]}
        for role in DEMO_USERS
        if DEMO_USERS[role][0] in working
    }


def is_published_login(username: str, password: str) -> bool:
    """Whether this is one of the demo's accounts with the password published in this source."""
    return any(
        username == account and password == password_of(name)
        for name, (account, _, _) in {**DEMO_USERS, **EXTRA_USERS}.items()
    )


async def published_logins() -> list[str]:
    """The demo's active accounts that still have the password published in this source (the
    demo sets one for every account it creates), by username."""
    published = {
        username: password_of(name)
        for name, (username, _, _) in {**DEMO_USERS, **EXTRA_USERS}.items()
    }
    users = await User.filter(username__in=list(published), is_active=True).order_by("username")
    return [
        user.username
        for user in users
        if await auth.password_matches(user.password_hash, published[user.username])
    ]
