from tortoise import migrations
from tortoise.migrations import operations as ops

# Every page of deliveries (GET /m/v1/deliveries) loads its deliveries' lines by delivery id,
# and every correction of a batch looks for the delivery line it came from by batch id
# (wastetrack.ports.lines): delivery_line had no index but its primary key, so each was a scan
# of all the lines ever delivered, and migration 0051's indexes left a page of deliveries as
# slow as the lines table is long. (0051's note that none of its lists' columns had an index
# overlooked alert.region_path, indexed since 0007 by a plain index, which serves a prefix
# match only under the C collation; 0051's text_pattern_ops index serves it under any.)
INDEXES = {
    "delivery_line_delivery_idx": "delivery_line (delivery_id)",
    "delivery_line_batch_idx": "delivery_line (batch_id)",
}
CREATE = "\n".join(
    f"CREATE INDEX IF NOT EXISTS {name} ON {table};" for name, table in INDEXES.items()
)
DROP = "\n".join(f"DROP INDEX IF EXISTS {name};" for name in INDEXES)


class Migration(migrations.Migration):
    # Indexes for reading a delivery's lines and a batch's delivery line (SQL only: no model
    # changes).
    dependencies = [("wastetrack", "0051_port_and_alert_list_indexes")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql=DROP)]
