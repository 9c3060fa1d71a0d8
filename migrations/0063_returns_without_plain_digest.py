# A return's `payload_digest` was a plain SHA-256 of its content, the farmer's phone or ID number
# in it: with the seven digits its masked form shows, the four hidden ones came back from the
# row in 10,000 tries, with no key. New returns are digested with those fields under the
# installation's key (`Command.keyed`), which a migration does not hold; so the digests kept
# before are dropped. A resend of such a return is known by its client_event_id alone
# (`Command.same_content`).
from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0062_storage_alert_clock_kind_again")]

    initial = False

    operations = [
        ops.RunSQL("UPDATE packaging_return SET payload_digest = '';", reverse_sql="SELECT 1;")
    ]
