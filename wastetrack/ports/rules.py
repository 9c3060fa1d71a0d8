"""Port reference data: the rules of the port collection-and-treatment indicator
(port_rules.json, with its source and edition)."""

from decimal import Decimal
from typing import Any

from wastetrack.catalog.service import CatalogSnapshot
from wastetrack.core.data import read_data_file

PORT_RULES: dict[str, Any] = read_data_file("wastetrack.ports", "port_rules.json")


def small_vessel(gross_tonnage: Decimal) -> bool:
    """Whether a vessel counts for the sewage expectation: strictly below the threshold (the
    plan's 400 GT rule; a vessel of exactly 400 GT is not small). The one reading of the rule,
    for the figures and the demo alike."""
    return gross_tonnage < Decimal(str(PORT_RULES["small_vessel_below_gt"]))


def volume_group(snap: CatalogSnapshot, category: str) -> str | None:
    """The indicator group that counts the category in m³ (sewage), if one does: a line of
    it counts by its m³ alone, so without them it would count as nothing."""
    return next(
        (
            name
            for name, group in PORT_RULES["groups"].items()
            if group["unit"] == "m3" and set(snap.ancestors(category)) & set(group["categories"])
        ),
        None,
    )
