from tortoise import migrations
from tortoise.migrations import operations as ops


async def forward(apps, schema_editor):
    # The monthly layer is the daily one summed: fill it for data recorded before it existed.
    await schema_editor.client.execute_script(
        "INSERT INTO rollup_monthly (month, town_path, stream_id, category_id, measure, mode,"
        " weight_kg, volume_m3, items, batches)"
        " SELECT date_trunc('month', day)::date,"
        "  COALESCE(substring(region_path from '^/[0-9]+/[0-9]+/'), region_path),"
        "  stream_id, category_id, measure, mode, SUM(weight_kg), SUM(volume_m3),"
        "  SUM(items), SUM(batches) FROM rollup_daily GROUP BY 1, 2, 3, 4, 5, 6;"
    )


async def backward(apps, schema_editor):
    await schema_editor.client.execute_script("DELETE FROM rollup_monthly;")


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0013_monthly_rollups")]

    operations = [ops.RunPython(forward, backward)]
