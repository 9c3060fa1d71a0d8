"""How a rate is rounded: once, from the exact quotient, to four places by GB/T 8170-2008."""

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wastetrack.core.metrics import percent, ratio

DEFINITION = {"formula": "a ÷ b", "source": "test"}


@pytest.mark.parametrize(
    ("numerator", "denominator", "rate"),
    [
        (1, 20000, "0.0000"),  # 0.00005: a five followed by nothing goes to the even digit
        (3, 20000, "0.0002"),  # 0.00015
        (Decimal("1.00000001"), 20000, "0.0001"),  # just over a half rounds up
        (Decimal("0.99999999"), 20000, "0.0000"),  # just under rounds down
        # A Decimal division keeps 28 digits, and would round this to a half, then down.
        (Decimal("1.000000000000000000000000000001"), 20000, "0.0001"),
        (19999, 20000, "1.0000"),  # 0.99995: the rule, not a full share (see the counts)
        (2, 3, "0.6667"),
        (0, 5, "0.0000"),
    ],
)
def test_a_rate_is_rounded_once_half_to_even(
    numerator: Decimal | int, denominator: int, rate: str
) -> None:
    assert str(ratio(numerator, denominator, "kg", DEFINITION)["rate"]) == rate  # type: ignore[arg-type]


def test_no_rate_without_a_denominator() -> None:
    assert ratio(0, 0, "kg", DEFINITION)["rate"] is None  # type: ignore[arg-type]


def _reference_percent(numerator: Decimal, denominator: Decimal, places: int) -> Decimal:
    """docs/metrics.md §1, written apart: the quotient in percent at sixty digits, rounded once
    half to even, then kept off 0 and 100 when the share is neither none nor all."""
    with localcontext() as context:
        context.prec = 60
        share = numerator / denominator
        step = Decimal(1).scaleb(-places)
        shown = (share * 100).quantize(step, rounding=ROUND_HALF_EVEN)
        if 0 < share < 1:
            shown = min(max(shown, step), 100 - step)
    return shown


@settings(max_examples=400, deadline=None)
@given(
    numerator=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    extra=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    beyond=st.booleans(),
    places=st.sampled_from([1, 2]),
)
@example(numerator=Decimal(19999), extra=Decimal(1), beyond=False, places=2)
@example(numerator=Decimal(1), extra=Decimal(20000), beyond=False, places=1)
@example(numerator=Decimal(1), extra=Decimal(7), beyond=False, places=1)
def test_a_rate_in_percent_equals_an_independent_reading(
    numerator: Decimal, extra: Decimal, beyond: bool, places: int
) -> None:
    """`metrics.percent` against a reference written apart, over shares and rates beyond 1
    (a mass balance): never 100 short of all, never 0 above nothing."""
    denominator = numerator + extra if not beyond else max(numerator - extra, Decimal("0.001"))
    if not denominator:
        assert percent({"numerator": numerator, "denominator": denominator}, places) is None
        return
    got = percent({"numerator": numerator, "denominator": str(denominator)}, places)
    assert got == _reference_percent(numerator, denominator, places)
    if numerator < denominator:
        assert got is not None and got < 100
    if numerator > 0:
        assert got is not None and got > 0
