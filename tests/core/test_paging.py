"""A list's cursor is one the server issued, or a 422 naming `cursor`."""

import base64
from datetime import UTC, date, datetime

import pytest

from wastetrack.core import paging
from wastetrack.core.errors import ValidationFailed


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (int, 5),
        (str, "王"),
        # A name stored before the API refused the C1 controls: a cursor issued after it still
        # reads back (it was judged by today's input rules, and the walk stopped there).
        (str, "A\u0085司机"),
        (str, "名\x01称"),
        (date, date(2025, 12, 29)),
        (datetime, datetime(2026, 11, 30, 16, 0, 1, 5, tzinfo=UTC)),
    ],
)
def test_a_cursor_issued_reads_back_as_its_position(kind: type, value: object) -> None:
    assert paging.decode(paging.encode(value, 7), kind) == (value, 7)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (int, "5|٥"),  # an Arabic-Indic digit
        (int, "5|５"),  # a full-width one
        (int, "1_0|1_0"),
        (int, "7|+7"),
        (int, "07|7"),
        (int, "7.0|7"),
        (str, "A\x00B|7"),  # no column holds a NUL
        (date, "2026-W01-1|5"),  # an ISO week date
        (date, "20251229|5"),
        (datetime, "2026-11-30T16:00:01.000000+00:00|5"),
    ],
)
def test_a_cursor_written_otherwise_is_none_of_ours(kind: type, text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        paging.decode(_cursor(text), kind)
    assert refused.value.field == "cursor"
