"""Port reference data: the rules of the port collection-and-treatment indicator
(port_rules.json, with its source and edition) and the waste stream ports handle."""

from typing import Any

from wastetrack.core.data import read_data_file

PORT_RULES: dict[str, Any] = read_data_file("wastetrack.ports", "port_rules.json")
MARINE_STREAM = "marine"
