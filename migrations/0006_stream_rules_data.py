from tortoise import migrations
from tortoise.migrations import operations as ops

from wastetrack.catalog.loader import load_catalog, load_stream_rules


async def forward(apps, schema_editor):
    await load_catalog(schema_editor.client)
    await load_stream_rules(schema_editor.client)


async def backward(apps, schema_editor):
    await schema_editor.client.execute_script("UPDATE waste_stream SET rules = '{}'::jsonb;")


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0005_stream_rules")]

    operations = [ops.RunPython(forward, backward)]
