from tortoise import migrations
from tortoise.migrations import operations as ops

# GET /m/v1/batches pages newest first by (created_at, id). A user sees a batch as its
# producer, holder, carrier or destination (and managers by region subtree): one index per
# party, ordered by the keyset, lets each party's part of the page be read from an index and
# stop after one page, instead of one scan over every batch for the OR of the four parties.
# text_pattern_ops serves the region-subtree prefix match (LIKE 'path%') whatever the
# database's collation.
INDEXES = {
    "batch_producer_keyset_idx": "(producer_id, created_at, id)",
    "batch_holder_keyset_idx": "(holder_id, created_at, id)",
    "batch_carrier_keyset_idx": "(carrier_id, created_at, id)",
    "batch_destination_keyset_idx": "(destination_id, created_at, id)",
    "batch_keyset_idx": "(created_at, id)",
    "batch_region_path_pattern_idx": "(region_path text_pattern_ops, created_at, id)",
}
CREATE = "\n".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON batch {columns};" for name, columns in INDEXES.items()
)
DROP = "\n".join(f"DROP INDEX IF EXISTS {name};" for name in INDEXES)


class Migration(migrations.Migration):
    # Indexes for the keyset-paginated batch list, one per party (SQL only: no model changes).
    dependencies = [("wastetrack", "0018_access_and_rate_limits")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
