"""The service's utilization, harmless-treatment and mass-balance figures equal the independent
reference (tests/rollups/reference.py) over randomized histories built for what
test_metrics_reference.py's leave out: device times sent in any UTC offset (Z, -05:00, +05:45,
+08:00, +14:00), the day still the city's; taggings, and corrections of their time (corrected
again), either side of the city midnight that began last month and of one inside that month,
whatever day the suite runs on; every treatment method of the catalog, its fate taken from the
reference's own table; storage by a pending method then a final treatment; treatment weights
and methods corrected, and corrected again; a rejection corrected into a partial acceptance,
then treated. Every figure is compared whole — numerator, denominator and rate — with the
incremental roll-ups and after a rebuild, over days either side of each midnight, both months
(every layer) and the towns and village."""

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import Phase, example, given
from hypothesis import strategies as st
from tortoise import connections

from tests.depth import randomized
from tests.factories import CITY_TODAY, World
from tests.rollups import reference
from tests.rollups.driving import accepted_instead
from tests.rollups.test_metrics_reference import (
    check_parts_within_the_whole,
    check_remainders,
    compare_figures,
    expected_facts,
    month_end,
    reset_custody,
)
from wastetrack.registry import service as registry
from wastetrack.rollups import service as rollups

CITY = ZoneInfo("Asia/Shanghai")
# The city midnight that began last month (always past, whatever today is) and one inside
# that month: the histories' taggings fall either side of them.
MONTH_START = datetime.combine(
    (CITY_TODAY.replace(day=1) - timedelta(days=1)).replace(day=1), time(), CITY
)
MIDNIGHTS = {"month": MONTH_START, "mid_month": MONTH_START + timedelta(days=9)}
# Every step after a tagging is dated from here on: after any tagging time the histories set.
STEPS_FROM = MIDNIGHTS["mid_month"] + timedelta(hours=3)
OFFSETS = {
    "Z": UTC,
    "-05:00": timezone(timedelta(hours=-5)),
    "+05:45": timezone(timedelta(hours=5, minutes=45)),
    "+08:00": timezone(timedelta(hours=8)),
    "+14:00": timezone(timedelta(hours=14)),
}
# Every method of the catalog (docs/metrics.md §4, with RU); household and agricultural
# packaging may be treated by any, medical waste by D9, D10 and D15 only.
ALL_METHODS = ["RU", *(f"R{n}" for n in range(1, 14)), *(f"D{n}" for n in range(1, 16))]
PENDING = ["R12", "R13", "D13", "D14", "D15"]
METHODS = {
    "household": (ALL_METHODS, [m for m in ALL_METHODS if m not in PENDING], PENDING),
    "agri_packaging": (ALL_METHODS, [m for m in ALL_METHODS if m not in PENDING], PENDING),
    "medical": (["D9", "D10", "D15"], ["D9", "D10"], ["D15"]),
}
KINDS = {
    "household": ("collector", "household", "hh.recyclable.paper", "kg", "unlicensed"),
    "agri_count": ("collector", "agri_packaging", "agri.plastic_bottle", "count", "unlicensed"),
    "medical": ("clinic", "medical", "med.infectious", "kg", "facility"),
    "other_medical": ("other_clinic", "medical", "med.infectious", "kg", "facility"),
}
# How a batch's story goes on after its delivery.
PATHS = ["received", "rejected", "rejected_partial", "final", "pending", "pending_final"]
KG = st.integers(min_value=1, max_value=3000).map(lambda n: Decimal(n) / 100)
MOMENT = st.tuples(
    st.sampled_from(sorted(MIDNIGHTS)),
    st.integers(min_value=-90, max_value=90),
    st.sampled_from(sorted(OFFSETS)),
)
PLAN = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(sorted(KINDS)),
        "quantity": KG,
        # Tagged at: which midnight, minutes from it, the offset the phone sends.
        "tagged": MOMENT,
        # The tagging time corrected to, and corrected again to.
        "retag": st.one_of(st.none(), MOMENT),
        "retag_again": st.one_of(st.none(), MOMENT),
        "steps_offset": st.sampled_from(sorted(OFFSETS)),
        "path": st.sampled_from(PATHS),
        "weight": st.one_of(st.none(), KG),
        # Methods as indexes into the lists the batch's stream allows.
        "method": st.integers(min_value=0, max_value=99),
        "stored_by": st.integers(min_value=0, max_value=99),
        "method_to": st.one_of(st.none(), st.integers(min_value=0, max_value=99)),
        "method_again": st.one_of(st.none(), st.integers(min_value=0, max_value=99)),
        "treated_kg": st.one_of(st.none(), KG),
        "stored_kg": st.one_of(st.none(), KG),
        # The latest treatment's weight corrected to; the storage's weight corrected after
        # the final treatment (its weighing counts when the final one weighed nothing).
        "reweigh": st.one_of(st.none(), KG),
        "reweigh_stored": st.one_of(st.none(), KG),
        # The storage's method corrected to another pending one after the final treatment.
        "restore": st.booleans(),
    }
)


def _at(moment: datetime, offset: str) -> str:
    """The moment as a phone in that offset sends it."""
    text = moment.astimezone(OFFSETS[offset]).isoformat()
    return text.replace("+00:00", "Z") if offset == "Z" else text


def _moment(chosen: tuple[str, int, str]) -> str:
    midnight, minutes, offset = chosen
    return _at(MIDNIGHTS[midnight] + timedelta(minutes=minutes), offset)


class History:
    """Posts one randomized history through the API, following the state machine; every step
    after a tagging a minute after the one before."""

    def __init__(self, client: httpx.AsyncClient, world: World) -> None:
        self.client = client
        self.world = world
        self.minutes = 0

    def next_time(self, offset: str) -> str:
        self.minutes += 1
        return _at(STEPS_FROM + timedelta(minutes=self.minutes), offset)

    async def post(self, who: str, offset: str, body: dict[str, Any]) -> str:
        body = {
            "client_event_id": str(uuid.uuid4()),
            "device_time": self.next_time(offset),
            **body,
        }
        response = await self.client.post(
            "/m/v1/events", json=body, headers=self.world.headers(who)
        )
        if (again := accepted_instead(response, body)) is not None:
            response = await self.client.post(
                "/m/v1/events", json=again, headers=self.world.headers(who)
            )
        assert response.status_code == 201, response.text
        event_id: str = response.json()["event_id"]
        return event_id

    async def tagging_event(self, code: str) -> str:
        listed = await self.client.get(
            f"/m/v1/batches/{code}/events", headers=self.world.headers("manager")
        )
        assert listed.status_code == 200, listed.text
        event_id: str = listed.json()[0]["id"]
        return event_id

    async def run(self, plans: list[dict[str, Any]]) -> None:
        for plan in plans:
            await self.story(plan)

    async def story(self, plan: dict[str, Any]) -> None:
        who, stream, category, unit, facility = KINDS[plan["kind"]]
        offset = plan["steps_offset"]
        quantity = plan["quantity"] if unit != "count" else int(plan["quantity"]) + 1
        medical = stream == "medical"
        carrier = "carrier" if medical else "collector"
        response = await self.client.post(
            "/m/v1/batches",
            json={
                "client_event_id": str(uuid.uuid4()),
                "device_time": _moment(plan["tagged"]),
                "stream": stream,
                "category": category,
                "quantity": str(quantity),
                "unit": unit,
                **({"carrier_organization_id": self.world.orgs["carrier"].id} if medical else {}),
            },
            headers=self.world.headers(who),
        )
        assert response.status_code == 201, response.text
        code: str = response.json()["code"]
        await self.post(carrier, offset, {"event_type": "collected", "batch": code})
        await self.post(
            carrier,
            offset,
            {
                "event_type": "in_transit",
                "batch": code,
                "destination_organization_id": self.world.orgs[facility].id,
            },
        )
        path = plan["path"]
        weight = str(plan["weight"] or Decimal("1.25"))
        rejected = path in ("rejected", "rejected_partial")
        receipt = await self.post(
            facility,
            offset,
            {
                "event_type": "received",
                "batch": code,
                "outcome": "rejected" if rejected else "accepted",
                **({"reason": "leaking"} if rejected else {"weight_kg": weight}),
            },
        )
        if path == "rejected_partial":
            # The batch went back to whoever delivered it: a manager corrects the rejection.
            await self.post(
                "manager",
                offset,
                {
                    "event_type": "corrected",
                    "batch": code,
                    "corrects": receipt,
                    "outcome": "partially_accepted",
                    "weight_kg": weight,
                    "reason": "only two bags leak",
                },
            )
            await self.treat(code, facility, stream, plan, offset)
        elif path in ("final", "pending", "pending_final"):
            await self.treat(code, facility, stream, plan, offset)
        await self.retag(code, who, plan, offset)

    async def treat(
        self, code: str, facility: str, stream: str, plan: dict[str, Any], offset: str
    ) -> None:
        """Stored by a pending method, then (or only) treated finally, as the plan says; the
        latest treatment's method and weight corrected, and corrected again; the storage's
        weight and method corrected after the final treatment."""
        every, final, pending = METHODS[stream]
        stored = None
        if plan["path"] in ("pending", "pending_final"):
            stored = await self.treatment(
                code, facility, pending[plan["stored_by"] % len(pending)], plan["stored_kg"], offset
            )
        latest = stored
        if plan["path"] != "pending":
            latest = await self.treatment(
                code, facility, final[plan["method"] % len(final)], plan["treated_kg"], offset
            )
        assert latest is not None
        fixes: list[dict[str, Any]] = []
        if plan["method_to"] is not None:
            fixes.append({"method": every[plan["method_to"] % len(every)]})
        if plan["reweigh"] is not None:
            fixes.append({"weight_kg": str(plan["reweigh"])})
        corrected = None
        for fix in fixes:
            corrected = await self.correct(code, facility, latest, fix, offset)
        if corrected is not None and plan["method_again"] is not None:
            again = every[plan["method_again"] % len(every)]
            await self.correct(code, facility, corrected, {"method": again}, offset)
        if stored is not None and stored != latest:
            if plan["reweigh_stored"] is not None:
                await self.correct(
                    code, facility, stored, {"weight_kg": str(plan["reweigh_stored"])}, offset
                )
            if plan["restore"] and len(pending) > 1:
                other = pending[(plan["stored_by"] + 1) % len(pending)]
                await self.correct(code, facility, stored, {"method": other}, offset)

    async def treatment(
        self, code: str, facility: str, method: str, weight: Decimal | None, offset: str
    ) -> str:
        return await self.post(
            facility,
            offset,
            {
                "event_type": "treated",
                "batch": code,
                "method": method,
                **({"weight_kg": str(weight)} if weight is not None else {}),
            },
        )

    async def correct(
        self, code: str, who: str, corrects: str, fields: dict[str, Any], offset: str
    ) -> str:
        return await self.post(
            who,
            offset,
            {"event_type": "corrected", "batch": code, "corrects": corrects, **fields},
        )

    async def retag(self, code: str, who: str, plan: dict[str, Any], offset: str) -> None:
        """The tagging time corrected (sent in its own offset), and that correction corrected
        again: the latest wins, and carries over to a part refused from the batch."""
        if plan["retag"] is None:
            return
        first = await self.correct(
            code,
            who,
            await self.tagging_event(code),
            {"event_time": _moment(plan["retag"])},
            offset,
        )
        if plan["retag_again"] is not None:
            await self.correct(
                code, who, first, {"event_time": _moment(plan["retag_again"])}, offset
            )


async def _licences(world: World) -> None:
    """The recycler may treat household waste and agricultural packaging by every method."""
    if await registry.licence_covering(
        organization_id=world.orgs["unlicensed"].id,
        category_key="agri.plastic_bottle",
        on=CITY_TODAY,
    ):
        return
    for category in ("hh.recyclable", "agri.plastic_bottle"):
        await registry.add_licence(
            organization_id=world.orgs["unlicensed"].id,
            category_key=category,
            method_codes=ALL_METHODS,
        )


# A household bag treated by a method; the examples below run each method once.
BAG: dict[str, Any] = {
    "kind": "household",
    "quantity": Decimal("4"),
    "tagged": ("month", -20, "+08:00"),
    "retag": None,
    "retag_again": None,
    "steps_offset": "+08:00",
    "path": "final",
    "weight": Decimal("3.5"),
    "method": 0,
    "stored_by": 0,
    "method_to": None,
    "method_again": None,
    "treated_kg": None,
    "stored_kg": None,
    "reweigh": None,
    "reweigh_stored": None,
    "restore": False,
}
FINAL = METHODS["household"][1]


def _periods() -> list[tuple[str, date, date]]:
    """Days either side of each midnight, alone and together; both months, alone and
    together (the city's and the towns' monthly sums answer those)."""
    month, mid = MIDNIGHTS["month"].date(), MIDNIGHTS["mid_month"].date()
    before = month - timedelta(days=1)
    return [
        ("city", before, before),
        ("city", month, month),
        ("town", before, month),
        ("other_town", month, mid),
        ("village", mid - timedelta(days=1), mid - timedelta(days=1)),
        ("city", mid, mid),
    ]


def _months() -> list[tuple[str, date, date]]:
    month = MIDNIGHTS["month"].date()
    earlier = (month - timedelta(days=1)).replace(day=1)
    return [
        ("city", earlier, month - timedelta(days=1)),
        ("town", month, month_end(month)),
        ("city", earlier, month_end(month)),
    ]


@randomized(8, phases=[Phase.explicit, Phase.generate])
@given(plans=st.lists(PLAN, min_size=1, max_size=5))
# Every final method once, tagged either side of the month's first midnight, in every offset.
@example(
    plans=[
        {
            **BAG,
            "kind": "household" if n % 2 else "agri_count",
            "method": n,
            "tagged": (
                "month",
                (-1) ** n * (5 + n),
                sorted(OFFSETS)[n % len(OFFSETS)],
            ),
            "steps_offset": sorted(OFFSETS)[(n + 2) % len(OFFSETS)],
        }
        for n in range(len(FINAL))
    ]
)
# Every pending method: stored, then treated finally (weighed or not: then the storage's
# weighing counts), the storage's weight and method corrected after it; or stored only, left
# so or corrected to a final method (D4: not harmless).
@example(
    plans=[
        {
            **BAG,
            "path": "pending_final" if n % 2 else "pending",
            "stored_by": n,
            "method": FINAL.index("D3" if n == 1 else "D9"),
            "stored_kg": Decimal("3.75"),
            "treated_kg": Decimal("3.25") if n == 3 else None,
            "reweigh_stored": Decimal("3.0"),
            "restore": True,
            "method_to": ALL_METHODS.index("D4") if n == 0 else None,
            "tagged": ("mid_month", 7 - 3 * n, "-05:00"),
        }
        for n in range(len(PENDING))
    ]
)
# A rejection corrected into a partial acceptance and treated; a medical bag stored, treated,
# its weight and method corrected twice; taggings moved across both midnights and back.
@example(
    plans=[
        {
            **BAG,
            "kind": "medical",
            "quantity": Decimal("12"),
            "path": "rejected_partial",
            "weight": Decimal("7"),
            "method_to": 1,
            "retag": ("month", 30, "+14:00"),
            "retag_again": ("month", -30, "Z"),
        },
        {
            **BAG,
            "kind": "other_medical",
            "path": "pending_final",
            "stored_kg": Decimal("2"),
            "reweigh": Decimal("2.5"),
            "method_to": 2,
            "method_again": 0,
            "tagged": ("mid_month", -2, "+14:00"),
            "retag": ("month", 1, "+05:45"),
        },
        {**BAG, "kind": "agri_count", "path": "rejected_partial", "weight": Decimal("0.3")},
        {**BAG, "path": "rejected", "tagged": ("mid_month", 1, "Z")},
        {**BAG, "path": "received", "tagged": ("month", 0, "-05:00")},
    ]
)
async def test_figures_equal_the_reference_in_any_offset_method_and_month(
    client: httpx.AsyncClient, world: World, plans: list[dict[str, Any]]
) -> None:
    await reset_custody()
    await _licences(world)
    await History(client, world).run(plans)
    await check_remainders()
    all_facts, _ = await expected_facts(world)
    await check_parts_within_the_whole(all_facts)
    for region, day_from, day_to in _periods():
        await compare_figures(client, world, all_facts, region, day_from, day_to)
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental
    for region, day_from, day_to in _months():
        await compare_figures(client, world, all_facts, region, day_from, day_to)


async def test_the_reference_names_a_fate_for_every_method_of_the_catalog(
    orm: list[str],
) -> None:
    rows = await connections.get("default").execute_query_dict("SELECT code FROM treatment_method")
    assert {r["code"] for r in rows} == set(reference.METHOD_FATES) == set(ALL_METHODS)


def test_the_histories_midnights_are_city_midnights_a_month_apart_at_most() -> None:
    for midnight in MIDNIGHTS.values():
        assert midnight.astimezone(UTC).hour == 16
        assert midnight.astimezone(CITY).date() < CITY_TODAY
    assert MIDNIGHTS["month"].day == 1
    assert STEPS_FROM < datetime.now(UTC) - timedelta(days=10)
