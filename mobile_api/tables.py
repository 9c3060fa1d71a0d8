"""Any table view as CSV or XLSX: `?format=csv` or `?format=xlsx` on a metric or list route
turns its rows (nested fields flattened as `coverage.numerator`) into a spreadsheet."""

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from pydantic import BaseModel

from mobile_api.deps import CityPeriod
from wastetrack.core.cityday import in_city
from wastetrack.core.exports import to_csv, to_xlsx

Format = Annotated[
    Literal["json", "csv", "xlsx"], Query(description="json, or a spreadsheet of the table")
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _flat(value: Any, timezone: str, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, timezone, f"{prefix}{key}."))
        return out
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, datetime):  # the city's clock and day, with its offset
        value = in_city(value, timezone).isoformat()
    elif isinstance(value, date):
        value = value.isoformat()
    return {prefix.rstrip("."): value}


async def export(
    rows: list[Any],
    *,
    name: str,
    format: str,
    timezone: str,
    headers: dict[str, str] | None = None,
    period: CityPeriod | None = None,
) -> Response:
    """The rows as a CSV or XLSX download, columns in first-seen order, times in the city's
    zone (`timezone`); headers added. Figures over a `period` name it in every row (`date_from`,
    `date_to` first, unless a row names its own) and in `X-Period`: a saved file says which
    days it counts."""
    if period is not None:
        days = {"date_from": period.date_from, "date_to": period.date_to}
        rows = [{**days, **_flat(row, timezone)} for row in rows]
        headers = {**(headers or {}), **period.headers()}
    flat = [_flat(row, timezone) for row in rows]
    columns: list[str] = []
    for row in flat:
        columns += [key for key in row if key not in columns]
    table = [[row.get(h) for h in columns] for row in flat]
    return await download(
        columns, table, filename=f"{name}.{format}", sheet=name, format=format, headers=headers
    )


async def download(
    columns: Sequence[str],
    table: Sequence[Sequence[Any]],
    *,
    filename: str,
    sheet: str,
    format: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A table as a CSV or XLSX attachment. The file is written in a thread: a large table
    takes CPU (and the first XLSX of a process imports openpyxl), and the event loop keeps
    serving meanwhile."""
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})}
    if format == "xlsx":
        book = await asyncio.to_thread(to_xlsx, columns, table, title=sheet)
        return Response(book, media_type=XLSX, headers=disposition)
    text = await asyncio.to_thread(to_csv, columns, table)
    return Response(text, media_type="text/csv; charset=utf-8", headers=disposition)
