from tortoise import migrations
from tortoise.migrations import operations as ops

# The answers kept for requests named by an Idempotency-Key (mobile_api/idempotency.py): one
# row per owner (a user or an API key) and key, forgotten after 24 hours.
CREATE = """
CREATE TABLE IF NOT EXISTS idempotency_key (
    owner VARCHAR(80) NOT NULL,
    key VARCHAR(255) NOT NULL,
    fingerprint CHAR(64) NOT NULL,
    status SMALLINT,
    content_type VARCHAR(255),
    body BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
);
CREATE INDEX IF NOT EXISTS idempotency_key_created_idx ON idempotency_key (created_at);
"""


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0031_decision_due_assumed")]

    initial = False

    operations = [ops.RunSQL(CREATE, reverse_sql="DROP TABLE IF EXISTS idempotency_key;")]
