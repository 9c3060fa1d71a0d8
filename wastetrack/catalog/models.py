"""Reference catalog: waste streams, categories and treatment methods, loaded from data files."""

from typing import Any

from tortoise import fields
from tortoise.models import Model


class WasteStream(Model):
    code = fields.CharField(max_length=32, primary_key=True)
    name_zh = fields.CharField(max_length=64)
    name_en = fields.CharField(max_length=64)
    default_unit = fields.CharField(max_length=8)
    # The stream's rules as data: treatment_methods (null: any), tag_requires, manifest.
    rules: dict[str, Any] | None = fields.JSONField(null=True)
    source = fields.CharField(max_length=255)
    edition = fields.CharField(max_length=32)

    class Meta:
        table = "waste_stream"


class WasteCategory(Model):
    key = fields.CharField(max_length=64, primary_key=True)
    stream_id: str
    stream: fields.ForeignKeyRelation[WasteStream] = fields.ForeignKeyField(
        "wastetrack.WasteStream", related_name="categories", on_delete=fields.RESTRICT
    )
    parent_key = fields.CharField(max_length=64, null=True)
    code = fields.CharField(max_length=32)
    name_zh = fields.CharField(max_length=64)
    name_en = fields.CharField(max_length=96)
    colour = fields.CharField(max_length=7, null=True)
    hazard: list[str] = fields.JSONField(default=list)
    storage_limit_hours = fields.IntField(null=True)
    density_kg_m3 = fields.DecimalField(max_digits=8, decimal_places=2, null=True)
    # Mass of one item, for batches counted in units; with density, the estimated-mass basis.
    unit_mass_kg = fields.DecimalField(max_digits=10, decimal_places=4, null=True)
    mass_basis_source = fields.CharField(max_length=255, null=True)
    level = fields.IntField(null=True)
    # The 名录 code a category fixes (841-002-01 for sharps), or the pattern its codes follow
    # (`[0-9]{3}-[0-9]{3}-08` for HW08); inherited by sub-categories that set neither.
    waste_code = fields.CharField(max_length=16, null=True)
    waste_code_pattern = fields.CharField(max_length=64, null=True)
    scheme = fields.CharField(max_length=64)
    scheme_version = fields.CharField(max_length=16)
    source = fields.CharField(max_length=255)
    edition = fields.CharField(max_length=32)

    class Meta:
        table = "waste_category"


class TreatmentMethod(Model):
    code = fields.CharField(max_length=8, primary_key=True)
    name_zh = fields.CharField(max_length=64)
    name_en = fields.CharField(max_length=128)
    mode = fields.CharField(max_length=16)
    # Whether a batch treated this way counts as harmlessly treated (无害化); with its source.
    harmless = fields.BooleanField(default=False, db_default=False)
    harmless_source = fields.CharField(max_length=255, null=True)
    source = fields.CharField(max_length=255)
    edition = fields.CharField(max_length=64)

    class Meta:
        table = "treatment_method"
