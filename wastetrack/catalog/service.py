"""Read access to the reference catalog, cached in memory because it only changes by migration."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from wastetrack.catalog.models import TreatmentMethod, WasteCategory, WasteStream
from wastetrack.core.errors import NotFound, ValidationFailed

# 国家危险废物名录: industry(3)-sequence(3)-HW number(2), ASCII digits only (no \\d: it takes
# full-width and other Unicode digits), matched in full (no trailing newline).
WASTE_CODE_FORM = re.compile(r"[0-9]{3}-[0-9]{3}-[0-9]{2}")
FINAL_MODES = {"reuse", "recycling", "energy_recovery", "other_recovery", "disposal"}


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    streams: dict[str, WasteStream]
    categories: dict[str, WasteCategory]
    methods: dict[str, TreatmentMethod]

    def ancestors(self, key: str) -> list[str]:
        """The category and every parent up to its root, nearest first."""
        chain = []
        current: str | None = key
        while current is not None and current in self.categories:
            chain.append(current)
            current = self.categories[current].parent_key
        return chain

    def mass_factor(self, key: str, unit: str) -> Decimal | None:
        """The kg of one item (`count`) or one m³ (`m3`) of the category, inherited from its
        parent and grandparent only, as the roll-up facts read it: the one rule for estimating
        a mass not weighed."""
        column = "unit_mass_kg" if unit == "count" else "density_kg_m3"
        for ancestor in self.ancestors(key)[:3]:
            factor = getattr(self.categories[ancestor], column)
            if factor is not None:
                return Decimal(factor)
        return None

    def estimated_kg(self, key: str, unit: str, quantity: Decimal) -> Decimal | None:
        """A quantity in items or m³ of the category as kg, by `mass_factor`, to the gram and
        rounded half up as the database's numeric rounds the facts' masses; None with no
        factor."""
        factor = self.mass_factor(key, unit)
        if factor is None:
            return None
        return (Decimal(quantity) * factor).quantize(Decimal("0.001"), ROUND_HALF_UP)

    def waste_code_rule(self, key: str) -> WasteCategory | None:
        """The nearest category up the tree that fixes a waste code or a code pattern."""
        for ancestor in self.ancestors(key):
            found = self.categories[ancestor]
            if found.waste_code or found.waste_code_pattern:
                return found
        return None

    def hw_number(self, key: str) -> str | None:
        """The two-digit HW class a category belongs to, if it is hazardous or medical."""
        for ancestor in self.ancestors(key):
            code = self.categories[ancestor].code
            if code.startswith("HW"):
                return code[2:]
        return None


_snapshot: CatalogSnapshot | None = None


async def snapshot() -> CatalogSnapshot:
    global _snapshot
    if _snapshot is None:
        _snapshot = CatalogSnapshot(
            streams={s.code: s for s in await WasteStream.all()},
            categories={c.key: c for c in await WasteCategory.all()},
            methods={m.code: m for m in await TreatmentMethod.all()},
        )
    return _snapshot


async def list_streams() -> list[WasteStream]:
    """All waste streams."""
    return list((await snapshot()).streams.values())


async def list_categories(*, stream: str | None = None) -> list[WasteCategory]:
    """Categories, optionally of one stream."""
    catalog = await snapshot()
    if stream is not None and stream not in catalog.streams:
        raise NotFound(f"unknown stream {stream!r}", field="stream")
    return [c for c in catalog.categories.values() if stream is None or c.stream_id == stream]


async def list_methods() -> list[TreatmentMethod]:
    """Treatment methods with their modes."""
    return list((await snapshot()).methods.values())


async def treatment_modes() -> list[str]:
    """The treatment modes of the catalogue's methods (R, D, pending, …), in order: the columns
    a figure by mode has, whichever modes its rows hold."""
    return sorted({method.mode for method in await list_methods()})


async def category_for_stream(*, stream: str | None, category: str) -> WasteCategory:
    """The category, refused when it is unknown or belongs to another stream than `stream`
    (when one is named)."""
    catalog = await snapshot()
    if stream is not None and stream not in catalog.streams:
        raise ValidationFailed(f"unknown stream {stream!r}", field="stream")
    found = catalog.categories.get(category)
    if found is None:
        raise ValidationFailed(f"unknown category {category!r}", field="category")
    if stream is not None and found.stream_id != stream:
        raise ValidationFailed(
            f"category {category!r} belongs to stream {found.stream_id!r}, not {stream!r}",
            field="category",
        )
    return found


def check_hazards(category: WasteCategory, hazard: Sequence[str] | None) -> None:
    """A category that carries hazard characteristics (a medical class) gives them to its
    waste: a batch of it has some of them (a chemical waste the ones it has), never another,
    or its label would show a pictogram the class does not have."""
    if hazard and category.hazard and not set(hazard) <= set(category.hazard):
        raise ValidationFailed(
            f"{category.key} waste has the hazard characteristics"
            f" {', '.join(category.hazard)}, not {', '.join(hazard)}",
            field="hazard",
        )


async def validate_waste_code(*, category: str, waste_code: str | None) -> None:
    """A 名录 code has the form NNN-NNN-NN in ASCII digits and obeys its category: the exact
    code a category fixes (med.sharps: 841-002-01) or the pattern of its HW class (hw.08:
    NNN-NNN-08), as catalog data."""
    if waste_code is None:
        return
    catalog = await snapshot()
    rule = catalog.waste_code_rule(category)
    if rule is None:
        raise ValidationFailed(
            "waste_code applies only to hazardous and medical categories", field="waste_code"
        )
    if not WASTE_CODE_FORM.fullmatch(waste_code):
        raise ValidationFailed(
            "waste_code must have the form NNN-NNN-NN in ASCII digits (国家危险废物名录)",
            field="waste_code",
        )
    if rule.waste_code is not None and waste_code != rule.waste_code:
        raise ValidationFailed(
            f"waste_code of {category} must be {rule.waste_code} ({rule.name_zh})",
            field="waste_code",
        )
    if rule.waste_code_pattern is not None and not re.fullmatch(
        rule.waste_code_pattern, waste_code
    ):
        hw = catalog.hw_number(category)
        raise ValidationFailed(
            f"waste_code of {category} must match {rule.waste_code_pattern}"
            + (f" (the HW{hw} class)" if hw else ""),
            field="waste_code",
        )
