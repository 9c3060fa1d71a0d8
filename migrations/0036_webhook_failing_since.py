from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    # A subscription keeps since when its current run of failed rounds began: it is disabled
    # only once it has failed that many rounds and for WASTETRACK_WEBHOOKS_DISABLE_AFTER_HOURS.
    # Null for every subscription until its next failed round (a run under way when this
    # migration runs starts counting its time then).
    dependencies = [("wastetrack", "0035_idle_alert_occurrences")]

    initial = False

    operations = [
        ops.AddField(
            model_name="WebhookSubscription",
            name="failing_since",
            field=fields.DatetimeField(null=True),
        ),
    ]
