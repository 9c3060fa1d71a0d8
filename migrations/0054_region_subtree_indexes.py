from tortoise import migrations
from tortoise.migrations import operations as ops

# A manager's or auditor's batches, alerts and manifests are those of their region's subtree.
# Read as a prefix of the region path, that reason had only indexes ordered by path (0019, 0051,
# 0053), so a page of a region's newest rows sorted all of the region's rows, or walked the
# whole list newest first and filtered: slow for a district whose rows are many, or few and old.
# The reason is now an equality (wastetrack.core.regions: the path's part at the depth of the
# user's region is that region's id), and an index on that part, the list's order column and
# id, one per level of division below the city (town and village: parts 3 and 4 of the path),
# reads a region's page from the cursor in order and stops, as a party's index does.
#
# Not the city's part: a city is one instance (docs/scale-out.md), so its manager reads the
# whole table, which its (order column, id) index serves. Batch's path index of 0019 goes: the
# lists and the household quality checks now read a subtree by its part, and batch is written
# at every tagging, where each index more showed in the ingest bench's slowest single posts
# (p99 59-69 ms with the city's part and the path index beside the town's and the village's,
# 25-40 ms without them, as before this migration). Alert's and manifest's path indexes stay
# (written seldom; no read of the service uses them now). The tables are not analyzed here:
# autovacuum's analyze gathers the expressions' statistics as it does the columns', and an
# ANALYZE of a new database's empty tables had the planner trust them to stay empty (four
# times the database's time per synced event in the ingest bench).
TABLES = {"batch": "created_at, id", "alert": "raised_at, id", "manifest": "id"}
LEVELS = {"town": 3, "village": 4}
INDEXES = {
    f"{table}_region_{level}_keyset_idx": (
        f"{table} (split_part(region_path, '/', {part}), {order})"
    )
    for table, order in TABLES.items()
    for level, part in LEVELS.items()
}
PATH_INDEX = "batch_region_path_pattern_idx"
CREATE = "\n".join(
    [f"CREATE INDEX IF NOT EXISTS {name} ON {table};" for name, table in INDEXES.items()]
    + [f"DROP INDEX IF EXISTS {PATH_INDEX};"]
)
DROP = "\n".join(
    [f"DROP INDEX IF EXISTS {name};" for name in INDEXES]
    + [
        f"CREATE INDEX IF NOT EXISTS {PATH_INDEX}"
        " ON batch (region_path text_pattern_ops, created_at, id);"
    ]
)


class Migration(migrations.Migration):
    # Indexes for a region subtree's page of batches, alerts and manifests (SQL only).
    dependencies = [("wastetrack", "0053_manifest_list_indexes")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
