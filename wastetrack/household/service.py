"""Household waste sorting (生活垃圾分类): pickups at collection points with a quality check,
which communities and villages sort, and the coverage and accuracy that follow."""

from datetime import date
from typing import Any, TypedDict

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.batches.models import Unit
from wastetrack.catalog import service as catalog
from wastetrack.core import cityday, codes, reported
from wastetrack.core.errors import Forbidden, NotFound, ValidationFailed
from wastetrack.core.metrics import Rate, ratio
from wastetrack.core.principal import Principal
from wastetrack.core.regions import lineage, subtree
from wastetrack.custody import intake
from wastetrack.evidence import service as evidence
from wastetrack.household.commands import PickupCommand
from wastetrack.household.models import Pickup, SortedCollectionEnded
from wastetrack.registry import access, identities
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, Region, RegionLevel, Site
from wastetrack.rollups.facts import OUTSIDE_COHORT
from wastetrack.rollups.models import BatchFact
from wastetrack.rollups.service import definition

HOUSEHOLD = "household"

COVERAGE = definition("sorting_coverage")
URBAN_COVERAGE = definition("sorting_coverage_urban")
RURAL_COVERAGE = definition("sorting_coverage_rural")
ACCURACY = definition("sorting_accuracy")


class Coverage(TypedDict):
    """Sorting coverage of an area: communities and villages together, and each apart
    (urban: communities; rural: villages); `unclassified` counts the village-level regions
    whose code says neither, in no coverage (docs/metrics.md §6)."""

    coverage: Rate
    urban_coverage: Rate
    rural_coverage: Rate
    unclassified: int


class TownSorting(Coverage):
    region_id: int
    name: str
    # Asked for an area inside the town (`?region_id=` a village): the figures of its part.
    partial: bool
    accuracy: Rate


class AreaSorting(Coverage):
    """One row of the sorting table: a region's (or what lies in no town's) coverage and
    accuracy."""

    region_id: int | None
    name: str | None
    accuracy: Rate


class SortingMetrics(Coverage):
    """Sorting coverage and accuracy for a region, per town, and for what lies in the region
    but in no town: the towns and `outside_towns` add up to the region's figures."""

    date_from: date
    date_to: date
    timezone: str
    accuracy: Rate
    towns: list[TownSorting]
    outside_towns: AreaSorting


async def site_from_scan(scanned: str, *, secret: str, field: str = "site") -> Site:
    """The collection point a scanned plate names; forged codes are refused like unknown ones."""
    code = codes.code_from_scan(scanned, secret=secret)
    site = (
        await Site.get_or_none(code=code).prefetch_related("region", "organization")
        if code
        else None
    )
    if site is None:
        raise NotFound("no collection point with this code", field=field)
    return site


def takes_pickups(site: Site) -> bool:
    """Whether household pickups are recorded at this site (one `site_from_scan` read): a
    collection point's (投放点). Every site has a plate; only a collection point's loads are
    household sorting (docs/streams/household.md), or a clinic's yard would count in
    accuracy."""
    return bool(site.organization.kind == OrganizationKind.collection_point)


async def may_pick_up(principal: Principal, site: Site, *, on: date) -> bool:
    """Whether the user may record a pickup at this site on day `on` (what `record_pickup`
    refuses, as the scan's offer): a collector, at a collection point, whose organization may
    tag the point's waste (`access.may_tag_for`: a community's collector of its area, or one
    serving it under an agreement)."""
    return (
        principal.role == Role.collector
        and takes_pickups(site)
        and await access.may_tag_for(
            principal=principal,
            producer_id=site.organization_id,
            stream=HOUSEHOLD,
            label_organization_id=None,
            on=on,
            site_region_path=site.region.path,
        )
    )


# How a pickup names what its batch's tagging and collection refuse.
PICKUP_FIELDS = {
    "quantity": "weight_kg",
    "unit": "weight_kg",
    "producer_organization_id": "site",
    "origin_site_id": "site",
    "batch": "site",
}


async def record_pickup(
    *, principal: Principal, submission: PickupCommand, secret: str
) -> intake.RecordResult:
    """A collector picks up one class at a scanned collection point: the load becomes a batch
    in the collector's hands, with its sorting-quality check. Exactly once."""

    async def apply(payload_digest: str) -> Pickup:
        if principal.role != Role.collector:
            raise Forbidden("pickups are recorded by collectors", field="role")
        site = await site_from_scan(submission.site, secret=secret)
        if not takes_pickups(site):
            raise ValidationFailed(
                f"site {site.code} belongs to a {site.organization.kind}, not a collection"
                " point: pickups are recorded at collection points",
                field="site",
            )
        await catalog.category_for_stream(stream=HOUSEHOLD, category=submission.category)
        quality = submission.quality
        await evidence.require_photos(
            quality.photo_sha256 if quality else None,
            principal=principal,
            field="quality.photo_sha256",
        )
        (batch,) = await intake.take_in(
            principal=principal,
            record_id=submission.client_event_id,
            when=submission.device_time,
            secret=secret,
            stream=HOUSEHOLD,
            lines=[intake.IntakeLine(submission.category, submission.weight_kg, Unit.KG)],
            producer_id=site.organization_id,
            handover_to=None,
            origin_site_id=site.id,
            latitude=submission.latitude,
            longitude=submission.longitude,
            # The pickup is its one line: its fields are the request's own.
            record_fields=PICKUP_FIELDS,
        )
        return await Pickup.create(
            site=site,
            region_path=site.region.path,
            batch_id=batch.id,
            picked_up_at=submission.device_time,
            quality_checked=quality is not None,
            quality_passed=quality.passed if quality else None,
            contamination_share=quality.contamination_share if quality else None,
            photo_sha256=quality.photo_sha256 if quality else None,
            recorded_by_id=principal.user_id,
            organization_id=principal.organization_id,
            client_event_id=submission.client_event_id,
            payload_digest=payload_digest,
        )

    return await intake.record_once(
        model=Pickup,
        principal=principal,
        submission=submission,
        apply=apply,
        code_of=lambda text: codes.code_from_scan(text, secret=secret),
    )


async def get_pickup(*, principal: Principal, pickup_id: int) -> Pickup:
    """A pickup the user's organization recorded (a colleague's resend on a shared phone is
    answered with it, as the record's owner is its organization) or the user manages."""
    pickup = await Pickup.get_or_none(id=pickup_id).prefetch_related("batch")
    if pickup is None or not (
        pickup.organization_id == principal.organization_id
        or principal.role == Role.admin
        or (principal.sees_region and pickup.region_path.startswith(principal.region_path))
    ):
        raise NotFound(f"no pickup {pickup_id}", field="pickup_id")
    return pickup


async def set_sorted_collection(
    *, region_id: int, since: date | None, timezone: str, ended_on: date | None = None
) -> Region:
    """Record since when a community or village has sorted collection, or (`since` None) that
    it has none from `ended_on` on (today by default). The period that ends is kept
    (SortedCollectionEnded), so the days it covered still count as of them; a start recorded
    for a period running now corrects that start, and never reaches into a period that ended."""
    region = await registry.get_region(region_id, lock=True)
    if region.level != RegionLevel.village:
        raise ValidationFailed(
            "sorted collection is recorded per community or village", field="region_id"
        )
    last = await SortedCollectionEnded.filter(region_id=region.id).order_by("-until").first()
    if since is not None:
        if ended_on is not None:
            raise ValidationFailed(
                "ended_on ends sorted collection: send it with sorted_collection_since null",
                field="ended_on",
            )
        if since < reported.DAY_FLOOR:
            raise ValidationFailed(
                f"sorted_collection_since precedes {reported.DAY_FLOOR:%Y-%m-%d}, before any"
                " record",
                field="sorted_collection_since",
            )
        if last is not None and since < last.until:
            raise ValidationFailed(
                f"sorted collection ran from {last.since} until {last.until}: a new start is"
                f" on or after {last.until}",
                field="sorted_collection_since",
            )
        await audit.updated("region.updated", region, within=region, sorted_collection_since=since)
        return region
    started = region.sorted_collection_since
    if started is None:
        if ended_on is not None:
            raise ValidationFailed("the region has no sorted collection to end", field="ended_on")
        return region
    today = cityday.today(timezone)
    if ended_on is not None:
        reported.check_day_come(
            ended_on, timezone=timezone, field="ended_on", why="an end ahead is a plan, not an end"
        )
        if ended_on < started:
            raise ValidationFailed(
                f"sorted collection started on {started}: it ends on or after it",
                field="ended_on",
            )
    until = ended_on or today
    if until > started:  # a start not yet come (a plan) withdrawn: no day to keep
        ended = await SortedCollectionEnded.create(region=region, since=started, until=until)
        # About the region (its subject), the period kept as what came after.
        await audit.record(
            action="region.sorted_collection_ended",
            subject=region,
            region_path=region.path,
            after=audit.snapshot(ended),
        )
    await audit.updated("region.updated", region, within=region, sorted_collection_since=None)
    return region


async def sorted_collection_ended(region: Region) -> list[SortedCollectionEnded]:
    """A community's or village's periods of sorted collection that have ended, oldest first."""
    return await SortedCollectionEnded.filter(region_id=region.id).order_by("since")


async def sorted_on(villages: list[Region], day: date) -> list[bool]:
    """Whether each community or village had sorted collection on `day`: its period running
    now had started by then, or a period that ended covered it."""
    ended = {
        period.region_id
        for period in await SortedCollectionEnded.filter(
            region_id__in=[v.id for v in villages], since__lte=day, until__gt=day
        ).only("id", "region_id")
    }
    return [
        v.id in ended
        or (v.sorted_collection_since is not None and v.sorted_collection_since <= day)
        for v in villages
    ]


def quality_checks(*, region_path: str, date_from: date, date_to: date) -> QuerySet[Pickup]:
    """The quality checks a period counts (docs/metrics.md §6): those of the pickups whose batch
    is in a cohort of the region and period, as every figure reads it — its fact (tagging day
    and region after corrections; neither cancelled nor a container holding other batches, whose
    contents count instead). A phone's wrong clock corrected moves its check with it. The region
    is the batch's, not the pickup's site's: a site may lie below its organization's region, and
    a batch's region is pinned by its tagging, so a check counts where its waste does — in
    accuracy, in each town's and in a cell's criterion."""
    counted = BatchFact.filter(subtree(region_path), day__gte=date_from, day__lte=date_to).exclude(
        fate__in=[fate.value for fate in OUTSIDE_COHORT]
    )
    return Pickup.filter(quality_checked=True, batch_id__in=Subquery(counted.values("batch_id")))


class SortingRow(AreaSorting):
    """A row of the sorting export: `scope` says whether it is the area's headline, a town,
    or what lies in the area but in no town (the city's own region); the rows after the
    headline add up to it."""

    scope: str
    date_from: date
    date_to: date
    partial: bool  # a town's row: as TownSorting's; the others' never


# What lies in the area but in no town: the city's own region (a village registered directly
# under it, a check whose batch counts at city level), counted in the headline and no town;
# nothing, for an area inside a town.
OUTSIDE_TOWNS = "镇街以外"


async def _sorting(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> tuple[SortingMetrics, AreaSorting]:
    """The sorting metrics and the area's own row (its headline), from one read of the regions
    and the checks."""
    regions = await Region.filter(path__startswith=principal.region_path).order_by("path")
    villages = [r for r in regions if r.level == RegionLevel.village]
    checks = await quality_checks(
        region_path=principal.region_path, date_from=date_from, date_to=date_to
    ).values("quality_passed", region_path="batch__region_path")

    # A standing as of the period's last day, or of today while the period runs on: a start
    # of sorted collection recorded ahead (a plan) is no sorted collection yet.
    as_of = min(date_to, cityday.today(timezone))
    standing = dict(zip((v.id for v in villages), await sorted_on(villages, as_of), strict=True))

    def coverage(group: list[Region]) -> Coverage:
        """Of these communities and villages, those with sorted collection by `as_of`: all
        together (communities plus villages), and each apart; a region whose code says
        neither is counted in none, only as unclassified."""
        kinds = [identities.settlement_kind(v.code) for v in group]
        sorted_ = [standing[v.id] for v in group]

        def of(kind: str) -> tuple[int, int]:
            pairs = [s for s, k in zip(sorted_, kinds, strict=True) if k == kind]
            return sum(pairs), len(pairs)

        urban, rural = of("community"), of("village")
        return {
            "coverage": ratio(
                urban[0] + rural[0], urban[1] + rural[1], "communities and villages", COVERAGE
            ),
            "urban_coverage": ratio(*urban, "communities", URBAN_COVERAGE),
            "rural_coverage": ratio(*rural, "villages", RURAL_COVERAGE),
            "unclassified": kinds.count(None),
        }

    def accuracy(group: list[dict[str, Any]]) -> Rate:
        return ratio(
            sum(bool(c["quality_passed"]) for c in group), len(group), "quality checks", ACCURACY
        )

    # The towns in the area, or the one it lies in (a village's): what lies in the area
    # inside a town is that town's, whichever the area asked for.
    above = await Region.filter(
        path__in=lineage(principal.region_path)[:-1], level=RegionLevel.town
    )
    town_regions = [*above, *(r for r in regions if r.level == RegionLevel.town)]

    def in_a_town(path: str) -> bool:
        return any(path.startswith(t.path) for t in town_regions)

    towns: list[TownSorting] = []
    for town in town_regions:
        in_town = [v for v in villages if v.path.startswith(town.path)]
        town_checks = [c for c in checks if c["region_path"].startswith(town.path)]
        towns.append(
            {
                "region_id": town.id,
                "name": town.name,
                "partial": town.path != principal.region_path
                and principal.region_path.startswith(town.path),
                **coverage(in_town),
                "accuracy": accuracy(town_checks),
            }
        )
    outside: AreaSorting = {
        "region_id": None,
        "name": OUTSIDE_TOWNS,
        **coverage([v for v in villages if not in_a_town(v.path)]),
        "accuracy": accuracy([c for c in checks if not in_a_town(c["region_path"])]),
    }
    metrics: SortingMetrics = {
        "date_from": date_from,
        "date_to": date_to,
        "timezone": timezone,
        **coverage(villages),
        "accuracy": accuracy(checks),
        "towns": towns,
        "outside_towns": outside,
    }
    area = next((r for r in regions if r.path == principal.region_path), None)
    headline: AreaSorting = {
        "region_id": area.id if area else None,
        "name": area.name if area else None,
        **coverage(villages),
        "accuracy": accuracy(checks),
    }
    return metrics, headline


async def sorting_metrics(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> SortingMetrics:
    """Sorting coverage (communities and villages with sorted collection by the end of the
    period ÷ all) and sorting accuracy (quality checks passed ÷ performed in the period), for
    the user's region, per town and for what lies in it but in no town."""
    metrics, _ = await _sorting(
        principal=principal, date_from=date_from, date_to=date_to, timezone=timezone
    )
    return metrics


async def sorting_rows(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> list[SortingRow]:
    """The sorting table as the export gives it: the area's headline first (the figures the
    JSON answer gives at its top level), then each town, then what lies in the area but in no
    town — so that every count below the headline adds up to it; every row names its
    period."""
    metrics, headline = await _sorting(
        principal=principal, date_from=date_from, date_to=date_to, timezone=timezone
    )
    towns: list[SortingRow] = [
        {"scope": "town", "date_from": date_from, "date_to": date_to, **town}
        for town in metrics["towns"]
    ]
    return [
        {"scope": "area", "date_from": date_from, "date_to": date_to, "partial": False, **headline},
        *towns,
        {
            "scope": "outside_towns",
            "date_from": date_from,
            "date_to": date_to,
            "partial": False,
            **metrics["outside_towns"],
        },
    ]
