from tortoise import migrations
from tortoise.migrations import operations as ops

from wastetrack.catalog.loader import load_catalog
from wastetrack.ports.loader import load_sea_areas, unload_sea_areas


async def forward(apps, schema_editor):
    # The marine catalog gained densities and a beach-litter category: load_catalog upserts.
    await load_catalog(schema_editor.client)
    await load_sea_areas(schema_editor.client)


async def backward(apps, schema_editor):
    await unload_sea_areas(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0003_ports")]

    operations = [ops.RunPython(forward, backward)]
