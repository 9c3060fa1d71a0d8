"""Table views as CSV (UTF-8 with BOM, so spreadsheet programs read Chinese) or XLSX."""

import csv
import io
from collections.abc import Sequence
from typing import Any


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str) -> bytes:
    # Imported on the first XLSX a process makes: openpyxl adds about 7 MB to a worker, and
    # most workers never export a spreadsheet.
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(list(headers))
    for row in rows:
        sheet.append(
            [str(v) if v is not None and not isinstance(v, int | float) else v for v in row]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
