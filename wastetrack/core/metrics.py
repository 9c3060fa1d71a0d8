"""What every rate needs: its numerator, denominator and unit, and calendar-day periods in
the city's time zone. A rate is never shown bare.

Metric results are typed dicts: the answers are JSON documents that routes, spreadsheets, the
dashboard and the demo's fingerprint read as they are, and the types name every key."""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypedDict

from wastetrack.core.cityday import days_bounds
from wastetrack.core.errors import ValidationFailed


class Definition(TypedDict):
    """What a published figure means: the formula in words, and where it comes from."""

    formula: str
    source: str


class Rate(TypedDict):
    """A rate with what it was computed from and what it means."""

    numerator: Decimal | int
    denominator: Decimal | int
    rate: Decimal | None
    unit: str
    definition: Definition


def quotient(numerator: Any, denominator: Any) -> Fraction:
    """Numerator over denominator exactly (counts, Decimals, or their text in an answer)."""
    return Fraction(Decimal(str(numerator))) / Fraction(Decimal(str(denominator)))


def ratio(
    numerator: Decimal | int,
    denominator: Decimal | int,
    unit: str,
    definition: Definition,
) -> Rate:
    """A rate with what it was computed from and its definition (the formula in words and its
    source): no rate is published without one. It is the quotient rounded to four places by
    GB/T 8170-2008 (数值修约规则: a five followed by nothing rounds to the even digit)."""
    rate = None
    if denominator:
        # Rounded once, from the exact quotient (a Decimal division would round it first).
        places = round(quotient(numerator, denominator), 4)
        rate = (Decimal(places.numerator) / places.denominator).quantize(Decimal("0.0001"))
    return {
        "numerator": numerator,
        "denominator": denominator,
        "rate": rate,
        "unit": unit,
        "definition": definition,
    }


def percent(rate: Mapping[str, Any], places: int) -> Decimal | None:
    """A rate in percent to `places` decimals, as the dashboard, an indicator's value and a
    cell's computed score show it: its exact quotient (numerator over denominator, not the
    four-place `rate`) rounded once by GB/T 8170, and a share short of all never 100 nor one
    above nothing 0 (19,999 of 20,000, whose `rate` is 1.0000, is 99.99 to the hundredth); a
    rate beyond 1 (a mass balance) as rounded. None without a denominator."""
    if not rate["denominator"]:
        return None
    exactly = quotient(rate["numerator"], rate["denominator"])
    whole = 100 * 10**places
    shown = round(exactly * whole)
    if 0 < exactly < 1:
        shown = min(max(shown, 1), whole - 1)
    return Decimal(shown).scaleb(-places)


def exact(rate: Rate) -> Decimal | None:
    """A rate's quotient before it is rounded to four places: what two rates are compared by
    (two that round alike may still differ)."""
    if not rate["denominator"]:
        return None
    return Decimal(rate["numerator"]) / Decimal(rate["denominator"])


def period_bounds(date_from: date, date_to: date, timezone: str) -> tuple[datetime, datetime]:
    """Calendar days in the city's time zone, both ends included, as [start, end)."""
    if date_to < date_from:
        raise ValidationFailed("date_to precedes date_from", field="date_to")
    return days_bounds(date_from, date_to, timezone)
