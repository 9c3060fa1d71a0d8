from tortoise import migrations
from tortoise.migrations import operations as ops

# Deliveries, port calls, clean-ups, float replacements and alerts are read a page at a time
# (wastetrack.core.paging), in the order of one column then id, narrowed to the rows a user may
# read: those naming their organization (a port's own column, a vessel owner's, a recording
# organization's) and, for managers, those in their region. No index held any of these columns,
# so every page sorted all the rows the user may read, after a scan of the whole table. With
# the (order column, id) index the database walks the list newest first from the cursor and
# stops after a page of the user's rows (and serves administrators, who read everything); with
# one index per party column it reads only the rows of a user who has few and sorts those; the
# planner takes the cheaper. Lists filtered by vessel have theirs. text_pattern_ops serves the
# alert region prefix match (LIKE 'path%') whatever the collation.
INDEXES = {
    "delivery_port_keyset_idx": "delivery (port_id, started_at, id)",
    "delivery_owner_keyset_idx": "delivery (owner_id, started_at, id)",
    "delivery_vessel_keyset_idx": "delivery (vessel_id, started_at, id)",
    "delivery_keyset_idx": "delivery (started_at, id)",
    "port_call_port_keyset_idx": "port_call (port_id, arrived_at, id)",
    "port_call_vessel_keyset_idx": "port_call (vessel_id, arrived_at, id)",
    "port_call_keyset_idx": "port_call (arrived_at, id)",
    "cleanup_organization_keyset_idx": "cleanup (organization_id, started_at, id)",
    "cleanup_keyset_idx": "cleanup (started_at, id)",
    "float_replacement_organization_keyset_idx": "float_replacement (organization_id, replaced_on, id)",
    "float_replacement_keyset_idx": "float_replacement (replaced_on, id)",
    "alert_organization_keyset_idx": "alert (organization_id, raised_at, id)",
    "alert_region_path_pattern_idx": "alert (region_path text_pattern_ops, raised_at, id)",
    "alert_keyset_idx": "alert (raised_at, id)",
}
CREATE = "\n".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON {table};" for name, table in INDEXES.items()
)
DROP = "\n".join(f"DROP INDEX IF EXISTS {name};" for name in INDEXES)


class Migration(migrations.Migration):
    # Indexes for the keyset-paged port and alert lists (SQL only: no model changes).
    dependencies = [("wastetrack", "0050_packaging_return_cancellation")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
