"""The pesticide-packaging recovery figures equal a plain recount over randomized histories
(docs/streams/pesticide.md, definitions `pesticide_recovery` and `pesticide_recovery_kg`): sales
and returns at shops and recovery points in two towns, their villages and the city's own region,
returns either side of the city's midnights (16:00 UTC), sent with a UTC or a +08:00 offset,
alone or in an offline sync; lines counted, weighed, both, weighed and not counted, or weighed
at 0 kg; resends, resends with other content and another shop's id, sales cancelled by their
shop and returns by their point (entered anew or not, resent after), refused records; shops
and points moved to another region by an admin between records (their records follow them); a
material the catalog gives no unit mass.
Each figure — the region's, each material's, each shop's and each town's, in containers and in
kg, with `partial` and the shops and points counted — is compared over several periods and
regions with a recount that reads only the list of what the test submitted and the service
accepted, and the mass basis's data file."""

import json
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.depth import seeds
from tests.factories import CITY_TODAY, World, make_user
from wastetrack.auth.models import Role
from wastetrack.catalog import service as catalog
from wastetrack.registry import service as registry
from wastetrack.registry.models import OrganizationKind, RegionLevel

CITY = ZoneInfo("Asia/Shanghai")
PLUS_EIGHT = timezone(timedelta(hours=8))
# The start of the tests' city day: 16:00 UTC the day before. Returns fall either side of it and
# of the two midnights before it; the latest is 3 h after it, which the clock has passed.
MIDNIGHT = datetime.combine(CITY_TODAY, datetime.min.time(), CITY).astimezone(UTC)
DAYS = [CITY_TODAY - timedelta(days=n) for n in (3, 2, 1, 0)]
MASS_BASIS = Path(__file__).parents[2] / "wastetrack/catalog/data/editions/mass_basis.2026-11.json"
# The catalog's unit masses, read from its data file (docs/streams/pesticide.md cites it).
UNIT_MASS = {
    key: Decimal(item["unit_mass_kg"])
    for key, item in json.loads(MASS_BASIS.read_text())["items"].items()
    if key.startswith("agri.")
}
MATERIALS = sorted(UNIT_MASS)
# The regions the test adds to the world's city, towns and village, and where each lies.
PARENT = {
    "city": None,
    "town": "city",
    "other_town": "city",
    "village": "town",
    "village2": "town",
    "other_village": "other_town",
}
TOWNS = {"town", "other_town"}
SHOP, POINT = OrganizationKind.agri_input_shop, OrganizationKind.recovery_point
# Shops and points at a village, at a town itself and at the city's own region; one shop idle.
PLACES = {
    "shop_village": (SHOP, "village", "崖头农资经营部"),
    "shop_town": (SHOP, "town", "崖头街道农资店"),
    "shop_other": (SHOP, "other_village", "石岛农资店"),
    "shop_city": (SHOP, "city", "荣成市农资公司"),
    "shop_idle": (SHOP, "village2", "东山农资店"),
    "point_village": (POINT, "village", "北山社区回收点"),
    "point_other": (POINT, "other_town", "石岛回收站"),
    "point_city": (POINT, "city", "荣成市农药包装回收中心"),
}
SELLERS = ["shop_village", "shop_town", "shop_other", "shop_city"]
TAKERS = [*SELLERS, "point_village", "point_other", "point_city"]
SEEDS = seeds([11, 23, 37, 41, 59, 73, 89, 97, 101, 131])


def check_character(body: str) -> str:
    """GB 11643-1999's check character of a resident ID number's first 17 digits."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


@dataclass(frozen=True)
class Sale:
    shop: str
    sold_on: date
    material: str
    count: int


@dataclass(frozen=True)
class Line:
    material: str
    count: int
    weight_kg: Decimal | None


@dataclass(frozen=True)
class Return:
    point: str
    at: datetime
    lines: tuple[Line, ...]


@dataclass
class Submitted:
    """What the service accepted, as the test sent it, and where each organization lies after
    the history's moves: all the reference reads."""

    region_of: dict[str, str] = field(
        default_factory=lambda: {key: region for key, (_, region, _) in PLACES.items()}
    )
    sales: list[Sale] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)


# The reference: a recount of the submitted list by the definitions, written apart from the
# service (no tallies merged, no catalog snapshot, no database).


@dataclass(frozen=True)
class Figure:
    """One entry's expected figures: containers, what came back weighed and not counted, and
    the kg flow (None with the materials that lack a unit mass)."""

    sold: int
    returned: int
    uncounted_kg: Decimal
    returned_kg: Decimal
    sold_kg: Decimal
    estimated_kg: Decimal
    missing: frozenset[str]


def recount(sales: list[Sale], lines: list[Line], unit_mass: dict[str, Decimal]) -> Figure:
    """Containers returned and sold; in kg, one mass per line — its weight when weighed (a
    weight of 0 is none), else count × unit mass — against items sold × unit mass."""
    missing: set[str] = set()
    returned_kg = estimated_kg = sold_kg = Decimal(0)
    for sale in sales:
        if sale.material in unit_mass:
            sold_kg += sale.count * unit_mass[sale.material]
        else:
            missing.add(sale.material)
    for line in lines:
        if line.weight_kg:
            returned_kg += line.weight_kg
        elif line.material in unit_mass:
            returned_kg += line.count * unit_mass[line.material]
            estimated_kg += line.count * unit_mass[line.material]
        else:
            missing.add(line.material)
    return Figure(
        sold=sum(sale.count for sale in sales),
        returned=sum(line.count for line in lines),
        uncounted_kg=sum((line.weight_kg or 0 for line in lines if not line.count), Decimal(0)),
        returned_kg=returned_kg,
        sold_kg=sold_kg,
        estimated_kg=estimated_kg,
        missing=frozenset(missing),
    )


def within(region: str, ancestor: str) -> bool:
    """Whether `region` is `ancestor` or lies below it."""
    current: str | None = region
    while current is not None:
        if current == ancestor:
            return True
        current = PARENT[current]
    return False


def town_of(region: str) -> str:
    """The town on the region's path, or the region itself when it lies above any town."""
    current: str | None = region
    while current is not None:
        if current in TOWNS:
            return current
        current = PARENT[current]
    return region


@dataclass
class Entry:
    """The sales and return lines one entry covers, with its expected figure per material."""

    sales: list[Sale] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    shops: int = 0
    points: int = 0

    def figure(self, unit_mass: dict[str, Decimal]) -> Figure:
        return recount(self.sales, self.lines, unit_mass)

    def per_material(self, unit_mass: dict[str, Decimal]) -> dict[str, Figure]:
        materials = {s.material for s in self.sales} | {line.material for line in self.lines}
        return {
            m: recount(
                [s for s in self.sales if s.material == m],
                [line for line in self.lines if line.material == m],
                unit_mass,
            )
            for m in materials
        }


@dataclass
class Expected:
    whole: Entry
    by_shop: dict[str, Entry]
    by_town: dict[str, Entry]


def expected(submitted: Submitted, *, region: str, first: date, last: date) -> Expected:
    """The entries a manager of `region` is shown for the city days `first`…`last`."""
    in_scope = {org for org, at in submitted.region_of.items() if within(at, region)}
    whole = Entry()
    by_shop = {org: Entry() for org in in_scope if PLACES[org][0] == SHOP}
    by_town: dict[str, Entry] = {}
    for org in in_scope:
        entry = by_town.setdefault(town_of(submitted.region_of[org]), Entry())
        if PLACES[org][0] == SHOP:
            entry.shops += 1
        else:
            entry.points += 1
    for sale in submitted.sales:
        if sale.shop in in_scope and first <= sale.sold_on <= last:
            for entry in (
                whole,
                by_shop[sale.shop],
                by_town[town_of(submitted.region_of[sale.shop])],
            ):
                entry.sales.append(sale)
    for record in submitted.returns:
        if record.point in in_scope and first <= record.at.astimezone(CITY).date() <= last:
            entries = [whole, by_town[town_of(submitted.region_of[record.point])]]
            if record.point in by_shop:
                entries.append(by_shop[record.point])
            for entry in entries:
                entry.lines.extend(record.lines)
    return Expected(whole, by_shop, by_town)


# Comparing the service's answer with the reference.


def close(rate: str, numerator: Decimal | int, denominator: Decimal | int) -> bool:
    """The published rate is the exact quotient to four places, however a tie is rounded."""
    return abs(Fraction(rate) - Fraction(numerator) / Fraction(denominator)) <= Fraction(1, 20000)


def check_rate(rate: dict[str, Any], numerator: Decimal | int, denominator: Decimal | int) -> None:
    assert (Decimal(rate["numerator"]), Decimal(rate["denominator"])) == (numerator, denominator)
    if denominator:
        assert close(rate["rate"], numerator, denominator), (rate, numerator, denominator)
    else:
        assert rate["rate"] is None


def check_kg(kg: dict[str, Any], want: Figure, where: str) -> None:
    if want.missing:
        assert (kg["recovery_rate"], kg["returned_estimated_kg"]) == (None, None), where
        named = kg["omitted"].removeprefix("no unit mass in the catalog for ").split(", ")
        assert set(named) == want.missing, where
        return
    assert kg["omitted"] is None, where
    check_rate(kg["recovery_rate"], want.returned_kg, want.sold_kg)
    assert kg["recovery_rate"]["unit"] == "kg"
    assert Decimal(kg["returned_estimated_kg"]) == want.estimated_kg, where
    # The parts of the kg returned lie within it.
    returned_kg = Decimal(kg["recovery_rate"]["numerator"])
    assert Decimal(kg["returned_estimated_kg"]) <= returned_kg, where
    assert want.uncounted_kg <= returned_kg, where


def check_figure(answer: dict[str, Any], want: Figure, where: str) -> None:
    assert (answer["sold"], answer["returned"]) == (want.sold, want.returned), where
    assert Decimal(answer["returned_uncounted_kg"]) == want.uncounted_kg, where
    check_rate(answer["recovery_rate"], want.returned, want.sold)
    assert answer["recovery_rate"]["unit"] == "containers"
    check_kg(answer["kg"], want, where)


def check_materials(answer: list[dict[str, Any]], want: dict[str, Figure], where: str) -> None:
    assert sorted(m["material"] for m in answer) == sorted(want), where
    for material in answer:
        check_figure(material, want[material["material"]], f"{where} {material['material']}")


def compare(
    answer: dict[str, Any],
    want: Expected,
    *,
    world: World,
    submitted: Submitted,
    region: str,
    unit_mass: dict[str, Decimal],
) -> None:
    whole = want.whole.figure(unit_mass)
    check_rate(answer["recovery_rate"], whole.returned, whole.sold)
    check_kg(answer["kg"], whole, "region")
    check_materials(answer["materials"], want.whole.per_material(unit_mass), "region")

    org_key = {world.orgs[key].id: key for key in PLACES}
    shops = {org_key[shop["organization_id"]]: shop for shop in answer["by_shop"]}
    assert set(shops) == set(want.by_shop)
    for key, shop in shops.items():
        assert shop["town_id"] == world.regions[town_of(submitted.region_of[key])].id, key
        check_figure(shop, want.by_shop[key].figure(unit_mass), key)
        check_materials(shop["materials"], want.by_shop[key].per_material(unit_mass), key)

    region_key = {world.regions[key].id: key for key in PARENT}
    towns = {region_key[town["region_id"]]: town for town in answer["by_town"]}
    assert set(towns) == set(want.by_town)
    for key, town in towns.items():
        entry = want.by_town[key]
        level = "town" if key in TOWNS else "city"
        # Asked for an area inside the town: the entry is that part of it.
        partial = region != key and within(region, key)
        assert (town["level"], town["partial"]) == (level, partial), key
        assert (town["shops"], town["points"]) == (entry.shops, entry.points), key
        check_figure(town, entry.figure(unit_mass), key)
        check_materials(town["materials"], entry.per_material(unit_mass), key)
    # A shop's part lies within its town's, a town's within the region's; and each return and
    # sale is in exactly one town's entry, so they add up to the region.
    for key, shop in shops.items():
        town = towns[town_of(submitted.region_of[key])]
        assert shop["returned"] <= town["returned"] and shop["sold"] <= town["sold"], key
    for town in towns.values():
        assert town["returned"] <= int(answer["recovery_rate"]["numerator"])
        assert town["sold"] <= int(answer["recovery_rate"]["denominator"])
    assert sum(t["returned"] for t in answer["by_town"]) == int(
        answer["recovery_rate"]["numerator"]
    )
    assert sum(t["sold"] for t in answer["by_town"]) == int(answer["recovery_rate"]["denominator"])


# Building a history through the API.


@pytest.fixture
async def places(world: World) -> World:
    """Two more villages (one in each town), and the shops and points of PLACES with a user."""
    world.regions["village2"] = await registry.create_region(
        code="371082001002",
        name="东山社区",
        level=RegionLevel.village,
        parent_id=world.regions["town"].id,
    )
    world.regions["other_village"] = await registry.create_region(
        code="371082101201",
        name="石岛村",
        level=RegionLevel.village,
        parent_id=world.regions["other_town"].id,
    )
    for key, (kind, region, name) in PLACES.items():
        org = await registry.create_organization(
            name=name, kind=kind, region_id=world.regions[region].id
        )
        world.orgs[key] = org
        await make_user(world, key, Role.generator if kind == SHOP else Role.collector, org)
    return world


class History:
    """Posts one randomized history through the API and keeps what the service accepted."""

    def __init__(self, client: httpx.AsyncClient, world: World, rng: random.Random) -> None:
        self.client = client
        self.world = world
        self.rng = rng
        self.submitted = Submitted()

    async def post(self, who: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.world.headers(who))

    async def sell(self) -> None:
        rng = self.rng
        sale = Sale(
            shop=rng.choice(SELLERS),
            sold_on=rng.choice(DAYS),
            material=rng.choice(MATERIALS),
            count=rng.choice([1, 2, 5, rng.randint(1, 300)]),
        )
        body = {
            "client_event_id": str(uuid.uuid4()),
            "sold_on": sale.sold_on.isoformat(),
            "material": sale.material,
            "count": sale.count,
        }
        made = await self.post_sale(sale, body)
        # A resend keeps the first; the id with another count, or another shop's, is refused;
        # a sale entered wrong is cancelled by its shop (counted nowhere) and entered anew.
        twist = rng.choice([None, "resend", "other_count", "other_shop", "cancel"])
        if twist == "resend":
            again = await self.post(sale.shop, "/m/v1/pesticide/sales", body)
            assert (again.status_code, again.json()["count"]) == (200, sale.count), again.text
        elif twist == "other_count":
            again = await self.post(
                sale.shop, "/m/v1/pesticide/sales", {**body, "count": sale.count + 7}
            )
            assert (again.status_code, again.json()["field"]) == (409, "client_event_id")
        elif twist == "other_shop":
            other = rng.choice([s for s in SELLERS if s != sale.shop])
            taken = await self.post(other, "/m/v1/pesticide/sales", body)
            assert taken.status_code == 409, taken.text
        elif twist == "cancel":
            await self.cancel(sale.shop, f"sales/{made['id']}")
            self.submitted.sales.remove(sale)
            if rng.random() < 0.5:
                await self.post_sale(replace(sale, count=max(1, sale.count // 10)))

    async def cancel(self, who: str, record: str) -> None:
        """The organization cancels its sale or return (`sales/ID`, `returns/ID`) as entered
        wrong."""
        url = f"/m/v1/pesticide/{record}/cancel"
        cancelled = await self.post(who, url, {"reason": "entered wrong"})
        assert cancelled.status_code == 200, cancelled.text

    async def post_sale(self, sale: Sale, body: dict[str, Any] | None = None) -> dict[str, Any]:
        body = body or {
            "client_event_id": str(uuid.uuid4()),
            "sold_on": sale.sold_on.isoformat(),
            "material": sale.material,
            "count": sale.count,
        }
        response = await self.post(sale.shop, "/m/v1/pesticide/sales", body)
        assert response.status_code == 201, response.text
        self.submitted.sales.append(sale)
        made: dict[str, Any] = response.json()
        return made

    def line(self) -> Line:
        rng = self.rng
        material = rng.choice(MATERIALS)
        count = rng.randint(1, 40)
        # About what the items weigh, to the gram; a line weighed and not counted, anything.
        about = count * UNIT_MASS[material] * Decimal(rng.randint(50, 150)) / 100
        weight = max(about.quantize(Decimal("0.001")), Decimal("0.001"))
        shape = rng.choice(["counted", "counted", "weighed", "uncounted", "zero_weight"])
        if shape == "counted":
            return Line(material, count, None)
        if shape == "weighed":
            return Line(material, count, weight)
        if shape == "uncounted":
            return Line(material, 0, Decimal(rng.randint(1, 20_000)) / 1000)
        return Line(material, count, Decimal(0))

    def moment(self) -> datetime:
        """Near one of the last three city midnights, to the millisecond, or inside a day."""
        rng = self.rng
        midnight = MIDNIGHT - timedelta(days=rng.choice([0, 0, 1, 2]))
        near, inside = rng.randint(-2700, 2700), rng.randint(1, 10_800)
        seconds = rng.choice([0, -1, 1, -0.001, near, near, inside])
        return midnight + timedelta(seconds=seconds)

    async def bring_back(self, record: Return, *, cancellable: bool = True) -> None:
        rng = self.rng
        at = record.at.astimezone(rng.choice([UTC, PLUS_EIGHT]))
        body: dict[str, Any] = {
            "client_event_id": str(uuid.uuid4()),
            **self.farmer(),
            "returned_at": at.isoformat(),
            "lines": [
                {
                    "material": line.material,
                    "count": line.count,
                    **({} if line.weight_kg is None else {"weight_kg": str(line.weight_kg)}),
                }
                for line in record.lines
            ],
        }
        offline = rng.random() < 0.3
        made = await self.send(record.point, body, offline, expect="applied")
        self.submitted.returns.append(record)
        twists = [None, None, "resend", "other_content", *(["cancel"] if cancellable else [])]
        twist = rng.choice(twists)
        if twist == "resend":
            await self.send(record.point, body, rng.random() < 0.5, expect="duplicate")
        elif twist == "other_content":
            changed = {**body, "lines": [{"material": MATERIALS[0], "count": 999}]}
            await self.send(record.point, changed, rng.random() < 0.5, expect="conflict")
        elif twist == "cancel":
            # Entered wrong: its point cancels it (counted nowhere), a phone's queue may resend
            # it (still nowhere), and the right return may be entered anew.
            await self.cancel(record.point, f"returns/{made}")
            self.submitted.returns.remove(record)
            if rng.random() < 0.5:
                await self.send(record.point, body, rng.random() < 0.5, expect="duplicate")
            if rng.random() < 0.5:
                await self.bring_back(replace(record, lines=record.lines[:1]))

    def farmer(self) -> dict[str, str]:
        if self.rng.random() < 0.7:
            return {"farmer_phone": f"138{self.rng.randint(0, 99_999_999):08d}"}
        body = f"37108219800101{self.rng.randint(100, 999)}"
        return {"farmer_id_number": body + check_character(body)}

    async def send(
        self, who: str, body: dict[str, Any], offline: bool, *, expect: str
    ) -> int | None:
        """A return posted alone, or as an entry of an offline sync; the id of the return
        made or found (none with a conflict)."""
        if offline:
            response = await self.post(who, "/m/v1/sync", {"events": [{**body, "kind": "return"}]})
            assert response.status_code == 200, response.text
            (result,) = response.json()["results"]
            assert result["status"] == expect, result
            record_id: int | None = result["record_id"]
            return record_id
        response = await self.post(who, "/m/v1/pesticide/returns", body)
        status = {"applied": 201, "duplicate": 200, "conflict": 409}[expect]
        assert response.status_code == status, response.text
        return response.json()["id"] if status != 409 else None

    async def refused(self) -> None:
        """Records the service refuses: none of them may count."""
        rng = self.rng
        ahead = datetime.now(UTC) + timedelta(hours=rng.randint(1, 30))
        cases = [
            ("/m/v1/pesticide/returns", rng.choice(SELLERS), self.return_body(ahead), 422),
            (
                "/m/v1/pesticide/returns",
                rng.choice(TAKERS),
                self.return_body(MIDNIGHT, [{"material": MATERIALS[0], "count": 0}]),
                422,
            ),
            (
                "/m/v1/pesticide/returns",
                rng.choice(TAKERS),
                self.return_body(MIDNIGHT, [{"material": "agri.unknown", "count": 3}]),
                422,
            ),
            (
                "/m/v1/pesticide/sales",
                rng.choice(SELLERS),
                self.sale_body(datetime.now(CITY).date() + timedelta(days=1)),
                422,
            ),
            ("/m/v1/pesticide/sales", "point_village", self.sale_body(CITY_TODAY), 403),
        ]
        for path, who, body, status in cases:
            response = await self.post(who, path, body)
            assert response.status_code == status, (path, who, response.text)

    def return_body(self, at: datetime, lines: list[dict[str, Any]] | None = None) -> dict:
        return {
            "client_event_id": str(uuid.uuid4()),
            **self.farmer(),
            "returned_at": at.isoformat(),
            "lines": lines or [{"material": MATERIALS[-1], "count": 50}],
        }

    def sale_body(self, sold_on: date) -> dict:
        return {
            "client_event_id": str(uuid.uuid4()),
            "sold_on": sold_on.isoformat(),
            "material": self.rng.choice(MATERIALS),
            "count": 500,
        }

    async def move(self) -> None:
        """An admin moves an organization to another region: its records follow it."""
        org = self.rng.choice(sorted(PLACES))
        region = self.rng.choice([r for r in PARENT if r != self.submitted.region_of[org]])
        response = await self.client.patch(
            f"/admin/v1/organizations/{self.world.orgs[org].id}",
            json={"region_id": self.world.regions[region].id},
            headers=self.world.headers("admin"),
        )
        assert response.status_code == 200, response.text
        self.submitted.region_of[org] = region

    async def run(self) -> None:
        rng = self.rng
        steps = ["sale"] * rng.randint(6, 12) + ["return"] * rng.randint(8, 16) + ["refused"]
        steps += ["move"] * rng.randint(0, 2)
        rng.shuffle(steps)
        for step in steps:
            if step == "sale":
                await self.sell()
            elif step == "return":
                lines = tuple(self.line() for _ in range(rng.randint(1, 3)))
                await self.bring_back(Return(rng.choice(TAKERS), self.moment(), lines))
            elif step == "refused":
                await self.refused()
            else:
                await self.move()
        # Older packaging coming back: more than the shop sold on the day (a flow ratio).
        sold = sum(sale.count for sale in self.submitted.sales if sale.shop == "shop_other")
        await self.post_sale(Sale("shop_other", CITY_TODAY, MATERIALS[0], 10))
        late = MIDNIGHT + timedelta(minutes=5)
        older = Return("shop_other", late, (Line(MATERIALS[0], sold + 11, None),))
        await self.bring_back(older, cancellable=False)


VIEWS = [
    # Who asks, the region narrowed to (None: their own), and the city days.
    ("manager", None, DAYS[0], DAYS[3]),
    ("manager", None, DAYS[2], DAYS[2]),
    ("manager", None, DAYS[3], DAYS[3]),
    ("manager", "town", DAYS[1], DAYS[3]),
    ("manager", "village", DAYS[0], DAYS[3]),
    ("town_manager", None, DAYS[2], DAYS[3]),
    ("manager", "village2", DAYS[0], DAYS[3]),
    ("admin", "other_village", DAYS[0], DAYS[3]),
    ("admin", "other_town", DAYS[0], DAYS[2]),
    ("admin", None, DAYS[1], DAYS[2]),
]
OWN_REGION = {"manager": "city", "admin": "city", "town_manager": "other_town"}


@pytest.mark.parametrize("seed", SEEDS)
async def test_recovery_equals_a_recount_of_random_histories(
    client: httpx.AsyncClient, places: World, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    unit_mass = dict(UNIT_MASS)
    # Half the histories run with a catalog that gives one material no unit mass.
    if rng.random() < 0.5:
        stripped = rng.choice(MATERIALS)
        basis = await catalog.snapshot()
        for category in basis.ancestors(stripped):
            monkeypatch.setattr(basis.categories[category], "unit_mass_kg", None)
        del unit_mass[stripped]
    history = History(client, places, rng)
    await history.run()
    submitted = history.submitted

    for who, narrowed, first, last in VIEWS:
        params: dict[str, Any] = {"date_from": first.isoformat(), "date_to": last.isoformat()}
        if narrowed:
            params["region_id"] = places.regions[narrowed].id
        response = await client.get(
            "/m/v1/metrics/pesticide", params=params, headers=places.headers(who)
        )
        assert response.status_code == 200, response.text
        region = narrowed or OWN_REGION[who]
        want = expected(submitted, region=region, first=first, last=last)
        compare(
            response.json(),
            want,
            world=places,
            submitted=submitted,
            region=region,
            unit_mass=unit_mass,
        )

    # These are flow ratios, not shares: a shop that took back more than it sold is shown over
    # 100 %, uncapped (the definition says so); the recount above agreed on its figure.
    response = await client.get(
        "/m/v1/metrics/pesticide",
        params={"date_from": CITY_TODAY.isoformat(), "date_to": CITY_TODAY.isoformat()},
        headers=places.headers("manager"),
    )
    shop = next(
        s
        for s in response.json()["by_shop"]
        if s["organization_id"] == places.orgs["shop_other"].id
    )
    assert Decimal(shop["recovery_rate"]["rate"]) > 1
    assert "may exceed 100 %" in shop["recovery_rate"]["definition"]["formula"]
