from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

from wastetrack.core.data import read_data_file

# Pinned editions: a later edition is loaded by a later migration.
MASS_BASIS = "editions/mass_basis.2026-11.json"
METHOD_FATES = "editions/method_fates.2026-11.json"


def _rollup_fields(date_name: str, region_name: str, digits: int) -> list:
    return [
        ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
        (date_name, fields.DateField()),
        (region_name, fields.CharField(max_length=255)),
        ("stream_id", fields.CharField(max_length=32)),
        ("category_id", fields.CharField(max_length=64)),
        ("fate", fields.CharField(max_length=24)),
        ("mode", fields.CharField(max_length=16)),
        ("mass_kg", fields.DecimalField(default=0, max_digits=digits, decimal_places=3)),
        ("estimated_kg", fields.DecimalField(default=0, max_digits=digits, decimal_places=3)),
        ("balance_weighed_kg", fields.DecimalField(default=0, max_digits=digits, decimal_places=3)),
        (
            "balance_declared_kg",
            fields.DecimalField(default=0, max_digits=digits, decimal_places=3),
        ),
        ("volume_m3", fields.DecimalField(default=0, max_digits=digits - 2, decimal_places=3)),
        ("items", fields.BigIntField(default=0)),
        ("batches", fields.IntField(default=0)),
    ]


async def forward(apps, schema_editor):
    client = schema_editor.client
    fates = read_data_file("wastetrack.catalog", METHOD_FATES)
    await client.execute_query(
        "UPDATE treatment_method SET harmless = code = ANY($1::text[]), harmless_source = $2",
        [fates["harmless"], f"{fates['source']} (edition {fates['edition']})"],
    )
    basis = read_data_file("wastetrack.catalog", MASS_BASIS)
    rows = [
        [key, item.get("unit_mass_kg"), item.get("density_kg_m3")]
        for key, item in basis["items"].items()
    ]
    await client.execute_many(
        "UPDATE waste_category SET unit_mass_kg = COALESCE($2::numeric, unit_mass_kg),"
        " density_kg_m3 = COALESCE($3::numeric, density_kg_m3) WHERE key = $1",
        rows,
    )
    await client.execute_query(
        "UPDATE waste_category SET mass_basis_source = $1"
        " WHERE unit_mass_kg IS NOT NULL OR density_kg_m3 IS NOT NULL",
        [f"{basis['source']} (edition {basis['edition']})"],
    )
    # The facts are derived from the log: the first start after this migration computes them.
    await client.execute_script(
        "CREATE INDEX IF NOT EXISTS custody_event_corrects_idx ON custody_event (corrects_id)"
        " WHERE corrects_id IS NOT NULL;"
        " CREATE INDEX IF NOT EXISTS batch_parent_idx ON batch (parent_id)"
        " WHERE parent_id IS NOT NULL;"
    )


async def backward(apps, schema_editor):
    await schema_editor.client.execute_script(
        "DROP INDEX IF EXISTS custody_event_corrects_idx; DROP INDEX IF EXISTS batch_parent_idx;"
    )


class Migration(migrations.Migration):
    """Metrics count batches, not events: one fact per batch (cohort day, one mass, the fate
    after corrections) and roll-ups that sum those facts; methods say whether they are harmless
    and categories carry the unit mass or density that estimates a mass."""

    dependencies = [("wastetrack", "0014_monthly_rollups_data")]

    initial = False

    operations = [
        ops.AddField(
            model_name="TreatmentMethod",
            name="harmless",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name="TreatmentMethod",
            name="harmless_source",
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name="WasteCategory",
            name="unit_mass_kg",
            field=fields.DecimalField(null=True, max_digits=10, decimal_places=4),
        ),
        ops.AddField(
            model_name="WasteCategory",
            name="mass_basis_source",
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.CreateModel(
            name="BatchFact",
            fields=[
                (
                    "batch_id",
                    fields.IntField(generated=False, primary_key=True, unique=True, db_index=True),
                ),
                ("day", fields.DateField()),
                ("region_path", fields.CharField(max_length=255)),
                ("stream_id", fields.CharField(max_length=32)),
                ("category_id", fields.CharField(max_length=64)),
                ("fate", fields.CharField(max_length=24)),
                ("mode", fields.CharField(max_length=16)),
                ("mass_kg", fields.DecimalField(max_digits=14, decimal_places=3)),
                ("estimated", fields.BooleanField()),
                (
                    "balance_weighed_kg",
                    fields.DecimalField(null=True, max_digits=14, decimal_places=3),
                ),
                (
                    "balance_declared_kg",
                    fields.DecimalField(null=True, max_digits=14, decimal_places=3),
                ),
                ("volume_m3", fields.DecimalField(max_digits=14, decimal_places=3)),
                ("items", fields.BigIntField()),
            ],
            options={
                "table": "batch_fact",
                "app": "wastetrack",
                "pk_attr": "batch_id",
                "table_description": "A batch as the metrics count it (docs/metrics.md): the city day and region it was",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RollupDefinition",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("version", fields.CharField(max_length=32)),
            ],
            options={
                "table": "rollup_definition",
                "app": "wastetrack",
                "pk_attr": "id",
                "table_description": "The version of the counting rules the stored facts were computed by; a start-up that",
            },
            bases=["Model"],
        ),
        ops.DeleteModel(name="DailyRollup"),
        ops.DeleteModel(name="MonthlyRollup"),
        ops.CreateModel(
            name="DailyRollup",
            fields=_rollup_fields("day", "region_path", 16),
            options={
                "table": "cohort_daily",
                "app": "wastetrack",
                "unique_together": (
                    ("day", "region_path", "stream_id", "category_id", "fate", "mode"),
                ),
                "pk_attr": "id",
                "table_description": "Sums of batch facts per tagging day (city time) × producer region × stream × category ×",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MonthlyRollup",
            fields=_rollup_fields("month", "town_path", 18),
            options={
                "table": "cohort_monthly",
                "app": "wastetrack",
                "unique_together": (
                    ("month", "town_path", "stream_id", "category_id", "fate", "mode"),
                ),
                "pk_attr": "id",
                "table_description": "The same sums per calendar month (city time) × town (or the city itself): what",
            },
            bases=["Model"],
        ),
        ops.RunPython(forward, backward),
    ]
