"""Table views as CSV (UTF-8 with BOM, so spreadsheet programs read Chinese) or XLSX."""

import csv
import io
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from wastetrack.core.commands import UNHELD

# Text a spreadsheet would run as a formula ("CSV injection"): a name or note a user typed may
# begin so. A plain number (a negative one, say) is no formula.
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_UNHELD = re.compile(f"[{UNHELD}]")


def _formula(value: object) -> bool:
    return isinstance(value, str) and bool(_FORMULA.match(value)) and not _NUMBER.match(value)


def _csv_cell(value: object) -> object:
    """A value as the JSON of the same view spells it (`true`, not Python's `True`); nothing
    is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _formula(value):
        return "'" + str(value)
    return value


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """Text that would start a formula gets a leading apostrophe, which spreadsheet programs
    take as "this is text" and do not show: in the header row too, whose names come from the
    rows' keys."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([_csv_cell(v) for v in row] for row in (headers, *rows))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str) -> bytes:
    """Numbers stay numbers (a spreadsheet sums them), and a yes or no a spreadsheet's boolean
    (a bool is an int: TRUE or FALSE, filtered as such); anything else is its text, less the
    characters the API's text refuses (`commands.UNHELD`: rows stored before it did may hold
    them), among them the ones a spreadsheet cannot hold: openpyxl would refuse the whole file,
    or write one that no spreadsheet opens."""
    # Imported on the first XLSX a process makes: openpyxl adds about 7 MB to a worker, and
    # most workers never export a spreadsheet.
    from openpyxl import Workbook

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, int | float | Decimal):
            return value
        return _UNHELD.sub("", str(value))

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = _UNHELD.sub("", title)[:31]
    for row in (headers, *rows):
        sheet.append([plain(v) for v in row])
        # Text is text, whatever openpyxl guesses from its spelling (a formula for `=1+2`, an
        # error value for `#N/A`): the cell's type says so.
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
