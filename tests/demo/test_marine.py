"""The demo's ports follow the port rules themselves, never a copy of them."""

from decimal import Decimal

from wastetrack.demo.scenario import SCENARIO
from wastetrack.ports.rules import PORT_RULES, small_vessel


def test_the_demo_keeps_no_copy_of_the_sewage_threshold() -> None:
    """Which demo vessels deliver sewage is the indicator's 400 GT rule (`small_vessel`): a
    threshold of the scenario's own could drift from the one the figures apply."""
    copies = [key for key in SCENARIO["ports"] if "tonnage" in key or key.endswith("_gt")]
    assert copies == []
    fleet = [Decimal(str(v["gross_tonnage"])) for v in SCENARIO["vessels"]["fleet"]]
    # The demo shows both kinds of vessel, so its port figures have sewage to count.
    assert {small_vessel(gt) for gt in fleet} == {True, False}
    assert "small_vessel_below_gt" in PORT_RULES
