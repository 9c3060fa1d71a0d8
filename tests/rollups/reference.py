"""A small, independent reading of docs/metrics.md §2–5 in plain Python over the custody
events — no roll-up SQL — against which the service's figures are checked. A partial
acceptance's remainder is a batch with a chain of its own, so `facts` counts it like any other;
`remainders` says independently what each remainder should weigh. A method's fate comes from
the reference's own table (`METHOD_FATES`), never from the catalog the service reads."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

MILLI = Decimal("0.001")
# Each treatment method's fate, written out from the definitions (reference metrics.md §4, and
# RU, preparing for re-use, which docs/metrics.md §4 counts as recovered) rather than read from
# the catalog the service reads: a mode or harmless flag loaded wrongly there is caught.
METHOD_FATES: dict[str, str] = {
    **dict.fromkeys(["RU", *(f"R{n}" for n in range(1, 12))], "recovered"),
    **dict.fromkeys(["D1", "D5", "D8", "D9", "D10"], "disposed_harmless"),
    **dict.fromkeys(["D2", "D3", "D4", "D6", "D7", "D11", "D12"], "disposed_not_harmless"),
    **dict.fromkeys(["R12", "R13", "D13", "D14", "D15"], "pending"),
}


@dataclass
class Catalog:
    parent: dict[str, str | None]
    unit_mass: dict[str, Decimal | None]
    density: dict[str, Decimal | None]

    def factor(self, category: str, unit: str) -> Decimal | None:
        table = self.unit_mass if unit == "count" else self.density
        key: str | None = category
        while key is not None:
            if table.get(key) is not None:
                return table[key]
            key = self.parent.get(key)
        return None


@dataclass
class Fact:
    day: date
    region: str
    stream: str
    category: str
    fate: str
    mass: Decimal
    estimated: bool
    balance: tuple[Decimal, Decimal] | None  # (weighed, declared)
    # False when nothing gives its mass: no weighing, no kg declared, no unit mass or density.
    mass_known: bool


@dataclass
class _Batch:
    events: list[dict[str, Any]] = field(default_factory=list)


def facts(
    events: list[dict[str, Any]], regions: dict[int, str], catalog: Catalog, timezone: str
) -> dict[int, Fact]:
    """Every batch's fact. `events` are custody_event rows as dicts, each with its batch's
    `code`; `regions` maps a batch id to its origin region path."""
    tz = ZoneInfo(timezone)
    chains: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e["batch_id"], e["seq"])):
        chains[e["batch_id"]].append(e)
    by_id = {e["id"]: e for e in events}

    # Per original event and field, the latest correction's value.
    corrected: dict[Any, dict[str, str]] = defaultdict(dict)
    for e in sorted(events, key=lambda e: e["seq"]):
        if e["event_type"] == "corrected":
            root = e["corrects_id"]
            while by_id[root]["event_type"] == "corrected":
                root = by_id[root]["corrects_id"]
            corrected[root].update((e["details"] or {}).get("corrected", {}))

    def value(e: dict[str, Any], name: str, column: str | None = None) -> Any:
        fix = corrected.get(e["id"], {})
        return fix[name] if name in fix else e[column or name]

    # Each batch's container: its latest aggregation into one that no correction undid
    # (`aggregated: false` takes it out again, as if never scanned in).
    parent: dict[int, int] = {}
    for batch_id, chain in chains.items():
        for e in chain:
            if (
                e["event_type"] == "aggregated"
                and e["related_batch_id"] is not None
                and corrected.get(e["id"], {}).get("aggregated") != "false"
            ):
                parent[batch_id] = e["related_batch_id"]
    children: dict[int, list[int]] = defaultdict(list)
    for child, p in parent.items():
        children[p].append(child)

    def tagging(batch_id: int) -> dict[str, Any]:
        t = chains[batch_id][0]
        fix = corrected.get(t["id"], {})
        return {
            "time": datetime.fromisoformat(fix["event_time"])
            if "event_time" in fix
            else t["device_time"],
            "quantity": Decimal(fix.get("quantity", t["details"]["quantity"])),
            "unit": fix.get("unit", t["details"]["unit"]),
            "category": fix.get("category", t["details"]["category"]),
            "stream": t["details"]["stream"],
        }

    def own_fate(batch_id: int) -> str:
        deciding = [
            e for e in chains[batch_id] if e["event_type"] in ("received", "treated", "cancelled")
        ]
        if not deciding:
            return "in_progress"
        last = deciding[-1]
        if last["event_type"] == "cancelled":
            return "cancelled"
        if last["event_type"] == "received":
            return "rejected" if value(last, "outcome") == "rejected" else "in_progress"
        return METHOD_FATES[value(last, "method", "method_id")]

    def weighed(batch_id: int) -> Decimal | None:
        found = None
        for e in chains[batch_id]:
            weight = value(e, "weight_kg")
            if weight is None:
                continue
            if e["event_type"] == "treated" or (
                e["event_type"] == "received"
                and value(e, "outcome") in ("accepted", "partially_accepted")
            ):
                found = Decimal(weight)
        return found

    # The receipt that sized each remainder (by the remainder's code), as first recorded: a
    # correction naming a remainder resized or made it against the receipt it corrects.
    sized_by: dict[str, dict[str, Any]] = {}
    for e in events:
        named = (e["details"] or {}).get("remainder")
        if named:
            receipt = e
            while receipt["event_type"] == "corrected":
                receipt = by_id[receipt["corrects_id"]]
            sized_by[named] = receipt

    def estimate_basis(batch_id: int) -> bool:
        """Whether the declared mass is an estimate: counted in items or m³, or a remainder
        whose refused kg the receiver did not state, set against such an estimate."""
        if tagging(batch_id)["unit"] != "kg":
            return True
        first = chains[batch_id][0]
        if "split_from" not in (first["details"] or {}):
            return False
        receipt = sized_by[first["code"]]
        if receipt["details"].get("refused_basis") == "stated":
            return False
        return estimate_basis(first["related_batch_id"])

    def tag_code(batch_id: int) -> str:
        return str(chains[batch_id][0]["code"])

    # Each batch's remainders, by the code their tagging says they were split from.
    split_off: dict[str, list[int]] = defaultdict(list)
    for batch_id, chain in chains.items():
        origin = (chain[0]["details"] or {}).get("split_from")
        if chain[0]["event_type"] == "tagged" and origin:
            split_off[origin].append(batch_id)

    # A container of plain, unweighed kg declarations compares its weighing with them: each
    # child gets its part of the weighing by its declared kg, in whole grams, the grams left
    # over going to the largest remainders (then the lower id).
    shares: dict[int, tuple[Decimal, Decimal]] = {}
    for container, kids in children.items():
        weight = weighed(container)
        if weight is None or not all(
            not estimate_basis(c) and weighed(c) is None and c not in children for c in kids
        ):
            continue
        grams = {c: int(tagging(c)["quantity"] * 1000) for c in kids}
        total, whole = sum(grams.values()), int(weight * 1000)
        if not total:
            continue
        part = {c: divmod(whole * g, total) for c, g in grams.items()}
        left = whole - sum(q for q, _ in part.values())
        order = sorted(kids, key=lambda c: (-part[c][1], c))
        for rank, c in enumerate(order):
            share = part[c][0] + (1 if rank < left else 0)
            shares[c] = (Decimal(share) / 1000, tagging(c)["quantity"])

    result = {}
    for batch_id in chains:
        tag = tagging(batch_id)
        root = batch_id
        while root in parent:
            root = parent[root]
        fate = "container" if batch_id in children else own_fate(root)
        weight = weighed(batch_id)
        known = True
        if weight is not None:
            mass, estimated = weight, False
        elif tag["unit"] == "kg":
            mass, estimated = tag["quantity"], estimate_basis(batch_id)
        else:
            factor = catalog.factor(tag["category"], tag["unit"])
            mass, estimated = tag["quantity"] * (factor or 0), True
            known = factor is not None
        balance = None
        if batch_id in shares:
            balance = shares[batch_id]
        elif batch_id in children:
            pass  # in no cohort: its children carry their shares of its weighing
        elif weight is not None and not estimate_basis(batch_id):
            # The parts refused from it declare their own kg: its weighing covers the rest.
            refused = sum(
                (
                    tagging(r)["quantity"]
                    for r in split_off[tag_code(batch_id)]
                    if own_fate(r) != "cancelled"
                ),
                Decimal(0),
            )
            if tag["quantity"] > refused:
                balance = (weight, tag["quantity"] - refused)
        result[batch_id] = Fact(
            day=tag["time"].astimezone(tz).date(),
            region=regions[batch_id],
            stream=tag["stream"],
            category=tag["category"],
            fate=fate,
            mass=mass.quantize(MILLI, ROUND_HALF_UP),
            estimated=estimated,
            balance=balance,
            mass_known=known,
        )
    return result


def utilization(
    all_facts: dict[int, Fact], *, region: str, date_from: date, date_to: date
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per stream and category: the cohort's batches, those of them without a mass, mass,
    mass by fate, estimated mass."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for f in all_facts.values():
        if f.fate in ("cancelled", "container") or not f.region.startswith(region):
            continue
        if not date_from <= f.day <= date_to:
            continue
        cell = out.setdefault(
            (f.stream, f.category),
            {
                "batches": 0,
                "without_mass": 0,
                "generated": Decimal(0),
                "estimated": Decimal(0),
                "fates": {},
            },
        )
        cell["batches"] += 1
        cell["without_mass"] += 0 if f.mass_known else 1
        cell["generated"] += f.mass
        cell["estimated"] += f.mass if f.estimated else 0
        cell["fates"][f.fate] = cell["fates"].get(f.fate, Decimal(0)) + f.mass
    return out


def mass_balance(
    all_facts: dict[int, Fact], *, region: str, date_from: date, date_to: date
) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    out: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for f in all_facts.values():
        if f.fate == "cancelled" or f.balance is None or not f.balance[1]:
            continue
        if not f.region.startswith(region) or not date_from <= f.day <= date_to:
            continue
        weighed, declared = out.get((f.stream, f.category), (Decimal(0), Decimal(0)))
        out[(f.stream, f.category)] = (weighed + f.balance[0], declared + f.balance[1])
    return out


def remainders(events: list[dict[str, Any]], catalog: Catalog) -> dict[int, Decimal | None]:
    """Per batch that was received in part at some time: the kg its live (not cancelled)
    remainder should hold, None for none. The refused part is as the receiver stated it, else
    the declared kg (count and m³ by the catalog's factor) minus the accepted weight, both as
    they stood when the receipt or its latest correction of outcome or weight was recorded;
    nothing is left when that is not positive."""
    chains: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e["batch_id"], e["seq"])):
        chains[e["batch_id"]].append(e)
    out: dict[int, Decimal | None] = {}
    for batch_id, chain in chains.items():
        tagged = chain[0]
        declared = {
            "quantity": Decimal(tagged["details"]["quantity"]),
            "unit": tagged["details"]["unit"],
            "category": tagged["details"]["category"],
        }
        receipts: dict[Any, dict[str, Any]] = {}
        refused: Decimal | None = None
        for e in chain:
            fix = (
                (e["details"] or {}).get("corrected", {}) if e["event_type"] == "corrected" else {}
            )
            if e["corrects_id"] == tagged["id"]:
                declared.update((k, fix[k]) for k in ("quantity", "unit", "category") if k in fix)
                continue
            if e["event_type"] == "received":
                receipts[e["id"]] = {
                    "outcome": e["outcome"],
                    "weight": e["weight_kg"],
                    "stated": e["details"].get("refused_kg")
                    if e["details"].get("refused_basis") == "stated"
                    else None,
                }
                receipt = receipts[e["id"]]
            elif e["corrects_id"] in receipts and fix.keys() & {"outcome", "weight_kg"}:
                receipt = receipts[e["corrects_id"]]
                receipt["outcome"] = fix.get("outcome", receipt["outcome"])
                receipt["weight"] = fix.get("weight_kg", receipt["weight"])
            else:
                continue
            if receipt["outcome"] != "partially_accepted":
                refused = None
            elif receipt["stated"] is not None:
                refused = Decimal(receipt["stated"])
            else:
                quantity = Decimal(declared["quantity"])
                if declared["unit"] == "kg":
                    basis = quantity
                else:
                    factor = catalog.factor(declared["category"], declared["unit"])
                    basis = (quantity * (factor or 0)).quantize(MILLI, ROUND_HALF_UP)
                refused = basis - Decimal(receipt["weight"] or 0)
                refused = refused if refused > 0 else None
            out[batch_id] = refused
    return out
