"""Every list that grows with the records is read page by page, one way (docs/integrations.md,
"Reading a list"): `limit` and `cursor`, a `Link: <…>; rel="next"` header while more remain.
Walking the pages gives each row once, in the order of the whole list, rows that tie on the
order column included; a cursor or a limit this server did not issue is a 422 naming it."""

import base64
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from tests.factories import World, medical_bag
from wastetrack.alerts import service as alerts
from wastetrack.alerts.models import Alert
from wastetrack.auth import service as auth
from wastetrack.batches.models import Batch
from wastetrack.core import paging
from wastetrack.core.errors import ValidationFailed
from wastetrack.fleet import service as fleet
from wastetrack.manifests import queries as manifests
from wastetrack.manifests.models import Manifest
from wastetrack.ports import deliveries
from wastetrack.ports.access import NEWEST_STARTED
from wastetrack.ports.models import Delivery
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind
from wastetrack.webhooks.models import WebhookDelivery

# Lists that do not grow with the records: reference data of a bounded size, one batch's or
# one period's rows, a user's own few keys and subscriptions. Every other list is paged.
UNPAGED = {
    "/admin/v1/regions",  # the city's administrative divisions
    "/admin/v1/calendar",  # the official calendar's days
    "/m/v1/catalog/streams",
    "/m/v1/catalog/categories",
    "/m/v1/catalog/methods",
    "/m/v1/sea-areas",
    "/m/v1/ports/{port_id}/berths",
    "/m/v1/batches/{code}/events",  # one batch's chain
    "/m/v1/registers/incoming",  # one period's register (and its file)
    "/m/v1/registers/outgoing",
    "/m/v1/registers/medical-handover",
    "/m/v1/api-keys",
    "/m/v1/webhooks",
    "/admin/v1/organizations/{organization_id}/licences",
    "/m/v1/checkpoints",  # one per sealed day, from `since`
}
# Feeds read on in the order of their transactions (`after`, and `next` in the body) as they
# grow: a client polls them for what is new, which a list's cursor cannot promise.
FEEDS = {"/m/v1/changes", "/m/v1/audit"}


def _lists(app: FastAPI) -> dict[str, dict[str, Any]]:
    """GET operations whose answer is a JSON array or a page of one."""
    found = {}
    for path, item in app.openapi()["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        content = operation["responses"].get("200", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        if schema.get("type") == "array" or schema.get("$ref", "").endswith("Page"):
            found[path] = operation
    return found


def test_every_list_that_grows_is_paged_the_one_way(app: FastAPI) -> None:
    lists = _lists(app)
    assert UNPAGED <= set(lists), UNPAGED - set(lists)
    paged = {path: op for path, op in lists.items() if path not in UNPAGED | FEEDS}
    assert {"/m/v1/deliveries", "/admin/v1/organizations", "/m/v1/batches"} <= set(paged)
    unpaged = []
    for path, operation in paged.items():
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if not {"limit", "cursor"} <= names or "Link" not in operation["responses"]["200"].get(
            "headers", {}
        ):
            unpaged.append(path)
    assert unpaged == []
    for path in UNPAGED:
        names = {p["name"] for p in lists[path].get("parameters", []) if p["in"] == "query"}
        assert "cursor" not in names, path


async def _walk(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], limit: int
) -> tuple[list[Any], int]:
    """Every row of a list, following the Link headers from its first page of `limit` rows
    (or from the page `path` names); and how many pages it took."""
    rows: list[Any] = []
    pages = 0
    url: str | None = path if "limit=" in path else f"{path}?limit={limit}"
    while url is not None:
        assert pages < 50, "the pages do not come to an end"
        answer = await client.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        page = body["items"] if isinstance(body, dict) else body
        assert len(page) <= limit
        rows += page
        pages += 1
        found = re.fullmatch(r'<([^>]+)>; rel="next"', answer.headers.get("Link", ""))
        url = found[1] if found else None
        assert url is None or len(page) == limit
    return rows, pages


def _float_replacement(world: World, day: date) -> dict[str, Any]:
    return {
        "client_event_id": str(uuid.uuid4()),
        "region_id": world.regions["other_town"].id,
        "replaced_on": day.isoformat(),
        "foam_floats_removed": 100,
        "new_floats_installed": 90,
        "new_float_type": "环保型塑料浮球",
    }


async def test_float_replacements_tied_on_their_day_come_once_each_in_order(
    client: httpx.AsyncClient, world: World
) -> None:
    today = datetime.now(UTC).date() - timedelta(days=1)
    days = [today] * 5 + [today - timedelta(days=1)] * 3 + [today - timedelta(days=9)]
    for day in days:
        made = await client.post(
            "/m/v1/float-replacements",
            json=_float_replacement(world, day),
            headers=world.headers("port"),
        )
        assert made.status_code == 201, made.text
    headers = world.headers("manager")
    whole = (await client.get("/m/v1/float-replacements?limit=500", headers=headers)).json()
    assert (
        len(whole) == len(days)
        and "Link"
        not in (await client.get("/m/v1/float-replacements?limit=500", headers=headers)).headers
    )
    for limit in (1, 2, 3, 4):
        rows, pages = await _walk(client, "/m/v1/float-replacements", headers, limit)
        assert [r["id"] for r in rows] == [r["id"] for r in whole], limit
        assert pages == -(-len(days) // limit)
    assert [r["replaced_on"] for r in whole] == sorted(
        (r["replaced_on"] for r in whole), reverse=True
    )


async def _alerts(world: World, *times: datetime) -> None:
    """Open alerts of the clinic's, raised at `times`."""
    for n, moment in enumerate(times):
        await Alert.create(
            kind="idle_batch",
            subject=f"S{n}",
            organization=world.orgs["clinic"],
            region_path=world.regions["village"].path,
            raised_at=moment,
        )


async def test_alerts_tied_on_their_time_come_once_each_newest_first(
    client: httpx.AsyncClient, world: World
) -> None:
    moment = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    await _alerts(world, *[moment] * 5, *[moment - timedelta(microseconds=1)] * 2)
    headers = world.headers("manager")
    rows, pages = await _walk(client, "/m/v1/alerts", headers, limit=2)
    expected = await Alert.all().order_by("-raised_at", "-id").values_list("id", flat=True)
    assert [r["id"] for r in rows] == expected and pages == 4
    # A file holds every alert, whatever a page's limit.
    file = await client.get("/m/v1/alerts?format=csv&limit=2", headers=headers)
    assert file.status_code == 200 and len(file.text.strip().splitlines()) == 1 + 7


async def test_alerts_read_for_two_reasons_come_once_each_in_the_order_of_the_whole(
    client: httpx.AsyncClient, world: World
) -> None:
    """A town manager reads their office's alerts and every alert in their town: an alert
    both reasons cover comes once, one neither covers never, ties on the time keep their
    order, and the walk is the recount of the rule over every alert."""
    office, town = world.orgs["town_office"], world.regions["other_town"]
    where = [  # (organization, region): both reasons, own only, region only, neither
        (office, town),
        (office, world.regions["village"]),
        (world.orgs["other_clinic"], town),
        (world.orgs["clinic"], world.regions["village"]),
    ]
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for n in range(18):
        organization, region = where[n % 4]
        await Alert.create(
            kind="idle_batch",
            subject=f"W{n}",
            organization=organization,
            region_path=region.path,
            raised_at=moment - timedelta(minutes=n // 3),  # ties in threes
            acknowledged_at=moment if n % 5 == 0 else None,
        )
    reads = [
        a
        for a in await Alert.all()
        if a.organization_id == office.id or a.region_path.startswith(town.path)
    ]
    newest_first = sorted(reads, key=lambda a: (a.raised_at, a.id), reverse=True)
    headers = world.headers("town_manager")
    for limit in (1, 2, 3, 5, 500):
        every = f"/m/v1/alerts?open_only=false&limit={limit}"
        rows, _ = await _walk(client, every, headers, limit)
        assert [r["id"] for r in rows] == [a.id for a in newest_first], limit
        opened, _ = await _walk(client, "/m/v1/alerts", headers, limit)  # open ones
        assert [r["id"] for r in opened] == [a.id for a in newest_first if not a.acknowledged_at]


async def test_a_page_read_before_new_rows_arrive_reads_on_without_repeats(
    client: httpx.AsyncClient, world: World
) -> None:
    """Unlike an offset, a cursor holds its place: rows made after page one neither repeat a
    row of it nor push one out of the next page (oldest-first lists give them at the end)."""
    city = world.regions["city"].id
    first = await client.get("/admin/v1/organizations?limit=4", headers=world.headers("admin"))
    seen = [o["id"] for o in first.json()]
    for n in range(3):
        await registry.create_organization(
            name=f"新企业{n}", kind=OrganizationKind.enterprise, region_id=city
        )
    url = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"])
    assert url is not None
    rest, _ = await _walk(client, url[1], world.headers("admin"), 4)
    ids = seen + [o["id"] for o in rest]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == len(world.orgs) + 3


async def test_drivers_sharing_a_name_come_once_each_by_name(
    client: httpx.AsyncClient, world: World
) -> None:
    carrier = world.principals["carrier"]
    for n, name in enumerate(["王师傅", "李师傅", "王师傅", "王师傅", "张师傅", "李师傅"]):
        await fleet.create_driver(
            principal=carrier, name=name, licence_number=f"37108219800101{n:04d}"
        )
    rows, _ = await _walk(client, "/m/v1/drivers", world.headers("carrier"), limit=2)
    assert [(r["name"], r["id"]) for r in rows] == sorted((r["name"], r["id"]) for r in rows)
    assert len({r["id"] for r in rows}) == 6


async def test_the_longest_names_link_to_a_page_that_is_read(
    client: httpx.AsyncClient, world: World
) -> None:
    """A cursor carries the order column's value: the longest name the column holds, in
    four-byte characters, still makes a cursor the server reads back."""
    carrier = world.principals["carrier"]
    for n in range(3):
        await fleet.create_driver(principal=carrier, name="𠀀" * 64, licence_number=f"L{n}")
    rows, pages = await _walk(client, "/m/v1/drivers", world.headers("carrier"), limit=1)
    assert len({r["id"] for r in rows}) == 3 and pages == 3
    first = await client.get("/m/v1/drivers?cursor=", headers=world.headers("carrier"))
    assert [r["id"] for r in first.json()] == [r["id"] for r in rows]  # empty: the first page


async def test_an_alerts_file_past_its_size_links_to_the_next_file(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "FILE_LIMIT", 3)
    await _alerts(world, *[datetime(2026, 3, 1, 8, 0, tzinfo=UTC)] * 7)
    sizes = []
    url: str | None = "/m/v1/alerts?format=csv"
    while url is not None:
        file = await client.get(url, headers=world.headers("manager"))
        assert file.status_code == 200, file.text
        sizes.append(len(file.text.strip().splitlines()) - 1)
        found = re.fullmatch(r'<([^>]+)>; rel="next"', file.headers.get("Link", ""))
        url = found[1] if found else None
    assert sizes == [3, 3, 1]


async def test_the_batch_page_gives_its_cursor_in_the_body_and_the_link(
    client: httpx.AsyncClient, world: World
) -> None:

    for _ in range(3):
        made = await client.post(
            "/m/v1/events", json=medical_bag(), headers=world.headers("clinic")
        )
        assert made.status_code == 201, made.text
    first = await client.get("/m/v1/batches?limit=2", headers=world.headers("clinic"))
    cursor = first.json()["next_cursor"]
    assert cursor and f"cursor={cursor}" in unquote(first.headers["Link"])
    rows, _ = await _walk(client, "/m/v1/batches", world.headers("clinic"), limit=2)
    assert len({r["code"] for r in rows}) == 3


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/m/v1/deliveries", "cursor=not-a-cursor", "cursor"),
        ("/m/v1/deliveries", f"cursor={_cursor('yesterday|5')}", "cursor"),
        ("/m/v1/deliveries", f"cursor={_cursor('2026-01-01T00:00:00|5')}", "cursor"),  # no zone
        ("/m/v1/deliveries", f"cursor={_cursor('9999-01-01T00:00:00+00:00|5')}", "cursor"),
        ("/m/v1/float-replacements", f"cursor={_cursor('2026-13-01|5')}", "cursor"),
        ("/admin/v1/organizations", f"cursor={_cursor('5|99999999999')}", "cursor"),
        ("/admin/v1/organizations", f"cursor={_cursor('5|-1')}", "cursor"),
        ("/m/v1/drivers", "cursor=" + _cursor("王\x00|5"), "cursor"),
        ("/m/v1/drivers", "cursor=" + "A" * 513, "cursor"),
        ("/m/v1/drivers", "cursor=" + _cursor("x" * 65 + "|1"), "cursor"),  # names hold 64
        ("/m/v1/drivers", "cursor=" + _cursor("|5"), "cursor"),  # no name is empty
        ("/m/v1/vehicles", "cursor=" + _cursor("A" * 17 + "|1"), "cursor"),  # plates hold 16
        ("/m/v1/vehicles", "cursor=" + _cursor("2026-01-01T00:00:00Z|1"), "cursor"),
        ("/m/v1/manifests", "limit=0", "limit"),
        ("/m/v1/batches", f"limit={paging.MAX_LIMIT + 1}", "limit"),
    ],
)
async def test_a_cursor_or_limit_not_issued_is_refused_naming_it(
    client: httpx.AsyncClient, world: World, path: str, query: str, field: str
) -> None:
    who = "carrier" if path in ("/m/v1/drivers", "/m/v1/vehicles") else "admin"
    answer = await client.get(f"{path}?{query}", headers=world.headers(who))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field


def test_a_cursor_carries_its_row_and_nothing_else() -> None:
    moment = datetime(2026, 12, 3, 1, 2, 3, 4, tzinfo=UTC)
    assert paging.decode(paging.encode(moment, 7), datetime) == (moment, 7)
    assert paging.decode(paging.encode(date(2026, 1, 2), 8), date) == (date(2026, 1, 2), 8)
    assert paging.decode(paging.encode("鲁K|123", 9), str) == ("鲁K|123", 9)
    assert paging.decode(paging.encode(Decimal(5), 5), int) == (5, 5)


def test_a_cursors_id_is_as_wide_as_its_tables_key() -> None:
    """A bigint-keyed table's cursor carries ids past 2³¹ − 1; a 32-bit table's cannot."""
    past = paging.encode(2**31, 2**31)
    assert paging.decode(past, int, wide=True) == (2**31, 2**31)
    assert paging.wide_ids(WebhookDelivery) and not paging.wide_ids(Batch)
    with pytest.raises(ValidationFailed):
        paging.decode(past, int)
    with pytest.raises(ValidationFailed):
        paging.decode(paging.encode(2**63, 2**63), int, wide=True)


@pytest.mark.parametrize(
    ("who", "listed", "indexes"),
    [
        # Their office's alerts, and their town's.
        ("town_manager", "alerts", ["alert_organization", "alert_region_town"]),
        # Deliveries at their port, and those made for them as a vessel's owner.
        ("port", "deliveries", ["delivery_port", "delivery_owner"]),
        # Manifests their office produced, receives or carries (a leg's), and their town's.
        (
            "town_manager",
            "manifests",
            [
                "manifest_producer",
                "manifest_receiver",
                "manifest_leg_carrier",
                "manifest_region_town",
            ],
        ),
    ],
)
async def test_each_reason_to_read_a_row_is_read_from_an_index_of_its_own(
    world: World, who: str, listed: str, indexes: list[str]
) -> None:
    """A page merges one keyset-ordered read per reason (`paging.merged`), each of which may
    stop after a page whatever the table's size: with the whole list's own index gone (a
    list by id keeps its primary key) and scans of the table ruled out (a handful of rows, so
    the planner may rightly prefer either), the plan shows an index for each reason, sought
    from the cursor on (a carrier's, through its legs, at the manifest's key)."""
    principal = await auth.principal_for(world.users[who])
    query, order, reasons = {
        "alerts": (Alert.filter(acknowledged_at=None), alerts.NEWEST_RAISED, alerts.reasons),
        "deliveries": (Delivery.all(), NEWEST_STARTED, deliveries.delivery_reasons),
        "manifests": (Manifest.all(), paging.NEWEST_ID, manifests.reasons),
    }[listed]
    last = datetime(2026, 3, 1, tzinfo=UTC) if order.kind is datetime else 10**6
    cursor = paging.encode(last, 10**6)
    sql, params = paging.merged(query, order, reasons(principal), limit=51, cursor=cursor)
    async with in_transaction() as conn:
        await conn.execute_query("SET LOCAL enable_seqscan = off")
        await conn.execute_query("SET LOCAL lock_timeout = '10s'")
        if order.column != "id":
            await conn.execute_query(f"DROP INDEX {query.model._meta.db_table}_keyset_idx")
        rows = await conn.execute_query_dict(f"EXPLAIN {sql}", params)
        await conn.rollback()
    plan = "\n".join(row["QUERY PLAN"] for row in rows)
    assert "Seq Scan" not in plan, plan
    # One read per reason, each stopping after a page, merged.
    assert plan.count("->  Limit") == len(indexes) and "Append" in plan, plan
    for index in indexes:
        assert f"{index}_keyset_idx" in plan or f"{index}_idx" in plan, plan
    # A party's and a region's read walk their index in the list's order, with no sort of
    # their rows: a page is read whatever the table's size (a carrier's, through its legs,
    # is still the planner's walk or sort).
    in_order = re.findall(r"->  Limit .*\n\s*->  Index (?:Only )?Scan Backward using (\w+)", plan)
    assert sorted(in_order) == sorted(
        f"{index}_keyset_idx" for index in indexes if index != "manifest_leg_carrier"
    ), plan
    # Each read starts at the cursor: the order column bounds its index range.
    bound = "<" if order.column == "id" else "<="  # by id alone, the cursor's id is the bound
    sought = re.findall(rf"Index Cond: .*\({order.column} {bound} ", plan)
    assert len(sought) == len(indexes), plan


@pytest.mark.parametrize(
    "order",
    [
        alerts.NEWEST_RAISED,
        paging.Order("raised_at", datetime, descending=False),
        paging.NEWEST_ID,
        paging.OLDEST_ID,
    ],
)
async def test_a_page_merged_from_its_reasons_is_the_page_of_their_or(
    world: World, order: paging.Order
) -> None:
    """However the list is ordered, a page merged from one read per reason holds the rows, and
    the cursor the place, that one query for the OR of the reasons gives (ties included), page
    after page, with a filter common to all reasons (open alerts only)."""
    office, town = world.orgs["town_office"], world.regions["other_town"]
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    for n in range(23):
        await Alert.create(
            kind="idle_batch",
            subject=f"M{n}",
            organization=[office, world.orgs["clinic"], world.orgs["other_clinic"]][n % 3],
            region_path=[town.path, world.regions["village"].path][n % 2],
            raised_at=moment - timedelta(minutes=(n * 7) % 5),  # ties, out of id order
            acknowledged_at=moment if n % 6 == 0 else None,
        )
    reasons = [Q(organization_id=office.id), Q(region_path__startswith=town.path)]
    opened = Alert.filter(acknowledged_at=None)
    for limit in (1, 2, 4, 50):
        cursor: str | None = None
        merged: list[int] = []
        while True:
            rows, next_cursor = await paging.page(
                opened, order, limit=limit, cursor=cursor, reasons=reasons
            )
            plain, plain_cursor = await paging.page(
                opened.filter(paging.any_of(reasons)), order, limit=limit, cursor=cursor
            )
            assert [a.id for a in rows] == [a.id for a in plain], (limit, cursor)
            assert next_cursor == plain_cursor
            merged += [a.id for a in rows]
            if next_cursor is None:
                break
            cursor = next_cursor
        expected = [
            a.id
            for a in await opened
            if a.organization_id == office.id or a.region_path.startswith(town.path)
        ]
        assert sorted(merged) == sorted(expected) and len(set(merged)) == len(merged), limit


async def test_a_row_that_leaves_the_list_while_its_page_is_read_does_not_end_the_walk(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page is read in two statements (the merged keys, then the rows): an alert
    acknowledged in between is left out of the open alerts' page, and the walk still goes on
    to the alerts after it."""
    office, town = world.orgs["town_office"], world.regions["other_town"]
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    made = [
        await Alert.create(
            kind="idle_batch",
            subject=f"L{n}",
            organization=office,
            region_path=town.path,
            raised_at=moment - timedelta(minutes=n),
        )
        for n in range(4)
    ]
    real = paging._merged

    class Meddling:
        """The database, with the newest alert acknowledged right after the keys are read."""

        def __init__(self, connection: Any) -> None:
            self.connection = connection

        async def execute_query(self, sql: str, params: list[Any]) -> Any:
            answer = await self.connection.execute_query(sql, params)
            await Alert.filter(id=made[0].id).update(acknowledged_at=moment)
            return answer

    def meddled(*args: Any, **kwargs: Any) -> tuple[str, list[Any], Any]:
        sql, params, connection = real(*args, **kwargs)
        return sql, params, Meddling(connection)

    monkeypatch.setattr(paging, "_merged", meddled)
    principal = await auth.principal_for(world.users["town_manager"])
    rows, cursor = await alerts.list_alerts(principal=principal, open_only=True, limit=2)
    assert [a.id for a in rows] == [made[1].id] and cursor is not None
    rest, last = await alerts.list_alerts(
        principal=principal, open_only=True, limit=2, cursor=cursor
    )
    assert [a.id for a in rest] == [made[2].id, made[3].id] and last is None


async def test_a_file_of_alerts_holds_more_rows_than_a_statement_has_parameters(
    client: httpx.AsyncClient, world: World
) -> None:
    """A file is read whole, in one query for the OR of the reader's reasons: 33,000 alerts, more
    than one statement may carry parameters (32,767), come in one file."""
    office, town = world.orgs["town_office"], world.regions["other_town"]
    async with in_transaction() as conn:
        await conn.execute_query(
            "INSERT INTO alert (kind, subject, organization_id, region_path, raised_at, details)"
            " SELECT 'idle_batch', 'F' || g, $1, $2, $3::timestamptz - g * interval '1 s', '{}'"
            " FROM generate_series(1, 33000) AS g",
            [office.id, town.path, datetime(2026, 3, 1, tzinfo=UTC)],
        )
    file = await client.get("/m/v1/alerts?format=csv", headers=world.headers("town_manager"))
    assert file.status_code == 200, file.text
    assert len(file.text.strip().splitlines()) == 1 + 33000


def test_every_answer_pointing_at_a_next_page_or_file_declares_its_link(app: FastAPI) -> None:
    """A route read page by page or file by file (it takes where to go on from: `cursor`, or
    the audit file's `after`) declares the `Link: <…>; rel="next"` it answers with: the audit
    file's did not, so a client generated from the document never learnt of the next file
    (contracts review)."""
    paged = {
        f"{method.upper()} {path}": operation
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
        if {"cursor", "after"} & {p["name"] for p in operation.get("parameters", [])}
    }
    assert "GET /m/v1/audit.csv" in paged and len(paged) > 10
    # These say where to go on from in their body (`next`), as a feed does.
    in_the_body = {"GET /m/v1/changes", "GET /m/v1/audit"}
    undeclared = [
        name
        for name, operation in paged.items()
        if name not in in_the_body
        and not any(
            "Link" in answer.get("headers", {})
            for status, answer in operation["responses"].items()
            if status.startswith("2")
        )
    ]
    assert not undeclared, undeclared
