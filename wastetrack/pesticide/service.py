"""Pesticide packaging take-back (谁生产、经营，谁回收): shops and recovery points take back
containers from farmers, award credit points (信用积分), keep the ledger (台账), and send the
packaging on to treatment through the custody chain."""

import hashlib
import hmac
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypedDict, TypeVar

from tortoise import connections
from tortoise.expressions import Q
from tortoise.functions import Sum
from tortoise.queryset import QuerySet

from wastetrack.audit import service as audit
from wastetrack.auth.models import Role
from wastetrack.batches.models import Batch, Unit
from wastetrack.catalog import service as catalog
from wastetrack.core import cityday, keys
from wastetrack.core.cityday import local_date
from wastetrack.core.data import read_data_file
from wastetrack.core.errors import DomainError, Forbidden, NotFound, ValidationFailed
from wastetrack.core.metrics import Rate, period_bounds, ratio
from wastetrack.core.principal import Principal
from wastetrack.core.regions import lineage
from wastetrack.core.reported import check_day_come, check_reported
from wastetrack.core.settings import get_settings
from wastetrack.custody import intake
from wastetrack.custody.rules import State
from wastetrack.pesticide.commands import (
    ConsignmentCommand,
    FarmerIdentity,
    ReturnCommand,
    SaleCommand,
)
from wastetrack.pesticide.models import Consignment, Farmer, PackageSale, PackagingReturn
from wastetrack.registry import service as registry
from wastetrack.registry.models import Organization, OrganizationKind, Region, RegionLevel
from wastetrack.rollups.models import BatchFact
from wastetrack.rollups.service import definition

STREAM = "agri_packaging"
POINT_KINDS = frozenset({OrganizationKind.agri_input_shop, OrganizationKind.recovery_point})
POINT_ROLES = frozenset({Role.generator, Role.collector})
LEDGER_HEADERS = [
    "日期 date",
    "类型 kind",
    "来源 source",
    "材质 material",
    "数量 count",
    "重量 weight_kg",
    "去向 destination",
    # A consignment's batch: where it stands now, as every figure reads it (its fact's fate:
    # rejected at the receiver's gate, pending, recovered...); a return has none.
    "结果 fate",
    "积分 points",
]

CREDIT_RULES = read_data_file("wastetrack.pesticide", "credit_rules.json")


class Credits(TypedDict):
    """A farmer's balance, shown with the masked identity it was asked with."""

    farmer: str
    points: Decimal
    returns: int


class KgRecovery(TypedDict):
    """The flow in kg, where the catalog gives the unit masses it needs; else why not."""

    recovery_rate: Rate | None
    returned_estimated_kg: Decimal | None
    """Of the kg returned, the lines counted and not weighed: count × unit mass (estimated)."""
    omitted: str | None


class Recovery(TypedDict):
    """Containers sold and returned by some shops and points (or of one material), the rate,
    and the same flow in kg."""

    sold: int
    returned: int
    returned_uncounted_kg: Decimal
    """Weighed and not counted (a line without a count): outside the count rate, shown beside
    it; in the kg rate."""
    recovery_rate: Rate
    kg: KgRecovery


class MaterialRecovery(Recovery):
    material: str


class ShopRecovery(Recovery):
    """A shop's own sales and the returns it took back."""

    organization_id: int
    name: str
    town_id: int
    materials: list[MaterialRecovery]


class TownRecovery(Recovery):
    """The sales of a town's shops and the returns at its shops and recovery points. `level` is
    `city` for those registered at the city's own region, above any town."""

    region_id: int
    name: str
    level: str
    partial: bool
    shops: int
    points: int
    materials: list[MaterialRecovery]


class RecoveryMetrics(TypedDict):
    """Containers returned against containers sold, in all, per material, by shop and by town,
    and in kg."""

    date_from: date
    date_to: date
    timezone: str
    sold: int
    returned: int
    returned_uncounted_kg: Decimal
    recovery_rate: Rate
    kg: KgRecovery
    materials: list[MaterialRecovery]
    by_shop: list[ShopRecovery]
    by_town: list[TownRecovery]


def farmer_key(identity: FarmerIdentity, *, secret: str) -> tuple[str, str]:
    """A keyed hash of the phone or ID number (never stored in clear) and a masked form."""
    value = identity.farmer_phone or identity.farmer_id_number or ""
    identity_key = keys.ring(secret).farmer_identity
    key = hmac.new(identity_key, b"farmer:" + value.encode(), hashlib.sha256).hexdigest()
    masked = (
        f"{value[:3]}****{value[-4:]}" if identity.farmer_phone else f"{value[:4]}****{value[-4:]}"
    )
    return key, masked


async def _point(principal: Principal) -> Organization:
    org = await registry.get_organization(principal.organization_id)
    if org.kind not in POINT_KINDS or principal.role not in POINT_ROLES:
        raise Forbidden(
            "take-back is recorded by agri-input shops and recovery points", field="role"
        )
    return org


async def _check_materials(materials: list[str], fields: list[str]) -> None:
    """Each material must be a pesticide-packaging category; a refusal names its field."""
    for material, field_name in zip(materials, fields, strict=True):
        try:
            await catalog.category_for_stream(stream=STREAM, category=material)
        except DomainError as error:
            error.field = field_name
            raise


POINT = Decimal("0.1")
"""Credit points are kept to a tenth (the column's scale): a balance reads so too, `0.0`
where no return counts, as `17.0` where one does."""


def points_for(lines: list[dict[str, Any]]) -> Decimal:
    """Credit points by the configured rule: points per item of each material."""
    per_item = CREDIT_RULES["points_per_item"]
    total = sum(
        (Decimal(str(per_item.get(line["material"], 0))) * int(line["count"]) for line in lines),
        Decimal(0),
    )
    return total.quantize(POINT)


Cancellable = TypeVar("Cancellable", PackageSale, PackagingReturn)


def counted(model: type[Cancellable]) -> QuerySet[Cancellable]:
    """The sales or returns that count: one its organization cancelled (作废) counts in no
    figure, no balance and no ledger — every reader starts here."""
    return model.filter(cancelled_at__isnull=True)


async def _cancel(
    model: type[Cancellable],
    *,
    owner: str,
    record_id: int,
    field: str,
    principal: Principal,
    reason: str,
) -> Cancellable:
    """The organization cancels one of its sales or returns: it counts in no figure from then
    on, and the right one is recorded anew. Cancelling it again changes nothing and answers it
    as it is; another organization's is not found. The audit log keeps who, when and why."""
    # Locked in the request's transaction: two cancels at once take turns, and the second
    # finds the record cancelled and writes nothing.
    owned: dict[str, Any] = {owner: principal.organization_id}
    record = await model.filter(id=record_id, **owned).select_for_update().first()
    noun = field.removesuffix("_id")
    if record is None:
        raise NotFound(f"no {noun} {record_id} of this organization", field=field)
    if record.cancelled_at is None:
        organization = await Organization.get(id=principal.organization_id).prefetch_related(
            "region"
        )
        await audit.updated(
            f"{model._meta.db_table}.cancelled",
            record,
            within=organization,
            cancelled_at=datetime.now(UTC),
            cancelled_by_id=principal.user_id,
            cancel_reason=reason,
        )
    return record


async def record_return(
    *, principal: Principal, submission: ReturnCommand, secret: str
) -> intake.RecordResult:
    """A farmer returns containers: counts and weights per material, credit points awarded.
    Exactly once per client_event_id."""

    async def apply(payload_digest: str) -> PackagingReturn:
        check_reported(submission.returned_at, now=datetime.now(UTC), field="returned_at")
        submission.check_born_by(local_date(submission.returned_at, get_settings().timezone))
        point = await _point(principal)
        await _check_materials(
            [line.material for line in submission.lines],
            [f"lines[{i}].material" for i in range(len(submission.lines))],
        )
        key, masked = farmer_key(submission, secret=secret)
        farmer, _ = await Farmer.get_or_create(key=key, defaults={"masked": masked})
        lines = [line.as_kept() for line in submission.lines]
        return await PackagingReturn.create(
            point=point,
            farmer=farmer,
            returned_at=submission.returned_at,
            lines=lines,
            points=points_for(lines),
            recorded_by_id=principal.user_id,
            client_event_id=submission.client_event_id,
            payload_digest=payload_digest,
        )

    return await intake.record_once(
        model=PackagingReturn,
        principal=principal,
        submission=submission.keyed(keys.ring(secret).kept_digest),
        apply=apply,
    )


async def get_return(*, principal: Principal, return_id: int) -> tuple[PackagingReturn, Decimal]:
    """A return of the user's point, and its farmer's balance after it."""
    record = (
        await PackagingReturn.filter(id=return_id, point_id=principal.organization_id)
        .first()
        .prefetch_related("farmer")
    )
    if record is None:
        raise NotFound(f"no return {return_id}", field="return_id")
    return record, await balance_of(record.farmer_id)


async def cancel_return(*, principal: Principal, return_id: int, reason: str) -> None:
    """The point cancels one of its returns entered wrong (作废): from then on it counts in no
    recovery figure, no ledger and not in the farmer's credit points."""
    await _cancel(
        PackagingReturn,
        owner="point_id",
        record_id=return_id,
        field="return_id",
        principal=principal,
        reason=reason,
    )


async def balance_of(farmer_id: int) -> Decimal:
    rows = (
        await counted(PackagingReturn)
        .filter(farmer_id=farmer_id)
        .annotate(total=Sum("points"))
        .values("total")
    )
    return Decimal(rows[0]["total"] or 0 if rows else 0).quantize(POINT)


async def credits(*, identity: FarmerIdentity, secret: str) -> Credits:
    """A farmer's credit balance, asked with the phone or ID number the returns were made with."""
    identity.check_born_by(cityday.today(get_settings().timezone))
    key, masked = farmer_key(identity, secret=secret)
    farmer = await Farmer.get_or_none(key=key)
    if farmer is None:
        return {"farmer": masked, "points": Decimal(0).quantize(POINT), "returns": 0}
    return {
        "farmer": farmer.masked,
        "points": await balance_of(farmer.id),
        "returns": await counted(PackagingReturn).filter(farmer_id=farmer.id).count(),
    }


async def record_sale(*, principal: Principal, submission: SaleCommand) -> tuple[PackageSale, bool]:
    """A shop records packages sold; a resend is not counted twice. The sale, and whether this
    call recorded it."""
    shop = await _point(principal)
    if shop.kind != OrganizationKind.agri_input_shop:
        raise Forbidden("sales are recorded by agri-input shops", field="role")
    # A sale estimates what comes back: one dated ahead would swell a later period's figure.
    check_day_come(submission.sold_on, timezone=get_settings().timezone, field="sold_on")

    async def create() -> PackageSale:
        await _check_materials([submission.material], ["material"])
        return await PackageSale.create(shop=shop, **submission.model_dump())

    return await intake.kept_once(
        model=PackageSale,
        client_event_id=submission.client_event_id,
        content=submission.model_dump(exclude={"client_event_id"}),
        create=create,
        owned=lambda sale: sale.shop_id == shop.id,
    )


async def cancel_sale(*, principal: Principal, sale_id: int, reason: str) -> PackageSale:
    """The shop cancels one of its sales entered wrong (作废): from then on it counts in no
    recovery figure."""
    return await _cancel(
        PackageSale,
        owner="shop_id",
        record_id=sale_id,
        field="sale_id",
        principal=principal,
        reason=reason,
    )


async def record_consignment(
    *, principal: Principal, submission: ConsignmentCommand, secret: str
) -> intake.RecordResult:
    """Packaging a point sends on to treatment: one batch per material, tagged at the point
    for its destination, waiting for a carrier. Exactly once."""

    async def apply(payload_digest: str) -> Consignment:
        # Checked as the consignment's own field: the tagging would refuse it too, but as the
        # device_time of a line the request does not have.
        check_reported(submission.sent_at, now=datetime.now(UTC), field="sent_at")
        point = await _point(principal)
        await _check_materials(
            [line.material for line in submission.lines],
            [f"lines[{i}].material" for i in range(len(submission.lines))],
        )
        destination = await registry.get_organization(
            submission.destination_organization_id, field="destination_organization_id"
        )
        if not registry.treats(destination):
            # Custody lets only a facility receive it: sent anywhere else, it would never arrive.
            raise ValidationFailed(
                f"a consignment is sent on to treatment: {destination.name} is not a treatment"
                " facility",
                field="destination_organization_id",
            )
        batches = await intake.take_in(
            principal=principal,
            record_id=submission.client_event_id,
            when=submission.sent_at,
            secret=secret,
            stream=STREAM,
            lines=[
                intake.IntakeLine(line.material, line.weight_kg, Unit.KG)
                for line in submission.lines
            ],
            producer_id=point.id,
            handover_to=None,
            latitude=None,
            longitude=None,
            collect=False,
            destination_id=destination.id,
        )
        return await Consignment.create(
            point=point,
            destination=destination,
            sent_at=submission.sent_at,
            lines=[
                {**line.as_kept(), "batch_code": batch.code}
                for line, batch in zip(submission.lines, batches, strict=True)
            ],
            recorded_by_id=principal.user_id,
            client_event_id=submission.client_event_id,
            payload_digest=payload_digest,
        )

    return await intake.record_once(
        model=Consignment, principal=principal, submission=submission, apply=apply
    )


async def get_consignment(*, principal: Principal, consignment_id: int) -> Consignment:
    record = await Consignment.get_or_none(id=consignment_id, point_id=principal.organization_id)
    if record is None:
        raise NotFound(f"no consignment {consignment_id}", field="consignment_id")
    return record


def _point_scope(principal: Principal, field: str) -> Q:
    """The points whose records a user reads: a manager's, auditor's or admin's are those in
    their region subtree (as ``?region_id=`` narrowed it), anyone else's their own point.
    ``field`` names the point on the records read; empty, the records are the points."""
    if principal.sees_region or principal.role == Role.admin:
        path = f"{field}__region__path__startswith" if field else "region__path__startswith"
        region: dict[str, Any] = {path: principal.region_path}
        return Q(**region)
    own: dict[str, Any] = {f"{field}_id" if field else "id": principal.organization_id}
    return Q(**own)


def weighed_kg(line: dict[str, Any]) -> Decimal | None:
    """A return line's weighed kg, or None when it was not weighed. A weight of 0 is no
    weighing, as the return's own check reads it (a line needs a count or a weight): such a
    line's mass is its count's, in the figures and in the ledger alike."""
    weight = line.get("weight_kg")
    weighed = None if weight is None else Decimal(str(weight))
    return weighed or None


def _returns(
    principal: Principal, date_from: date, date_to: date, timezone: str
) -> QuerySet[PackagingReturn]:
    """The returns a user reads for the city days `date_from`…`date_to`: each counts on the
    city day of its moment, and one cancelled counts on none."""
    start, end = period_bounds(date_from, date_to, timezone)
    return counted(PackagingReturn).filter(
        _point_scope(principal, "point"), returned_at__gte=start, returned_at__lt=end
    )


# The consignments of the points $3 with a batch tagged in [$1, $2) after corrections (a
# consignment's batch is tagged when it is sent, unless a correction gave the true time), and
# those batches' codes with the code of the line each stems from: a line's batch, and every
# part refused from it at a gate, a batch of its own (a remainder: tagged when its original
# was, the same waste in the same cohort), as every register reads them.
_CONSIGNED_BATCHES = """
WITH RECURSIVE sent (id, line_code, batch_id) AS (
    SELECT c.id, b.code, b.id FROM consignment c
    CROSS JOIN LATERAL jsonb_array_elements(c.lines) line
    JOIN batch b ON b.code = line->>'batch_code'
    WHERE c.point_id = ANY($3::int[]) AND b.tagged_at >= $1 AND b.tagged_at < $2
    UNION ALL SELECT sent.id, sent.line_code, part.id
    FROM sent JOIN batch part ON part.split_from_id = sent.batch_id
)
SELECT sent.id, sent.line_code, b.code FROM sent JOIN batch b ON b.id = sent.batch_id
WHERE b.tagged_at >= $1 AND b.tagged_at < $2
ORDER BY b.id
"""


# Each batch's outermost load (itself when packed in none), which carries it from then on.
_OUTERMOST = """
WITH RECURSIVE up (start, id, parent_id, depth) AS (
    SELECT id, id, parent_id, 0 FROM batch WHERE id = ANY($1::int[])
    UNION ALL SELECT up.start, p.id, p.parent_id, up.depth + 1
    FROM up JOIN batch p ON p.id = up.parent_id
)
SELECT DISTINCT ON (up.start) up.start, top.state, top.holder_id, top.destination_id
FROM up JOIN batch top ON top.id = up.id
ORDER BY up.start, up.depth DESC
"""


_TAKEN_IN = frozenset({State.received, State.stored, State.treated})


async def _went_to(batches: list[Batch], points: dict[int, int]) -> dict[int, int | None]:
    """Where each consignment batch went, as custody holds it (the batch, or the outermost load
    it is packed in, carries it): the organization that received, stored or treated it, else
    the destination it is sent to; None once a gate rejected it (back with its deliverer, no
    destination). A batch its own point (`points`: each batch's) stored is not taken in."""
    tops = await connections.get("default").execute_query_dict(
        _OUTERMOST, [[batch.id for batch in batches]]
    )
    went: dict[int, int | None] = {}
    for top in tops:
        took_in = top["state"] in _TAKEN_IN and top["holder_id"] != points[top["start"]]
        went[top["start"]] = top["holder_id"] if took_in else top["destination_id"]
    return went


async def ledger(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> tuple[list[str], list[list[Any]]]:
    """The 台账: every return and consignment in the period, a row per material. A
    consignment's rows are its batches as every register reads them (docs/registers.md): on
    the day of their tagging after corrections, a batch cancelled since in none, each with its
    material after corrections and its one mass (docs/metrics.md §3). Masses, counts and
    points are numbers a spreadsheet sums."""
    returns = await _returns(principal, date_from, date_to, timezone).prefetch_related(
        "farmer", "point"
    )
    start, end = period_bounds(date_from, date_to, timezone)
    # Only the reader's points' consignments are read, not every one of the city.
    points = await Organization.filter(_point_scope(principal, "")).values_list("id", flat=True)
    tagged = await connections.get("default").execute_query_dict(
        _CONSIGNED_BATCHES, [start, end, list(points)]
    )
    sent = await Consignment.filter(id__in={row["id"] for row in tagged}).prefetch_related(
        "destination", "point"
    )
    batches = {
        batch.code: batch for batch in await Batch.filter(code__in=[row["code"] for row in tagged])
    }
    # Each line's batches: the line's own first, then the parts refused from it.
    stemming: defaultdict[str, list[Batch]] = defaultdict(list)
    for row in tagged:
        stemming[row["line_code"]].append(batches[row["code"]])
    consigned = [
        (consignment, line, batch)
        for consignment in sent
        for line in consignment.lines
        for batch in stemming[str(line["batch_code"])]
    ]
    point_of = {batch.id: consignment.point_id for consignment, _, batch in consigned}
    went = await _went_to(list(batches.values()), point_of)
    names = dict(
        await Organization.filter(id__in={i for i in went.values() if i}).values_list("id", "name")
    )
    facts = {
        fact.batch_id: fact
        for fact in await BatchFact.filter(batch_id__in=[b.id for b in batches.values()])
    }
    rows: list[tuple[datetime, list[Any]]] = []
    for record in returns:
        for number, line in enumerate(record.lines):
            rows.append(
                (
                    record.returned_at,
                    [
                        local_date(record.returned_at, timezone).isoformat(),
                        "return",
                        f"{record.point.name} ← 农户 {record.farmer.masked}",
                        line["material"],
                        line["count"],
                        weighed_kg(line),
                        None,
                        None,
                        # The points the return was awarded, as the farmer's balance holds
                        # them (rules change), on its first row.
                        record.points if number == 0 else None,
                    ],
                )
            )
    for consignment, line, batch in consigned:
        if batch.state == State.cancelled:
            continue
        fact = facts.get(batch.id)
        count: int | None
        if batch.unit == Unit.COUNT:  # a tagging corrected into items says how many
            count = int(batch.quantity)
        else:  # the count sent, on the line's own batch: a refused part is weighed only
            count = int(line["count"]) if batch.split_from_id is None else None
        rows.append(
            (
                batch.tagged_at,
                [
                    local_date(batch.tagged_at, timezone).isoformat(),
                    "consignment",
                    consignment.point.name,
                    batch.category_id,
                    count,
                    None if fact is None or fact.mass_unknown else fact.mass_kg,
                    # Where custody says it went (the fate beside it), else where the
                    # consignment sends it.
                    f"{names.get(went.get(batch.id)) or consignment.destination.name}"
                    f" ({batch.code})",
                    None if fact is None else fact.fate,
                    None,
                ],
            )
        )
    return LEDGER_HEADERS, [row for _, row in sorted(rows, key=lambda pair: pair[0])]


def _kg_of(basis: catalog.CatalogSnapshot, material: str, items: int) -> Decimal | None:
    """Items of a material as kg by the catalog's unit mass (the one rule for a mass not
    weighed, as for batches); none are nothing, and None when the material has no unit mass."""
    return basis.estimated_kg(material, "count", Decimal(items)) if items else Decimal(0)


@dataclass
class _Tally:
    """What some shops and points sold and took back in the period, per material."""

    sold: Counter[str] = field(default_factory=Counter)
    returned: Counter[str] = field(default_factory=Counter)
    # Weighed and not counted: outside the count rate, shown beside it.
    uncounted_kg: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    # One mass per return line, as for batches (docs/metrics.md §3): the kg weighed when the
    # line was weighed, else its count × the unit mass (estimated), kept here as items.
    weighed_kg: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    unweighed: Counter[str] = field(default_factory=Counter)

    def add_line(self, line: dict[str, Any]) -> None:
        material, count = line["material"], int(line["count"])
        self.returned[material] += count
        weight = weighed_kg(line)
        if weight is not None:
            self.weighed_kg[material] += weight
            if not count:
                self.uncounted_kg[material] += weight
        else:
            self.unweighed[material] += count

    def merge(self, other: "_Tally") -> None:
        self.sold.update(other.sold)
        self.returned.update(other.returned)
        self.unweighed.update(other.unweighed)
        for material, kg in other.uncounted_kg.items():
            self.uncounted_kg[material] += kg
        for material, kg in other.weighed_kg.items():
            self.weighed_kg[material] += kg

    def materials(self) -> list[str]:
        return sorted(set(self.sold) | set(self.returned) | set(self.weighed_kg))

    def in_kg(self, materials: list[str], basis: catalog.CatalogSnapshot) -> KgRecovery:
        """The kg rate over these materials: sales are items, so every material sold needs a
        unit mass, as does one counted back and not weighed; without one the rate is left
        out, naming the materials, rather than shown over part of the flow."""
        sold_kg = returned_kg = estimated_kg = Decimal(0)
        missing: list[str] = []
        for material in materials:
            sold = _kg_of(basis, material, self.sold[material])
            estimated = _kg_of(basis, material, self.unweighed[material])
            if sold is None or estimated is None:
                missing.append(material)
                continue
            sold_kg += sold
            estimated_kg += estimated
            returned_kg += self.weighed_kg.get(material, Decimal(0)) + estimated
        if missing:
            return {
                "recovery_rate": None,
                "returned_estimated_kg": None,
                "omitted": f"no unit mass in the catalog for {', '.join(missing)}",
            }
        return {
            "recovery_rate": ratio(returned_kg, sold_kg, "kg", definition("pesticide_recovery_kg")),
            "returned_estimated_kg": estimated_kg,
            "omitted": None,
        }

    def figures(self, materials: list[str], basis: catalog.CatalogSnapshot) -> Recovery:
        """Containers returned ÷ sold over these materials, and the same flow in kg. Both are
        flow ratios: older packaging coming back may take them over 100 %, which the
        definition says; they are not capped."""
        sold = sum(self.sold[m] for m in materials)
        returned = sum(self.returned[m] for m in materials)
        return {
            "sold": sold,
            "returned": returned,
            "returned_uncounted_kg": sum(
                (self.uncounted_kg.get(m, Decimal(0)) for m in materials), Decimal(0)
            ),
            "recovery_rate": ratio(returned, sold, "containers", definition("pesticide_recovery")),
            "kg": self.in_kg(materials, basis),
        }

    def per_material(self, basis: catalog.CatalogSnapshot) -> list[MaterialRecovery]:
        return [{"material": m, **self.figures([m], basis)} for m in self.materials()]


async def _towns(organizations: list[Organization]) -> dict[int, Region]:
    """The town of each organization (by id): the region at town level on its region's path,
    or its region itself when that lies above any town (registered at the city's own region),
    so that every shop and point falls in one entry."""
    prefixes = {path for org in organizations for path in lineage(org.region.path)}
    towns = {r.path: r for r in await Region.filter(path__in=prefixes, level=RegionLevel.town)}
    found: dict[int, Region] = {}
    for org in organizations:
        found[org.id] = next(
            (town for path, town in towns.items() if org.region.path.startswith(path)),
            org.region,
        )
    return found


async def recovery_metrics(
    *, principal: Principal, date_from: date, date_to: date, timezone: str
) -> RecoveryMetrics:
    """Recovery rate = containers returned ÷ containers sold (generation estimated from sales),
    per material and in all, in the user's region, by shop and by town; and the same in kg
    where the catalog gives the unit masses. A shop's returns count for the shop and its town,
    a recovery point's for its town alone: it sold nothing to measure them against."""
    # A sale is dated by its city day already; a return's moment falls on the city's day.
    sales = (
        await counted(PackageSale)
        .filter(
            _point_scope(principal, "shop"),
            sold_on__gte=date_from,
            sold_on__lte=date_to,
        )
        .values("shop_id", "material", "count")
    )
    returns = await _returns(principal, date_from, date_to, timezone).values("point_id", "lines")
    tallies: defaultdict[int, _Tally] = defaultdict(_Tally)
    for sale in sales:
        tallies[sale["shop_id"]].sold[sale["material"]] += sale["count"]
    for record in returns:
        for line in record["lines"]:
            tallies[record["point_id"]].add_line(line)
    # Every shop and point of the region, idle ones too (a shop that sold nothing is seen),
    # and any organization with records whose kind has changed since.
    organizations = (
        await Organization.filter(
            Q(kind__in=POINT_KINDS) | Q(id__in=list(tallies)),
            _point_scope(principal, ""),
        )
        .prefetch_related("region")
        .order_by("name", "id")
    )
    town_of = await _towns(organizations)
    basis = await catalog.snapshot()

    region = _Tally()
    for tally in tallies.values():
        region.merge(tally)
    by_shop: list[ShopRecovery] = []
    in_town: dict[int, tuple[Region, _Tally, list[Organization]]] = {}
    for org in organizations:
        tally = tallies.get(org.id) or _Tally()
        town = town_of[org.id]
        _, town_tally, members = in_town.setdefault(town.id, (town, _Tally(), []))
        town_tally.merge(tally)
        members.append(org)
        if org.kind == OrganizationKind.agri_input_shop or tally.sold:
            by_shop.append(
                {
                    "organization_id": org.id,
                    "name": org.name,
                    "town_id": town.id,
                    **tally.figures(tally.materials(), basis),
                    "materials": tally.per_material(basis),
                }
            )
    by_town: list[TownRecovery] = [
        {
            "region_id": town.id,
            "name": town.name,
            "level": town.level.value,
            # Asked for an area inside the town (`?region_id=` a village): its part alone.
            "partial": principal.region_path != town.path
            and principal.region_path.startswith(town.path),
            "shops": sum(o.kind == OrganizationKind.agri_input_shop for o in members),
            "points": sum(o.kind == OrganizationKind.recovery_point for o in members),
            **tally.figures(tally.materials(), basis),
            "materials": tally.per_material(basis),
        }
        for town, tally, members in sorted(in_town.values(), key=lambda entry: entry[0].code)
    ]
    whole = region.figures(region.materials(), basis)
    return {
        "date_from": date_from,
        "date_to": date_to,
        "timezone": timezone,
        "sold": whole["sold"],
        "returned": whole["returned"],
        "returned_uncounted_kg": whole["returned_uncounted_kg"],
        "recovery_rate": whole["recovery_rate"],
        "kg": whole["kg"],
        "materials": region.per_material(basis),
        "by_shop": by_shop,
        "by_town": by_town,
    }
