from tortoise import migrations
from tortoise.migrations import operations as ops

from wastetrack.indicators.loader import load_indicators


async def forward(apps, schema_editor):
    # zero_waste_cells is now computed from the cell assessments.
    await load_indicators(schema_editor.client)


async def backward(apps, schema_editor):
    await schema_editor.client.execute_script(
        "UPDATE indicator SET computed_by = NULL WHERE code = 'zero_waste_cells';"
    )


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0011_cells")]

    operations = [ops.RunPython(forward, backward)]
