"""What every metric reads: one fact per batch (its cohort day, mass and fate after
corrections), and the daily, monthly and city-monthly sums of those facts, kept up to date as
events are recorded."""

from decimal import Decimal
from typing import ClassVar

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
    # Nothing gives its mass (items or m³ of a category without a unit mass or density, never
    # weighed): it counts 0 kg, and the sums count it among the batches without a mass. False
    # on the facts kept before 0043 until they are rebuilt (cohorts-8).
    mass_unknown = fields.BooleanField(default=False, db_default=False)
    estimated = fields.BooleanField()
    balance_weighed_kg: Decimal | None = fields.DecimalField(
        max_digits=14, decimal_places=3, null=True
    )
    balance_declared_kg: Decimal | None = fields.DecimalField(
        max_digits=14, decimal_places=3, null=True
    )
    volume_m3: Decimal = fields.DecimalField(max_digits=14, decimal_places=3)
    items = fields.BigIntField()
    # The treatment method of the deciding event after corrections (a container's too, though
    # its fate is `container`); none before a treatment.
    method = fields.CharField(max_length=8, null=True)

    class Meta:
        table = "batch_fact"


class CohortSums(Model):
    """What every layer sums over the batch facts of a cell. `period` and `area` name the
    layer's date and region columns (an area path matches itself and everything under it)."""

    period: ClassVar[str]
    area: ClassVar[str]

    stream_id = fields.CharField(max_length=32)
    category_id = fields.CharField(max_length=64)
    fate = fields.CharField(max_length=24)
    mode = fields.CharField(max_length=16)
    items = fields.BigIntField(default=0)
    batches = fields.IntField(default=0)
    # Of `batches`, those whose mass is unknown (BatchFact.mass_unknown); 0 on the rows kept
    # before 0043 until they are rebuilt.
    batches_without_mass = fields.IntField(default=0, db_default=0)

    class Meta:
        abstract = True


class DaySums(CohortSums):
    """The sums per tagging day (city time) and producer region."""

    period, area = "day", "region_path"

    day = fields.DateField()
    region_path = fields.CharField(max_length=255)
    mass_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    estimated_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    balance_weighed_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    balance_declared_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    volume_m3: Decimal = fields.DecimalField(max_digits=14, decimal_places=3, default=0)

    class Meta:
        abstract = True


class DailyRollup(DaySums):
    """Sums of batch facts per tagging day (city time) × producer region × stream × category ×
    fate × treatment mode."""

    id = fields.IntField(primary_key=True)

    class Meta:
        table = "cohort_daily"
        unique_together = (("day", "region_path", "stream_id", "category_id", "fate", "mode"),)


class CohortDelta(DaySums):
    """What recorded events changed in the sums and is not yet folded into them. Recording only
    appends here — concurrent recordings never wait on one another's sums — a background round
    folds the rows into every layer, and readers add the rows not yet folded."""

    id = fields.BigIntField(primary_key=True)

    class Meta:
        table = "cohort_delta"


class MonthSums(CohortSums):
    """The sums per calendar month (city time), wider than a day's."""

    month = fields.DateField()
    mass_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    estimated_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    balance_weighed_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    balance_declared_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    volume_m3: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)

    class Meta:
        abstract = True


class MonthlyRollup(MonthSums):
    """The sums per month × town (or the city itself, for batches registered there): what
    dashboards of a town over whole months read."""

    period, area = "month", "town_path"

    id = fields.IntField(primary_key=True)
    town_path = fields.CharField(max_length=255)

    class Meta:
        table = "cohort_monthly"
        unique_together = (("month", "town_path", "stream_id", "category_id", "fate", "mode"),)


class CityMonthlyRollup(MonthSums):
    """The sums per month of the whole city: what city-wide dashboards over whole months read,
    a few hundred rows a month however many batches there are."""

    period, area = "month", "city_path"

    id = fields.IntField(primary_key=True)
    city_path = fields.CharField(max_length=255)

    class Meta:
        table = "cohort_city_monthly"
        unique_together = (("month", "city_path", "stream_id", "category_id", "fate", "mode"),)


class RollupDefinition(Model):
    """What the stored facts were computed on: the version of the counting rules, and the
    whole basis (rules, city time zone, catalog editions and a digest of the catalog values the
    facts read); a start-up that finds another basis rebuilds them from the log."""

    id = fields.IntField(primary_key=True)
    version = fields.CharField(max_length=32)
    # JSON text (facts._basis); none for facts kept before 0041, which are rebuilt once.
    basis = fields.TextField(null=True)

    class Meta:
        table = "rollup_definition"
