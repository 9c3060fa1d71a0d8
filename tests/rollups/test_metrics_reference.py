"""The service's utilization, harmless-treatment and mass-balance figures equal an independent
reading of the definitions (tests/rollups/reference.py) over randomized histories — corrections
of corrections, cancellations, rejections and re-deliveries, partial acceptances, mixed units,
aggregation, events either side of the city's midnight, partial acceptances whose remainders
are sometimes re-delivered and treated elsewhere — with the incremental roll-ups and after a
rebuild."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tortoise import connections

from tests.factories import CITY_TODAY, World
from tests.rollups import reference
from wastetrack.registry import service as registry
from wastetrack.rollups import service as rollups

CITY = ZoneInfo("Asia/Shanghai")
# Around the city's last midnight but one, so events fall either side of it.
MIDNIGHT = datetime.now(CITY).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
PLAN = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["medical_kg", "medical_m3", "household", "agri_count"]),
        "quantity": st.integers(min_value=1, max_value=4000).map(lambda n: Decimal(n) / 100),
        "tag_minutes": st.integers(min_value=-30, max_value=30),
        "end": st.sampled_from(
            ["tagged", "cancelled", "collected", "received", "treated", "aggregated"]
        ),
        "outcome": st.sampled_from(["accepted", "partially_accepted", "rejected"]),
        "redeliver": st.booleans(),
        "refused": st.one_of(
            st.none(), st.integers(min_value=1, max_value=2000).map(lambda n: Decimal(n) / 100)
        ),
        "weight": st.one_of(
            st.none(), st.integers(min_value=1, max_value=5000).map(lambda n: Decimal(n) / 100)
        ),
        "method": st.integers(min_value=0, max_value=10),
        "corrections": st.lists(
            st.sampled_from(["time", "quantity", "weight", "outcome", "method", "weight"]),
            max_size=3,
        ),
    }
)
KINDS = {
    "medical_kg": ("clinic", "medical", "med.infectious", "kg", "facility"),
    "medical_m3": ("clinic", "medical", "med.sharps", "m3", "facility"),
    "household": ("collector", "household", "hh.recyclable.paper", "kg", "unlicensed"),
    "agri_count": ("collector", "agri_packaging", "agri.plastic_bottle", "count", "unlicensed"),
}
METHODS = {
    "medical": ["D9", "D10", "D15"],
    "household": ["R3", "R4", "D1", "D4", "R13"],
    "agri_packaging": ["R3", "D10", "D1", "D4", "R13"],
}
OTHER = {"facility": "unlicensed", "unlicensed": "facility"}


def _at(minutes: int) -> str:
    return (MIDNIGHT + timedelta(minutes=minutes)).isoformat()


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
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def live_remainder(self, code: str, who: str) -> bool:
        """Whether a receipt refused part of the batch and that part is not cancelled."""
        batch = await self.client.get(f"/m/v1/batches/{code}", headers=self.world.headers(who))
        for remainder in batch.json()["remainders"]:
            read = await self.client.get(
                f"/m/v1/batches/{remainder}", headers=self.world.headers("manager")
            )
            if read.json()["state"] != "cancelled":
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
        answer = await self.post(facility, body)
        event_id: str = answer["event_id"]
        if outcome == "rejected" and plan["redeliver"]:
            carrier = "carrier" if plan["kind"].startswith("medical") else "collector"
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
        self, code: str, who: str, carrier: str, plan: dict[str, Any], t: int
    ) -> None:
        """Take each remainder still lying rejected to the other facility, which accepts it
        and, when the plan ends in treatment, treats it."""
        stream = KINDS[plan["kind"]][1]
        original = (
            await self.client.get(f"/m/v1/batches/{code}", headers=self.world.headers(who))
        ).json()
        refuser = "facility" if original["holder_id"] == self.world.orgs["facility"].id else None
        elsewhere = OTHER[refuser or "unlicensed"]
        for rest in original["remainders"]:
            found = (
                await self.client.get(f"/m/v1/batches/{rest}", headers=self.world.headers(carrier))
            ).json()
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
            await self.post(
                elsewhere,
                {
                    "event_type": "received",
                    "batch": rest,
                    "device_time": _at(t + 5),
                    "outcome": "accepted",
                    "weight_kg": str(plan["weight"] or Decimal("0.5")),
                },
            )
            if plan["end"] != "treated":
                continue
            if stream == "medical":
                methods = ["D10"] if elsewhere == "unlicensed" else METHODS["medical"]
            else:
                methods = METHODS[stream] if elsewhere == "unlicensed" else ["D10", "R3"]
            await self.post(
                elsewhere,
                {
                    "event_type": "treated",
                    "batch": rest,
                    "device_time": _at(t + 10),
                    "method": methods[plan["method"] % len(methods)],
                },
            )

    async def run(self, plans: list[dict[str, Any]]) -> None:
        loads: list[str] = []
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
            tagged_id = (
                await self.client.get(
                    f"/m/v1/batches/{code}/events", headers=self.world.headers(who)
                )
            ).json()[0]["id"]
            fixes: list[tuple[str, dict[str, Any]]] = []
            for name in plan["corrections"]:
                if name == "time":
                    fixes.append((who, {"corrects": tagged_id, "event_time": _at(-t0 - 45)}))
                elif name == "quantity":
                    fixes.append((who, {"corrects": tagged_id, "quantity": str(quantity * 2)}))
            end = plan["end"]
            carrier = "carrier" if stream == "medical" else "collector"
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
                # The carrier collects the bag, then scans it into its load below.
                await self.post(
                    "carrier",
                    {"event_type": "collected", "batch": code, "device_time": _at(t0 + 1)},
                )
                loads.append(code)
            elif end != "tagged":
                await self.deliver(code, carrier, facility, t0 + 2)
                if end in ("received", "treated"):
                    received = await self.receive(code, facility, plan, t0 + 20)
                    holder = facility
                    state = (
                        await self.client.get(
                            f"/m/v1/batches/{code}", headers=self.world.headers(who)
                        )
                    ).json()["state"]
                    if state == "received":
                        holder = (
                            facility
                            if not (plan["outcome"] == "rejected" and plan["redeliver"])
                            else OTHER[facility]
                        )
                        if "weight" in plan["corrections"]:
                            fixes.append((holder, {"corrects": received, "weight_kg": "0.75"}))
                        if "outcome" in plan["corrections"] and end == "received":
                            fixes.append(
                                (
                                    holder,
                                    {
                                        "corrects": received,
                                        "outcome": "partially_accepted",
                                        "reason": "two bags torn",
                                    },
                                )
                            )
                    if end == "treated" and state == "received":
                        methods = METHODS[stream] if holder == facility else ["D10", "R3"]
                        method = methods[plan["method"] % len(methods)]
                        if stream == "medical" and holder == "unlicensed":
                            method = "D10"
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
                        if "method" in plan["corrections"] and stream == "medical":
                            other = "D9" if method != "D9" else "D10"
                            fixes.append(
                                (holder, {"corrects": treated["event_id"], "method": other})
                            )
            for corrector, fields in fixes:
                if "quantity" in fields and await self.live_remainder(code, who):
                    # Its receipt refused a part against the declaration, which then stands.
                    body = {"event_type": "corrected", "batch": code, "device_time": _at(t0 + 50)}
                    refused = await self.client.post(
                        "/m/v1/events",
                        json={"client_event_id": str(uuid.uuid4()), **body, **fields},
                        headers=self.world.headers(corrector),
                    )
                    assert (refused.status_code, refused.json()["field"]) == (409, "quantity")
                    continue
                first = await self.post(
                    corrector,
                    {
                        "event_type": "corrected",
                        "batch": code,
                        "device_time": _at(t0 + 50),
                        **fields,
                    },
                )
                if len(fixes) > 1 and fields is fixes[-1][1]:
                    # A correction of a correction names the same original event.
                    await self.post(
                        corrector,
                        {
                            "event_type": "corrected",
                            "batch": code,
                            "device_time": _at(t0 + 55),
                            "corrects": first["event_id"],
                            "note": "checked again",
                        },
                    )
            if plan["redeliver"] and end in ("received", "treated"):
                await self.redeliver_remainders(code, who, carrier, plan, t0 + 60)
        if len(loads) >= 2:
            load = await self.tag(
                "carrier",
                40,
                stream="medical",
                category="med.hw01",
                quantity="9",
                unit="kg",
                producer_organization_id=self.world.orgs["carrier"].id,
            )
            await self.post(
                "carrier",
                {
                    "event_type": "aggregated",
                    "batch": load,
                    "device_time": _at(45),
                    "children": loads,
                },
            )
            await self.deliver(load, "carrier", "facility", 50)
            await self.post(
                "facility",
                {
                    "event_type": "received",
                    "batch": load,
                    "device_time": _at(70),
                    "outcome": "accepted",
                    "weight_kg": "8.5",
                },
            )
            await self.post(
                "facility",
                {"event_type": "treated", "batch": load, "device_time": _at(90), "method": "D10"},
            )


async def _catalog() -> reference.Catalog:
    client = connections.get("default")
    categories = await client.execute_query_dict(
        "SELECT key, parent_key, unit_mass_kg, density_kg_m3 FROM waste_category"
    )
    methods = await client.execute_query_dict("SELECT code, mode, harmless FROM treatment_method")
    return reference.Catalog(
        parent={c["key"]: c["parent_key"] for c in categories},
        unit_mass={c["key"]: c["unit_mass_kg"] for c in categories},
        density={c["key"]: c["density_kg_m3"] for c in categories},
        mode={m["code"]: m["mode"] for m in methods},
        harmless={m["code"]: m["harmless"] for m in methods},
    )


async def _expected(world: World) -> tuple[dict[int, reference.Fact], reference.Catalog]:
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
    catalog = await _catalog()
    return reference.facts(events, regions, catalog, "Asia/Shanghai"), catalog


async def _check_remainders() -> None:
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
    want = reference.remainders(events, await _catalog())
    assert set(live) <= set(want)
    for batch_id, kg in want.items():
        assert live.get(batch_id, []) == ([] if kg is None else [kg]), batch_id


async def _compare(client: httpx.AsyncClient, world: World, day_from: date, day_to: date) -> None:
    all_facts, _ = await _expected(world)
    city = world.regions["city"].path
    want = reference.utilization(all_facts, region=city, date_from=day_from, date_to=day_to)
    answer = await client.get(
        "/m/v1/metrics/utilization",
        params={"date_from": day_from.isoformat(), "date_to": day_to.isoformat()},
        headers=world.headers("manager"),
    )
    assert answer.status_code == 200, answer.text
    got = {(c["stream"], c["category"]): c for c in answer.json()["categories"]}
    assert set(got) == set(want)
    for key, cell in want.items():
        figures = got[key]
        assert figures["batches"] == cell["batches"], key
        assert Decimal(figures["generated_kg"]) == cell["generated"], key
        assert Decimal(figures["estimated_share"]["numerator"]) == cell["estimated"], key
        for fate, share in figures["fates"].items():
            assert Decimal(share["numerator"]) == cell["fates"].get(fate, 0), (key, fate)
            assert share["rate"] is None or Decimal(share["rate"]) <= 1
        harmless = cell["fates"].get("recovered", 0) + cell["fates"].get("disposed_harmless", 0)
        rate = figures["harmless_treatment_rate"]
        assert Decimal(rate["numerator"]) == harmless, key
        assert rate["rate"] is None or Decimal(rate["rate"]) <= 1
        assert rate["definition"]["source"]
        recovered = figures["utilization_rate"]
        assert Decimal(recovered["numerator"]) == cell["fates"].get("recovered", 0), key
    balance = await client.get(
        "/m/v1/metrics/mass-balance",
        params={"date_from": day_from.isoformat(), "date_to": day_to.isoformat()},
        headers=world.headers("manager"),
    )
    want_balance = reference.mass_balance(
        all_facts, region=city, date_from=day_from, date_to=day_to
    )
    got_balance = {
        (c["stream"], c["category"]): (Decimal(c["weighed_kg"]), Decimal(c["declared_kg"]))
        for c in balance.json()["categories"]
    }
    assert got_balance == want_balance


# A clinic's bag the carrier loads: two of them make a load (random draws may not).
LOADED_BAG: dict[str, Any] = {
    "kind": "medical_kg",
    "quantity": Decimal("2.5"),
    "tag_minutes": -5,
    "end": "aggregated",
    "outcome": "accepted",
    "redeliver": False,
    "refused": None,
    "weight": None,
    "method": 1,
    "corrections": [],
}


async def _reset() -> None:
    await connections.get("default").execute_script(
        "TRUNCATE custody_event, batch, label, batch_fact, cohort_delta, cohort_daily,"
        " cohort_monthly, cohort_city_monthly"
        " RESTART IDENTITY CASCADE"
    )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(plans=st.lists(PLAN, min_size=1, max_size=6))
@example(plans=[LOADED_BAG, {**LOADED_BAG, "tag_minutes": 3, "corrections": ["time"]}])
async def test_figures_equal_the_reference_on_random_histories(
    client: httpx.AsyncClient, world: World, plans: list[dict[str, Any]]
) -> None:
    await _reset()
    if not await registry.licence_covering(
        organization_id=world.orgs["unlicensed"].id, category_key="med.hw01", on=CITY_TODAY
    ):
        await registry.add_licence(
            organization_id=world.orgs["unlicensed"].id,
            category_key="med.hw01",
            method_codes=["D10"],
        )
        await registry.add_licence(
            organization_id=world.orgs["unlicensed"].id,
            category_key="agri.plastic_bottle",
            method_codes=["R3", "D10", "D1", "D4", "R13"],
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
        await registry.add_licence(
            organization_id=world.orgs["facility"].id,
            category_key="agri.plastic_bottle",
            method_codes=["D10", "R3"],
        )
    await History(client, world).run(plans)
    await _check_remainders()
    first = (MIDNIGHT - timedelta(days=1)).date()
    last = (MIDNIGHT + timedelta(days=1)).date()
    for day_from, day_to in [(first, last), (MIDNIGHT.date(), MIDNIGHT.date())]:
        await _compare(client, world, day_from, day_to)
    incremental = await rollups.snapshot()
    await rollups.rebuild(timezone="Asia/Shanghai")
    assert await rollups.snapshot() == incremental
    await _compare(client, world, first, last)


def test_the_midnight_of_the_histories_is_a_city_midnight() -> None:
    assert MIDNIGHT.astimezone(UTC).hour == 16
