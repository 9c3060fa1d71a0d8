"""What every metric reads: one fact per batch (its cohort day, mass and fate after
corrections), and daily and monthly sums of those facts, kept up to date as events are recorded."""

from decimal import Decimal

from tortoise import fields
from tortoise.models import Model


class BatchFact(Model):
    """A batch as the metrics count it (docs/metrics.md): the city day and region it was
    tagged in, its one mass in kg, and the fate its latest fate-deciding event gives it."""

    batch_id = fields.IntField(primary_key=True, generated=False)
    day = fields.DateField()
    region_path = fields.CharField(max_length=255)
    stream_id = fields.CharField(max_length=32)
    category_id = fields.CharField(max_length=64)
    fate = fields.CharField(max_length=24)
    mode = fields.CharField(max_length=16)
    mass_kg: Decimal = fields.DecimalField(max_digits=14, decimal_places=3)
    estimated = fields.BooleanField()
    balance_weighed_kg: Decimal | None = fields.DecimalField(
        max_digits=14, decimal_places=3, null=True
    )
    balance_declared_kg: Decimal | None = fields.DecimalField(
        max_digits=14, decimal_places=3, null=True
    )
    volume_m3: Decimal = fields.DecimalField(max_digits=14, decimal_places=3)
    items = fields.BigIntField()

    class Meta:
        table = "batch_fact"


class CohortSums(Model):
    """What both layers sum over the batch facts of a cell."""

    stream_id = fields.CharField(max_length=32)
    category_id = fields.CharField(max_length=64)
    fate = fields.CharField(max_length=24)
    mode = fields.CharField(max_length=16)
    items = fields.BigIntField(default=0)
    batches = fields.IntField(default=0)

    class Meta:
        abstract = True


class DailyRollup(CohortSums):
    """Sums of batch facts per tagging day (city time) × producer region × stream × category ×
    fate × treatment mode."""

    id = fields.IntField(primary_key=True)
    day = fields.DateField()
    region_path = fields.CharField(max_length=255)
    mass_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    estimated_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    balance_weighed_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    balance_declared_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    volume_m3: Decimal = fields.DecimalField(max_digits=14, decimal_places=3, default=0)

    class Meta:
        table = "cohort_daily"
        unique_together = (("day", "region_path", "stream_id", "category_id", "fate", "mode"),)


class MonthlyRollup(CohortSums):
    """The same sums per calendar month (city time) × town (or the city itself): what
    dashboards over whole months read, a few thousand rows for years of data."""

    id = fields.IntField(primary_key=True)
    month = fields.DateField()
    town_path = fields.CharField(max_length=255)
    # Wider than the daily layer's: a month of a whole city.
    mass_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    estimated_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    balance_weighed_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    balance_declared_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    volume_m3: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)

    class Meta:
        table = "cohort_monthly"
        unique_together = (("month", "town_path", "stream_id", "category_id", "fate", "mode"),)


class RollupDefinition(Model):
    """The version of the counting rules the stored facts were computed by; a start-up that
    finds another version rebuilds them from the log."""

    id = fields.IntField(primary_key=True)
    version = fields.CharField(max_length=32)

    class Meta:
        table = "rollup_definition"
