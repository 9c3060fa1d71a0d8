from tortoise import migrations
from tortoise.migrations import operations as ops

# The manifest list (GET /m/v1/manifests) is read a page at a time, newest id first, one read
# per reason a user has to see a manifest (wastetrack.manifests.queries.reasons, merged by
# wastetrack.core.paging): as its producer, its receiver, a leg's carrier, or a manager or
# auditor of its region. None of these columns had an index in the list's order (region_path had
# a plain one, which serves a prefix match only under the C collation), so every page was one
# query for the OR of the reasons that read all of a user's manifests and sorted them, or walked
# the whole table newest first. With one index per reason ending in the manifest's id, a party's
# read starts at the cursor and stops after a page. A page's discrepancies and revisions are
# loaded by manifest id (a leg's by the unique (manifest, seq) index); the list of discrepant
# manifests reads discrepancies by it.
INDEXES = {
    "manifest_producer_keyset_idx": "manifest (producer_id, id)",
    "manifest_receiver_keyset_idx": "manifest (receiver_id, id)",
    "manifest_region_path_pattern_idx": "manifest (region_path text_pattern_ops, id)",
    "manifest_leg_carrier_idx": "manifest_leg (carrier_id, manifest_id)",
    "manifest_discrepancy_manifest_idx": "manifest_discrepancy (manifest_id)",
    "manifest_revision_manifest_idx": "manifest_revision (manifest_id)",
}
CREATE = "\n".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON {table};" for name, table in INDEXES.items()
)
DROP = "\n".join(f"DROP INDEX IF EXISTS {name};" for name in INDEXES)


class Migration(migrations.Migration):
    # Indexes for the keyset-paged manifest list (SQL only: no model changes).
    dependencies = [("wastetrack", "0052_delivery_line_indexes")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
