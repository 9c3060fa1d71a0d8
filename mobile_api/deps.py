"""Request dependencies, declared once as Annotated aliases."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Response
from fastapi.security import OAuth2PasswordBearer

from mobile_api.presenters import link_next
from schemas.base import Id
from wastetrack.apikeys import service as apikeys
from wastetrack.audit import service as audit
from wastetrack.auth import service as auth
from wastetrack.auth.models import Role
from wastetrack.core import cityday, db, idempotency, observability, paging, ratelimit, replica
from wastetrack.core.commands import Day
from wastetrack.core.errors import Forbidden, Unauthorized, ValidationFailed
from wastetrack.core.principal import Principal
from wastetrack.core.settings import Settings
from wastetrack.custody.posts import PostQueue
from wastetrack.registry import service as registry

_bearer = OAuth2PasswordBearer(tokenUrl="/m/v1/auth/token", auto_error=False)


def app_settings(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_app_settings(request: Request) -> Settings:
    return app_settings(request)


AppSettings = Annotated[Settings, Depends(get_app_settings)]


def proxied(request: Request, settings: Settings, header: str) -> str | None:
    """What a proxy the service trusts says in an X-Forwarded-* header: its last hop. The
    hops before it are the client's to write (a proxy appends to what it was sent, on the
    same line or on a line of its own: RFC 9110 §5.3 reads the lines as one list, in order),
    so an earlier hop would let each request pose as a new address. None when the service
    trusts no proxy or the header is absent."""
    if not settings.trust_proxy:
        return None
    last = ",".join(request.headers.getlist(header)).split(",")[-1].strip()
    return last or None


async def _client_address(request: Request, settings: AppSettings) -> str:
    """Who is asking, for rate limits: the peer, or, behind a proxy the service trusts, the
    address that proxy added (`proxied`)."""
    forwarded = proxied(request, settings, "x-forwarded-for")
    if forwarded:
        return forwarded[:64]
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(_client_address)]


def served_over_https(request: Request, settings: Settings) -> bool:
    """Whether the client reached us over HTTPS: directly (or via uvicorn's --proxy-headers),
    or through a trusted proxy that says so in X-Forwarded-Proto."""
    if request.url.scheme == "https":
        return True
    return (proxied(request, settings, "x-forwarded-proto") or "").lower() == "https"


def _limited(scope: str, setting: str) -> Any:
    async def check(address: ClientAddress, settings: AppSettings) -> None:
        await ratelimit.hit(scope=scope, key=address, rate=getattr(settings, setting))

    return Depends(check)


# Per client address, in the database so that every worker counts together; declared in a
# route's `dependencies` so the count is taken before (and outside) its transaction.
LoginRateLimit = _limited("login", "rate_limit_login")
RefreshRateLimit = _limited("refresh", "rate_limit_refresh")
PublicRateLimit = _limited("public", "rate_limit_public")


async def _transaction(request: Request) -> AsyncIterator[None]:
    """The request's one transaction: committed before the response leaves, rolled back on
    any error; begun in arrival order when the pool is busy. A request named by an
    Idempotency-Key marks its claim committed in it, with its writes."""
    async with db.transaction():
        yield
        claim = request.scope.get("state", {}).get(idempotency.CLAIM)
        if claim is not None:
            await idempotency.mark_committed(owner=claim[0], key=claim[1])


Transaction = Annotated[None, Depends(_transaction, scope="function")]


async def _posts(request: Request) -> PostQueue:
    posts: PostQueue = request.app.state.posts
    return posts


# The worker's queue of single posts: the two recording routes record through it, in a
# transaction of its own shared with the posts waiting beside them, instead of `Transaction`.
Posts = Annotated[PostQueue, Depends(_posts)]


async def _replica_read() -> AsyncIterator[None]:
    """A dashboard, metric or export read: on a read-only snapshot of the replica when
    WASTETRACK_REPLICA_URL is set (it may lag the primary by the replication delay)."""
    async with replica.reading():
        yield


# Declared after the route's other dependencies: authentication still reads the primary.
ReplicaRead = Annotated[None, Depends(_replica_read, scope="function")]


async def _current_user(
    request: Request, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    # The settings straight from the app, not as a dependency of their own: every
    # authenticated request passes here, and FastAPI spends about 20 µs on each dependency.
    settings = app_settings(request)
    if not token:
        raise Unauthorized("a bearer access token is required")
    if token.startswith(apikeys.TOKEN_PREFIX):
        # An API key: its service user, limited to the routes its scopes open.
        principal, scopes = await apikeys.authenticate(
            token=token, settings=settings, address=await _client_address(request, settings)
        )
        route = request.scope.get("route")
        apikeys.check_scope(
            scopes=scopes,
            method=request.method,
            route_path=getattr(route, "path", request.url.path),
        )
    else:
        principal = await auth.principal_from_access_token(token=token, settings=settings)
    return acting(principal)


def acting(principal: Principal) -> Principal:
    """The one place a request names who makes it, however it logged in (a bearer token, an
    API key, the dashboard's cookie): its log line's user and organization, and the audit
    log's actor."""
    observability.bind_principal(
        user_id=principal.user_id, organization_id=principal.organization_id
    )
    audit.bind_actor(user_id=principal.user_id, api_key_id=principal.api_key_id)
    return principal


CurrentUser = Annotated[Principal, Depends(_current_user)]


def require(*roles: Role, detail: str | None = None) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only a user with one of `roles`; the refusal says
    `detail`, or which roles it needs."""
    refusal = detail or f"this needs the role {' or '.join(r.value for r in roles)}"

    async def check(user: CurrentUser) -> Principal:
        if user.role not in roles:
            raise Forbidden(refusal, field="role")
        return user

    return check


ManagerOnly = Annotated[Principal, Depends(require(Role.manager, Role.admin))]
AdminOnly = Annotated[Principal, Depends(require(Role.admin))]


async def _region_scoped(
    user: ManagerOnly,
    region_id: Annotated[
        Id | None, Query(description="narrow to this region's subtree (within yours)")
    ] = None,
) -> Principal:
    if region_id is None:
        return user
    region = await registry.named_region(user, region_id)
    return replace(user, region_path=region.path)


# A manager whose region may be narrowed by ?region_id= for metrics over a sub-region.
RegionScoped = Annotated[Principal, Depends(_region_scoped)]


MAX_PERIOD_YEARS = 5


@dataclass(frozen=True, slots=True)
class CityPeriod:
    """The calendar days (in the city's time zone, both included) a metric, register or ledger
    covers; ``defaulted`` when the request named neither end."""

    date_from: date
    date_to: date
    defaulted: bool = False

    def headers(self) -> dict[str, str]:
        """``X-Period: 2026-01-01/2026-11-30`` (an ISO 8601 interval): the period used."""
        return {"X-Period": f"{self.date_from.isoformat()}/{self.date_to.isoformat()}"}


DateFrom = Annotated[
    Day | None,
    Query(description="first city day, included; default 1 January of date_to's year"),
]
DateTo = Annotated[Day | None, Query(description="last city day, included; default today")]


def _years_after(day: date, years: int) -> date:
    if day.year + years > date.max.year:
        return date.max
    if (day.month, day.day) == (2, 29):
        return date(day.year + years, 3, 1)
    return day.replace(year=day.year + years)


def check_period(
    date_from: date | None,
    date_to: date | None,
    *,
    to_sent: bool = True,
    most_days: int | None = None,
) -> None:
    """Refuse a reversed period or one longer than MAX_PERIOD_YEARS (or `most_days`), naming
    date_to — or date_from when date_to was not sent (`to_sent`) but is its default: the field
    the client sent is the one to change."""
    if date_from is None or date_to is None:
        return
    field = "date_to" if to_sent else "date_from"
    given = "" if to_sent else ", its default"
    if date_from > date_to:
        raise ValidationFailed(
            f"date_to ({date_to}{given}) precedes date_from ({date_from})", field=field
        )
    if most_days is not None and (date_to - date_from).days >= most_days:
        raise ValidationFailed(f"a period covers at most {most_days} days", field=field)
    if date_to >= _years_after(date_from, MAX_PERIOD_YEARS):
        raise ValidationFailed(f"a period covers at most {MAX_PERIOD_YEARS} years", field=field)


def _periods(*, most_days: int | None = None) -> Callable[..., Awaitable[CityPeriod]]:
    async def period(
        response: Response,
        settings: AppSettings,
        date_from: DateFrom = None,
        date_to: DateTo = None,
    ) -> CityPeriod:
        today = cityday.today(settings.timezone)
        end = date_to or today
        period = CityPeriod(
            date_from=date_from or end.replace(month=1, day=1),
            date_to=end,
            defaulted=date_from is None and date_to is None,
        )
        check_period(
            period.date_from, period.date_to, to_sent=date_to is not None, most_days=most_days
        )
        response.headers.update(period.headers())
        return period

    return period


# ?date_from=&date_to=, both optional: the current calendar year to date by default. The period
# used comes back in the X-Period header (routes answering a file add period.headers()).
Period = Annotated[CityPeriod, Depends(_periods())]
# The same, of at most a year: a list with a row per day (the calendar's).
YearPeriod = Annotated[CityPeriod, Depends(_periods(most_days=366))]


OpenFrom = Annotated[Day | None, Query(description="first city day, included")]
OpenTo = Annotated[Day | None, Query(description="last city day, included")]


async def _open_period(
    date_from: OpenFrom = None, date_to: OpenTo = None
) -> tuple[date | None, date | None]:
    check_period(date_from, date_to)
    return date_from, date_to


# The same checks for a route that gives an omitted period its own meaning (the last N days).
OpenPeriod = Annotated[tuple[date | None, date | None], Depends(_open_period)]


T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list a client asks for (docs/integrations.md, "Reading a list")."""

    limit: int
    cursor: str | None
    request: Request
    response: Response

    def answer(self, rows: T, next_cursor: str | None) -> T:
        """The page's rows; a `Link` header to the next page when there is one."""
        if next_cursor is not None:
            link_next(self.request, self.response, cursor=next_cursor)
        return rows

    async def read(
        self, lister: Callable[..., Awaitable[tuple[T, str | None]]], **filters: Any
    ) -> T:
        """The page `lister` (a service's list, given `filters`) reads, answered as above."""
        return self.answer(*await lister(**filters, limit=self.limit, cursor=self.cursor))


async def _paging(
    request: Request,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=paging.MAX_LIMIT, description="the most rows in this page")
    ] = paging.DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            max_length=512,
            description='the next page: from the `Link: <…>; rel="next"` header of the last;'
            " empty or absent, the first",
        ),
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor or None, request=request, response=response)


Paging = Annotated[PageRequest, Depends(_paging)]
