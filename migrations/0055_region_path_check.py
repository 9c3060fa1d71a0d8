from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint

# A region was written in two statements, the second giving it its path: until 0054's release
# they were not one transaction, so a region could be left with the placeholder path "/" (and a
# region made under it with "/<its id>/", a city's form). A manager of "/" met a 500, or, where a
# path is read as a prefix, every region's records. The service now writes a region once, with
# its path, and the database checks each path's form (wastetrack.core.regions.PATH) and that it
# ends in the region's own id. First every path that differs from its parent chain is rewritten
# from the chain (a region never moves, and a chain's root has no parent); records that copied
# such a path keep it (docs/operations.md says how to find them).
#
# A CHECK holds on every row an UPDATE writes, and 0025 left region_code_format NOT VALID where
# older regions break it: such a region's path could not be rewritten under it. So the repair
# runs without it, and it comes back as 0025 left it: validated unless a row breaks it.
CODE_CHECK = (
    "(level = 'city' AND code ~ '^[0-9]{6}$') OR (level = 'town' AND code ~ '^[0-9]{9}$')"
    " OR (level = 'village' AND code ~ '^[0-9]{12}$')"
)
REPAIR = f"""
ALTER TABLE region DROP CONSTRAINT region_code_format;
WITH RECURSIVE chain (id, path) AS (
    SELECT id, '/' || id || '/' FROM region WHERE parent_id IS NULL
    UNION ALL
    SELECT r.id, chain.path || r.id || '/' FROM region r JOIN chain ON r.parent_id = chain.id
)
UPDATE region SET path = chain.path
  FROM chain
 WHERE region.id = chain.id AND region.path IS DISTINCT FROM chain.path;
ALTER TABLE region ADD CONSTRAINT region_code_format CHECK ({CODE_CHECK}) NOT VALID;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM region WHERE NOT ({CODE_CHECK})) THEN
    ALTER TABLE region VALIDATE CONSTRAINT region_code_format;
  END IF;
END $$;
"""


class Migration(migrations.Migration):
    # Region paths checked by the database.
    dependencies = [("wastetrack", "0054_region_subtree_indexes")]

    initial = False

    operations = [
        ops.RunSQL(REPAIR, reverse_sql=ops.RunSQL.noop),
        ops.AddConstraint(
            model_name="Region",
            constraint=CheckConstraint(
                check="path ~ '^(/[0-9]+)+/$' AND path LIKE ('%/' || id || '/')",
                name="region_path_format",
            ),
        ),
    ]
