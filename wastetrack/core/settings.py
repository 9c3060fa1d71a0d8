"""One settings class for the whole service, read from WASTETRACK_* environment variables."""

import ipaddress
import logging
import re
import unicodedata
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import available_timezones

import idna
import platformdirs
from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wastetrack.core.commands import INT32_MAX

_LONGEST_RATE_WINDOW = 366 * 86_400  # seconds
# What a folder of the embedded server may hold besides letters and digits (any script): what
# a shell takes as part of one word, a URL's query as it is, and PostgreSQL's socket setting
# and libpq's PGHOST as one folder (both split a list on commas).
_SERVER_PATH = frozenset("/._-+@")


# A DNS name (RFC 1123): labels of letters, digits and inner hyphens, joined by dots.
_DNS_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def a_host(host: str) -> str:
    """A host the service listens on, which every label prints unless a public base URL is set:
    an IP address or a DNS name (`WASTETRACK_HOST`, `serve --host`)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _DNS_NAME.fullmatch(host):
            raise ValueError(
                f"{host!r} is no host: an IP address or a DNS name (letters, digits, hyphens"
                " and dots)"
            ) from None
    return host


# A Host header's authority: a bracketed IPv6 address (with its zone) or a name or IPv4
# address, then a port or none; nothing else (no user, path or query).
_AUTHORITY = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+(?:%[^\[\]/?#@\s]+)?)\]|(?P<name>[^\[\]:/?#@\s]+))(?::[0-9]*)?"
)


# A host name as a request carries it: labels of ASCII letters, digits, hyphens and underscores
# (the WHATWG URL standard forbids none of those: an nginx upstream's or a container's name such
# as `wastetrack_app` is one), at most 63 of them each, 253 in all, joined by dots.
_WIRE_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


def wire_name(name: str) -> str | None:
    """A host name as a request carries it in Host, as browsers write it (the WHATWG URL
    standard's domain to ASCII: UTS #46 mapping, non-transitional, then each label not in ASCII
    as Punycode, with no IDNA 2008 check of hyphens or symbols): in lower case (full-width and
    circled letters mapped), `荣成环卫.中国` as `xn--rlrr45axjnnzo.xn--fiqs8s`, `faß.de` as
    `xn--fa-hia.de`, a symbol's label (U+267B) as `xn--26h`, `rc--hw.example` as it is, without a
    trailing dot (of any script); None for what is no host name, and for a name holding a
    character this Python's Unicode does not know (it would compose it otherwise than a
    browser of a newer Unicode, and answer to another name)."""
    if any(unicodedata.category(c) == "Cn" for c in name):
        return None
    try:
        mapped = idna.uts46_remap(name.strip(), std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError):
        return None
    labels = mapped.removesuffix(".").split(".")
    try:
        carried = ".".join(
            label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
            for label in labels
        )
    except UnicodeError:
        return None
    return carried if _WIRE_NAME.fullmatch(carried) else None


@lru_cache(maxsize=8)
def _own_names(host: str, public_base_url: str | None, allowed_hosts: str) -> frozenset[str]:
    """The names the service answers to, as requests carry them (`wire_name`): localhost, its
    host, its public base URL's and those `allowed_hosts` lists; worked out once per setting
    (every request asks)."""
    public = urlsplit(public_base_url or "").hostname
    named = [host, public or "", *allowed_hosts.split(",")]
    return frozenset({"localhost"} | {n for n in map(wire_name, named) if n is not None})


def _address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def loopback(host: str) -> bool:
    """Whether only this machine reaches host (a name other than localhost is taken as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WASTETRACK_",
        extra="ignore",
        hide_input_in_errors=True,
        # `Settings(secret_key=…)` in code; the environment names only WASTETRACK_* variables.
        populate_by_name=True,
        # A number of seconds that is inf or nan would stop a background round without a word.
        allow_inf_nan=False,
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        None, description="postgres://user:pass@host:port/db; unset starts an embedded server"
    )
    replica_url: str | None = Field(
        None,
        description="a streaming standby (`wastetrack replica start` prints it): dashboard,"
        " metric and export reads go there; unset: every read goes to the primary",
    )
    replica_max_lag_seconds: float = Field(
        30, gt=0, description="replica lag beyond which /readyz reports it degraded"
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("wastetrack")),
        description="embedded database, uploaded photos",
    )
    secret_key: str = Field(
        "",
        repr=False,  # never in a log line or a traceback that prints the settings
        validation_alias=AliasChoices("WASTETRACK_SECRET", "WASTETRACK_SECRET_KEY"),
        description="master secret (>= 32 chars); unset: generated in <data_dir>/keys/master.key",
    )
    secret_file: Path | None = Field(None, description="a file holding the master secret")
    public_base_url: str | None = Field(
        None, description="prefix of QR URLs; default http://{host}:{port}"
    )
    timezone: str = Field("Asia/Shanghai", description="the city's time zone for dates and days")
    hj1276_require_credit_code: bool = Field(
        False,
        description="refuse to tag hazardous waste for a producer without a unified social credit"
        " code (else the batch is tagged without an HJ 1276 数字识别码)",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    access_token_minutes: int = Field(15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(30, ge=1, le=366)
    login_max_failures: int = Field(
        5, ge=1, description="failed logins of one account from one address before back-off"
    )
    login_lock_seconds: int = Field(
        30, ge=1, description="first back-off wait; doubles with each further failure"
    )
    login_lock_max_seconds: int = Field(900, ge=1, description="longest back-off wait")
    login_forget_seconds: int = Field(
        3600, ge=60, description="failed logins are forgotten this long after the first"
    )
    rate_limit_login: str = Field("30/minute", description="login attempts per client address")
    rate_limit_login_failures: str = Field(
        "50/hour", description="failed logins per client address, any usernames (spraying)"
    )
    rate_limit_refresh: str = Field("60/minute", description="token refreshes per client address")
    rate_limit_public: str = Field(
        "30/minute", description="public lookups (/p/, /q/, /r/, /t/) per client address"
    )
    rate_limit_api_key: str = Field("600/minute", description="requests per API key")
    rate_limit_api_key_failures: str = Field(
        "100/hour",
        description="unknown, malformed or revoked API keys per client address; past it the"
        " address's wrong keys are refused until the window ends (a right key always works)",
    )
    trust_proxy: bool = Field(
        False, description="take the client address and scheme from X-Forwarded-For/-Proto"
    )
    allowed_hosts: str = Field(
        "",
        description="further DNS names requests may name in Host, comma-separated (besides"
        " IP addresses, localhost, the host and the public base URL's)",
    )
    allow_demo_logins: bool = Field(
        False,
        description="let the demo's published logins in though other machines reach the"
        " service (`serve --allow-demo-logins`, `demo --allow-demo-logins`)",
    )
    max_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="largest request body except photo uploads"
    )
    photo_max_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    photo_max_pixels: int = Field(40_000_000, ge=1, description="largest photo, width × height")
    sync_max_events: int = Field(500, ge=1)
    db_pool_size: int = Field(
        10, ge=2, description="connections per process: one is kept for writes outside a request"
    )
    manifest_area_code: str = Field(
        "3710", pattern=r"^[0-9]{4}$", description="province + prefecture in manifest numbers"
    )
    manifest_quantity_tolerance: Decimal = Field(
        Decimal("0.05"), ge=0, le=1, description="received vs declared before a discrepancy"
    )
    weight_discrepancy_tolerance: float = Field(
        0.10,
        ge=0,
        le=10,
        description="weighed vs declared kg (a batch's mass balance) before an alert",
    )
    # At most ten years: an interval of more hours than PostgreSQL's integer would fail.
    idle_batch_hours: int = Field(
        168, ge=1, le=87_840, description="hours in one state before an alert"
    )
    leg_overdue_hours: int = Field(
        48,
        ge=1,
        le=87_840,
        description="hours a manifest leg or an in-transit batch may take before an alert",
    )
    alert_refresh_seconds: float = Field(
        300,
        gt=0,
        description="how often time-based alerts are raised (and the day's checkpoints sealed)",
    )
    rollup_fold_seconds: float = Field(
        2, gt=0, description="how often recorded changes are folded into the metric sums"
    )
    custody_partitions_ahead: int = Field(
        2,
        ge=1,
        le=100,
        description="empty custody log partitions (a million batch ids each) kept ahead of the"
        " batch id sequence",
    )
    custody_partition_seconds: float = Field(
        600, gt=0, description="how often the custody log's partitions ahead are checked"
    )
    log_format: str | None = Field(
        None, pattern=r"^(json|console)$", description="json or console; default json unless a TTY"
    )
    log_level: str = Field("INFO", description="root log level: DEBUG, INFO, WARNING…")
    metrics_token: str | None = Field(
        None, repr=False, description="bearer token for /metrics from other hosts"
    )
    webhooks_allow_private: bool = Field(
        False, description="allow webhook targets on private or loopback addresses (on-premise)"
    )
    webhooks_timeout_seconds: float = Field(5, gt=0, description="one webhook POST at most")
    webhooks_max_failures: int = Field(
        10, ge=1, description="consecutive failed rounds before a subscription is disabled"
    )
    webhooks_disable_after_hours: float = Field(
        24,
        ge=0,
        description="how long a subscription must have been failing, besides its failed rounds,"
        " before it is disabled",
    )
    webhooks_retry_seconds: float = Field(
        10, gt=0, description="first retry delay; doubles with each failure of a delivery"
    )
    webhooks_retry_max_seconds: float = Field(3600, gt=0, description="longest retry delay")
    webhooks_dispatch_seconds: float = Field(
        1, gt=0, description="how often the dispatcher looks for new changes when idle"
    )
    webhooks_yield_changes_per_second: float = Field(
        50,
        ge=0,
        description="while changes are recorded faster than this, webhook deliveries wait"
        " (0: never wait)",
    )
    webhooks_yield_seconds: float = Field(
        30, gt=0, description="longest a burst of recording holds webhook deliveries back"
    )
    webhooks_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="how much the webhook deliverer process lowers its CPU priority (os.nice)",
    )
    cosign_pin_failures: str = Field(
        "5/hour", description="wrong PINs per producer before its PINs are locked for the window"
    )
    cosign_pins_per_list: int = Field(
        40, ge=10, le=100, description="one-time PINs on each printed list of a producer"
    )

    @property
    def base_url(self) -> str:
        """Where phones reach the service: the prefix of every QR URL (an IPv6 host in
        brackets, as a URL writes it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (self.public_base_url or f"http://{host}:{self.port}").rstrip("/")

    def answers_to(self, authority: str) -> bool:
        """Whether a request whose Host names this authority (a name or address, a port
        aside) is for this service: an IP address (no web page can point one at this machine),
        localhost, the host it listens on, its public base URL's or one `allowed_hosts` names,
        names compared as requests carry them (`wire_name`). Any other name may be a web
        page's whose owner pointed it at this machine (DNS rebinding): the browser would let
        that page read every answer, a login's tokens with the quick start's published
        passwords too. So may anything but a host and a port (a user, a path)."""
        found = _AUTHORITY.fullmatch(authority)
        if found is None:
            return False
        if found["v6"] is not None:
            return _address(found["v6"])
        if _address(found["name"].removesuffix(".")):
            return True
        name = wire_name(found["name"])
        return name is not None and name in _own_names(
            self.host, self.public_base_url, self.allowed_hosts
        )

    def reached_by_others(self) -> tuple[str, str] | None:
        """What says that other machines reach the service (the setting, and why), or None
        when only this one does: a host beyond loopback, a trusted proxy in front of it (nginx
        terminating TLS on this machine, as docs/security.md advises), a public URL naming
        another host, or the production environment (`demo_logins_refused`)."""
        if not loopback(self.host):
            return "host", f"{self.host} is reachable from other machines"
        if self.trust_proxy:
            return "WASTETRACK_TRUST_PROXY", "a proxy serves it to other machines"
        public = urlsplit(self.public_base_url or "").hostname
        if public is not None and not loopback(public):
            return "WASTETRACK_PUBLIC_BASE_URL", f"its public address names {public}"
        if self.environment == "production":
            return "WASTETRACK_ENVIRONMENT", "it is served in production"
        return None

    def demo_logins_refused(self) -> tuple[str, str] | None:
        """Why the demo's published logins are refused here (`reached_by_others`), or None:
        only this machine reaches the service, or it was told `allow_demo_logins`. `serve`
        refuses to start while such a login works, `demo` to create them, and a login with
        one is refused (whatever order the two commands ran in)."""
        return None if self.allow_demo_logins else self.reached_by_others()

    @field_validator("host")
    @classmethod
    def _a_host(cls, host: str) -> str:
        return a_host(host)

    @field_validator("allowed_hosts")
    @classmethod
    def _names(cls, names: str) -> str:
        for name in names.split(","):
            if name.strip() and wire_name(name) is None:
                raise ValueError(
                    f"{name.strip()!r} is no host name: letters (any script), digits, hyphens,"
                    " underscores and dots (no port, no wildcard)"
                )
        return names

    @field_validator(
        "rate_limit_login",
        "rate_limit_login_failures",
        "rate_limit_refresh",
        "rate_limit_public",
        "rate_limit_api_key",
        "rate_limit_api_key_failures",
        "cosign_pin_failures",
    )
    @classmethod
    def _a_rate(cls, rate: str) -> str:
        # Read when a request is counted: a rate the `limits` library cannot read stops the
        # start, not every login after it (a 500).
        from limits import parse

        try:
            item = parse(rate)
        except ValueError as error:
            raise ValueError(f"{rate!r} is no rate (e.g. 30/minute, 5 per 10 seconds)") from error
        # A count of 0 refuses every request for ever; a window past a year is no rate a
        # service means, and one past PostgreSQL's interval made every login a 500.
        if item.amount < 1:
            raise ValueError(f"{rate!r} allows nothing: a rate counts at least 1")
        if item.get_expiry() > _LONGEST_RATE_WINDOW:
            raise ValueError(f"{rate!r} has a window longer than a year")
        return rate

    @field_validator("*")
    @classmethod
    def _an_integer_the_database_holds(cls, value: object) -> object:
        # Limits and counts reach SQL as parameters typed integer: one past its range would
        # fail every query that reads it (each alert round, each login), not the start.
        # A number of seconds or hours that large overflows the time arithmetic besides.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and abs(value) > INT32_MAX:  # type: ignore[arg-type]
            raise ValueError(f"must be at most {INT32_MAX} (the database's integer)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        # Every day, period and deadline is read in this zone, in Python and in PostgreSQL: a
        # name the time-zone database lacks ("Asia/Beijing") stops the start, not every dated
        # request after it. The IANA names alone: ZoneInfo opens any file of the system's
        # zone folder too (posix/…, right/…, localtime), which PostgreSQL does not know.
        if name not in _iana_zones():
            raise ValueError(f"{name!r} is no IANA time zone (e.g. Asia/Shanghai)")
        return name

    @field_validator("log_level")
    @classmethod
    def _a_level(cls, level: str) -> str:
        # Read when logging is configured: a name logging lacks stops the start there, with a
        # traceback, unless it is refused here.
        if level.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"{level!r} is no log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
        return level.upper()

    @field_validator("database_url", "replica_url")
    @classmethod
    def _a_postgres_url(cls, url: str | None) -> str | None:
        # Read first when the pool or a migration connects: the same refusal, before any command.
        from wastetrack.core.db import credentials_from_url

        if url is not None:
            credentials_from_url(url)
        return url

    @field_validator("public_base_url")
    @classmethod
    def _a_web_address(cls, url: str | None) -> str | None:
        """An http(s) address with a host: the labels' QR codes print it, and `serve` reads its
        host to tell whether other machines reach the service."""
        if url is None:
            return url
        if any(char.isspace() or not char.isprintable() or char in "?#" for char in url):
            # Printed on every label as written: a blank or a control character makes a QR code
            # text, not a link, and a label's path after a query or a fragment opens the root.
            raise ValueError(
                f"{url!r} holds a blank, a control character, a query or a fragment: a QR code"
                " prints the address with a label's path after it"
            )
        try:
            parts = urlsplit(url)
            host, _ = parts.hostname, parts.port
        except ValueError as error:  # an unclosed IPv6 bracket, a port that is no number
            raise ValueError(f"{url!r} is not a web address: {error}") from None
        if parts.scheme.lower() not in ("http", "https") or not host:
            raise ValueError(f"{url!r} is not a web address: http:// or https://, then a host")
        return url

    @field_validator("secret_file")
    @classmethod
    def _a_readable_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{str(path)!r} is no file the service can read")
        return path

    @field_validator("data_dir", mode="before")
    @classmethod
    def _named(cls, path: object) -> object:
        # An empty value (`WASTETRACK_DATA_DIR=` in an env file) is read as a Path of the
        # working directory, where the database, keys and photos would go unannounced.
        if isinstance(path, str) and not path.strip():
            raise ValueError("is empty: name a directory, or leave the variable unset")
        return path

    @field_validator("data_dir")
    @classmethod
    def _a_directory(cls, path: Path, info: ValidationInfo) -> Path:
        # Absolute: PostgreSQL's tools run with a working directory of their own (pg_resetwal
        # and pg_basebackup inside the cluster's folder), where a relative path names another.
        try:
            found = path.expanduser().absolute()
        except RuntimeError as error:  # ~someone of no home this machine knows
            raise ValueError(f"{str(path)!r} names no home directory here") from error
        # The path it names is checked, not as written: `~/a-file` is a file too, and so is
        # the nearest part of `a-file/data` that exists.
        there = next(part for part in (found, *found.parents) if part.exists())
        if not there.is_dir():
            raise ValueError(f"{str(path)!r} is, or lies under, a file, not a directory")
        # The embedded server's wheel hands its folder to pg_ctl through a shell, unquoted: a
        # space or `&` there failed every command with a traceback. With an external database
        # the directory holds photos and keys only, and any name serves.
        if info.data.get("database_url") is None:
            odd = sorted({c for c in str(found) if not (c.isalnum() or c in _SERVER_PATH)})
            if odd:
                raise ValueError(
                    f"{str(found)!r} holds {''.join(odd)!r}: the embedded database's folder takes"
                    f" letters, digits and {''.join(sorted(_SERVER_PATH))!r} only; choose a"
                    " WASTETRACK_DATA_DIR without them, or set WASTETRACK_DATABASE_URL"
                )
        return found

    @model_validator(mode="after")
    def _resolve_secret(self) -> "Settings":
        # No default secret in any environment: a configured one must be strong, and without
        # one the first start generates a key in the data directory (see wastetrack.core.keys).
        from wastetrack.core import keys

        try:
            self.secret_key = keys.resolve_master(
                configured=self.secret_key, secret_file=self.secret_file, data_dir=self.data_dir
            )
            keys.install(self.secret_key, self.data_dir)
        except OSError as error:  # the data directory, or the secret file, cannot be used
            raise ValueError(f"the key files cannot be read or written: {error}") from error
        return self


@lru_cache(maxsize=1)
def _iana_zones() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime"})


@lru_cache
def get_settings() -> Settings:
    return Settings()
