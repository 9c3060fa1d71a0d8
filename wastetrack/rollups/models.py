"""Daily roll-ups of the custody log, kept up to date as events are recorded."""

from decimal import Decimal

from tortoise import fields
from tortoise.models import Model


class DailyRollup(Model):
    """Per day (city time) × producer region × stream × category × measure × treatment mode.
    measure is `tagged` (generated) or `treated`; mode is the treatment's mode or ''."""

    id = fields.IntField(primary_key=True)
    day = fields.DateField()
    region_path = fields.CharField(max_length=255)
    stream_id = fields.CharField(max_length=32)
    category_id = fields.CharField(max_length=64)
    measure = fields.CharField(max_length=8)
    mode = fields.CharField(max_length=16)
    weight_kg: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    volume_m3: Decimal = fields.DecimalField(max_digits=14, decimal_places=3, default=0)
    items = fields.BigIntField(default=0)
    batches = fields.IntField(default=0)

    class Meta:
        table = "rollup_daily"
        unique_together = (("day", "region_path", "stream_id", "category_id", "measure", "mode"),)


class MonthlyRollup(Model):
    """The same sums per calendar month (city time) × town (or the city itself): what
    dashboards over whole months read, a few thousand rows for years of data."""

    id = fields.IntField(primary_key=True)
    month = fields.DateField()
    town_path = fields.CharField(max_length=255)
    stream_id = fields.CharField(max_length=32)
    category_id = fields.CharField(max_length=64)
    measure = fields.CharField(max_length=8)
    mode = fields.CharField(max_length=16)
    weight_kg: Decimal = fields.DecimalField(max_digits=18, decimal_places=3, default=0)
    volume_m3: Decimal = fields.DecimalField(max_digits=16, decimal_places=3, default=0)
    items = fields.BigIntField(default=0)
    batches = fields.IntField(default=0)

    class Meta:
        table = "rollup_monthly"
        unique_together = (("month", "town_path", "stream_id", "category_id", "measure", "mode"),)
