from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import UniqueConstraint

# A place is registered as a cell once: a region holds one cell of a type by a name, the name
# trimmed as the API stores it. Cells registered twice before — a resent registration, every
# one of them in the achievement's denominator — are made one first:
# - the same name (trimmed), type, region and organization: a resend. The first cell stays;
#   the others' assessments move to it (they assessed the same place) and the others go.
# - the same name, type and region, another organization: another place that the key cannot
#   tell apart. It stays, its name followed by its id, for its manager to rename.
# Undone, the constraint goes; merged cells stay merged (what was one place is not split).


async def merge_registered_twice(apps, schema_editor):
    client = schema_editor.client
    rows = await client.execute_query_dict(
        "SELECT id, region_id, cell_type, name, organization_id FROM zero_waste_cell ORDER BY id"
    )
    places: dict[tuple[int, str, str, int | None], int] = {}
    names: set[tuple[int, str, str]] = set()
    for row in rows:
        name = row["name"].strip()
        key = (row["region_id"], row["cell_type"], name)
        place = (*key, row["organization_id"])
        if place in places:
            await client.execute_query(
                "UPDATE cell_assessment SET cell_id = $1 WHERE cell_id = $2",
                [places[place], row["id"]],
            )
            await client.execute_query("DELETE FROM zero_waste_cell WHERE id = $1", [row["id"]])
            continue
        places[place] = row["id"]
        if key in names:
            suffix = f" ({row['id']})"
            name = name[: 128 - len(suffix)] + suffix
        names.add(key)
        if name != row["name"]:
            await client.execute_query(
                "UPDATE zero_waste_cell SET name = $1 WHERE id = $2", [name, row["id"]]
            )


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0038_log_order")]

    initial = False

    operations = [
        ops.RunPython(merge_registered_twice, ops.RunPython.noop),
        ops.AddConstraint(
            model_name="Cell",
            constraint=UniqueConstraint(fields=("region", "cell_type", "name")),
        ),
    ]
