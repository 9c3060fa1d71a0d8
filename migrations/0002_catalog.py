from tortoise import migrations
from tortoise.migrations import operations as ops

from wastetrack.catalog.loader import load_catalog, unload_catalog


async def forward(apps, schema_editor):
    await load_catalog(schema_editor.client)


async def backward(apps, schema_editor):
    await unload_catalog(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0001_initial")]

    operations = [ops.RunPython(forward, backward)]
