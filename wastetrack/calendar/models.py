"""One row per calendar day of every year the city's official calendar is known for."""

from tortoise import fields
from tortoise.models import Model


class CalendarDay(Model):
    day = fields.DateField(primary_key=True)
    is_working_day = fields.BooleanField()
    # The holiday, or the holiday a make-up working day (调休) belongs to; null on ordinary days.
    name = fields.CharField(max_length=64, null=True)
    # Where the day comes from: the pinned edition, the library at load time, or an admin.
    source = fields.CharField(max_length=128)

    class Meta:
        table = "working_calendar"
