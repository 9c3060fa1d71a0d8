"""How a rate is rounded: once, from the exact quotient, to four places by GB/T 8170-2008."""

from decimal import Decimal

import pytest

from wastetrack.core.metrics import ratio

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
