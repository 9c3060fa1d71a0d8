"""A transfer manifest's declared quantity against its batches' declared masses: the one rule
a draft, a revision and a custody correction of a listed batch's declaration are held to."""

from collections.abc import Iterable
from decimal import Decimal

from wastetrack.batches.models import Batch
from wastetrack.catalog.service import CatalogSnapshot
from wastetrack.core.errors import ValidationFailed
from wastetrack.custody import remainders


def declared_kg(snapshot: CatalogSnapshot, batches: Iterable[Batch]) -> Decimal | None:
    """The batches' declared masses added up (kg, or the catalog's estimate for items and m³,
    as the decision shares the quantity received among them); None when one has no known mass
    (a drum counted in items of a category without a unit mass: the sum would say too
    little, and leaves nothing to judge)."""
    masses = [remainders.known_kg(snapshot, batch) for batch in batches]
    if any(mass is None for mass in masses):
        return None
    return sum((mass for mass in masses if mass is not None), Decimal(0))


def off(quantity: Decimal, declared: Decimal | None, tolerance: Decimal) -> bool:
    """Whether a manifest's quantity is more than the tolerance its receipt is judged by off
    what its batches declare: a typo (80 for 800) would be printed on the manifest and make an
    honest receipt a discrepancy."""
    return declared is not None and declared > 0 and abs(quantity - declared) / declared > tolerance


def percent(tolerance: Decimal) -> str:
    """The tolerance as a refusal states it: `5` for 0.05."""
    return f"{(tolerance * 100).normalize():f}"


def check_declared_quantity(
    snapshot: CatalogSnapshot,
    *,
    batches: Iterable[Batch],
    quantity: Decimal,
    tolerance: Decimal,
    field: str,
) -> None:
    """A manifest's quantity as drafted or revised, refused naming `field` when `off`."""
    declared = declared_kg(snapshot, batches)
    if off(quantity, declared, tolerance):
        raise ValidationFailed(
            f"{field} {quantity} is more than {percent(tolerance)} % off the"
            f" {declared} kg the batches declare",
            field=field,
        )
