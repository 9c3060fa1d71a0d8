"""A transfer manifest's declared quantity against its batches' declared masses: the one rule
a draft, a revision and a custody correction of a listed batch's declaration are held to."""

from collections.abc import Iterable
from decimal import Decimal

from tortoise import connections

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


JUDGED_LOCK_KEY = 0x6D717479
"""First half of the advisory lock key a manifest's quantity is judged under ("mqty" in
ASCII); the manifest's id is the second."""


async def judged_alone(manifest_id: int) -> None:
    """Hold, for the rest of the transaction, the right to judge this manifest's quantity
    against its batches' declarations. A listed batch's correction and a revision's last
    approval each read what the other changes (the batches' masses, the manifest's quantity),
    so two judged at once could each pass on what the other has not yet written: two drums
    corrected together past the tolerance, a revision applied beside a correction that
    contradicts it. Taken before they read, the second reads what the first wrote. An advisory
    lock, not the manifest's row: a correction holds its batch first, and signing locks the
    manifest before its batches."""
    await connections.get("default").execute_query(
        "SELECT pg_advisory_xact_lock($1, $2)", [JUDGED_LOCK_KEY, manifest_id]
    )
