"""A region subtree read as an equality on one part of the path (`wastetrack.core.regions`)
selects the records a prefix match of the path selects, at every level of division."""

import uuid
from datetime import UTC, datetime

import pytest
from tortoise.exceptions import FieldError
from tortoise.expressions import Q

from tests.factories import World
from wastetrack.alerts.models import Alert
from wastetrack.core import regions
from wastetrack.registry import service as registry
from wastetrack.registry.models import Region, RegionLevel

# Two cities whose ids share leading digits, at every level: a region is named by its whole id
# at its own depth, not by the digits it starts with ("71" is not "7100"), and an id may come
# again at another depth (71 a town of city 7 and a village of town 7100): the part read is the
# one at the root's depth.
PATHS = [
    "/7/",
    "/7/71/",
    "/7/71/710/",
    "/7/71/7100/",
    "/7/7100/",
    "/7/7100/71/",
    "/77/",
    "/77/71000/",
]


@pytest.mark.parametrize("root", PATHS)
async def test_a_subtree_is_the_records_under_its_path_and_its_negation_the_rest(
    world: World, root: str
) -> None:
    batch = uuid.uuid4().hex[:16]
    for path in PATHS:
        await Alert.create(
            kind="idle_batch",
            subject=f"{batch}{path}",
            organization=world.orgs["clinic"],
            region_path=path,
            raised_at=datetime.now(UTC),
        )
    mine = Alert.filter(subject__startswith=batch)
    under = sorted(path for path in PATHS if path.startswith(root))
    assert (
        sorted(await mine.filter(regions.subtree(root)).values_list("region_path", flat=True))
        == under
    )
    assert sorted(
        await mine.filter(~regions.subtree(root)).values_list("region_path", flat=True)
    ) == sorted(set(PATHS) - set(under))
    # Among other reasons, as a list's reasons are given.
    either = Q(regions.subtree(root), Q(region_path="/77/"), join_type=Q.OR)
    assert sorted(await mine.filter(either).values_list("region_path", flat=True)) == sorted(
        set(under) | {"/77/"}
    )


async def test_each_region_of_the_city_is_its_own_subtree(world: World) -> None:
    for region in await Region.all():
        by_part = await Region.filter(regions.subtree(region.path, "path")).order_by("id")
        by_prefix = await Region.filter(path__startswith=region.path).order_by("id")
        assert by_part == by_prefix and region in by_part


async def test_a_subtree_of_a_column_the_table_has_not_is_refused(world: World) -> None:
    with pytest.raises(FieldError, match="no column path"):
        Alert.filter(regions.subtree("/7/", "path")).sql()


@pytest.mark.parametrize("path", ["", "/", "7/", "/7", "/7//", "/a/", "/7/%/"])
def test_what_is_not_a_region_path_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="not a region path"):
        regions.subtree(path)


async def test_a_region_is_made_with_its_path_or_not_at_all(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A region and its audit entry are one transaction: a region the audit refused is not
    left behind."""

    async def audit_down(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(registry.audit, "created", audit_down)
    with pytest.raises(RuntimeError):
        await registry.create_region(
            code="371082098", name="新街道", level=RegionLevel.town,
            parent_id=world.regions["city"].id,
        )  # fmt: skip
    assert not await Region.exists(code="371082098")
