from tortoise import migrations
from tortoise.migrations import operations as ops

from wastetrack.indicators.loader import load_indicators, unload_indicators


async def forward(apps, schema_editor):
    await load_indicators(schema_editor.client)


async def backward(apps, schema_editor):
    await unload_indicators(schema_editor.client)


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0009_indicators")]

    operations = [ops.RunPython(forward, backward)]
