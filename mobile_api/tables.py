"""Any table view as CSV or XLSX: `?format=csv` or `?format=xlsx` on a metric or list route
turns its rows (nested fields flattened as `coverage.numerator`) into a spreadsheet."""

import asyncio
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

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


def _columns(
    model: type[BaseModel], keys: Mapping[str, Sequence[str]], prefix: str = ""
) -> list[str]:
    """A read model's columns as `_flat` names them: a nested model's fields (optional or not)
    each a column of their own; a mapping's keys a column each when `keys` names them (by the
    field's name; a mapping of models, its model's columns per key), else, as they vary, the
    rows' to add."""
    columns: list[str] = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if get_origin(kind) in (Union, UnionType):  # optional: X | None
            kind = next((a for a in get_args(kind) if a is not type(None)), kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            columns += _columns(kind, keys, f"{prefix}{name}.")
        elif get_origin(kind) is not dict:
            columns.append(f"{prefix}{name}")
        else:  # a mapping: a column per key it names, or a model's columns per key
            value = get_args(kind)[-1] if get_args(kind) else None
            for key in keys.get(f"{prefix}{name}", ()):
                if isinstance(value, type) and issubclass(value, BaseModel):
                    columns += _columns(value, keys, f"{prefix}{name}.{key}.")
                else:
                    columns.append(f"{prefix}{name}.{key}")
    return columns


async def export(
    rows: list[Any],
    *,
    name: str,
    format: str,
    timezone: str,
    headers: dict[str, str] | None = None,
    period: CityPeriod | None = None,
    model: type[BaseModel] | None = None,
    keys: Mapping[str, Sequence[str]] | None = None,
) -> Response:
    """The rows as a CSV or XLSX download, times in the city's zone (`timezone`); headers
    added. Rows of a read `model` have its columns, in its order, whatever they hold (an empty
    file its header, a party none of them names its `.id` and `.name`, a mapping the columns
    `keys` lists for it); other columns follow in first-seen order. Figures over a `period`
    name it in every row (`date_from`, `date_to` first, unless a row names its own) and in
    `X-Period`: a saved file says which days it counts."""
    columns = _columns(model, keys or {}) if model is not None else []
    flat = [_flat(row, timezone) for row in rows]
    if period is not None:
        days = _flat({"date_from": period.date_from, "date_to": period.date_to}, timezone)
        flat = [{**days, **row} for row in flat]
        columns = [*days, *(c for c in columns if c not in days)]
        headers = {**(headers or {}), **period.headers()}
    # A nested model left empty flattens to its bare name: its columns stand for it.
    nested = {".".join(c.split(".")[:n]) for c in columns for n in range(1, c.count(".") + 1)}
    flat = [{k: v for k, v in row.items() if k not in nested} for row in flat]
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
