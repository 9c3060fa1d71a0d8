# A delivery whose change its subscription's owner may no longer see when it is due is withheld,
# not sent (wastetrack.webhooks.sending): a third status, in the column's description only (the
# column is text; no row changes).
from tortoise import migrations
from tortoise.migrations import operations as ops
from wastetrack.webhooks.models import DeliveryStatus
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("wastetrack", "0055_region_path_check")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="WebhookDelivery",
            name="status",
            field=fields.CharEnumField(
                default=DeliveryStatus.pending,
                description="pending: pending\ndelivered: delivered\nwithheld: withheld",
                enum_type=DeliveryStatus,
                max_length=16,
            ),
        ),
    ]
