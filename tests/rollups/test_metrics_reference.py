"""The service's utilization, harmless-treatment and mass-balance figures equal an independent
reading of the definitions (tests/rollups/reference.py) over randomized histories — corrections
of corrections with other values (per field the latest wins), tagging time moved earlier or
later across the city's midnight, quantity, unit and category corrected, receipt outcomes
corrected to a partial acceptance, a rejection or an acceptance, cancellations, rejections and
re-deliveries, partial acceptances whose remainders are re-delivered, accepted in part again and
treated elsewhere, batches in kg, items and m³, loads nested two levels (medical and household)
treated, left pending, received untreated or rejected, bags taken out of them again by a
correction (an inner load left empty), producers in two towns — with the
incremental roll-ups (folded or not) and after a rebuild, over days, a village, towns and whole
months (so every layer is read); every figure whole, each rate with its numerator and
denominator. Independently of both, a batch and the parts refused from it never weigh more than
the batch declared or was measured at. test_metrics_reference_more.py adds histories in other
UTC offsets, across a month's first midnight, and by every treatment method."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
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
from wastetrack.batches.models import Batch
from wastetrack.catalog import service as catalog
from wastetrack.custody import remainders
from wastetrack.registry import service as registry
from wastetrack.rollups import service as rollups

CITY = ZoneInfo("Asia/Shanghai")
# Around the city's last midnight but one, so events fall either side of it.
MIDNIGHT = datetime.now(CITY).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
CORRECTIONS = ["time", "later", "quantity", "unit", "category", "weight", "outcome", "method"]
PLAN = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            [
                "medical_kg",
                "medical_m3",
                "other_medical_kg",
                "household",
                "household_count",
                "agri_count",
            ]
        ),
        "quantity": st.integers(min_value=1, max_value=4000).map(lambda n: Decimal(n) / 100),
        "tag_minutes": st.integers(min_value=-30, max_value=30),
        "end": st.sampled_from(
            ["tagged", "cancelled", "collected", "received", "treated", "aggregated", "aggregated"]
        ),
        "outcome": st.sampled_from(["accepted", "partially_accepted", "rejected"]),
        "redeliver": st.booleans(),
        # A re-delivered remainder is accepted in part again.
        "again": st.booleans(),
        "refused": st.one_of(
            st.none(), st.integers(min_value=1, max_value=2000).map(lambda n: Decimal(n) / 100)
        ),
        "weight": st.one_of(
            st.none(), st.integers(min_value=1, max_value=5000).map(lambda n: Decimal(n) / 100)
        ),
        "method": st.integers(min_value=0, max_value=10),
        "corrections": st.lists(st.sampled_from(CORRECTIONS), max_size=3, unique=True),
        # What a receipt's outcome is corrected to (another one, if it is that already).
        "outcome_to": st.sampled_from(["partially_accepted", "rejected", "accepted"]),
        # Each correction corrected again, to another value of the same field.
        "recorrect": st.booleans(),
        # A loaded bag taken out of its load again once the load has ended (scanned into the
        # wrong one): its fate is its own, and a load it leaves empty counts as itself.
        "undo": st.booleans(),
    }
)
KINDS = {
    "medical_kg": ("clinic", "medical", "med.infectious", "kg", "facility"),
    "medical_m3": ("clinic", "medical", "med.sharps", "m3", "facility"),
    # A clinic of the other town: the region filters have two subtrees to tell apart.
    "other_medical_kg": ("other_clinic", "medical", "med.infectious", "kg", "facility"),
    "household": ("collector", "household", "hh.recyclable.paper", "kg", "unlicensed"),
    "agri_count": ("collector", "agri_packaging", "agri.plastic_bottle", "count", "unlicensed"),
    # Items of a category with no unit mass (nor its parent): no mass until weighed. (A unit
    # corrected to items or m³ where the category has no factor makes more such batches.)
    "household_count": ("collector", "household", "hh.recyclable.paper", "count", "unlicensed"),
}
METHODS = {
    "medical": ["D9", "D10", "D15"],
    "household": ["R3", "R4", "D1", "D4", "R13"],
    "agri_packaging": ["R3", "D10", "D1", "D4", "R13"],
}
# What a tagging's category and unit are corrected to, first and then again.
OTHER_CATEGORIES = {
    "medical": ["med.pathological", "med.chemical"],
    "household": ["hh.recyclable.plastic", "hh.recyclable.metal"],
    "agri_packaging": ["agri.glass_bottle", "agri.metal_can"],
}
OTHER_UNITS = {"kg": ["m3", "count"], "m3": ["kg", "count"], "count": ["kg", "m3"]}


def _whole(quantity: Any) -> Decimal:
    """A quantity as a whole number of items, rounded up (items are whole)."""
    return Decimal(str(quantity)).to_integral_value(rounding=ROUND_CEILING)


OTHER = {"facility": "unlicensed", "unlicensed": "facility"}
# The fates a cohort's mass is shared among (docs/metrics.md §5), each with its share.
FATES = (
    "recovered",
    "disposed_harmless",
    "disposed_not_harmless",
    "pending",
    "rejected",
    "in_progress",
)
# How a load ends: treated, treated by a pending method (storage), received and left
# untreated, rejected whole, or still on its way.
LOAD_ENDS = ["treated", "pending", "received", "rejected", "in_transit"]


def _at(minutes: int) -> str:
    return (MIDNIGHT + timedelta(minutes=minutes)).isoformat()


def _methods(stream: str, holder: str) -> list[str]:
    """The methods the holder's licences cover for the stream's categories in these tests."""
    if stream == "medical":
        return METHODS["medical"] if holder == "facility" else ["D10"]
    return METHODS[stream] if holder == "unlicensed" else ["D10", "R3"]


class History:
    """Posts one randomized history through the API, following the state machine."""

    def __init__(self, client: httpx.AsyncClient, world: World) -> None:
        self.client = client
        self.world = world

    async def post(self, who: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"client_event_id": str(uuid.uuid4()), **body}
        response = await self.client.post(
            "/m/v1/events", json=body, headers=self.world.headers(who)
        )
        if (again := accepted_instead(response, body)) is not None:
            response = await self.client.post(
                "/m/v1/events", json=again, headers=self.world.headers(who)
            )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def batch(self, code: str) -> dict[str, Any]:
        found = await self.client.get(
            f"/m/v1/batches/{code}", headers=self.world.headers("manager")
        )
        assert found.status_code == 200, found.text
        answer: dict[str, Any] = found.json()
        return answer

    async def mass_known(self, code: str) -> bool:
        """Whether the batch declares a mass a receipt's weighing is set against: in kg, or
        in items or m³ of a category the catalog estimates."""
        batch = await Batch.get(code=code)
        return remainders.known_kg(await catalog.snapshot(), batch) is not None

    async def live_remainder(self, code: str) -> bool:
        """Whether a receipt refused part of the batch and that part is not cancelled."""
        for remainder in (await self.batch(code))["remainders"]:
            if (await self.batch(remainder))["state"] != "cancelled":
                return True
        return False

    async def tag(self, who: str, minutes: int, **fields: Any) -> str:
        body = {"client_event_id": str(uuid.uuid4()), "device_time": _at(minutes), **fields}
        response = await self.client.post(
            "/m/v1/batches", json=body, headers=self.world.headers(who)
        )
        assert response.status_code == 201, response.text
        code: str = response.json()["code"]
        return code

    async def deliver(self, code: str, who: str, facility: str, t: int) -> None:
        await self.post(who, {"event_type": "collected", "batch": code, "device_time": _at(t)})
        await self.post(
            who,
            {
                "event_type": "in_transit",
                "batch": code,
                "device_time": _at(t + 5),
                "destination_organization_id": self.world.orgs[facility].id,
            },
        )

    async def receive(self, code: str, facility: str, plan: dict[str, Any], t: int) -> str:
        outcome = plan["outcome"]
        body: dict[str, Any] = {
            "event_type": "received",
            "batch": code,
            "device_time": _at(t),
            "outcome": outcome,
        }
        if outcome != "rejected":
            body["weight_kg"] = str(plan["weight"] or Decimal("1.25"))
        if outcome != "accepted":
            body["reason"] = "overweight bags"
        # A part stated as heavy as a declaration in kg is refused (a rejection, not a part).
        whole = KINDS[plan["kind"]][3] == "kg" and (plan["refused"] or 0) >= plan["quantity"]
        if outcome == "partially_accepted" and plan["refused"] is not None and not whole:
            body["refused_kg"] = str(plan["refused"])
        elif outcome == "partially_accepted" and not await self.mass_known(code):
            # Of no known mass, the part refused must be stated (metrics.md §3).
            body["refused_kg"] = str(plan["refused"] or Decimal("0.5"))
        answer = await self.post(facility, body)
        event_id: str = answer["event_id"]
        if outcome == "rejected" and plan["redeliver"]:
            carrier = "carrier" if KINDS[plan["kind"]][1] == "medical" else "collector"
            await self.post(
                carrier,
                {
                    "event_type": "in_transit",
                    "batch": code,
                    "device_time": _at(t + 5),
                    "destination_organization_id": self.world.orgs[OTHER[facility]].id,
                },
            )
            answer = await self.post(
                OTHER[facility],
                {
                    "event_type": "received",
                    "batch": code,
                    "device_time": _at(t + 10),
                    "outcome": "accepted",
                    "weight_kg": str(plan["weight"] or Decimal("2.5")),
                },
            )
            event_id = answer["event_id"]
        return event_id

    async def redeliver_remainders(
        self, code: str, carrier: str, plan: dict[str, Any], t: int
    ) -> None:
        """Take each remainder still lying rejected to the other facility, which accepts it
        (in part, when the plan says so again) and, when the plan ends in treatment, treats
        it; a part refused there again stays where it was refused."""
        stream = KINDS[plan["kind"]][1]
        original = await self.batch(code)
        refuser = "facility" if original["holder_id"] == self.world.orgs["facility"].id else None
        elsewhere = OTHER[refuser or "unlicensed"]
        for rest in original["remainders"]:
            found = await self.batch(rest)
            if found["state"] != "rejected":
                continue
            await self.post(
                carrier,
                {
                    "event_type": "in_transit",
                    "batch": rest,
                    "device_time": _at(t),
                    "destination_organization_id": self.world.orgs[elsewhere].id,
                },
            )
            body: dict[str, Any] = {
                "event_type": "received",
                "batch": rest,
                "device_time": _at(t + 5),
                "outcome": "accepted",
                "weight_kg": str(plan["weight"] or Decimal("0.5")),
            }
            if plan["again"]:
                body["outcome"] = "partially_accepted"
                body["reason"] = "some of it leaks"
                stated = plan["refused"]
                if stated is not None and stated < Decimal(found["quantity"]):
                    body["refused_kg"] = str(stated)
            await self.post(elsewhere, body)
            if plan["end"] != "treated":
                continue
            methods = _methods(stream, elsewhere)
            await self.post(
                elsewhere,
                {
                    "event_type": "treated",
                    "batch": rest,
                    "device_time": _at(t + 10),
                    "method": methods[plan["method"] % len(methods)],
                },
            )

    async def correct(
        self,
        code: str,
        who: str,
        fields: dict[str, Any],
        again: dict[str, Any] | None,
        t: int,
        *,
        again_by: str | None = None,
    ) -> None:
        """A correction and, when `again` is given, a correction of that correction (naming
        it, so applying to the same original event) to other values of the same fields, by
        `again_by` (a manager, once the first has taken the batch from its corrector)."""
        first = await self.post(
            who, {"event_type": "corrected", "batch": code, "device_time": _at(t), **fields}
        )
        if again is not None:
            await self.post(
                again_by or who,
                {
                    "event_type": "corrected",
                    "batch": code,
                    "device_time": _at(t + 3),
                    **again,
                    "corrects": first["event_id"],
                    "note": "checked again",
                },
            )

    async def correct_tagging(
        self, code: str, who: str, plan: dict[str, Any], at: int, unit: str, quantity: Any
    ) -> None:
        """The plan's corrections of the tagging: its time moved earlier or later across the
        city's midnight, its quantity, unit or category; each corrected again to another value
        when the plan says so. One that resizes what a refused part was set against is refused
        while that part lives (409 naming the field): the receipt is corrected instead."""
        stream = KINDS[plan["kind"]][1]
        tagging = (
            await self.client.get(f"/m/v1/batches/{code}/events", headers=self.world.headers(who))
        ).json()[0]["id"]
        t = plan["tag_minutes"]
        for name in plan["corrections"]:
            if name == "time":
                pair = [{"event_time": _at(-abs(t) - 45)}, {"event_time": _at(abs(t) + 35)}]
            elif name == "later":
                pair = [{"event_time": _at(abs(t) + 40)}, {"event_time": _at(-abs(t) - 40)}]
            elif name == "quantity":
                base = _whole(quantity) if unit == "count" else quantity
                pair = [{"quantity": str(base * 2)}, {"quantity": str(base * 3)}]
            elif name == "unit":
                # Items are whole: a unit corrected into items brings a whole quantity.
                pair = [
                    {"unit": u, **({"quantity": str(_whole(quantity))} if u == "count" else {})}
                    for u in OTHER_UNITS[unit]
                ]
            elif name == "category":
                pair = [{"category": c} for c in OTHER_CATEGORIES[stream]]
            else:
                continue
            sizing = name in ("quantity", "unit") or (name == "category" and unit != "kg")
            if sizing and await self.live_remainder(code):
                refused = await self.client.post(
                    "/m/v1/events",
                    json={
                        "client_event_id": str(uuid.uuid4()),
                        "event_type": "corrected",
                        "batch": code,
                        "device_time": _at(at),
                        "corrects": tagging,
                        **pair[0],
                    },
                    headers=self.world.headers(who),
                )
                assert (refused.status_code, refused.json()["field"]) == (409, name), refused.text
                continue
            await self.correct(
                code,
                who,
                {"corrects": tagging, **pair[0]},
                pair[1] if plan["recorrect"] else None,
                at,
            )
            at += 6
            if name == "unit":
                unit = pair[-1 if plan["recorrect"] else 0]["unit"]
                quantity = _whole(quantity) if unit == "count" else quantity

    async def correct_receipt(
        self,
        code: str,
        holder: str,
        receipt: str,
        outcome: str,
        latest: bool,
        plan: dict[str, Any],
        t: int,
    ) -> None:
        """The plan's corrections of a receipt: its weight (which resizes a refused part), and
        while it is the batch's latest step its outcome (to a partial acceptance, a rejection
        or an acceptance), each corrected again to another value when the plan says so. An
        older receipt's outcome is left: a corrected outcome that changes the batch's state,
        or makes a partial acceptance, is for the latest step only."""
        # An older receipt's weight only where it refused nothing: a later treatment weighed
        # the batch since, so a part refused at that receipt is not resized (409).
        if "weight" in plan["corrections"] and (
            outcome == "accepted" or (latest and outcome != "rejected")
        ):
            await self.correct(
                code,
                holder,
                {"corrects": receipt, "weight_kg": "0.75"},
                {"weight_kg": "0.6"} if plan["recorrect"] else None,
                t,
            )
        if "outcome" not in plan["corrections"] or not latest:
            return
        cycle = ["partially_accepted", "rejected", "accepted"]
        if not await self.mass_known(code):
            # A correction states no refused part, and of no known mass none can be told.
            cycle.remove("partially_accepted")
        to = plan["outcome_to"]
        if to not in cycle:
            to = cycle[0] if cycle[0] != outcome else cycle[1]
        elif to == outcome:
            to = cycle[(cycle.index(to) + 1) % len(cycle)]
        then = outcome  # corrected back: the latest correction's outcome wins

        def fix(value: str) -> dict[str, Any]:
            body: dict[str, Any] = {"outcome": value}
            if value != "accepted":  # a refusal, in whole or part, gives its reason
                body["reason"] = "two bags torn"
            if value != "rejected" and outcome == "rejected":
                body["weight_kg"] = "0.9"  # a receipt accepting waste states its weight
            return body

        # A rejected batch went back to whoever delivered it: the facility no longer sees it,
        # a manager corrects the rejection.
        await self.correct(
            code,
            "manager" if outcome == "rejected" else holder,
            {"corrects": receipt, **fix(to)},
            fix(then) if plan["recorrect"] else None,
            t + 5,
            again_by="manager",
        )

    async def correct_treatment(
        self, code: str, holder: str, treated: str, method: str, plan: dict[str, Any], t: int
    ) -> None:
        """The plan's correction of the treatment's method (one the holder's licence covers)
        and, again, to a third method (or back to the first where only two are covered)."""
        methods = _methods(KINDS[plan["kind"]][1], holder)
        if "method" not in plan["corrections"] or len(methods) < 2:
            return
        at = methods.index(method)
        first, then = methods[(at + 1) % len(methods)], methods[(at + 2) % len(methods)]
        await self.correct(
            code,
            holder,
            {"corrects": treated, "method": first},
            {"method": then} if plan["recorrect"] else None,
            t,
        )

    async def run(self, plans: list[dict[str, Any]], load_end: str) -> None:
        loads: list[str] = []
        bins: list[str] = []
        codes: list[str] = []
        for index, plan in enumerate(plans):
            who, stream, category, unit, facility = KINDS[plan["kind"]]
            t0 = plan["tag_minutes"] + index
            quantity = plan["quantity"] if unit != "count" else int(plan["quantity"]) + 1
            extra = {"carrier_organization_id": self.world.orgs["carrier"].id}
            code = await self.tag(
                who,
                t0,
                stream=stream,
                category=category,
                quantity=str(quantity),
                unit=unit,
                **(extra if stream == "medical" else {}),
            )
            codes.append(code)
            end = plan["end"]
            carrier = "carrier" if stream == "medical" else "collector"
            receipt: tuple[str, str, str, bool] | None = None  # holder, event, outcome, latest
            if end == "cancelled":
                await self.post(
                    who,
                    {
                        "event_type": "cancelled",
                        "batch": code,
                        "device_time": _at(t0 + 1),
                        "reason": "tagged twice",
                    },
                )
            elif end == "aggregated" and stream == "medical":
                # The carrier collects the bag, then scans it into its loads below.
                await self.post(
                    "carrier",
                    {"event_type": "collected", "batch": code, "device_time": _at(t0 + 1)},
                )
                loads.append(code)
            elif end == "aggregated" and stream == "household":
                bins.append(code)  # the community puts it in its bins below
            elif end != "tagged":
                await self.deliver(code, carrier, facility, t0 + 2)
                if end in ("received", "treated"):
                    received = await self.receive(code, facility, plan, t0 + 20)
                    redelivered = plan["outcome"] == "rejected" and plan["redeliver"]
                    holder = OTHER[facility] if redelivered else facility
                    outcome = "accepted" if redelivered else plan["outcome"]
                    state = (await self.batch(code))["state"]
                    latest = not (end == "treated" and state == "received")
                    if state in ("received", "rejected"):
                        receipt = (holder, received, outcome, latest)
                    if not latest:
                        methods = _methods(stream, holder)
                        method = methods[plan["method"] % len(methods)]
                        treated = await self.post(
                            holder,
                            {
                                "event_type": "treated",
                                "batch": code,
                                "device_time": _at(t0 + 40),
                                "method": method,
                                **({"weight_kg": str(plan["weight"])} if plan["weight"] else {}),
                            },
                        )
                        await self.correct_treatment(
                            code, holder, treated["event_id"], method, plan, t0 + 60
                        )
            # Later steps are dated after any corrected tagging time (at most 70 minutes past
            # the midnight): a step dated before its batch's tagging is refused.
            await self.correct_tagging(code, who, plan, 150 + 20 * index, unit, quantity)
            if receipt is not None:
                await self.correct_receipt(code, *receipt, plan, 300 + 20 * index)
            if plan["redeliver"] and end in ("received", "treated"):
                await self.redeliver_remainders(code, carrier, plan, 450 + 20 * index)
        undo = {code for code, plan in zip(codes, plans, strict=True) if plan.get("undo")}
        await self.loads("carrier", "medical", "med.hw01", loads, "facility", load_end, undo)
        await self.loads(
            "collector", "household", "hh.recyclable.paper", bins, "unlicensed", load_end, undo
        )

    async def loads(
        self,
        who: str,
        stream: str,
        category: str,
        children: list[str],
        facility: str,
        end: str,
        undo: set[str],
    ) -> None:
        """The batches put in containers two levels deep (one of them inside an inner
        container, the others beside it; two medical bags alone make a single load, whose
        weighing is shared among them), and the outer container taken to the facility to
        end as `end` says; then the batches in `undo` taken out of their containers again
        (the inner one's only batch leaves it empty)."""
        if not children or (stream == "medical" and len(children) < 2):
            return
        producer = (
            {"producer_organization_id": self.world.orgs[who].id} if stream == "medical" else {}
        )

        async def container(contents: list[str], t: int) -> str:
            code = await self.tag(
                who, t, stream=stream, category=category, quantity="9", unit="kg", **producer
            )
            await self.post(
                who,
                {
                    "event_type": "aggregated",
                    "batch": code,
                    "device_time": _at(t + 2),
                    "children": contents,
                },
            )
            return code

        if stream == "medical" and len(children) == 2:
            outer = await container(children, 600)
        else:
            inner = await container(children[:1], 600)
            outer = await container([inner, *children[1:]], 605)
        await self.deliver(outer, who, facility, 610)
        await self.load_end(stream, outer, facility, end)
        for code in children:
            if code in undo:
                await self.undo(code, who, 660)

    async def undo(self, code: str, who: str, t: int) -> None:
        """Take the batch out of the container its latest aggregation put it in."""
        listed = await self.client.get(
            f"/m/v1/batches/{code}/events", headers=self.world.headers("manager")
        )
        assert listed.status_code == 200, listed.text
        (aggregation,) = [e for e in listed.json() if e["event_type"] == "aggregated"]
        await self.post(
            who,
            {
                "event_type": "corrected",
                "batch": code,
                "device_time": _at(t),
                "corrects": aggregation["id"],
                "aggregated": False,
            },
        )

    async def load_end(self, stream: str, outer: str, facility: str, end: str) -> None:
        """The outer container received, rejected or treated as `end` says."""
        if end == "in_transit":
            return
        rejected = end == "rejected"
        await self.post(
            facility,
            {
                "event_type": "received",
                "batch": outer,
                "device_time": _at(630),
                "outcome": "rejected" if rejected else "accepted",
                **({"reason": "leaking"} if rejected else {"weight_kg": "8.5"}),
            },
        )
        if end in ("treated", "pending"):
            method = {"medical": ("D10", "D15"), "household": ("R3", "R13")}[stream]
            await self.post(
                facility,
                {
                    "event_type": "treated",
                    "batch": outer,
                    "device_time": _at(640),
                    "method": method[end == "pending"],
                },
            )


async def load_catalog() -> reference.Catalog:
    client = connections.get("default")
    categories = await client.execute_query_dict(
        "SELECT key, parent_key, unit_mass_kg, density_kg_m3 FROM waste_category"
    )
    return reference.Catalog(
        parent={c["key"]: c["parent_key"] for c in categories},
        unit_mass={c["key"]: c["unit_mass_kg"] for c in categories},
        density={c["key"]: c["density_kg_m3"] for c in categories},
    )


async def expected_facts(world: World) -> tuple[dict[int, reference.Fact], reference.Catalog]:
    client = connections.get("default")
    events = await client.execute_query_dict(
        "SELECT id, batch_id, seq, event_type, outcome, method_id, weight_kg, corrects_id,"
        " related_batch_id, details, device_time,"
        " (SELECT code FROM batch b WHERE b.id = batch_id) AS code FROM custody_event"
    )
    for e in events:
        if isinstance(e["details"], str):
            e["details"] = json.loads(e["details"])
    rows = await client.execute_query_dict("SELECT id, region_path FROM batch")
    regions = {r["id"]: r["region_path"] for r in rows}
    catalog = await load_catalog()
    return reference.facts(events, regions, catalog, "Asia/Shanghai"), catalog


async def check_remainders() -> None:
    """Each batch received in part holds exactly the remainder the reference expects."""
    client = connections.get("default")
    events = await client.execute_query_dict(
        "SELECT id, batch_id, seq, event_type, outcome, weight_kg, corrects_id, details"
        " FROM custody_event"
    )
    for e in events:
        if isinstance(e["details"], str):
            e["details"] = json.loads(e["details"])
    batches = await client.execute_query_dict(
        "SELECT split_from_id, quantity FROM batch"
        " WHERE split_from_id IS NOT NULL AND state <> 'cancelled'"
    )
    live: dict[int, list[Decimal]] = {}
    for b in batches:
        live.setdefault(b["split_from_id"], []).append(b["quantity"])
    want = reference.remainders(events, await load_catalog())
    assert set(live) <= set(want)
    for batch_id, kg in want.items():
        assert live.get(batch_id, []) == ([] if kg is None else [kg]), batch_id


def _ratio(numerator: Decimal, denominator: Decimal) -> tuple[Decimal, Decimal, Decimal | None]:
    """A rate as the API states it: numerator, denominator and their quotient to four places
    (none over nothing). docs/metrics.md does not say how the fourth place is rounded; this
    takes Decimal's own rounding, half to even."""
    rate = (numerator / denominator).quantize(Decimal("0.0001")) if denominator else None
    return numerator, denominator, rate


def _figures(cell: dict[str, Any]) -> dict[str, Any]:
    """A cohort's figures from the reference's sums, in the API's terms (docs/metrics.md §5)."""
    total = cell["generated"]

    def share(fates: tuple[str, ...]) -> tuple[Decimal, Decimal, Decimal | None]:
        return _ratio(sum((cell["fates"].get(f, Decimal(0)) for f in fates), Decimal(0)), total)

    return {
        "batches": cell["batches"],
        "batches_without_mass": cell["without_mass"],
        "generated_kg": total,
        "estimated_share": _ratio(cell["estimated"], total),
        "fates": {fate: share((fate,)) for fate in FATES},
        "harmless_treatment_rate": share(("recovered", "disposed_harmless")),
        "utilization_rate": share(("recovered",)),
    }


def _stated_ratio(r: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal | None]:
    """A rate as the API answered it."""
    rate = None if r["rate"] is None else Decimal(r["rate"])
    return Decimal(r["numerator"]), Decimal(r["denominator"]), rate


def _stated(figures: dict[str, Any]) -> dict[str, Any]:
    """A cohort's figures as the API answered them."""
    rate = _stated_ratio
    return {
        "batches": figures["batches"],
        "batches_without_mass": figures["batches_without_mass"],
        "generated_kg": Decimal(figures["generated_kg"]),
        "estimated_share": rate(figures["estimated_share"]),
        "fates": {fate: rate(r) for fate, r in figures["fates"].items()},
        "harmless_treatment_rate": rate(figures["harmless_treatment_rate"]),
        "utilization_rate": rate(figures["utilization_rate"]),
    }


async def compare_figures(
    client: httpx.AsyncClient,
    world: World,
    all_facts: dict[int, reference.Fact],
    region: str,
    day_from: date,
    day_to: date,
) -> None:
    """The API's utilization and mass balance for a region (the manager's city narrowed by
    ?region_id=) and period equal the reference's: every figure per category and per stream,
    each rate with its numerator and denominator."""
    path = world.regions[region].path
    params = {"date_from": day_from.isoformat(), "date_to": day_to.isoformat()}
    if region != "city":
        params["region_id"] = str(world.regions[region].id)
    context = (region, day_from, day_to)
    want = reference.utilization(all_facts, region=path, date_from=day_from, date_to=day_to)
    answer = await client.get(
        "/m/v1/metrics/utilization", params=params, headers=world.headers("manager")
    )
    assert answer.status_code == 200, answer.text
    got = {(c["stream"], c["category"]): _stated(c) for c in answer.json()["categories"]}
    assert got == {key: _figures(cell) for key, cell in want.items()}, context
    for figures in answer.json()["categories"]:
        assert figures["harmless_treatment_rate"]["definition"]["source"], context
    # Per stream, the same batches: its categories' together.
    streams: dict[str, dict[str, Any]] = {}
    for (stream, _), cell in want.items():
        into = streams.setdefault(
            stream,
            {
                "batches": 0,
                "without_mass": 0,
                "generated": Decimal(0),
                "estimated": Decimal(0),
                "fates": {},
            },
        )
        for name in ("batches", "without_mass", "generated", "estimated"):
            into[name] += cell[name]
        for fate, mass in cell["fates"].items():
            into["fates"][fate] = into["fates"].get(fate, Decimal(0)) + mass
    got_streams = {s["stream"]: _stated(s) for s in answer.json()["streams"]}
    assert got_streams == {stream: _figures(cell) for stream, cell in streams.items()}, context
    balance = await client.get(
        "/m/v1/metrics/mass-balance", params=params, headers=world.headers("manager")
    )
    assert balance.status_code == 200, balance.text
    want_balance = {
        key: _ratio(weighed, declared)
        for key, (weighed, declared) in reference.mass_balance(
            all_facts, region=path, date_from=day_from, date_to=day_to
        ).items()
    }
    got_balance = {}
    for c in balance.json()["categories"]:
        stated = _stated_ratio(c["weighed_over_declared"])
        assert (Decimal(c["weighed_kg"]), Decimal(c["declared_kg"])) == stated[:2], context
        got_balance[(c["stream"], c["category"])] = stated
    assert got_balance == want_balance, context


async def check_parts_within_the_whole(all_facts: dict[int, reference.Fact]) -> None:
    """Independently of both readings (docs/metrics.md §3: each part has its own fate, so the
    declared mass is counted once): a batch and the parts refused from it (and from those),
    not cancelled, weigh together at most the greater of what the batch declared (its kg, or
    the catalog's estimate) and what was measured of them — every part's latest counted
    weighing, plus the refused kg receivers stated — give or take a gram a part. A part weighed
    again heavier than at the receipt that sized its refused part adds that difference (the
    refused part stays as sized). A refused part counted twice (a partial acceptance set
    against the declaration again, a rejection keeping its refused part) breaks it. Checked on
    the service's stored facts and on the reference's."""
    client = connections.get("default")
    batches = {
        b["id"]: b
        for b in await client.execute_query_dict(
            "SELECT id, quantity, unit, category_id, split_from_id, state,"
            " EXISTS (SELECT 1 FROM batch c WHERE c.parent_id = b.id) AS container"
            " FROM batch b"
        )
    }
    events = await client.execute_query_dict(
        "SELECT id, batch_id, seq, event_type, outcome, weight_kg, corrects_id, details"
        " FROM custody_event ORDER BY seq"
    )
    fixes: dict[int, dict[str, Any]] = {}
    for e in events:
        if isinstance(e["details"], str):
            e["details"] = json.loads(e["details"])
        if e["event_type"] == "corrected":
            fixes.setdefault(e["corrects_id"], {}).update(e["details"]["corrected"])
    weighings: dict[int, list[Decimal]] = {}
    stated: dict[int, Decimal] = {}
    for e in sorted(events, key=lambda e: (e["batch_id"], e["seq"])):
        if e["event_type"] not in ("received", "treated"):
            continue
        fix = fixes.get(e["id"], {})
        outcome = fix.get("outcome", e["outcome"])
        weight = fix.get("weight_kg", e["weight_kg"])
        if e["event_type"] == "received" and outcome not in ("accepted", "partially_accepted"):
            continue
        if weight is not None:
            weighings.setdefault(e["batch_id"], []).append(Decimal(weight))
        details = e["details"] or {}
        if outcome == "partially_accepted" and details.get("refused_basis") == "stated":
            stated[e["batch_id"]] = stated.get(e["batch_id"], Decimal(0)) + Decimal(
                details["refused_kg"]
            )
    catalog = await load_catalog()
    service = {
        f["batch_id"]: f["mass_kg"]
        for f in await client.execute_query_dict("SELECT batch_id, mass_kg FROM batch_fact")
    }
    for batch_id, batch in batches.items():
        if batch["split_from_id"] is not None or batch["container"]:
            continue
        if batch["state"] == "cancelled":
            continue
        parts, todo = [], [batch_id]
        while todo:
            part = todo.pop()
            parts.append(part)
            todo += [
                b["id"]
                for b in batches.values()
                if b["split_from_id"] == part and b["state"] != "cancelled"
            ]
        if batch["unit"] == "kg":
            declared = Decimal(batch["quantity"])
        else:
            factor = catalog.factor(batch["category_id"], batch["unit"]) or Decimal(0)
            declared = (Decimal(batch["quantity"]) * factor).quantize(reference.MILLI)
        measured = sum((weighings[p][-1] for p in parts if p in weighings), Decimal(0))
        measured += sum((stated.get(p, Decimal(0)) for p in parts), Decimal(0))
        regrown = sum(
            (weighings[p][-1] - min(weighings[p]) for p in parts if p in weighings), Decimal(0)
        )
        bound = max(declared, measured) + regrown + reference.MILLI * len(parts)
        for name, masses in (
            ("service", service),
            ("reference", {b: f.mass for b, f in all_facts.items()}),
        ):
            total = sum((masses[p] for p in parts), Decimal(0))
            assert total <= bound, (name, batch_id, parts, total, declared, measured, regrown)


# A clinic's bag the carrier loads: two of them make a load (random draws may not).
LOADED_BAG: dict[str, Any] = {
    "kind": "medical_kg",
    "quantity": Decimal("2.5"),
    "tag_minutes": -5,
    "end": "aggregated",
    "outcome": "accepted",
    "redeliver": False,
    "again": False,
    "refused": None,
    "weight": None,
    "method": 1,
    "corrections": [],
    "outcome_to": "accepted",
    "recorrect": False,
    "undo": False,
}
# A bag received in part, whose receipt and tagging are corrected, and corrected again to
# other values; its refused part is re-delivered, accepted in part again and treated.
CORRECTED_BAG: dict[str, Any] = {
    **LOADED_BAG,
    "kind": "other_medical_kg",
    "quantity": Decimal("12"),
    "end": "received",
    "outcome": "partially_accepted",
    "weight": Decimal("7"),
    "redeliver": True,
    "again": True,
    "corrections": ["weight", "time", "outcome"],
    "outcome_to": "partially_accepted",
    "recorrect": True,
}


async def reset_custody() -> None:
    await connections.get("default").execute_script(
        "TRUNCATE custody_event, batch, label, batch_fact, cohort_delta, cohort_daily,"
        " cohort_monthly, cohort_city_monthly"
        " RESTART IDENTITY CASCADE"
    )


async def _licences(world: World) -> None:
    """What the histories' facilities may treat, beyond the world's licences."""
    if await registry.licence_covering(
        organization_id=world.orgs["unlicensed"].id, category_key="med.hw01", on=CITY_TODAY
    ):
        return
    await registry.add_licence(
        organization_id=world.orgs["unlicensed"].id, category_key="med.hw01", method_codes=["D10"]
    )
    await registry.add_licence(
        organization_id=world.orgs["unlicensed"].id,
        category_key="hh.recyclable",
        # A licence replaces the one of its category: keep the world's R3 and R4 with these.
        method_codes=METHODS["household"],
    )
    await registry.add_licence(
        organization_id=world.orgs["facility"].id,
        category_key="hh.recyclable",
        method_codes=["D10", "R3"],
    )
    # Agricultural packaging by kind: a category corrected to another stays treatable.
    for category in ("agri.plastic_bottle", *OTHER_CATEGORIES["agri_packaging"]):
        await registry.add_licence(
            organization_id=world.orgs["unlicensed"].id,
            category_key=category,
            method_codes=METHODS["agri_packaging"],
        )
        await registry.add_licence(
            organization_id=world.orgs["facility"].id,
            category_key=category,
            method_codes=["D10", "R3"],
        )


def month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


@randomized(
    10,
    # Each example posts a few dozen events: a failure is reported as drawn, not shrunk for
    # minutes (the failing plans are printed; add them as an @example to debug).
    phases=[Phase.explicit, Phase.generate],
)
@given(plans=st.lists(PLAN, min_size=1, max_size=6), load_end=st.sampled_from(LOAD_ENDS))
@example(
    plans=[LOADED_BAG, {**LOADED_BAG, "tag_minutes": 3, "corrections": ["time"], "undo": True}],
    load_end="treated",
)
@example(
    plans=[
        CORRECTED_BAG,
        {**LOADED_BAG, "corrections": ["quantity", "category"], "recorrect": True},
        {**LOADED_BAG, "kind": "other_medical_kg", "corrections": ["later"]},
        {**LOADED_BAG, "kind": "household", "corrections": ["unit"], "recorrect": True},
        {**LOADED_BAG, "kind": "household", "tag_minutes": 20},
    ],
    load_end="pending",
)
@example(
    plans=[
        {**LOADED_BAG, "kind": "other_medical_kg"},
        {**LOADED_BAG, "corrections": ["unit"]},
        LOADED_BAG,
        # Items received in part, the receipt corrected to a rejection and back: a new part.
        {
            **CORRECTED_BAG,
            "kind": "agri_count",
            "corrections": ["outcome"],
            "outcome_to": "rejected",
            "weight": Decimal("0.3"),
        },
        # m³ received in part, treated, its method corrected and corrected again.
        {
            **CORRECTED_BAG,
            "kind": "medical_m3",
            "end": "treated",
            "again": False,
            "corrections": ["method", "later"],
            "weight": None,
        },
    ],
    load_end="rejected",
)
@example(
    plans=[
        {**CORRECTED_BAG, "kind": "household", "outcome": "accepted", "recorrect": False},
        {
            **CORRECTED_BAG,
            "outcome": "rejected",
            "redeliver": False,
            "corrections": ["outcome", "category"],
            "outcome_to": "accepted",
        },
        # The inner bin's only bag taken out again: the bin, emptied, counts as itself.
        {**LOADED_BAG, "kind": "household", "corrections": ["later"], "undo": True},
        {**LOADED_BAG, "kind": "household"},
    ],
    load_end="received",
)
# Items and m³ of categories without a unit mass or density: no mass, until one is weighed.
@example(
    plans=[
        {**LOADED_BAG, "kind": "household_count", "end": "tagged"},
        {**LOADED_BAG, "kind": "household_count", "end": "received", "weight": Decimal("3")},
        # Corrected to kg, then again to m³: agricultural packaging has no density.
        {
            **LOADED_BAG,
            "kind": "agri_count",
            "end": "collected",
            "corrections": ["unit"],
            "recorrect": True,
        },
    ],
    load_end="treated",
)
async def test_figures_equal_the_reference_on_random_histories(
    client: httpx.AsyncClient, world: World, plans: list[dict[str, Any]], load_end: str
) -> None:
    await reset_custody()
    await _licences(world)
    await History(client, world).run(plans, load_end)
    await check_remainders()
    all_facts, _ = await expected_facts(world)
    await check_parts_within_the_whole(all_facts)
    first = (MIDNIGHT - timedelta(days=1)).date()
    last = (MIDNIGHT + timedelta(days=1)).date()
    # Whole months (the city's and the towns' monthly sums answer them), covering the days.
    months = (first.replace(day=1), month_end(last))
    day = MIDNIGHT.date()
    # Before a fold (the changes alone), over days: the city, a town, a village.
    for region, day_from, day_to in [
        ("city", first, last),
        ("city", day, day),
        ("other_town", first, last),
        ("village", first, day),
    ]:
        await compare_figures(client, world, all_facts, region, day_from, day_to)
    # Folded into the layers, and rebuilt from the log: the same sums, and the same figures
    # over whole months, which the city's and the towns' monthly sums answer.
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental
    for region in ("city", "town"):
        await compare_figures(client, world, all_facts, region, *months)


def test_the_midnight_of_the_histories_is_a_city_midnight() -> None:
    assert MIDNIGHT.astimezone(UTC).hour == 16
