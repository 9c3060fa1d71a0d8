"""The demo's zero-waste cells (无废细胞) and their county-level assessments."""

from wastetrack.cells import service as cells
from wastetrack.core import cityday
from wastetrack.demo.scenario import SCENARIO, Demo
from wastetrack.registry.models import Region


async def load_cells(demo: Demo) -> None:
    """Ten zero-waste cells; six assessed at county level with evidence, some passing."""
    spec = SCENARIO["cells"]
    manager = demo.principals[spec["assessor"]]
    today = cityday.today(demo.timezone)
    for place in spec["places"]:
        region = await Region.get(name=place["region"])
        org_key = place["organization"]
        cell = await cells.create_cell(
            principal=manager,
            cell_type=place["type"],
            name=place["name"],
            region_id=region.id,
            organization_id=demo.orgs[org_key].id if org_key else None,
        )
        if place["assessed"]:
            await cells.assess(
                principal=manager,
                cell_id=cell.id,
                level=spec["level"],
                assessed_on=today,
                # The evidence of the criteria its type enters.
                entered={
                    c["code"]: spec["evidence"][c["code"]]
                    for c in cells.TYPES[cell.cell_type]["criteria"]
                    if c["kind"] != "computed"
                },
                timezone=demo.timezone,
            )
